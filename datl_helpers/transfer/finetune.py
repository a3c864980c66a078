"""Notebook 02: fine-tuning. Which stages to train, how fast, and how to keep them near the start.

Everything here plugs into :func:`datl_helpers.core.train.fit` through its hooks and its ``penalty``
argument, so each idea stays a few lines you can read:

* strategies: head only, last stage, gradual unfreezing, layer-wise (discriminative) learning rates,
  and a learning rate that is too high (:data:`STRATEGIES`, :func:`run_strategy`);
* BatchNorm in frozen stages: train mode (statistics drift to the target) or eval mode (kept);
* regularisers: dropout, L2 weight decay, L1 (:func:`l1_penalty`) and L2-SP (:func:`l2sp_penalty`,
  pull the weights toward the pretrained ones);
* evaluation: a validation split (:func:`validation_split`) and stratified k-fold
  cross-validation (:func:`cross_validate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from datl_helpers.core import metrics, models, train
from datl_helpers.core.domain import Domain, few_labels, sample_test_set
from datl_helpers.core.errors import check_choice

# --------------------------------------------------------------------------------------------
# BatchNorm and freezing
# --------------------------------------------------------------------------------------------


def set_batchnorm_eval(model: models.StagedNet, stages: Sequence[str]) -> None:
    """Put the BatchNorm layers of ``stages`` in eval mode: they use, and keep, their running stats."""
    for name in stages:
        for module in getattr(model.stages, name).modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def frozen_prefix(model: models.StagedNet) -> list[str]:
    """The names of the leading stages whose parameters are all frozen."""
    frozen = []
    for name, stage in model.stages.named_children():
        if any(p.requires_grad for p in stage.parameters()):
            break
        frozen.append(name)
    return frozen


def gradual_unfreezing(
    model: models.StagedNet, every: int, bn_frozen_eval: bool = True
) -> Callable[[int, nn.Module], None]:
    """An ``on_epoch_start`` hook: start with every stage frozen, unfreeze one more stage (from the
    top) every ``every`` epochs. BatchNorm layers of stages still frozen stay in eval mode."""
    n = len(model.stage_names)

    def hook(epoch: int, m: nn.Module) -> None:
        models.freeze_stages(model, max(0, n - epoch // every))
        if bn_frozen_eval:
            set_batchnorm_eval(model, frozen_prefix(model))

    return hook


# --------------------------------------------------------------------------------------------
# Regularisers (added to the loss through fit's ``penalty``)
# --------------------------------------------------------------------------------------------


def l1_penalty(strength: float) -> Callable[[nn.Module], torch.Tensor]:
    """``strength * sum |w|`` over the trainable weights (not biases or BatchNorm): sparsity."""

    def penalty(model: nn.Module) -> torch.Tensor:
        return strength * sum(p.abs().sum() for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1)

    return penalty


def l2sp_penalty(model: models.StagedNet, strength: float) -> Callable[[nn.Module], torch.Tensor]:
    """L2-SP (Li et al., 2018): ``strength * sum ||w - w_pretrained||^2`` over the backbone stages.

    Plain weight decay pulls weights toward zero, i.e. away from what pretraining learned; L2-SP
    pulls them toward their starting point instead. Call this before training starts.
    """
    start = {n: p.detach().clone() for n, p in model.stages.named_parameters()}

    def penalty(m: nn.Module) -> torch.Tensor:
        trainable = [(n, p) for n, p in m.stages.named_parameters() if p.requires_grad]
        for n, p in trainable:
            if start[n].device != p.device:  # the model moved (to a GPU, say): follow it once
                start[n] = start[n].to(p.device)
        return strength * sum(((p - start[n]) ** 2).sum() for n, p in trainable)

    return penalty


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


@dataclass
class FinetuneConfig:
    """A fine-tuning run: which stages train, at which learning rates, with which regularisers."""

    freeze: int = 0  # leading stages frozen for the whole run
    lr: float = 3e-3  # the head's learning rate
    lr_decay: float = 1.0  # stage i of n gets lr * lr_decay ** (n - i)
    gradual_every: int = 0  # > 0: gradual unfreezing, one stage every this many epochs
    bn_frozen: str = "eval"  # BatchNorm in frozen stages: "eval" (keep pretrained stats) or "train"
    weight_decay: float = 1e-4
    dropout: float = 0.0
    l1: float = 0.0
    l2sp: float = 0.0
    epochs: int = 10
    steps_per_epoch: int = 20
    batch_size: int = 64


STRATEGIES: dict[str, FinetuneConfig] = {
    "head only": FinetuneConfig(freeze=4, lr=1e-2),
    "last stage": FinetuneConfig(freeze=3, lr=3e-3),
    "gradual unfreezing": FinetuneConfig(lr=3e-3, lr_decay=0.5, gradual_every=2),
    "layer-wise LRs": FinetuneConfig(lr=3e-3, lr_decay=0.3),
    "too-high LR": FinetuneConfig(lr=3e-2, lr_decay=1.0),
}


def build(config: FinetuneConfig, num_classes: int, device: str | torch.device = "cpu") -> models.StagedNet:
    """The shipped backbone with a new head, frozen as ``config`` says."""
    model = models.replace_head(models.load_pretrained(device=device), num_classes, dropout=config.dropout)
    models.freeze_stages(model, config.freeze)
    return model


def fit_config(  # noqa: PLR0913 (the training loop's options, passed through)
    model: models.StagedNet,
    config: FinetuneConfig,
    x: torch.Tensor,
    y: torch.Tensor,
    seed: int = 0,
    device: str | torch.device = "auto",
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    on_epoch_end: Callable[[int, nn.Module, dict], None] | None = None,
    transform=None,
    patience: int | None = None,
    restore_best: bool = False,
) -> train.History:
    """Train ``model`` (from :func:`build`) as ``config`` says; with ``x_val``/``y_val``, ``patience``
    and ``restore_best`` stop early (see :class:`datl_helpers.core.train.FitConfig`)."""
    every = config.gradual_every
    groups = models.stage_param_groups(
        model, lr=config.lr, decay=config.lr_decay, weight_decay=config.weight_decay, include_frozen=every > 0
    )
    if every > 0:
        on_start = gradual_unfreezing(model, every, bn_frozen_eval=config.bn_frozen == "eval")
    elif config.bn_frozen == "eval":
        on_start = lambda epoch, m: set_batchnorm_eval(model, frozen_prefix(model))  # noqa: E731
    else:
        on_start = None
    penalties = []
    if config.l1 > 0:
        penalties.append(l1_penalty(config.l1))
    if config.l2sp > 0:
        penalties.append(l2sp_penalty(model, config.l2sp))
    penalty = (lambda m: sum(p(m) for p in penalties)) if penalties else None
    loop = train.FitConfig(epochs=config.epochs, steps_per_epoch=config.steps_per_epoch, batch_size=config.batch_size,
                           patience=patience, restore_best=restore_best)  # the learning rates are in the groups
    return train.fit(
        model, x, y, loop, param_groups=groups, penalty=penalty, on_epoch_start=on_start, on_epoch_end=on_epoch_end,
        x_val=x_val, y_val=y_val, transform=transform, seed=seed, device=device,
    )


def playground_config(
    freeze: int, lr_ratio: float, weight_decay: float, epochs: int, steps_per_epoch: int
) -> FinetuneConfig:
    """The fine-tuning widget's settings as a config: ``lr_ratio`` is the first stage's learning rate
    divided by the head's (1: one rate for all; 0.01: the first stage learns 100x slower)."""
    if not 0 < lr_ratio <= 1:
        raise ValueError(f"lr_ratio must be in (0, 1], got {lr_ratio}")
    return FinetuneConfig(freeze=freeze, lr=3e-3, lr_decay=lr_ratio ** (1 / 4), weight_decay=weight_decay,
                          epochs=epochs, steps_per_epoch=steps_per_epoch)


