from __future__ import annotations

import numpy as np
import pytest
import torch

from datl_helpers import metrics


def test_report_matches_hand_computed_values():
    y_true = torch.tensor([0, 0, 1, 1, 2, 2])
    y_pred = torch.tensor([0, 1, 1, 1, 0, 2])
    rep = metrics.report(y_true, y_pred)
    assert rep["accuracy"] == pytest.approx(4 / 6)
    # class 0: p=1/2 r=1/2; class 1: p=2/3 r=1; class 2: p=1 r=1/2
    assert rep["macro_precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert rep["macro_recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    f1 = [0.5, 0.8, 2 / 3]
    assert rep["macro_f1"] == pytest.approx(np.mean(f1))
    assert rep["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert metrics.per_class_table(rep)["support"].tolist() == [2, 2, 2]


def test_missing_class_counts_in_macro_average():
    rep = metrics.report([0, 1, 2], [0, 1, 1], num_classes=4)
    assert rep["confusion"].shape == (4, 4)
    assert rep["macro_f1"] < rep["accuracy"]
    assert set(metrics.headline(rep)) == {"accuracy", "macro_precision", "macro_recall", "macro_f1"}


def test_mean_std():
    assert metrics.mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert metrics.mean_std([0.5]) == (0.5, 0.0)
