"""Classification reports, computed by scikit-learn: accuracy, macro precision/recall/F1, confusion matrix."""

from __future__ import annotations

import numpy as np
import torch


def _numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def report(y_true, y_pred, num_classes: int | None = None) -> dict:
    """Accuracy, macro precision/recall/F1, per-class scores and the confusion matrix.

    Macro averages weigh every class equally, so a class the model never predicts pulls them down
    even when accuracy looks fine. Classes are ``0 .. num_classes - 1`` (default: those seen).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    t, p = _numpy(y_true), _numpy(y_pred)
    n = num_classes or int(max(t.max(initial=0), p.max(initial=0))) + 1
    labels = list(range(n))
    prec, rec, f1, support = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(t, p)),
        "macro_precision": float(prec.mean()),
        "macro_recall": float(rec.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {
            "precision": prec.tolist(),
            "recall": rec.tolist(),
            "f1": f1.tolist(),
            "support": support.tolist(),
        },
        "confusion": confusion_matrix(t, p, labels=labels),
    }


def per_class_table(rep: dict):
    """The per-class part of :func:`report` as a pandas DataFrame (one row per class)."""
    import pandas as pd

    frame = pd.DataFrame(rep["per_class"])
    frame.index.name = "class"
    return frame


def headline(rep: dict) -> dict[str, float]:
    """The headline numbers of a report, for tables."""
    return {k: rep[k] for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1")}


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) of a list of numbers."""
    a = np.asarray(list(values), dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0