SOURCE_SAMPLE = 500  # source test images scored for forgetting (a seeded random subset)


def source_tracker(source: Domain, n: int = SOURCE_SAMPLE, device: str | torch.device = "auto") -> Callable:
    """An ``on_epoch_end`` hook recording accuracy on ``n`` source test images ("source_accuracy").

    The digit classes are the same in every domain, so the fine-tuned model can still be scored on
    `syn`: a falling curve is catastrophic forgetting of what pretraining learned.
    """
    x, y = sample_test_set(source, n)

    def hook(epoch: int, model: nn.Module, record: dict) -> None:
        record["source_accuracy"] = train.evaluate(model, x, y, device=device)["accuracy"]

    return hook


def run_strategy(
    name: str,
    target: Domain,
    labels_per_class: int | None,
    seed: int = 0,
    config: FinetuneConfig | None = None,
    device: str | torch.device = "auto",
    source: Domain | None = None,
    source_curve: bool = True,
) -> tuple[dict, train.History]:
    """Fine-tune with strategy ``name`` (or an explicit ``config``) on few target labels; test it.

    Returns a result row (accuracy, macro precision/recall/F1, seconds) and the History. With a
    ``source`` domain the row adds ``source_accuracy`` at the end, and the History has it after
    every epoch (only after the last one when ``source_curve`` is False: cheaper).
    """
    if config is None:
        config = STRATEGIES[check_choice("strategy", name, STRATEGIES)]
    start = time.perf_counter()
    x, y = few_labels(target, labels_per_class, seed)
    train.seed_everything(seed)
    model = build(config, target.num_classes)
    hook = source_tracker(source, device=device) if source is not None and source_curve else None
    history = fit_config(model, config, x, y, seed=seed, device=device, on_epoch_end=hook)
    pred = train.predict(model, target.x_test, device=device)
    rep = metrics.report(target.y_test, pred, num_classes=target.num_classes)
    extra = {}
    if source is not None:
        if source_curve:
            extra["source_accuracy"] = history.last["source_accuracy"]
        else:
            source_sample = sample_test_set(source, SOURCE_SAMPLE)
            extra["source_accuracy"] = train.evaluate(model, *source_sample, device=device)["accuracy"]
    row = {"strategy": name, "seed": seed,
           "labels_per_class": "all" if labels_per_class is None else labels_per_class,
           **metrics.headline(rep), "seconds": round(time.perf_counter() - start, 2), **extra}
    return row, history


