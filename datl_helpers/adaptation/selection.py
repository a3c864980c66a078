"""Notebook 04 sections 5 and 6: is the alignment real, and which model to keep without target labels?

* :func:`proxy_a_distance` and :func:`alignment`: how well a fresh linear classifier tells source
  features from target features (Ben-David et al.): 0 indistinguishable, 2 perfectly separable.
* :func:`selection_criteria` and :func:`choose`: the label-free signals a practitioner can use to
  pick a model (source validation accuracy, the target's prediction entropy, DEV's importance-
  weighted source risk), each set against the forbidden oracle (target test accuracy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from datl_helpers.core import models, train
from datl_helpers.core.domain import Domain


def proxy_a_distance(source_features: torch.Tensor, target_features: torch.Tensor, seed: int = 0) -> float:
    """Proxy A-distance (Ben-David et al.): ``2 * (1 - 2 * err)`` of a linear classifier that tells
    the two feature sets apart (cross-validated). 0: indistinguishable; 2: perfectly separable."""
    from datl_helpers.data.shift import domain_separability

    n = min(len(source_features), len(target_features))  # balanced, so chance error is 0.5
    vectors = torch.cat([source_features[:n], target_features[:n]]).numpy()
    names = ["source"] * n + ["target"] * n
    error = 1.0 - domain_separability(vectors, names, seed=seed)
    return max(0.0, 2.0 * (1.0 - 2.0 * error))


def alignment(
    models_by_name: dict[str, models.StagedNet], source: Domain, target: Domain, n: int = 1000, seed: int = 0,
    device: str | torch.device = "auto",
) -> tuple[list[dict], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The proxy A-distance of each model's features on ``n`` random held-out images of each
    domain (the same images for every model), and those features (source, target) by name."""
    from datl_helpers.transfer.features import extract_features

    gen = torch.Generator().manual_seed(seed)  # random subsets: the test sets are sorted by class
    pick_s = torch.randperm(len(source.y_test), generator=gen)[:n]
    pick_t = torch.randperm(len(target.y_test), generator=gen)[:n]
    rows, feats = [], {}
    for name, model in models_by_name.items():
        fs = extract_features(model, source.x_test[pick_s], device=device)
        ft = extract_features(model, target.x_test[pick_t], device=device)
        feats[name] = (fs, ft)
        rows.append({"features of": name, "proxy A-distance": round(proxy_a_distance(fs, ft, seed=seed), 3)})
    return rows, feats


@torch.no_grad()
def prediction_entropy(model: models.StagedNet, x: torch.Tensor, device: str | torch.device = "auto") -> float:
    """Mean entropy (nats) of the model's predicted class distribution on unlabelled images.

    A label-free signal: confident (low-entropy) predictions on the target often, not always,
    go with accurate ones. A collapsed model is confident too, so never use it alone.
    """
    probs = train.predict_logits(model, x, device=device).softmax(1)
    return float(-(probs * probs.clamp_min(1e-12).log()).sum(1).mean())


@torch.no_grad()
def dev_risk(
    model: models.StagedNet, source_val: tuple[torch.Tensor, torch.Tensor], target_x: torch.Tensor,
    seed: int = 0, device: str | torch.device = "auto",
) -> float:
    """Deep Embedded Validation (You et al., 2019): the target risk estimated from labelled *source*
    validation images, each weighted by how target-like its features are.

    A logistic regression tells source-validation features from target features; its odds give the
    density ratio w(x) = p_target(x) / p_source(x). The weighted loss w * loss is an unbiased but
    noisy estimate of the target loss; DEV subtracts a control variate (w has mean 1) to cut the
    variance. Lower is better.
    """
    from sklearn.linear_model import LogisticRegression

    from datl_helpers.transfer.features import extract_features

    xv, yv = source_val
    fs = extract_features(model, xv, device=device).numpy()
    ft = extract_features(model, target_x, device=device).numpy()
    domains = torch.cat([torch.zeros(len(fs)), torch.ones(len(ft))]).numpy()
    clf = LogisticRegression(max_iter=1000, C=0.1, random_state=seed)
    clf.fit(torch.cat([torch.as_tensor(fs), torch.as_tensor(ft)]).numpy(), domains)
    p_target = torch.as_tensor(clf.predict_proba(fs)[:, 1], dtype=torch.float64).clamp(1e-4, 1 - 1e-4)
    w = p_target / (1 - p_target) * (len(fs) / len(ft))
    loss = F.cross_entropy(train.predict_logits(model, xv, device=device), yv, reduction="none").double()
    weighted = w * loss
    eta = -torch.cov(torch.stack([weighted, w]))[0, 1] / w.var().clamp_min(1e-12)
    return float(weighted.mean() + eta * w.mean() - eta)


def selection_criteria(
    model: models.StagedNet, source: Domain, target: Domain, n: int = 1000, seed: int = 0,
    device: str | torch.device = "auto",
) -> dict[str, float]:
    """Every model-selection signal for one trained model.

    The label-free ones use source *test* images as the held-out source validation set (never
    trained on) and unlabelled target *train* images. ``target_accuracy`` uses target test labels:
    it is the forbidden oracle the others are compared with, never a way to choose.
    """
    gen = torch.Generator().manual_seed(seed)
    iv = torch.randperm(len(source.y_test), generator=gen)[:n]
    it = torch.randperm(len(target.y_train), generator=gen)[:n]
    source_val = (source.x_test[iv], source.y_test[iv])
    return {
        "source_val_accuracy": train.evaluate(model, *source_val, device=device)["accuracy"],
        "target_entropy": prediction_entropy(model, target.x_train[it], device=device),
        "dev_risk": dev_risk(model, source_val, target.x_train[it], seed=seed, device=device),
        "target_accuracy": train.evaluate(model, target.x_test, target.y_test, device=device)["accuracy"],
    }


# how each criterion ranks candidates: True means higher is better
CRITERIA = {"source_val_accuracy": True, "target_entropy": False, "dev_risk": False, "target_accuracy": True}


def choose(rows: list[dict]) -> dict[str, dict]:
    """For each criterion, the candidate it picks and that candidate's (true) target accuracy."""
    picks = {}
    for name, higher in CRITERIA.items():
        best = max(rows, key=lambda r: r[name] if higher else -r[name])
        picks[name] = {"picked": best["candidate"], "target_accuracy": best["target_accuracy"]}
    return picks
