"""The training loop, written out: fit, evaluate, predict.

Data stay uint8 tensors on the training device and are batched by index, so a step does no
per-sample Python or PIL work: ``x[idx] -> float in [0, 1] -> (augment) -> model``. The model holds
its own input normalisation (see :class:`datl_helpers.core.models.Normalize`).

The device is chosen once with :func:`resolve_device` and passed down.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from datl_helpers.core.domain import to_float
from datl_helpers.core.errors import BudgetError, DeviceError, check_choice

Transform = Callable[[torch.Tensor], torch.Tensor]


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda, then mps, then cpu; an explicit device that is not there is an error."""
    name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(
            f"DEVICE={name!r}, but this machine has no CUDA GPU that torch can use; "
            'use DEVICE="auto" or "cpu"'
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise DeviceError('DEVICE="mps", but Apple MPS is not available here; use "auto" or "cpu"')
    try:
        return torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'mps'") from None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def quiet() -> bool:
    """Progress bars are off in CI and when ``DATL_QUIET`` or ``TQDM_DISABLE`` is set."""
    return any(os.environ.get(name) for name in ("CI", "DATL_QUIET", "TQDM_DISABLE"))


@dataclass
class History:
    """One record (a dict of metrics) per epoch, plus the wall time of the whole run."""

    records: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    best_epoch: int | None = None  # the epoch with the best validation accuracy, when validated

    def __getitem__(self, key: str) -> list:
        return [r[key] for r in self.records if key in r]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def last(self) -> dict:
        return self.records[-1] if self.records else {}

    def best(self, key: str = "val_accuracy") -> dict:
        """The record with the highest ``key``."""
        scored = [r for r in self.records if key in r]
        if not scored:
            raise KeyError(f"no epoch recorded {key!r}; recorded keys: {sorted(self.last)}")
        return max(scored, key=lambda r: r[key])

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.records)


