"""Few-label transfer to a target domain, one run at a time: the recipe behind ``transfer``.

Three methods, the same labelled subset, the same test set:

* ``scratch``       a randomly initialised DigitNet trained on the few labels;
* ``linear-probe``  the shipped backbone frozen, features extracted once, a logistic regression
                    (scikit-learn) trained on them;
* ``finetune``      the shipped backbone with a new head, every stage trained, earlier stages with
                    lower learning rates (discriminative learning rates).

:func:`run_transfer` returns one row of numbers (accuracy, macro F1, seconds) per run; the command
line, notebook 01's label-efficiency curves and notebook 02's tables are built from such rows.

Augmentation (notebook 03, :mod:`datl_helpers.transfer.augment`) is chosen with ``config.augment`` (a preset)
and ``config.augment_strength``, or passed ready-made as ``transform``. It only ever touches the
labelled training images: the trained methods augment every training batch; the linear probe,
whose backbone is frozen, is fitted on the labelled images plus ``config.probe_copies`` augmented
copies of them. Test images are never augmented.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from datl_helpers.core import metrics, models, train
from datl_helpers.core.budget import check_steps
from datl_helpers.core.domain import Domain, few_labels
from datl_helpers.core.errors import check_choice
from datl_helpers.core.results import RunRow
from datl_helpers.transfer import augment, features

TRANSFER_METHODS = ("scratch", "linear-probe", "finetune")


@dataclass
class TransferConfig:
    """Training budget and optimiser settings shared by the trained methods."""

    steps: int = 300
    batch_size: int = 64
    lr: float = 3e-3
    lr_decay: float = 0.3  # finetune: stage i of n gets lr * lr_decay ** (n - i); the head gets lr
    weight_decay: float = 1e-4
    probe_c: float = 1.0  # linear-probe: inverse L2 strength of the logistic regression
    augment: str = "none"  # augmentation preset: none, light, medium, heavy (datl_helpers.transfer.augment.PRESETS)
    augment_strength: float | None = None  # in [0, 1]; replaces the preset's strength when given
    probe_copies: int = 4  # linear-probe with augmentation: augmented copies of each labelled image


def new_model(method: str, num_classes: int = 10) -> models.StagedNet:
    """The starting network of ``method``: random DigitNet, or the shipped backbone with a new head."""
    check_method(method)
    if method == "scratch":
        # same architecture and input normalisation as the backbone, random weights
        return models.DigitNet(**dict(models.pretrained_info()["config"], num_classes=num_classes))
    return models.replace_head(models.load_pretrained(), num_classes)


def check_method(method: str) -> str:
    return check_choice("method", method, TRANSFER_METHODS)


def run_transfer(
    target: Domain,
    method: str,
    labels_per_class: int | None,
    seed: int = 0,
    config: TransferConfig | None = None,
    device: str | torch.device = "auto",
    transform=None,
) -> RunRow:
    """Train ``method`` on ``labels_per_class`` labelled target images (None: all) and test it.

    Returns ``{"seed", "labels", "target_accuracy", "macro_f1", "seconds"}``. The augmentation is
    ``config.augment`` / ``config.augment_strength`` (seeded with ``seed``), or ``transform`` (a
    callable on float batches, for example :class:`datl_helpers.transfer.augment.BatchAugment`) when given;
    it is applied to the labelled training images only, never to the test images.
    """
    check_method(method)
    config = config or TransferConfig()
    if method != "linear-probe":  # the probe is a logistic regression fitted to convergence
        check_steps(config.steps, "steps")
        check_steps(config.batch_size, "batch_size")
    strength = augment.resolve_strength(config.augment, config.augment_strength)
    if transform is not None and strength > 0:
        raise ValueError("give the augmentation either as transform or as config.augment, not both")
    if transform is None:
        transform = augment.make_augment(config.augment, config.augment_strength, seed=seed)
    start = time.perf_counter()
    x, y = few_labels(target, labels_per_class, seed)
    train.seed_everything(seed)
    model = new_model(method, target.num_classes)
    if method == "linear-probe":
        x_fit, y_fit = x, y
        if transform is not None:  # the frozen backbone sees augmentation as extra labelled copies
            x_fit = torch.cat([x, augment.augmented_copies(x, transform, config.probe_copies)])
            y_fit = y.repeat(config.probe_copies + 1)
        train_feats = features.extract_features(model, x_fit, device=device)
        test_feats = features.extract_features(model, target.x_test, device=device)
        probe = features.fit_logistic_probe(train_feats, y_fit, c=config.probe_c, seed=seed)
        pred = torch.as_tensor(probe.predict(test_feats.numpy()))
    else:
        groups = None
        if method == "finetune":
            groups = models.stage_param_groups(model, lr=config.lr, decay=config.lr_decay)
        fit_config = train.FitConfig(epochs=1, steps_per_epoch=config.steps, batch_size=config.batch_size,
                                     lr=config.lr, weight_decay=config.weight_decay)
        train.fit(model, x, y, fit_config, param_groups=groups, transform=transform, seed=seed, device=device)
        pred = train.predict(model, target.x_test, device=device)
    rep = metrics.report(target.y_test, pred, num_classes=target.num_classes)
    return {
        "seed": seed,
        "labels": len(y),
        "target_accuracy": rep["accuracy"],
        "macro_f1": rep["macro_f1"],
        "seconds": round(time.perf_counter() - start, 2),
    }

