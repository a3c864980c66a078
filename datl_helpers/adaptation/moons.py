"""Notebook 04's intuition: the two-moons toy of the DANN paper (Ganin et al. 2016, section 5.1).

The source is scikit-learn's two interleaving half-moons with labels; the target is the same moons
*rotated* and unlabelled. A network trained on the source alone draws a boundary that fits the
source moons and cuts through the rotated ones. DANN trains the same network with a domain
classifier behind a gradient-reversal layer (the very layer of :mod:`datl_helpers.adaptation.dann`), so the
hidden features of source and target points overlap and the boundary follows both.

Everything here is tiny (2-D points, one hidden layer) and trains in a fraction of a second, so a
widget can retrain it on every slider move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from datl_helpers.adaptation.adversarial import DomainClassifier
from datl_helpers.adaptation.dann import dann_lambda
from datl_helpers.core.errors import check_choice


@dataclass
class Moons:
    """Labelled source points and rotated target points (labels kept for scoring only)."""

    xs: torch.Tensor
    ys: torch.Tensor
    xt: torch.Tensor
    yt: torch.Tensor
    angle: float


def make_moons_domains(n: int = 300, angle: float = 35.0, noise: float = 0.1, seed: int = 0) -> Moons:
    """``n`` source and ``n`` target points; the target is drawn afresh and rotated by ``angle`` degrees
    about the centre of the moons."""
    from sklearn.datasets import make_moons

    xs, ys = make_moons(n, noise=noise, random_state=seed)
    xt, yt = make_moons(n, noise=noise, random_state=seed + 1)
    centre = np.array([0.5, 0.25])
    a = math.radians(angle)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    xt = (xt - centre) @ rotation.T + centre
    as_x = lambda v: torch.as_tensor(v, dtype=torch.float32)  # noqa: E731
    return Moons(as_x(xs), torch.as_tensor(ys), as_x(xt), torch.as_tensor(yt), angle)


class MoonNet(nn.Module):
    """The paper's toy network: one hidden layer of features, a linear label classifier."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def fit(
    moons: Moons, method: str = "dann", lambda_max: float = 1.0, gamma: float = 10.0, steps: int = 600,
    lr: float = 1e-2, seed: int = 0,
) -> MoonNet:
    """Full-batch training on all source labels (and, for ``dann``, all unlabelled target points)."""
    check_choice("method", method, ("source-only", "dann"))
    torch.manual_seed(seed)
    model = MoonNet()
    disc = DomainClassifier(model.head.in_features, hidden=32)
    opt = torch.optim.Adam(list(model.parameters()) + list(disc.parameters()), lr=lr)
    for step in range(steps):
        disc.reverse.coeff = dann_lambda(step / steps, gamma, lambda_max) if method == "dann" else 0.0
        feats = model.features(torch.cat([moons.xs, moons.xt]))
        label_loss = F.cross_entropy(model.head(feats[: len(moons.xs)]), moons.ys)
        domain_loss = disc.loss(feats, len(moons.xs)).loss
        opt.zero_grad()
        (label_loss + domain_loss).backward()
        opt.step()
    return model


@torch.no_grad()
def accuracy(model: MoonNet, x: torch.Tensor, y: torch.Tensor) -> float:
    return (model(x).argmax(1) == y).float().mean().item()


@torch.no_grad()
def decision_grid(model: MoonNet, moons: Moons, resolution: int = 150) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grid around all points and the model's probability of class 1 on it (for a contour plot)."""
    points = torch.cat([moons.xs, moons.xt])
    lo, hi = points.min(0).values - 0.5, points.max(0).values + 0.5
    gx, gy = torch.meshgrid(
        torch.linspace(lo[0], hi[0], resolution), torch.linspace(lo[1], hi[1], resolution), indexing="xy"
    )
    prob = model(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)).softmax(1)[:, 1]
    return gx.numpy(), gy.numpy(), prob.reshape(resolution, resolution).numpy()


def compare(angle: float = 35.0, lambda_max: float = 1.0, seed: int = 0, steps: int = 600) -> dict:
    """Source-only and DANN on the same moons: models and target accuracies, for plots and widgets."""
    moons = make_moons_domains(angle=angle, seed=seed)
    result = {"moons": moons, "models": {}, "target_accuracy": {}}
    for method in ("source-only", "dann"):
        model = fit(moons, method, lambda_max=lambda_max, steps=steps, seed=seed)
        result["models"][method] = model
        result["target_accuracy"][method] = accuracy(model, moons.xt, moons.yt)
    return result
