"""Networks as a sequence of named stages, plus a replaceable head.

Every model here is a :class:`StagedNet`: ``normalize -> stages -> head``. Naming the stages makes
the transfer-learning vocabulary one mechanism:

* "freeze the first k stages"      -> :func:`freeze_stages`
* "a learning rate per stage"      -> :func:`stage_param_groups`
* "features from stage k"          -> ``model.features(x, stage=...)``
* "replace the head"               -> :func:`replace_head`

:class:`DigitNet` is the course's small CNN, :class:`PaperNet` the DANN paper's MNIST network;
:func:`torchvision_backbone` wraps ``resnet18`` and
``mobilenet_v3_small`` in the same interface. :func:`load_pretrained` loads the backbone that
``data_scripts/pretrain_backbone.py`` trained on ``syn`` and that ships inside this package.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from datl_helpers.core.cache import sha256_bytes
from datl_helpers.core.errors import CheckpointError, DataUnavailableError, check_choice

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
PRETRAINED_NAME = "digitnet_syn"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` on float images in [0, 1]; part of the model, so it is saved
    with the weights and the preprocessing always matches the pretraining."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        def rounded(t: torch.Tensor) -> list[float]:
            return [round(v, 3) for v in t.flatten().tolist()]

        return f"mean={rounded(self.mean)}, std={rounded(self.std)}"


class StagedNet(nn.Module):
    """``normalize -> stages (named, in order) -> head``. The last stage returns flat features."""

    # The DANN domain classifier that goes with this network, as (hidden units, hidden layers);
    # None: the course's default (datl_helpers.adaptation.dann.DomainClassifier).
    domain_classifier: tuple[int, int] | None = None

    def __init__(
        self,
        stages: OrderedDict[str, nn.Module],
        feature_dim: int,
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
    ):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.stages = nn.Sequential(stages)
        self.feature_dim = feature_dim
        self.head: nn.Module = nn.Linear(feature_dim, num_classes)

    @property
    def stage_names(self) -> list[str]:
        return [name for name, _ in self.stages.named_children()]

    def features(self, x: torch.Tensor, stage: str | None = None) -> torch.Tensor:
        """Activations after ``stage`` (default: the last one), flattened to N x D."""
        if stage is not None:
            check_choice("stage", stage, self.stage_names)
        x = self.normalize(x)
        for name, module in self.stages.named_children():
            x = module(x)
            if name == stage:
                break
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _conv_stage(c_in: int, c_out: int) -> nn.Sequential:
    # Pooling before BatchNorm and ReLU gives the same function class at a quarter of their cost.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class DigitNet(StagedNet):
    """A small CNN for 3 x 32 x 32 digits, in the spirit of the DANN paper's MNIST network.

    Stages: ``conv1`` (32 -> 16 px), ``conv2`` (16 -> 8), ``conv3`` (8 -> 4), ``fc`` (flat features).
    """

    def __init__(
        self,
        num_classes: int = 10,
        widths: Sequence[int] = (32, 48, 96),
        feature_dim: int = 128,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.25, 0.25, 0.25),
    ):
        w1, w2, w3 = widths
        stages = OrderedDict(
            conv1=_conv_stage(3, w1),
            conv2=_conv_stage(w1, w2),
            conv3=_conv_stage(w2, w3),
            fc=nn.Sequential(
                nn.Flatten(),
                nn.Linear(w3 * 4 * 4, feature_dim, bias=False),
                nn.BatchNorm1d(feature_dim),
                nn.ReLU(inplace=True),
            ),
        )
        super().__init__(stages, feature_dim, num_classes, mean, std)
        self.config = {
            "num_classes": num_classes,
            "widths": list(widths),
            "feature_dim": feature_dim,
            "mean": list(mean),
            "std": list(std),
        }


class PaperNet(StagedNet):
    """The DANN paper's MNIST network (Ganin et al. 2016, JMLR, Figure 4) on the centre 28 x 28 pixels
    of a 3 x 32 x 32 digit (the paper's MNIST size).

    Features: ``conv1`` (5 x 5, 32 channels, max-pool) and ``conv2`` (5 x 5, 48 channels, max-pool),
    flattened to 48 x 4 x 4 = 768 numbers, as in the paper; the label predictor (the head) is fully
    connected 100 -> 100 -> 10. No BatchNorm: the paper trains it from random weights with SGD
    (:func:`datl_helpers.adaptation.dann.paper_config`).
    """

    domain_classifier = (100, 1)  # the paper's: one hidden layer of 100 units, then the domain logit

    def __init__(self, num_classes: int = 10, mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.5, 0.5, 0.5)):
        from torchvision.transforms import v2

        stages = OrderedDict(
            # ReLU after the max-pool: the same numbers as the paper's conv -> ReLU -> pool (both are
            # monotone), at a quarter of the ReLU's cost; 22% faster per step on 2 CPU threads.
            conv1=nn.Sequential(v2.CenterCrop(28), nn.Conv2d(3, 32, kernel_size=5), nn.MaxPool2d(2),
                                nn.ReLU(inplace=True)),
            conv2=nn.Sequential(nn.Conv2d(32, 48, kernel_size=5), nn.MaxPool2d(2), nn.ReLU(inplace=True)),
        )
        super().__init__(stages, 48 * 4 * 4, num_classes, mean, std)
        self.head = nn.Sequential(nn.Linear(self.feature_dim, 100), nn.ReLU(inplace=True),
                                  nn.Linear(100, 100), nn.ReLU(inplace=True), nn.Linear(100, num_classes))
        self.config = {"num_classes": num_classes, "mean": list(mean), "std": list(std)}


# --------------------------------------------------------------------------------------------
# The stage API
# --------------------------------------------------------------------------------------------


def replace_head(model: StagedNet, num_classes: int, dropout: float = 0.0) -> StagedNet:
    """Give ``model`` a new, randomly initialised head for ``num_classes`` (dropout before it)."""
    linear = nn.Linear(model.feature_dim, num_classes)
    model.head = nn.Sequential(nn.Dropout(dropout), linear) if dropout > 0 else linear
    device = next(model.stages.parameters()).device
    model.head.to(device)
    return model


def freeze_stages(model: StagedNet, k: int) -> list[str]:
    """Freeze the first ``k`` stages (no gradients) and unfreeze the rest; returns the frozen names.

    ``k = len(model.stage_names)`` freezes the whole backbone: only the head trains (a linear probe).
    BatchNorm layers in frozen stages still update their running statistics in train mode; put them
    in eval mode as well if they should stay exactly as pretrained.
    """
    names = model.stage_names
    if not 0 <= k <= len(names):
        raise ValueError(f"k must be between 0 and {len(names)} (the number of stages), got {k}")
    for i, stage in enumerate(model.stages.children()):
        for p in stage.parameters():
            p.requires_grad_(i >= k)
    return names[:k]


def stage_param_groups(
    model: StagedNet,
    lr: float,
    stage_lrs: dict[str, float] | None = None,
    decay: float = 1.0,
    weight_decay: float = 0.0,
    include_frozen: bool = False,
) -> list[dict]:
    """Optimizer parameter groups, one per stage plus the head, each with its own learning rate.

    The head gets ``lr``; stage ``i`` of ``n`` gets ``lr * decay ** (n - i)`` (``decay < 1``: lower
    rates for earlier, more general stages), unless ``stage_lrs`` names it. Frozen parameters are
    left out, unless ``include_frozen`` (for gradual unfreezing: the optimizer then already holds
    them, and skips them while they get no gradient).
    """
    names = model.stage_names
    stage_lrs = stage_lrs or {}
    for name in stage_lrs:
        check_choice("stage", name, [*names, "head"])
    groups = []
    modules = [*list(model.stages.named_children()), ("head", model.head)]
    for i, (name, module) in enumerate(modules):
        params = [p for p in module.parameters() if p.requires_grad or include_frozen]
        if not params:
            continue
        group_lr = stage_lrs.get(name, lr * decay ** (len(names) - i))
        groups.append({"name": name, "params": params, "lr": group_lr, "weight_decay": weight_decay})
    return groups


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --------------------------------------------------------------------------------------------
# torchvision backbones in the same interface
# --------------------------------------------------------------------------------------------


def torchvision_backbone(name: str, num_classes: int = 10, weights: str | None = None,
                         normalize: bool = True) -> StagedNet:
    """``resnet18`` or ``mobilenet_v3_small`` as a :class:`StagedNet`.

    ``weights=None`` gives random weights (offline, used in tests); ``weights="imagenet"`` loads the
    ImageNet weights from torchvision's cache or downloads them, with a clear error when offline.
    Inputs are normalised with the ImageNet statistics, which is what those weights expect;
    ``normalize=False`` leaves that to the input pipeline (the weights' own ``transforms()``, which
    normalises too: notebook 01 §6), so the images are not normalised twice.
    """
    import torchvision.models as tvm

    builders = {
        "resnet18": (tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1),
        "mobilenet_v3_small": (tvm.mobilenet_v3_small, tvm.MobileNet_V3_Small_Weights.IMAGENET1K_V1),
    }
    check_choice("torchvision backbone", name, sorted(builders))
    check_choice("weights", weights, (None, "imagenet"))
    build, imagenet = builders[name]
    try:
        net = build(weights=imagenet if weights else None)
    except (OSError, RuntimeError) as err:  # URLError is an OSError
        raise DataUnavailableError(
            f"could not load ImageNet weights for {name} ({type(err).__name__}): they are downloaded "
            "on first use, which needs internet; use weights=None, or the shipped DigitNet "
            "(models.load_pretrained())"
        ) from None
    if name == "resnet18":
        stages = OrderedDict(
            stem=nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool),
            layer1=net.layer1,
            layer2=net.layer2,
            layer3=net.layer3,
            layer4=nn.Sequential(net.layer4, net.avgpool, nn.Flatten()),
        )
        dim = net.fc.in_features
    else:
        f = net.features
        stages = OrderedDict(
            stem=f[0],
            block1=f[1:4],
            block2=f[4:9],
            block3=nn.Sequential(f[9:], net.avgpool, nn.Flatten()),
        )
        dim = f[-1].out_channels
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if normalize else ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    return StagedNet(stages, dim, num_classes, mean, std)


# --------------------------------------------------------------------------------------------
# The shipped pretrained backbone
# --------------------------------------------------------------------------------------------


def pretrained_paths(name: str = PRETRAINED_NAME, weights_dir: Path = WEIGHTS_DIR) -> tuple[Path, Path]:
    return weights_dir / f"{name}.pt", weights_dir / f"{name}.json"


def pretrained_info(name: str = PRETRAINED_NAME, weights_dir: Path = WEIGHTS_DIR) -> dict:
    """The metadata written with the shipped checkpoint: sha256, config, accuracies."""
    _, meta = pretrained_paths(name, weights_dir)
    if not meta.is_file():
        raise CheckpointError(
            f"no checkpoint metadata at {meta}; run `python data_scripts/pretrain_backbone.py`"
        )
    try:
        return json.loads(meta.read_text())
    except ValueError as err:
        raise CheckpointError(f"{meta} is not valid JSON ({err}); reinstall datl or re-run the pretraining") from None


def load_pretrained(
    name: str = PRETRAINED_NAME,
    weights_dir: Path = WEIGHTS_DIR,
    device: str | torch.device = "cpu",
) -> DigitNet:
    """The shipped DigitNet pretrained on ``syn``, with its 10-class ``syn`` head.

    The file's sha256 is checked against the metadata before anything is unpickled, and it is read
    with ``weights_only=True``, so a tampered or truncated file is refused, never run.
    """
    ckpt, _ = pretrained_paths(name, weights_dir)
    info = pretrained_info(name, weights_dir)
    if not ckpt.is_file():
        raise CheckpointError(f"no checkpoint at {ckpt}; run `python data_scripts/pretrain_backbone.py`")
    data = ckpt.read_bytes()
    if sha256_bytes(data) != info.get("sha256"):
        raise CheckpointError(
            f"{ckpt} does not match the sha256 in its metadata (tampered with or partly written); "
            "refusing to load it. Reinstall datl or re-run `python data_scripts/pretrain_backbone.py`"
        )
    import io

    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        model = DigitNet(**info["config"])
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{ckpt} does not fit DigitNet({info.get('config')}): {err}") from None
    return model.to(device)
