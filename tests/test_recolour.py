"""The backbone's colour augmentation: shapes, ranges, determinism, and what each part changes."""

from __future__ import annotations

import torch

from datl_helpers import recolour


def test_recolour_only_inverts_and_permutes_channels():
    x = torch.rand(64, 3, 8, 8)
    y = recolour.recolour(x, torch.Generator().manual_seed(0))
    for a, b in zip(x, y):  # every output image is a channel permutation of the image or of 1 - image
        candidates = [img[list(p)] for img in (a, 1 - a) for p in
                      ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))]
        assert any(torch.allclose(b, c) for c in candidates)


def test_pretraining_augment_is_seeded_and_stays_in_range():
    x = torch.rand(32, 3, 32, 32)
    a = recolour.pretraining_augment(x, torch.Generator().manual_seed(1))
    b = recolour.pretraining_augment(x, torch.Generator().manual_seed(1))
    c = recolour.pretraining_augment(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert not torch.equal(recolour.texture_blend(x, torch.Generator().manual_seed(0), p=1.0), x)
    assert torch.equal(recolour.texture_blend(x, torch.Generator().manual_seed(0), p=0.0), x)
    field = recolour.colour_texture(4, 32, torch.Generator().manual_seed(0))
    assert field.shape == (4, 3, 32, 32) and field.min() >= 0 and field.max() <= 1
