"""Few-label transfer to a target domain, one run at a time: the recipe behind ``transfer``.

Three methods, the same labelled subset, the same test set:

* ``scratch``       a randomly initialised DigitNet trained on the few labels;
* ``linear-probe``  the shipped backbone frozen, features extracted once, a logistic regression
                    (scikit-learn) trained on them;
* ``finetune``      the shipped backbone with a new head, every stage trained, earlier stages with
                    lower learning rates (discriminative learning rates).

:func:`run_transfer` returns one row of numbers (accuracy, macro F1, seconds) per run; the command
line, notebook 01's label-efficiency curves and notebook 02's tables are built from such rows.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from datl_helpers import metrics, models, train
from datl_helpers.data import Domain, few_labels

METHODS = ("scratch", "linear-probe", "finetune")


@dataclass
class TransferConfig:
    """Training budget and optimiser settings shared by the trained methods."""

    steps: int = 300
    batch_size: int = 64
    lr: float = 3e-3
    lr_decay: float = 0.3  # finetune: stage i of n gets lr * lr_decay ** (n - i); the head gets lr
    weight_decay: float = 1e-4
    probe_c: float = 1.0  # linear-probe: inverse L2 strength of the logistic regression


def new_model(method: str, num_classes: int = 10) -> models.StagedNet:
    """The starting network of ``method``: random DigitNet, or the shipped backbone with a new head."""
    check_method(method)
    if method == "scratch":
        # same architecture and input normalisation as the backbone, random weights
        return models.DigitNet(**dict(models.pretrained_info()["config"], num_classes=num_classes))
    return models.replace_head(models.load_pretrained(), num_classes)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    return method


def run_transfer(
    target: Domain,
    method: str,
    labels_per_class: int | None,
    seed: int = 0,
    config: TransferConfig | None = None,
    device: str | torch.device = "auto",
    transform=None,
) -> dict:
    """Train ``method`` on ``labels_per_class`` labelled target images (None: all) and test it.

    Returns ``{"seed", "labels", "target_accuracy", "macro_f1", "seconds"}``. ``transform``
    (augmentation on float batches) applies to the trained methods during training only.
    """
    check_method(method)
    config = config or TransferConfig()
    start = time.perf_counter()
    x, y = few_labels(target, labels_per_class, seed)
    train.seed_everything(seed)
    model = new_model(method, target.num_classes)
    if method == "linear-probe":
        from datl_helpers.features import extract_features, fit_logistic_probe

        train_feats = extract_features(model, x, device=device)
        test_feats = extract_features(model, target.x_test, device=device)
        probe = fit_logistic_probe(train_feats, y, c=config.probe_c, seed=seed)
        pred = torch.as_tensor(probe.predict(test_feats.numpy()))
    else:
        groups = None
        if method == "finetune":
            groups = models.stage_param_groups(model, lr=config.lr, decay=config.lr_decay)
        train.fit(
            model, x, y, epochs=1, steps_per_epoch=config.steps, batch_size=config.batch_size, lr=config.lr,
            weight_decay=config.weight_decay, param_groups=groups, transform=transform, seed=seed, device=device,
        )
        pred = train.predict(model, target.x_test, device=device)
    rep = metrics.report(target.y_test, pred, num_classes=target.num_classes)
    return {
        "seed": seed,
        "labels": len(y),
        "target_accuracy": rep["accuracy"],
        "macro_f1": rep["f1_macro"],
        "seconds": round(time.perf_counter() - start, 2),
    }


def config_dict(config: TransferConfig) -> dict:
    return asdict(config)
