"""Notebook 04: the simpler adaptation methods beside DANN: AdaBN, Deep CORAL and entropy minimisation.

**AdaBN** (Li et al., "Revisiting Batch Normalization For Practical Domain Adaptation", 2016)
trains nothing. A BatchNorm layer normalises with running statistics estimated on the training
data; under a domain shift those statistics belong to the wrong domain. AdaBN takes a model trained
on the source and re-estimates every BatchNorm layer's mean and variance on *unlabelled* target
images; the learned weights stay as they are. At test time the target is normalised with its own
statistics (here the source test images too, so the source score shows what the swap costs there).

**Deep CORAL** (Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation",
2016) trains like source-only and adds one loss: the distance between the covariance matrices of
the source and the target features of each batch. No adversary: the features are pulled together
directly, second moments only.

Which images the statistics see is the whole of AdaBN, so the protocol is explicit here: AdaBN
trains source-only on mixed source + target batches (the ordinary recipe), whose running
statistics describe the mixture, and replaces them with the target's alone. The default protocol
of :mod:`datl_helpers.adaptation.dann` normalises each domain on its own and tests with target statistics
already, so every other method has AdaBN's idea built in.

**Entropy minimisation** (Grandvalet & Bengio 2004; a self-training method) trains like
source-only and adds the mean entropy of the predictions on the unlabelled target images: the
network is pushed to be confident on the target, which moves its decision boundaries away from
dense regions of target images (the cluster assumption). Confident is not correct, so it works
only where the starting point is already good.

**Semi-supervised DANN** gets a few labelled target images too (``target_labels`` per class, the
same images :func:`datl_helpers.data.registry.few_labels` gives fine-tuning with that seed): every step's
target half starts with some of them, and the label loss covers them beside the source images.
Notebook 04 sets it against fine-tuning the backbone on those few images alone.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from datl_helpers.adaptation import dann
from datl_helpers.adaptation.batchnorm import adabn
from datl_helpers.core.domain import Domain, few_labels
from datl_helpers.core.errors import check_choice
from datl_helpers.core.results import RunRow

ADAPTATION_METHODS = (*dann.COMPARED_METHODS, "adabn", "coral", "entropy")  # every method of `python -m datl_helpers adapt`
# Sun & Saenko weigh the two losses to be of one size: after source-only training on mnist -> mnistm
# (600 steps, seed 0) the CORAL loss is about 0.04 and the label loss about 0.01 (no target labels used).
CORAL_WEIGHT = 1.0
ENTROPY_WEIGHT = 0.1  # not tuned: choosing it by target accuracy would use the target labels


def run_adabn(source: Domain, target: Domain, seed: int = 0, config=None,
              device: str | torch.device = "auto") -> dict:
    """Source-only training (:func:`datl_helpers.adaptation.dann.fit`) with mixed-batch BatchNorm (the
    ordinary recipe; the default per-domain protocol already tests with target statistics, which is
    AdaBN's idea built in), then AdaBN on the target's unlabelled training images; scored like
    every other adaptation method (the source test images too are normalised with the target's
    statistics, so ``source_accuracy`` shows what that costs)."""
    start = time.perf_counter()
    mixed = dataclasses.replace(config or dann.DannConfig(), bn="mixed")  # the classic recipe: ordinary training
    model, disc, _ = dann.fit(source, target, "source-only", mixed, seed=seed, device=device)
    adabn(model, target.x_train, device=device)
    return dann.result_row(model, disc, source, target, seed, start, device)


def coral_loss(source_features: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
    """Deep CORAL's loss: the squared Frobenius distance between the source and the target feature
    covariances (each N x d -> d x d), divided by 4 d^2."""
    d = source_features.shape[1]
    c_source = torch.cov(source_features.T)
    c_target = torch.cov(target_features.T)
    return ((c_source - c_target) ** 2).sum() / (4 * d * d)


def run_coral(source: Domain, target: Domain, seed: int = 0, config=None, device: str | torch.device = "auto",
              weight: float = CORAL_WEIGHT) -> dict:
    """Deep CORAL: source-only training (the same batches, schedule and BatchNorm protocol) plus
    ``weight`` times :func:`coral_loss` on every step's features; scored like every other method."""
    start = time.perf_counter()
    extra = lambda feats, _, n: weight * coral_loss(feats[:n], feats[n:])  # noqa: E731
    model, disc, _ = dann.fit(source, target, "source-only", config, seed=seed, device=device, extra_loss=extra)
    return dann.result_row(model, disc, source, target, seed, start, device)


def entropy_loss(logits: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy (nats) of the softmax of ``logits``: low when every prediction is confident."""
    log_p = logits.log_softmax(1)
    return -(log_p.exp() * log_p).sum(1).mean()


def run_entropy(source: Domain, target: Domain, seed: int = 0, config=None, device: str | torch.device = "auto",
                weight: float = ENTROPY_WEIGHT) -> dict:
    """Entropy minimisation (self-training): source-only training plus ``weight`` times the mean
    entropy of the predictions on every step's unlabelled target images; scored like every method."""
    start = time.perf_counter()
    extra = lambda _, logits, n: weight * entropy_loss(logits[n:])  # noqa: E731
    model, disc, _ = dann.fit(source, target, "source-only", config, seed=seed, device=device, extra_loss=extra)
    return dann.result_row(model, disc, source, target, seed, start, device)


def run_semi_supervised(source: Domain, target: Domain, target_labels: int, method: str = "dann", seed: int = 0,
                        config=None, device: str | torch.device = "auto") -> RunRow:
    """``method`` (``dann``, or ``source-only`` for source + target labels without the adversary)
    with ``target_labels`` labelled target training images per class, drawn with ``seed``."""
    check_choice("semi-supervised method", method, ("dann", "source-only"))
    x, y = few_labels(target, target_labels, seed)
    start = time.perf_counter()
    model, disc, _ = dann.fit(source, target, method, config, seed=seed, device=device, labelled_target=(x, y))
    return {**dann.result_row(model, disc, source, target, seed, start, device), "target_labels": target_labels}


def run_method(source: Domain, target: Domain, method: str, seed: int = 0, config=None,
               device: str | torch.device = "auto", target_labels: int = 0) -> RunRow:
    """One run of any adaptation ``method`` (:data:`ADAPTATION_METHODS`), in the result shape of
    :func:`datl_helpers.adaptation.dann.run_adaptation`; with ``target_labels`` > 0 the semi-supervised
    variant (:func:`run_semi_supervised`)."""
    check_choice("method", method, ADAPTATION_METHODS)
    if target_labels:
        return run_semi_supervised(source, target, target_labels, method, seed=seed, config=config, device=device)
    if method == "adabn":
        return run_adabn(source, target, seed=seed, config=config, device=device)
    if method == "coral":
        return run_coral(source, target, seed=seed, config=config, device=device)
    if method == "entropy":
        return run_entropy(source, target, seed=seed, config=config, device=device)
    return dann.run_adaptation(source, target, method, seed=seed, config=config, device=device)
