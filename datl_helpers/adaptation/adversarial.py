"""The domain-adversarial loss as one object: the reversal layer, the domain classifier and its loss.

:class:`DomainClassifier` reverses the gradient of the features it is given, scores each row as source (0) or
target (1), and with :meth:`DomainClassifier.loss` returns the binary cross-entropy of those scores. The
feature extractor below it is thereby trained to *confuse* the classifier while the classifier learns to tell
the domains apart. Images (:mod:`~datl_helpers.adaptation.dann`), text (:mod:`~datl_helpers.beyond.text`) and
the two-moons toy (:mod:`~datl_helpers.adaptation.moons`) all use this one object, as the
Transfer-Learning-Library does with its ``DomainAdversarialLoss``.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from datl_helpers.adaptation.reversal import GradientReversal


class DomainLoss(NamedTuple):
    """What one pass of the domain classifier gives: the loss, the logits (one per row) and the domain labels."""

    loss: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor


def domain_labels(n_source: int, n_target: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """0 for each source row, then 1 for each target row: the convention of the paper and of every notebook."""
    return torch.cat([torch.zeros(n_source, device=device), torch.ones(n_target, device=device)])


class DomainClassifier(nn.Module):
    """Gradient reversal, then a small MLP giving one logit per row: source (0) or target (1)."""

    def __init__(self, feature_dim: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.reverse = GradientReversal()
        sizes = [feature_dim] + [hidden] * layers  # `layers` hidden layers of `hidden` units (the paper: 1 x 100)
        blocks = [m for a, b in itertools.pairwise(sizes) for m in (nn.Linear(a, b), nn.ReLU(inplace=True))]
        self.net = nn.Sequential(*blocks, nn.Linear(sizes[-1], 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(self.reverse(features)).squeeze(1)

    def loss(self, features: torch.Tensor, n_source: int, logits: torch.Tensor | None = None) -> DomainLoss:
        """The domain loss of ``features`` (the first ``n_source`` rows from the source, the rest from the
        target), through the reversal layer at its current ``reverse.coeff`` (lambda). ``logits``: this
        classifier's output on ``features`` when already computed (inside an autocast region, say)."""
        logits = (self(features) if logits is None else logits).float()
        labels = domain_labels(n_source, len(features) - n_source, features.device)
        return DomainLoss(F.binary_cross_entropy_with_logits(logits, labels), logits, labels)
