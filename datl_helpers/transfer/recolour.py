"""The shipped backbone's colour augmentation: random inversion, channel order and colour fields.

The backbone (:mod:`data_scripts.pretrain_backbone`) learned on ``syn`` images recoloured this way,
so that shape, not colour, carries the label. Any later training on the same backbone (notebook
04's adaptation protocol) can keep what it learned by showing it the same kind of images.
All functions work on float batches in [0, 1] (N x 3 x H x W) and draw from the given generator.
"""

from __future__ import annotations

import torch


def recolour(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-image colour augmentation on a float batch: random inversion and channel order.

    Digits are digits whatever their colours; this makes the backbone care about shape only.
    """
    n = len(x)
    invert = (torch.rand(n, 1, 1, 1, generator=generator) < 0.3).to(x.device)
    x = torch.where(invert, 1 - x, x)
    perms = torch.stack([torch.randperm(3, generator=generator) for _ in range(n)]).to(x.device)
    return torch.gather(x, 1, perms.view(n, 3, 1, 1).expand_as(x))


def colour_texture(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Random smooth colour fields (sums of upsampled noise at 4 scales), values in [0, 1].

    Procedural: no photographs are involved, so the target domains stay unseen.
    """
    field = torch.zeros(n, 3, size, size)
    for cells, weight in ((2, 1.0), (4, 0.7), (8, 0.5), (16, 0.35)):
        noise = torch.rand(n, 3, cells, cells, generator=generator)
        field += weight * torch.nn.functional.interpolate(noise, size=size, mode="bilinear", align_corners=False)
    lo = field.amin(dim=(1, 2, 3), keepdim=True)
    hi = field.amax(dim=(1, 2, 3), keepdim=True)
    return (field - lo) / (hi - lo + 1e-6)


def texture_blend(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """With probability ``p`` per image, replace it by |image - random colour field|.

    The absolute difference keeps the digit's edges while every colour and texture changes, so
    the backbone learns that shape, not colour, is the label.
    """
    n = len(x)
    field = colour_texture(n, x.shape[-1], generator).to(x.device)
    use = (torch.rand(n, 1, 1, 1, generator=generator) < p).to(x.device)
    return torch.where(use, (x - field).abs(), x)


def pretraining_augment(x: torch.Tensor, generator: torch.Generator, texture_p: float = 0.5) -> torch.Tensor:
    """The backbone's whole pretraining augmentation: :func:`recolour`, then :func:`texture_blend`."""
    return texture_blend(recolour(x, generator), generator, texture_p)
