from __future__ import annotations

import torch

from datl_helpers import moons, widgets


def test_target_is_the_source_shape_rotated():
    m = moons.make_moons_domains(n=200, angle=0.0, seed=0)
    assert m.xs.shape == m.xt.shape == (200, 2) and m.ys.shape == (200,)
    rotated = moons.make_moons_domains(n=200, angle=90.0, seed=0)
    # same target draw, rotated by 90 degrees about the centre (0.5, 0.25)
    centre = torch.tensor([0.5, 0.25])
    back = (rotated.xt - centre) @ torch.tensor([[0.0, -1.0], [1.0, 0.0]]) + centre
    assert torch.allclose(back, m.xt, atol=1e-5)


def test_dann_beats_source_only_on_rotated_moons_and_is_reproducible():
    a = moons.compare(angle=35.0, lambda_max=1.0, seed=0, steps=400)
    b = moons.compare(angle=35.0, lambda_max=1.0, seed=0, steps=400)
    acc = a["target_accuracy"]
    assert acc == b["target_accuracy"]
    assert acc["dann"] > acc["source-only"] + 0.1
    assert moons.accuracy(a["models"]["source-only"], a["moons"].xs, a["moons"].ys) > 0.95


def test_lambda_zero_is_source_only():
    m = moons.make_moons_domains(angle=30.0, seed=1)
    plain = moons.fit(m, "source-only", steps=100, seed=2)
    no_reversal = moons.fit(m, "dann", lambda_max=0.0, steps=100, seed=2)
    assert torch.allclose(plain(m.xt), no_reversal(m.xt))


def test_decision_grid_shape():
    r = moons.compare(angle=20.0, steps=50)
    gx, gy, prob = moons.decision_grid(r["models"]["dann"], r["moons"], resolution=30)
    assert gx.shape == gy.shape == prob.shape == (30, 30)
    assert ((prob >= 0) & (prob <= 1)).all()


def test_describe_pair():
    rows = [
        {"pair": "a -> b", "method": "source-only", "target_accuracy": 0.5},
        {"pair": "a -> b", "method": "source-only", "target_accuracy": 0.7},
        {"pair": "a -> b", "method": "dann", "target_accuracy": 0.9},
    ]
    text = widgets.describe_pair(rows, "a -> b")
    assert "source-only 60.0 ± 14.1 %" in text and "dann 90.0 ± 0.0 %" in text
    assert "not measured" in widgets.describe_pair(rows, "x -> y")