def run_early_stopping(
    target: Domain,
    labels_per_class: int | None,
    seed: int = 0,
    config: FinetuneConfig | None = None,
    fraction: float = 0.2,
    patience: int = 3,
    device: str | torch.device = "auto",
) -> dict:
    """Fine-tune ``config`` (default: layer-wise LRs) with early stopping: ``fraction`` of the
    labelled images become a validation split, training stops after ``patience`` epochs without a
    better validation accuracy and keeps the best epoch's weights. The test set is read once, at the end."""
    config = config or STRATEGIES["layer-wise LRs"]
    start = time.perf_counter()
    x, y = few_labels(target, labels_per_class, seed)
    tr, va = validation_split(y, fraction, seed)
    train.seed_everything(seed)
    model = build(config, target.num_classes)
    history = fit_config(model, config, x[tr], y[tr], seed=seed, device=device, x_val=x[va], y_val=y[va],
                         patience=patience, restore_best=True)
    rep = metrics.report(target.y_test, train.predict(model, target.x_test, device=device), num_classes=target.num_classes)
    return {"strategy": f"early stopping (val {fraction:.0%})", "seed": seed,
            "labels_per_class": "all" if labels_per_class is None else labels_per_class, **metrics.headline(rep),
            "seconds": round(time.perf_counter() - start, 2), "best_epoch": history.best_epoch}


def paired_gain_table(rows: Sequence[dict], by: str = "recipe", baseline: str = "none", value: str = "accuracy"):
    """Per ``by`` group and regulariser: accuracy and the gain over ``baseline`` paired by seed.

    Each row needs ``by``, ``regulariser``, ``seed`` and ``value`` (``source_accuracy`` is shown
    when present). Pairing by seed compares runs on the same labelled subset and initialisation,
    so a small but consistent effect is not lost in the seed-to-seed spread. Values in percent.
    """
    import pandas as pd

    frame = pd.DataFrame(rows)
    base = frame[frame["regulariser"] == baseline].set_index([by, "seed"])[value]
    frame["gain"] = 100 * (frame[value] - base.reindex(pd.MultiIndex.from_frame(frame[[by, "seed"]])).to_numpy())
    fmt = lambda s: f"{s.mean():.1f} ± {s.std(ddof=1) if len(s) > 1 else 0.0:.1f}"  # noqa: E731
    grouped = frame.groupby([by, "regulariser"], sort=False)
    table = pd.DataFrame({
        value: grouped[value].apply(lambda s: fmt(100 * s)),
        "gain": grouped["gain"].apply(lambda s: "—" if s.isna().all() else fmt(s.dropna())),
    })
    if "source_accuracy" in frame:
        table["source_accuracy"] = grouped["source_accuracy"].apply(
            lambda s: "—" if s.isna().all() else fmt(100 * s.dropna()))
    return table


# --------------------------------------------------------------------------------------------
# Evaluation with few labels
# --------------------------------------------------------------------------------------------


def validation_split(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified train/validation indices into ``y`` (scikit-learn)."""
    from sklearn.model_selection import train_test_split

    idx = torch.arange(len(y))
    tr, va = train_test_split(idx.numpy(), test_size=fraction, stratify=y.numpy(), random_state=seed)
    return torch.as_tensor(tr), torch.as_tensor(va)


def cross_validate(
    x: torch.Tensor,
    y: torch.Tensor,
    config: FinetuneConfig,
    folds: int = 5,
    seed: int = 0,
    device: str | torch.device = "auto",
) -> list[dict]:
    """Stratified k-fold cross-validation of a fine-tuning config on a small labelled set.

    Every fold fine-tunes a fresh copy of the backbone on k-1 folds and scores the held-out fold:
    with 100 labels a single validation split of 20 images is too noisy to choose settings by.
    """
    from sklearn.model_selection import StratifiedKFold

    rows = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (tr, va) in enumerate(splitter.split(torch.zeros(len(y)).numpy(), y.numpy())):
        tr, va = torch.as_tensor(tr), torch.as_tensor(va)
        model = build(config, int(y.max()) + 1)
        fit_config(model, config, x[tr], y[tr], seed=seed + fold, device=device)
        pred = train.predict(model, x[va], device=device)
        rows.append({"fold": fold, **metrics.headline(metrics.report(y[va], pred, num_classes=int(y.max()) + 1))})
    return rows
