"""The domain type, its train/test split and the sampling students use (few labels, test subsets).

A :class:`Domain` holds uint8 images N x 3 x 32 x 32 and int64 labels, split into train and test.
:mod:`datl_helpers.data.registry` builds and loads domains by name; this module is what works on one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from datl_helpers.core.errors import TooFewSamplesError

SPLIT_SEED = 0  # the train/test split of every domain is fixed by this seed


@dataclass
class Domain:
    """One domain: uint8 images N x 3 x 32 x 32 and int64 labels, split into train and test."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    card: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def __repr__(self) -> str:
        return (
            f"Domain({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
            f"classes={self.num_classes})"
        )


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] to float32 in [0, 1] (on the same device)."""
    return x.float().div_(255.0)


def stratified_split(
    y: np.ndarray, test_fraction: float, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified train/test split (scikit-learn), fixed by ``seed``."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    present = counts[counts > 0]
    if present.min() < 2:
        raise TooFewSamplesError(
            f"class {int(np.flatnonzero(counts == present.min())[0])} has {present.min()} image(s); "
            "a stratified train/test split needs at least 2 per class (or pass x_test/y_test)"
        )
    idx = np.arange(len(y))
    train, test = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed)
    return np.sort(train), np.sort(test)


def few_label_indices(y: torch.Tensor, labels_per_class: int | None, seed: int) -> torch.Tensor:
    """Indices of ``labels_per_class`` examples of every class, drawn with ``seed`` (None: all)."""
    if labels_per_class is None:
        return torch.arange(len(y))
    if labels_per_class < 1:
        raise TooFewSamplesError(f"labels_per_class must be at least 1, got {labels_per_class}")
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        if len(idx) < labels_per_class:
            raise TooFewSamplesError(
                f"labels_per_class={labels_per_class}, but class {c} has only {len(idx)} training "
                f"images; use labels_per_class <= {int(torch.bincount(y).min())} or None for all"
            )
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:labels_per_class]])
    return torch.sort(torch.cat(chosen)).values


def few_labels(
    domain: Domain, labels_per_class: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The labelled training subset of ``domain``: ``labels_per_class`` images per class."""
    try:
        idx = few_label_indices(domain.y_train, labels_per_class, seed)
    except TooFewSamplesError as err:
        raise TooFewSamplesError(f"domain {domain.name!r}: {err}") from None
    return domain.x_train[idx], domain.y_train[idx]


def sample_test_set(domain: Domain, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` test images of ``domain`` and their labels, a random subset drawn with ``seed`` (the
    test sets are stored sorted by class, so the first ``n`` would miss classes)."""
    pick = torch.randperm(len(domain.y_test), generator=torch.Generator().manual_seed(seed))[:n]
    return domain.x_test[pick], domain.y_test[pick]


def examples_per_class(domain: Domain, per_class: int, seed: int = 0, split: str = "test") -> torch.Tensor:
    """``per_class`` images of every class, class by class (0, 0, ..., 1, 1, ...), drawn with ``seed``."""
    x, y = (domain.x_test, domain.y_test) if split == "test" else (domain.x_train, domain.y_train)
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(domain.num_classes):
        idx = torch.nonzero(y == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return x[torch.cat(picks)]
