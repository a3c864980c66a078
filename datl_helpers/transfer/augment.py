"""Notebook 03: data augmentation on whole batches of tensors, on the training device.

One recipe and one knob. ``strength`` in [0, 1] scales every magnitude of a fixed pipeline of
torchvision ``transforms.v2`` operations; ``0`` is the identity and ``1`` is deliberately too much.
The presets are named points on that scale (:data:`PRESETS`). The operations come in four kinds,
so an experiment can switch families on and off:

* ``geometry``   ``RandomAffine``: rotation, translation, zoom (a random crop, in effect), shear;
* ``colour``     ``ColorJitter`` (brightness, contrast, saturation, hue), channel permutation, inversion;
* ``texture``    ``GaussianBlur``, ``GaussianNoise``, ``RandomSolarize``;
* ``occlusion``  ``RandomErasing`` (a black rectangle);
* ``rotation``   ``RandomRotation`` up to 180 degrees at strength 1: it can turn a 6 into a 9, so it
                 changes labels. It is in no preset; the over-augmentation search uses it on purpose.

:data:`GENERIC` (geometry + occlusion) is what any image task would use; :data:`DOMAIN` (colour +
texture) is aimed at the gap between grey or plain digits and ``mnistm``'s coloured photo textures.

**One draw per group, not per batch.** A v2 transform called on an ``N x C x H x W`` tensor draws
its random parameters once and applies them to all N images. :class:`BatchAugment` therefore
splits a batch into groups of ``group_size`` images (default 8) and makes one draw per group: a
batch of 64 sees 8 different rotations, colours, ... Per image (``group_size=1``) is the most
varied but costs a Python call per image and operation; on a 2-core CPU it is several times slower
than groups of 8 (:func:`throughput` measures it; notebook 03 prints the numbers).

**Reproducible without touching the global RNG.** v2 transforms draw from torch's global random
number generator. Every call of :class:`BatchAugment` takes a fresh seed from its own
``torch.Generator`` and runs the transforms inside ``torch.random.fork_rng`` seeded with it, so
the same ``seed`` gives the same sequence of augmented batches, and the training loop's own random
state (initialisation, shuffling, dropout) is the same with or without augmentation.

**On a GPU** the pixels are transformed there, but each v2 call also builds small parameter tensors
(an affine matrix, a blur kernel, an erasing value) on the CPU and copies them over, and such a copy
waits for the GPU. Augmented training therefore pays a few waits per group of images; training
without augmentation has none (:func:`datl_helpers.core.train.index_batches`).

Augmentation is for training only: :func:`datl_helpers.core.train.fit` applies ``transform`` to
training batches, never to validation or test images.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from datl_helpers.core.errors import AugmentationError, check_choice

PRESETS: dict[str, float] = {"none": 0.0, "light": 0.25, "medium": 0.5, "heavy": 0.75}
KINDS: tuple[str, ...] = ("geometry", "colour", "texture", "occlusion")
GENERIC: tuple[str, ...] = ("geometry", "occlusion")
DOMAIN: tuple[str, ...] = ("colour", "texture")
LABEL_CHANGING: tuple[str, ...] = ("rotation",)
KIND_SETS: dict[str, tuple[str, ...]] = {
    "all": KINDS, "generic": GENERIC, "domain": DOMAIN, "label-changing": LABEL_CHANGING}


def check_strength(strength: float) -> float:
    """``strength`` as a float, or an AugmentationError when it is outside [0, 1]."""
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise AugmentationError(f"augmentation strength must be in [0, 1], got {strength}")
    return strength


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """``kinds`` as a tuple, or an AugmentationError naming the unknown ones."""
    known = KINDS + LABEL_CHANGING
    unknown = [k for k in kinds if k not in known]
    if unknown or not kinds:
        raise AugmentationError(f"unknown augmentation kind(s) {unknown or list(kinds)}; choose from {', '.join(known)}")
    return tuple(kinds)


def resolve_strength(preset: str = "none", strength: float | None = None) -> float:
    """The strength of ``preset``, or ``strength`` when given (it replaces the preset's own).

    ``preset="none"`` with a strength above 0 is a contradiction and an error.
    """
    check_choice("augmentation preset", preset, PRESETS, error=AugmentationError)
    if strength is None:
        return PRESETS[preset]
    strength = check_strength(strength)
    if preset == "none" and strength > 0:
        raise AugmentationError(
            f"augment 'none' with strength {strength}: choose a preset ({', '.join(list(PRESETS)[1:])}) "
            "and use the strength to override its own"
        )
    return strength


def build_pipeline(strength: float, kinds: Sequence[str] = KINDS):
    """The v2 pipeline for one random draw at ``strength`` (0: ``None``, nothing to do)."""
    from torchvision.transforms import v2

    s = check_strength(strength)
    kinds = check_kinds(kinds)
    if s == 0:
        return None
    ops = []
    if "geometry" in kinds:
        ops.append(v2.RandomAffine(
            degrees=25 * s, translate=(0.12 * s, 0.12 * s), scale=(1 - 0.2 * s, 1 + 0.1 * s), shear=12 * s,
            interpolation=v2.InterpolationMode.BILINEAR,
        ))
    if "colour" in kinds:
        ops += [
            v2.ColorJitter(brightness=0.3 * s, contrast=0.3 * s, saturation=0.5 * s),
            # a hue shift goes through HSV and costs three times the rest of the jitter: not every draw
            v2.RandomApply([v2.ColorJitter(hue=0.4 * s)], p=0.5 * s),
            v2.RandomApply([v2.RandomChannelPermutation()], p=0.5 * s),
            v2.RandomInvert(p=0.2 * s),
        ]
    if "texture" in kinds:
        ops += [
            v2.RandomApply([v2.GaussianBlur(3, sigma=(0.1, 0.1 + 0.7 * s))], p=0.3 * s),
            v2.RandomApply([v2.GaussianNoise(sigma=0.08 * s)], p=0.3 * s),
            v2.RandomSolarize(threshold=1 - 0.25 * s, p=0.15 * s),
        ]
    if "occlusion" in kinds:
        ops.append(v2.RandomErasing(p=0.4 * s, scale=(0.02, 0.02 + 0.15 * s), value=0.0))
    if "rotation" in kinds:
        ops.append(v2.RandomRotation(degrees=180 * s, interpolation=v2.InterpolationMode.BILINEAR))
    return v2.Compose(ops)


def _forked_rng(device: torch.device):
    """Save the global RNG state of the CPU (and of ``device``) and restore it on exit."""
    if device.type == "cpu":
        return torch.random.fork_rng(devices=[])
    return torch.random.fork_rng(devices=[device], device_type=device.type)


def _seed_global_rng(seed: int, device: torch.device) -> None:
    """Seed the global generators that v2 transforms draw from: the CPU's (random parameters) and,
    for a batch on an accelerator, that device's (pixel noise)."""
    torch.random.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):  # manual_seed seeds the *current* GPU: make it this one
            torch.cuda.manual_seed(seed)
    elif device.type != "cpu":
        torch.get_device_module(device.type).manual_seed(seed)


