"""Notebook 01's exercise checks (feature extraction)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from datl_helpers.course.check.feedback import NotYet, close, exercise, fresh_model


def _probe_model(num_classes: int = 5):
    """A random DigitNet made into a linear probe by the library: fresh head, every stage frozen."""
    from datl_helpers.core import models

    model = models.replace_head(fresh_model(), num_classes)
    models.freeze_stages(model, len(model.stage_names))
    return model


@exercise("1.A a linear probe")
def make_linear_probe(answer: Callable) -> str:
    model = fresh_model()
    pretrained_head = model.head
    returned = answer(model, 7)
    model = returned if isinstance(returned, nn.Module) else model
    if model.head is pretrained_head:
        raise NotYet("model.head is still the pretrained 10-class head: replace it with a fresh "
                     "nn.Linear(backbone.feature_dim, num_classes), the one part that learns the target's classes")
    linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    if len(linears) != 1:
        raise NotYet(f"the head has {len(linears)} linear layers; a linear probe's head is exactly one: "
                     "nn.Linear(backbone.feature_dim, num_classes)")
    (linear,) = linears
    if (linear.in_features, linear.out_features) != (model.feature_dim, 7):
        raise NotYet(f"the head maps {linear.in_features} -> {linear.out_features}; for 7 classes it must map "
                     f"feature_dim ({model.feature_dim}) -> num_classes (7), one score per class of the target")
    for name, stage in model.stages.named_children():
        if any(p.requires_grad for p in stage.parameters()):
            raise NotYet(f"stage {name!r} still has trainable parameters: freeze every stage (requires_grad_(False) "
                         "on model.stages' parameters), or training overwrites the pretrained features")
    if not all(p.requires_grad for p in model.head.parameters()):
        raise NotYet("the new head is frozen too: freeze the stages only, the head is the one part of a probe that "
                     "must train")
    with torch.no_grad():
        out = model.eval()(torch.rand(4, 3, 32, 32))
    if tuple(out.shape) != (4, 7):
        raise NotYet(f"the model returns {tuple(out.shape)} for 4 images; expected (4, 7)")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return (f"a fresh {model.feature_dim} -> 7 head on a frozen backbone: {trainable:,} of {total:,} parameters "
            "train, and the pretrained features stay exactly as they are.")


@exercise("1.B one probe step")
def probe_step(answer: Callable) -> str:
    from datl_helpers.core import train

    ours = _probe_model()
    twin = copy.deepcopy(ours)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.rand(16, 3, 32, 32, generator=g), torch.randint(0, 5, (16,), generator=g)) for _ in range(2)]
    opts = [torch.optim.SGD(m.head.parameters(), lr=0.1) for m in (ours, twin)]
    stats = {k: v.clone() for k, v in ours.stages.named_buffers()}  # BatchNorm's pretrained statistics
    head_before = ours.head.weight.detach().clone()
    twin_grads = []
    for step, (xb, yb) in enumerate(batches):
        ours.train()  # handed over in train mode, as the training loop leaves it
        loss = answer(ours, opts[0], xb, yb)
        twin.train()
        twin.stages.eval()  # what features.train_linear_head's epoch hook does
        want, _ = train.train_step(twin, opts[1], xb, yb)
        twin_grads.append(twin.head.weight.grad.clone())
        if not isinstance(loss, (int, float, torch.Tensor)) or (isinstance(loss, torch.Tensor) and loss.numel() != 1):
            raise NotYet(f"return the loss as a float (loss.item()), got {type(loss).__name__}")
        moved = [k for k, v in ours.stages.named_buffers() if not torch.equal(v, stats[k])]
        if moved:
            raise NotYet(f"the stages were in train mode, so BatchNorm's running statistics moved ({moved[0]}): call "
                         "model.stages.eval() after model.train(), so the frozen stages keep their pretrained statistics")
        if step == 0 and torch.equal(ours.head.weight.detach(), head_before):
            raise NotYet("the head did not change: call opt.step() after loss.backward(), or the probe never learns")
        if not math.isclose(float(loss), want.item(), rel_tol=1e-5, abs_tol=1e-6):
            raise NotYet(f"the loss is {float(loss):.4f}, expected {want.item():.4f}: the cross-entropy of model(xb) "
                         "against yb, computed before the step")
        if not close(ours.head.weight.detach(), twin.head.weight.detach(), 1e-6):
            grad = ours.head.weight.grad
            if step == 1 and grad is not None and close(grad, twin_grads[0] + twin_grads[1], 1e-6):
                raise NotYet("the gradients were not zeroed: call opt.zero_grad() before loss.backward(), or every "
                             "step adds the previous steps' gradients to its own")
            raise NotYet("after the step the head differs from one plain step: opt.zero_grad(), loss.backward(), "
                         "opt.step() on the cross-entropy")
    return ("the head takes the same step as the library's train_step, and the backbone, BatchNorm statistics "
            "included, stays exactly as pretrained.")


@exercise("1.1 match the pretraining preprocessing")
def to_model_input(answer: Callable) -> str:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)  # as PIL / NumPy store them
    out = answer(images.copy())
    if not isinstance(out, torch.Tensor):
        raise NotYet(f"return a torch tensor (got {type(out).__name__}); torch.from_numpy(images) makes one")
    expected = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    if tuple(out.shape) == images.shape:
        raise NotYet("the channels are still last (N x H x W x C): PyTorch wants N x C x H x W, "
                     "so permute the axes with .permute(0, 3, 1, 2)")
    if tuple(out.shape) != tuple(expected.shape):
        raise NotYet(f"expected shape {tuple(expected.shape)} (N x C x H x W), got {tuple(out.shape)}")
    if out.dtype != torch.float32:
        raise NotYet(f"the backbone takes float32 images, got {out.dtype}: convert with .float()")
    if out.max() > 10:
        raise NotYet("values go up to 255: divide by 255; the backbone was pretrained on images in [0, 1]")
    if out.min() < -0.01 or out.max() > 1.01:
        raise NotYet("the values leave [0, 1], so you normalised with a mean and std already: the model's "
                     "first layer (model.normalize) does that, so it would happen twice; stop at [0, 1]")
    if close(out, expected.flip(1), 1e-4):
        raise NotYet("the channels are in BGR order: the backbone was pretrained on RGB, keep the order")
    if not close(out, expected, 1e-4):
        raise NotYet("shape and range are right but the values differ from images / 255 in RGB order")
    return "N x 3 x 32 x 32 float32 in [0, 1], RGB: exactly what the backbone saw in pretraining."


@exercise("1.2 a probe with a hidden layer")
def mlp_probe(answer: Callable) -> str:
    model = fresh_model()
    returned = answer(model, 10, 64)
    model = returned if isinstance(returned, nn.Module) else model
    for name, stage in model.stages.named_children():
        if any(p.requires_grad for p in stage.parameters()):
            raise NotYet(f"stage {name!r} still has trainable parameters: freeze model.stages as the notebook "
                         "did (requires_grad_(False) on every parameter)")
    linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    if len(linears) != 2:
        raise NotYet(f"the head has {len(linears)} linear layer(s); a probe with a hidden layer has two: "
                     "nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))")
    first, last = linears
    if (first.in_features, first.out_features, last.in_features, last.out_features) != (model.feature_dim, 64, 64, 10):
        raise NotYet(f"the layers map {first.in_features} -> {first.out_features} -> {last.in_features} -> "
                     f"{last.out_features}; expected feature_dim ({model.feature_dim}) -> hidden (64) -> classes (10)")
    if not any(isinstance(m, (nn.ReLU, nn.GELU, nn.Tanh, nn.SiLU)) for m in model.head.modules()):
        raise NotYet("two linear layers with nothing between them are one linear layer: put a ReLU between them")
    if not all(p.requires_grad for p in model.head.parameters()):
        raise NotYet("the new head is frozen: it is the one part of a probe that must train")
    out = model(torch.rand(4, 3, 32, 32))
    if tuple(out.shape) != (4, 10):
        raise NotYet(f"the model returns {tuple(out.shape)} for 4 images; expected (4, 10)")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return (f"a frozen backbone under a two-layer head: {trainable:,} trainable parameters "
            f"(the linear probe had {model.feature_dim * 10 + 10:,}).")


@exercise("1.3 pooled features of an earlier stage")
def pooled_features(answer: Callable) -> str:
    from datl_helpers.core import models

    model = models.load_pretrained()
    torch.manual_seed(1)
    x = torch.rand(16, 3, 32, 32)

    def maps(stage: str) -> torch.Tensor:  # the stage's activations, N x C x H x W
        h = model.normalize(x)
        for name, module in model.stages.named_children():
            h = module(h)
            if name == stage:
                return h
        raise AssertionError(stage)

    with torch.no_grad():
        model.train()
        in_train_mode = {s: maps(s).mean(dim=(2, 3)) for s in ("conv1", "conv2")}
        model.eval()
        expected = {s: maps(s).mean(dim=(2, 3)) for s in ("conv1", "conv2")}
        flat = {s: model.features(x, s) for s in ("conv1", "conv2")}
    for stage in ("conv2", "conv1"):
        model.train()  # hand it over in train mode, as it would be right after training
        out = answer(model, x, stage)
        if not isinstance(out, torch.Tensor):
            raise NotYet(f"return the features as a tensor, got {type(out).__name__}")
        if tuple(out.shape) == tuple(flat[stage].shape):
            raise NotYet(f"those are {stage}'s flattened activations ({flat[stage].shape[1]} numbers per image): "
                         "average each channel over height and width instead")
        if tuple(out.shape) == (16, 128):
            raise NotYet(f"those are the last stage's features: stop after {stage!r}")
        if tuple(out.shape) != tuple(expected[stage].shape):
            raise NotYet(f"expected {tuple(expected[stage].shape)} (images x {stage}'s channels) for stage {stage!r}, "
                         f"got {tuple(out.shape)}")
        if out.requires_grad:
            raise NotYet("the features carry an autograd graph: compute them under torch.no_grad() "
                         "(the backbone is frozen, and the graph costs memory)")
        if close(out, in_train_mode[stage], 1e-4) and not close(out, expected[stage], 1e-4):
            raise NotYet("BatchNorm was in train mode, so each image's features depend on the rest of the "
                         "batch: call model.eval() before extracting")
        if not close(out, expected[stage], 1e-4):
            raise NotYet(f"the features differ from {stage}'s activations (after model.normalize and every stage up "
                         "to it, in eval mode) averaged over height and width")
    return ("global average pooling: 48 numbers per image after conv2 instead of 3,072 flattened ones, and the same "
            "wherever in the image a stroke appears. Try them in a probe beside section 3's flattened features.")