def copy_to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``. From the CPU to a GPU the copy goes through pinned memory and does not
    wait: a plain ``.to("cuda")`` of a CPU tensor waits until the GPU has finished all queued work."""
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def index_batches(
    n: int, batch_size: int, generator: torch.Generator, device: torch.device | None = None
) -> Iterator[torch.Tensor]:
    """Endless batches of indices into ``range(n)``: a fresh permutation each pass, no short batch
    unless ``n < batch_size`` (then every batch is the whole set, shuffled).

    The permutations are drawn on the CPU with ``generator``, so every device sees the same
    batches; each batch is then copied to ``device`` (when given) without waiting for it."""
    while True:
        perm = torch.randperm(n, generator=generator)
        batches = [perm] if n <= batch_size else perm[: n - n % batch_size].split(batch_size)
        for idx in batches:
            yield idx if device is None else copy_to_device(idx, device)


def _batch(x_u8: torch.Tensor, idx: torch.Tensor, transform: Transform | None) -> torch.Tensor:
    xb = to_float(x_u8[idx])
    if transform is not None:
        xb = transform(xb)
    return xb.contiguous(memory_format=torch.channels_last)


def make_optimizer(
    params, name: str = "adamw", lr: float = 1e-3, weight_decay: float = 0.0, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """``adamw``, ``adam`` or ``sgd`` over ``params`` (a list of tensors or of param groups)."""
    check_choice("optimizer", name, ("adamw", "adam", "sgd"))
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup: int = 0):
    """Linear warm-up for ``warmup`` steps, then cosine decay to zero at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_step(
    model: nn.Module, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor, label_smoothing: float = 0.0,
    penalty: Callable[[nn.Module], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One supervised step on a float batch: cross-entropy (plus ``penalty(model)``), backward,
    optimizer step. Returns the loss and the logits, detached, without waiting for the device.
    Taught in notebook 01 §1 (``probe_step``; a test checks the two agree)."""
    logits = model(xb)
    loss = F.cross_entropy(logits, yb, label_smoothing=label_smoothing)
    if penalty is not None:
        loss = loss + penalty(model)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach(), logits.detach()


@dataclass
class FitConfig:
    """How :func:`fit` trains: the budget, the optimizer and its schedule, the loss and early stopping.
    What it trains on, and the hooks that change the model while it trains, are :func:`fit`'s arguments."""

    epochs: int = 10
    steps_per_epoch: int | None = None  # None: one pass over the training images
    batch_size: int = 128
    lr: float = 1e-3  # ignored for parameter groups that set their own
    optimizer: str = "adamw"  # "adamw", "adam" or "sgd" (momentum 0.9), see make_optimizer
    weight_decay: float = 0.0
    schedule: str = "cosine"  # "cosine" (after warmup_steps of linear warm-up) or "constant"
    warmup_steps: int = 0
    label_smoothing: float = 0.0
    patience: int | None = None  # early stopping: epochs without a better validation accuracy
    restore_best: bool = False  # end with the weights of the best validation epoch


def fit(  # noqa: PLR0913 (the one training loop's keyword options, each off by default)
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: FitConfig | None = None,
    *,
    param_groups: list[dict] | None = None,
    penalty: Callable[[nn.Module], torch.Tensor] | None = None,
    step: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None,
    transform: Transform | None = None,
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    on_epoch_start: Callable[[int, nn.Module], None] | None = None,
    on_epoch_end: Callable[[int, nn.Module, dict], None] | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool | None = None,
) -> History:
    """Train ``model`` on uint8 images ``x`` and labels ``y`` as ``config`` says; returns a :class:`History`.

    ``param_groups`` (for example from :func:`datl_helpers.core.models.stage_param_groups`) replaces the
    default of all trainable parameters at ``config.lr``. ``penalty(model)`` is added to the loss
    (L1, L2-SP, ...). ``step`` replaces :func:`train_step` (same signature; for example
    :func:`datl_helpers.robustness.robust.adversarial_step`). ``transform`` augments float batches on the
    device during training only. With ``x_val``/``y_val`` every epoch records validation loss and
    accuracy; early stopping (``config.patience``, ``config.restore_best``) needs them. The hooks
    let callers change the model between epochs (unfreeze a stage, set BatchNorm modes, add their
    own metrics to the epoch's record).
    """
    config = config or FitConfig()
    if config.epochs < 1 or (config.steps_per_epoch is not None and config.steps_per_epoch < 1):
        raise BudgetError(f"a run needs at least one epoch of at least one step; got epochs={config.epochs}, "
                          f"steps_per_epoch={config.steps_per_epoch}: nothing would be trained")
    if (config.patience is not None or config.restore_best) and x_val is None:
        raise ValueError("early stopping (patience / restore_best) needs x_val and y_val")
    from tqdm.auto import tqdm

    dev = resolve_device(device)
    seed_everything(seed)
    model.to(dev).to(memory_format=torch.channels_last)
    x_dev, y_dev = x.to(dev), y.to(dev)
    if param_groups is None:
        param_groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    opt = make_optimizer(param_groups, config.optimizer, config.lr, config.weight_decay)
    epochs = config.epochs
    steps_per_epoch = config.steps_per_epoch or max(1, len(y) // config.batch_size)
    total = epochs * steps_per_epoch
    check_choice("schedule", config.schedule, ("cosine", "constant"))
    sched = cosine_schedule(opt, total, config.warmup_steps) if config.schedule == "cosine" else None
    batches = index_batches(len(y), config.batch_size, torch.Generator().manual_seed(seed), device=dev)
    history = History()
    best_accuracy, best_state, since_best = -1.0, None, 0
    start = time.perf_counter()
    show = (not quiet()) if progress is None else progress
    bar = tqdm(total=total, desc="steps" if epochs == 1 else f"steps ({epochs} epochs)", disable=not show, leave=False)
    for epoch in range(epochs):
        model.train()
        if on_epoch_start is not None:
            on_epoch_start(epoch, model)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        seen = 0
        for _ in range(steps_per_epoch):
            idx = next(batches)
            xb, yb = _batch(x_dev, idx, transform), y_dev[idx]
            loss, logits = (step or train_step)(model, opt, xb, yb, config.label_smoothing, penalty)
            if sched is not None:
                sched.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == yb).sum()
            seen += len(idx)
            bar.update()
        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum.item() / seen,
            "train_accuracy": correct.item() / seen,
            "lr": opt.param_groups[-1]["lr"],
        }
        if x_val is not None and y_val is not None:
            val = evaluate(model, x_val, y_val, device=dev)
            record.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
        if on_epoch_end is not None:
            on_epoch_end(epoch, model, record)
        history.records.append(record)
        if "val_accuracy" in record and record["val_accuracy"] > best_accuracy:
            best_accuracy, since_best, history.best_epoch = record["val_accuracy"], 0, epoch + 1
            if config.restore_best:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
        if config.patience is not None and since_best >= config.patience:
            record["stopped_early"] = True
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    history.seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int = 256,
    device: str | torch.device = "auto",
    transform: Transform | None = None,
) -> torch.Tensor:
    """Logits for uint8 images ``x`` in eval mode, on the CPU (N x classes), ``batch_size`` images at a
    time (256: the same logits as 1,024 at a third of the peak memory, and no slower on a CPU)."""
    dev = resolve_device(device)
    model.to(dev)
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        xb = to_float(x[start : start + batch_size].to(dev))
        if transform is not None:
            xb = transform(xb)
        out.append(model(xb.contiguous(memory_format=torch.channels_last)).float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def predict(model: nn.Module, x: torch.Tensor, **kwargs) -> torch.Tensor:
    """Predicted class of every image in ``x`` (int64, on the CPU)."""
    return predict_logits(model, x, **kwargs).argmax(1)


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, **kwargs
) -> dict[str, float]:
    """Loss and accuracy of ``model`` on ``(x, y)``, in eval mode (no augmentation)."""
    logits = predict_logits(model, x, **kwargs)
    y = y.cpu()
    return {
        "loss": F.cross_entropy(logits, y).item(),
        "accuracy": (logits.argmax(1) == y).float().mean().item(),
    }