class BatchAugment:
    """A seeded augmentation of image batches: ``aug(x)`` for float images in [0, 1] (or uint8).

    Shape, dtype, device and value range are kept. Each call draws new parameters per group of
    ``group_size`` images from the augmenter's own generator (see the module notes).
    """

    def __init__(self, strength: float, kinds: Sequence[str] = KINDS, seed: int = 0, group_size: int = 8):
        if group_size < 1:
            raise ValueError(f"group_size must be at least 1, got {group_size}")
        self.strength = check_strength(strength)
        self.kinds = check_kinds(kinds)
        self.group_size = group_size
        self.generator = torch.Generator().manual_seed(seed)
        self.pipeline = build_pipeline(self.strength, self.kinds)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected a batch N x C x H x W, got shape {tuple(x.shape)}")
        call_seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        if self.pipeline is None or len(x) == 0:
            return x
        as_uint8 = x.dtype == torch.uint8
        xf = x.float().div(255.0) if as_uint8 else x
        with _forked_rng(x.device):
            _seed_global_rng(call_seed, x.device)
            out = torch.cat([self.pipeline(group) for group in xf.split(self.group_size)]).clamp_(0.0, 1.0)
        return out.mul(255.0).round_().to(torch.uint8) if as_uint8 else out.to(x.dtype)

    def __repr__(self) -> str:
        return f"BatchAugment(strength={self.strength}, kinds={list(self.kinds)}, group_size={self.group_size})"


def make_augment(
    preset: str = "none", strength: float | None = None, kinds: Sequence[str] = KINDS, seed: int = 0
) -> BatchAugment | None:
    """The augmentation of ``preset`` (or of ``strength``, see :func:`resolve_strength`); ``None``
    when the strength is 0, so that training does no augmentation work at all."""
    s = resolve_strength(preset, strength)
    return BatchAugment(s, kinds, seed=seed) if s > 0 else None


