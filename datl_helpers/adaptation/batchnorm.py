"""BatchNorm statistics: find a model's BatchNorm layers and re-estimate them on other images.

Re-estimating on unlabelled target images is AdaBN (Li et al. 2016; :mod:`datl_helpers.adaptation.methods`
runs it as a method), and the last step of the adaptation protocol of :mod:`datl_helpers.adaptation.dann`,
which tests the target with the target's own statistics.
"""

from __future__ import annotations

import torch
from torch import nn

from datl_helpers.core import train
from datl_helpers.core.domain import to_float
from datl_helpers.core.errors import TooFewSamplesError


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``model`` (1d and 2d)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def adabn(model: nn.Module, x_target: torch.Tensor, batch_size: int = 256,
          device: str | torch.device = "auto") -> nn.Module:
    """Re-estimate every BatchNorm layer's running mean and variance on the unlabelled uint8 target
    images ``x_target`` (AdaBN); weights are untouched. Returns ``model``, in eval mode.

    The statistics are averaged over all target images, in chunks of at most ``batch_size`` of
    equal size (``momentum=None`` makes BatchNorm average cumulatively), not an exponential average
    that would favour the last batches. Only the
    BatchNorm layers are in train mode while the images pass, so dropout stays off.
    """
    if len(x_target) < 2:
        raise TooFewSamplesError(f"AdaBN needs at least 2 target images to estimate statistics, got {len(x_target)}")
    dev = train.resolve_device(device)
    model.to(dev).eval()
    layers = batchnorm_layers(model)
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    # chunks of (nearly) equal size: the cumulative average weighs every chunk the same, so the mean
    # over chunks is then the mean over all images
    chunks = max(1, min(-(-len(x_target) // batch_size), len(x_target) // 2))  # and at least 2 images each
    for chunk in torch.tensor_split(x_target, chunks):
        model(to_float(chunk.to(dev)))
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    return model.eval()