def augment_batch(
    x: torch.Tensor, strength: float, seed: int = 0, kinds: Sequence[str] = KINDS, group_size: int = 8
) -> torch.Tensor:
    """One augmented copy of the batch ``x``: the same ``(x, strength, seed)`` give the same result."""
    return BatchAugment(strength, kinds, seed=seed, group_size=group_size)(x)


def augmented_copies(x: torch.Tensor, transform, copies: int, batch_size: int = 256) -> torch.Tensor:
    """``copies`` augmented versions of the uint8 images ``x``, stacked copy after copy
    (``copies * N`` images; image ``i`` of copy ``k`` is row ``k * N + i``). Used by the linear
    probe, whose frozen backbone sees augmentation only through such extra copies."""
    if copies < 0:
        raise ValueError(f"copies must be 0 or more, got {copies}")
    out = [transform(x[i : i + batch_size]) for _ in range(copies) for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else x[:0]


def gallery(
    x: torch.Tensor, strengths: dict[str, float], seed: int = 0, kinds: Sequence[str] = KINDS, group_size: int = 1
) -> dict[str, torch.Tensor]:
    """The same images under each named strength (``{"none": 0.0, ...}``): name -> uint8 images.
    Every row uses the same seed, so the rows differ only in strength; by default every image gets
    its own draw (training uses groups of 8, see the module notes)."""
    return {name: augment_batch(x, s, seed=seed, kinds=kinds, group_size=group_size) for name, s in strengths.items()}


def throughput(
    strength: float = PRESETS["medium"],
    batch_size: int = 64,
    group_size: int = 8,
    kinds: Sequence[str] = KINDS,
    device: str | torch.device = "cpu",
    seconds: float = 1.0,
) -> float:
    """Images per second that :class:`BatchAugment` augments, measured on random 32 x 32 batches."""
    from datl_helpers.core.train import resolve_device

    dev = resolve_device(device)
    x = torch.rand(batch_size, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(dev)
    aug = BatchAugment(strength, kinds, seed=0, group_size=group_size)
    aug(x)  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        aug(x)
        done += batch_size
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return done / (time.perf_counter() - start)


def gain_rows(rows: Sequence[dict], baseline: str = "none", value: str = "target_accuracy") -> list[dict]:
    """The gain of every augmentation over ``baseline`` in percentage points, paired by seed (the
    same labelled subset and initialisation): one row per method, label count, augment and seed."""
    base = {(r["method"], r["labels_per_class"], r["seed"]): r[value] for r in rows if r["augment"] == baseline}
    return [
        {"method": r["method"], "labels_per_class": r["labels_per_class"], "augment": r["augment"], "seed": r["seed"],
         "gain": 100 * (r[value] - base[(r["method"], r["labels_per_class"], r["seed"])])}
        for r in rows
        if r["augment"] != baseline and (r["method"], r["labels_per_class"], r["seed"]) in base
    ]


def turnover(rows: Sequence[dict], value: str = "target_accuracy") -> list[dict]:
    """Per method (and label count): the strength with the best mean ``value`` over seeds (the
    turn-over); ``helps``: whether that best beats no augmentation by more than the seed-to-seed
    spread (paired gain's mean - std > 0); and ``hurts_from``: the first stronger strength that is
    worse than no augmentation by more than the spread (paired gain's mean + std < 0), or None."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    key = ["method", "labels_per_class", "seed"]
    base = frame[frame["strength"] == 0].set_index(key)[value]
    frame["gain"] = 100 * (frame[value] - base.reindex(pd.MultiIndex.from_frame(frame[key])).to_numpy())
    stats = frame.groupby(["method", "labels_per_class", "strength"], sort=False).agg(
        mean=(value, "mean"), gain=("gain", "mean"), spread=("gain", "std")).fillna({"spread": 0.0}).reset_index()
    out = []
    for (method, labels), part in stats.groupby(["method", "labels_per_class"], sort=False):
        part = part.sort_values("strength")
        best = part.loc[part["mean"].idxmax()]
        worse = part[(part["strength"] > best["strength"]) & (part["gain"] + part["spread"] < 0)]
        none = part.loc[part["strength"] == 0, "mean"]
        out.append({
            "method": method, "labels_per_class": labels, "best_strength": float(best["strength"]),
            "best": float(best["mean"]), "none": float(none.iloc[0]) if len(none) else float("nan"),
            "best_gain": float(best["gain"]), "best_spread": float(best["spread"]),
            "helps": bool(best["strength"] > 0 and best["gain"] - best["spread"] > 0),
            "hurts_from": float(worse["strength"].iloc[0]) if len(worse) else None,
        })
    return out
