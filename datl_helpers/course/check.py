"""Checks for the exercises in notebooks 01-04, 06 and 07: each takes your answer and returns ``Feedback``.

Two kinds: the exercises in the flow of a notebook (1.A, 1.B, ...) are its own mechanism, written where
it is taught (``IN_FLOW``); those of its '## Exercises' section (1.1, 1.2, ...) go further (``EXERCISES``).

A check builds small inputs of its own, runs your function on them, compares the result with the
library's own answer, and explains a wrong one in a sentence ("the head is frozen too: ...")
instead of a traceback. An unanswered exercise (still ``raise NotImplementedError``) says so.

    from datl_helpers.course import check
    check.mlp_probe(make_mlp_probe)             # shows ✅ ... or ❌ ...
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

STUB_MESSAGE = (
    "not answered yet: replace `raise NotImplementedError` with your code, "
    "run that cell, then run this check again"
)


@dataclass
class Feedback:
    """The verdict of one check: shown as one line in a notebook, truthy when the answer passed."""

    exercise: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        mark = "✅ Correct" if self.passed else "❌ Not yet"
        return f"{mark} ({self.exercise}): {self.message}"

    def _repr_markdown_(self) -> str:
        mark = "✅ **Correct**" if self.passed else "❌ **Not yet**"
        return f"{mark} ({self.exercise}): {self.message}"


class NotYet(Exception):
    """Raised inside a check when the answer is wrong; its text is the friendly explanation."""


def _exercise(title: str) -> Callable:
    """Turn ``check(answer) -> praise`` (raising ``NotYet``) into ``check(answer) -> Feedback``.

    Whatever the answer raises becomes a one-line message, so a student sees what went wrong
    without a wall of traceback.
    """

    def wrap(check: Callable) -> Callable[..., Feedback]:
        @functools.wraps(check)
        def run(answer) -> Feedback:
            try:
                return Feedback(title, True, check(answer))
            except NotYet as wrong:
                return Feedback(title, False, str(wrong))
            except NotImplementedError:
                return Feedback(title, False, STUB_MESSAGE)
            except Exception as err:  # the student's code failed: name the error, no traceback
                return Feedback(title, False, f"your code raised {type(err).__name__}: {err}")

        return run

    return wrap


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=tol, rtol=tol)


def _fresh_model(seed: int = 0):
    from datl_helpers.core import models

    torch.manual_seed(seed)
    return models.DigitNet()


# --------------------------------------------------------------------------------------------
# Notebook 01: feature extraction
# --------------------------------------------------------------------------------------------


def _probe_model(num_classes: int = 5):
    """A random DigitNet made into a linear probe by the library: fresh head, every stage frozen."""
    from datl_helpers.core import models

    model = models.replace_head(_fresh_model(), num_classes)
    models.freeze_stages(model, len(model.stage_names))
    return model


@_exercise("1.A a linear probe")
def make_linear_probe(answer: Callable) -> str:
    model = _fresh_model()
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


@_exercise("1.B one probe step")
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
        if not _close(ours.head.weight.detach(), twin.head.weight.detach(), 1e-6):
            grad = ours.head.weight.grad
            if step == 1 and grad is not None and _close(grad, twin_grads[0] + twin_grads[1], 1e-6):
                raise NotYet("the gradients were not zeroed: call opt.zero_grad() before loss.backward(), or every "
                             "step adds the previous steps' gradients to its own")
            raise NotYet("after the step the head differs from one plain step: opt.zero_grad(), loss.backward(), "
                         "opt.step() on the cross-entropy")
    return ("the head takes the same step as the library's train_step, and the backbone, BatchNorm statistics "
            "included, stays exactly as pretrained.")


@_exercise("1.1 match the pretraining preprocessing")
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
    if _close(out, expected.flip(1), 1e-4):
        raise NotYet("the channels are in BGR order: the backbone was pretrained on RGB, keep the order")
    if not _close(out, expected, 1e-4):
        raise NotYet("shape and range are right but the values differ from images / 255 in RGB order")
    return "N x 3 x 32 x 32 float32 in [0, 1], RGB: exactly what the backbone saw in pretraining."


@_exercise("1.2 a probe with a hidden layer")
def mlp_probe(answer: Callable) -> str:
    model = _fresh_model()
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


@_exercise("1.3 pooled features of an earlier stage")
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
        if _close(out, in_train_mode[stage], 1e-4) and not _close(out, expected[stage], 1e-4):
            raise NotYet("BatchNorm was in train mode, so each image's features depend on the rest of the "
                         "batch: call model.eval() before extracting")
        if not _close(out, expected[stage], 1e-4):
            raise NotYet(f"the features differ from {stage}'s activations (after model.normalize and every stage up "
                         "to it, in eval mode) averaged over height and width")
    return ("global average pooling: 48 numbers per image after conv2 instead of 3,072 flattened ones, and the same "
            "wherever in the image a stroke appears. Try them in a probe beside section 3's flattened features.")


# --------------------------------------------------------------------------------------------
# Notebook 02: fine-tuning
# --------------------------------------------------------------------------------------------


@_exercise("2.A layer-wise learning rates")
def layerwise_param_groups(answer: Callable) -> str:
    from datl_helpers.core import models

    model = _fresh_model()
    head_lr, decay = 0.01, 0.5
    groups = answer(model, head_lr, decay)
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "params" in g and "lr" in g for g in groups):
        raise NotYet("return a list of dicts, each with 'params' (a list of tensors) and its own 'lr'")
    names = {id(p): n for n, p in model.named_parameters()}
    lr_of: dict[int, float] = {}
    for g in groups:
        for p in g["params"]:
            if id(p) in lr_of:
                raise NotYet(f"parameter {names.get(id(p))!r} is in two groups: the optimizer refuses that, each "
                             "parameter belongs to exactly one group")
            lr_of[id(p)] = float(g["lr"])
    parts = [*model.stages.named_children(), ("head", model.head)]
    for name, part in parts:
        what = "the head" if name == "head" else f"stage {name!r}"
        if not any(id(p) in lr_of for p in part.parameters()):
            raise NotYet(f"{what} is in no group, so the optimizer would never update it: one group per stage plus "
                         "one for the head")
        if not all(id(p) in lr_of for p in part.parameters()):
            missing = next(n for n, p in model.named_parameters() if id(p) not in lr_of)
            raise NotYet(f"{missing!r} is in no group, so the optimizer would never update it: put all of "
                         f"{what}'s parameters (part.parameters()) in its group")
        if len({lr_of[id(p)] for p in part.parameters()}) > 1:
            raise NotYet(f"the parameters of {what} have different learning rates: give each part one rate")
    got = {name: lr_of[id(next(part.parameters()))] for name, part in parts}
    n = len(parts) - 1
    first = parts[0][0]
    if got[first] > got["head"]:
        raise NotYet(f"the decay runs the wrong way round: {first!r}, the most general stage, learns at {got[first]:.3g} "
                     f"and the head at {got['head']:.3g}; the head gets head_lr and each part below learns decay "
                     "times slower, so the general early features move least")
    if not math.isclose(got["head"], head_lr, rel_tol=1e-6):
        raise NotYet(f"the head learns at {got['head']:.3g}; it should learn at head_lr ({head_lr:g}): it is new and "
                     "has the most to learn")
    for i, (name, _) in enumerate(parts[:-1]):
        want = head_lr * decay ** (n - i)
        if not math.isclose(got[name], want, rel_tol=1e-6):
            raise NotYet(f"stage {name!r} learns at {got[name]:.3g}, expected {want:.3g} (head_lr x decay ** {n - i}): "
                         "each part learns decay times slower than the part above it")
    library = models.stage_param_groups(model, lr=head_lr, decay=decay, include_frozen=True)
    if any(not math.isclose(lr_of[id(p)], g["lr"], rel_tol=1e-6) for g in library for p in g["params"]):
        raise NotYet("the learning rates differ from models.stage_param_groups(model, head_lr, decay=decay)")
    torch.optim.SGD(groups, lr=head_lr)  # a valid optimizer spec
    return (f"the head learns at {head_lr:g} and each stage below it {1 / decay:g} times slower ({first} at "
            f"{got[first]:.2g}): the general early features move least.")


@_exercise("2.B one step of gradual unfreezing")
def unfreeze_for_epoch(answer: Callable) -> str:
    from datl_helpers.transfer import finetune

    for every in (2, 1):
        model, twin = _fresh_model(), _fresh_model()
        hook = finetune.gradual_unfreezing(twin, every=every)
        names = model.stage_names
        n = len(names)
        for epoch in range(n * every + 2):
            model.train()  # fit puts the model in train mode, then calls the epoch hook
            twin.train()
            answer(model, epoch, every)
            hook(epoch, twin)
            k = min(n, epoch // every)
            should_train = names[n - k:]
            stages = dict(model.stages.named_children())
            partly = [s for s, m in stages.items()
                      if any(p.requires_grad for p in m.parameters()) and not all(p.requires_grad for p in m.parameters())]
            if partly:
                raise NotYet(f"at epoch {epoch} stage {partly[0]!r} is partly frozen: freeze or unfreeze a stage as a "
                             "whole (stage.requires_grad_(...))")
            training = [s for s, m in stages.items() if all(p.requires_grad for p in m.parameters())]
            if training != should_train:
                if 0 < k < n and training == names[:k]:
                    raise NotYet(f"at epoch {epoch} (every={every}) you unfroze {training}, the bottom stages: unfreeze "
                                 f"from the top ({should_train}), the stages nearest the head hold the most "
                                 "task-specific features")
                raise NotYet(f"at epoch {epoch} with every={every} the top epoch // every = {k} stage(s) should train, "
                             f"{should_train}, and the others be frozen; got {training} training")
            for name, stage in stages.items():
                frozen = name not in should_train
                for module in stage.modules():
                    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training == frozen:
                        if frozen:
                            raise NotYet(f"at epoch {epoch} stage {name!r} is frozen but its BatchNorm is in train mode: "
                                         "its running statistics would drift from the pretrained ones; put it in "
                                         "eval mode")
                        raise NotYet(f"at epoch {epoch} stage {name!r} trains but its BatchNorm is in eval mode: only "
                                     "the frozen stages' BatchNorm goes to eval mode")
            if not all(p.requires_grad for p in model.head.parameters()):
                raise NotYet(f"at epoch {epoch} the head is frozen: the new head trains from the first epoch on, "
                             "only the stages wait their turn")
            state = lambda m: [(p.requires_grad, mod.training) for mod in m.modules()  # noqa: E731
                               for p in mod.parameters(recurse=False)]
            if state(model) != state(twin):
                raise NotYet(f"at epoch {epoch} the model differs from finetune.gradual_unfreezing's: only the stages' "
                             "requires_grad and their BatchNorm modes should change")
    return ("one more stage unfreezes from the top every `every` epochs, and the frozen ones keep their BatchNorm "
            "statistics: the head settles before the backbone moves.")


@_exercise("2.1 freeze the first k stages, BatchNorm included")
def freeze_first(answer: Callable) -> str:
    for k in (0, 2, 4):
        model = _fresh_model()
        model.train()
        answer(model, k)
        for i, (name, stage) in enumerate(model.stages.named_children()):
            frozen = i < k
            grads = [p.requires_grad for p in stage.parameters()]
            if frozen and any(grads):
                raise NotYet(f"with k={k}, stage {name!r} should be frozen but still has trainable parameters")
            if not frozen and not all(grads):
                raise NotYet(f"with k={k}, stage {name!r} should train but has frozen parameters")
            for module in stage.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training == frozen:
                    state = "train" if module.training else "eval"
                    raise NotYet(
                        f"with k={k}, the BatchNorm in stage {name!r} is in {state} mode: frozen stages "
                        "need eval mode (or their running statistics drift), trainable ones train mode")
        if not all(p.requires_grad for p in model.head.parameters()):
            raise NotYet(f"with k={k} the head is frozen: the new head always trains")
    return "frozen stages get no gradient and keep their BatchNorm statistics; the rest train."


@_exercise("2.2 no weight decay on biases and BatchNorm")
def decay_groups(answer: Callable) -> str:
    model = _fresh_model()
    for p in model.stages.conv1.parameters():
        p.requires_grad_(False)
    groups = answer(model, 0.05)
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "params" in g for g in groups):
        raise NotYet("return a list of dicts, each with 'params' (a list of tensors) and 'weight_decay'")
    names = {id(p): n for n, p in model.named_parameters()}
    seen: dict[int, float] = {}
    for g in groups:
        if "weight_decay" not in g:
            raise NotYet("give every group its own 'weight_decay' (0.0 for the group that must not decay)")
        for p in g["params"]:
            if id(p) in seen:
                raise NotYet(f"parameter {names.get(id(p))!r} is in two groups: each belongs to one")
            seen[id(p)] = g["weight_decay"]
    for full, p in model.named_parameters():
        if not p.requires_grad:
            if id(p) in seen:
                raise NotYet(f"{full!r} is frozen: leave frozen parameters out of the groups")
            continue
        if id(p) not in seen:
            raise NotYet(f"{full!r} is in no group, so the optimizer would never update it")
        decays = p.ndim >= 2  # conv kernels and linear weights
        if decays and seen[id(p)] != 0.05:
            raise NotYet(f"{full!r} is a weight matrix or kernel: it should decay (weight_decay 0.05)")
        if not decays and seen[id(p)] != 0.0:
            what = "a BatchNorm scale or shift" if "bn" in full or ".1." in full else "a bias"
            raise NotYet(f"{full!r} is {what}: decaying it toward 0 does not limit what the layer can express, "
                         "it only fights the normalisation; give it weight_decay 0.0 (p.ndim < 2)")
    torch.optim.AdamW([g for g in groups if g["params"]], lr=1e-3)  # a valid optimizer spec
    n_decay = sum(1 for p in model.parameters() if p.requires_grad and p.ndim >= 2)
    return f"{n_decay} weight tensors decay; biases and BatchNorm parameters do not; frozen conv1 is left out."


@_exercise("2.C the L2-SP penalty")
def l2sp_penalty(answer: Callable) -> str:
    model = _fresh_model()
    start = {n: p.detach().clone() for n, p in model.stages.named_parameters()}
    strength = 0.5
    at_start = answer(model, start, strength)
    if not isinstance(at_start, torch.Tensor) or at_start.numel() != 1:
        raise NotYet("return the penalty as a one-element tensor (a sum), so it can be added to the loss")
    if abs(at_start.item()) > 1e-6:
        raise NotYet(f"the penalty is {at_start.item():.3g} at the pretrained weights; L2-SP pulls toward "
                     "the starting point, so it must be 0 there (pulling toward 0 is weight decay)")
    with torch.no_grad():
        model.head.weight.add_(1.0)
    if abs(answer(model, start, strength).item()) > 1e-6:
        raise NotYet("moving the head changed the penalty: the head is new, there is no pretrained "
                     "value to pull it toward; sum over model.stages only")
    with torch.no_grad():
        model.stages.fc[1].weight.add_(0.1)
    value = answer(model, start, strength)
    expected = strength * 0.01 * model.stages.fc[1].weight.numel()
    if not value.requires_grad:
        raise NotYet("the penalty has no gradient: don't detach the current weights (only the start)")
    if math.isclose(value.item(), math.sqrt(expected / strength) * strength, rel_tol=1e-3):
        raise NotYet("that is the norm; L2-SP uses the squared distance: sum of (w - w0) ** 2")
    if math.isclose(value.item(), expected / 2, rel_tol=1e-3):
        raise NotYet("that is half the expected value: the paper writes alpha / 2 * ||w - w0||^2, but here "
                     "the strength multiplies the sum directly: strength * sum((w - w0) ** 2)")
    if not math.isclose(value.item(), expected, rel_tol=1e-3):
        raise NotYet(f"got {value.item():.4g}, expected {expected:.4g} = strength * sum((w - w0) ** 2)")
    return "zero at the pretrained weights, grows with the squared distance from them, head excluded."


@_exercise("2.3 early stopping with patience")
def early_stopping(answer: Callable) -> str:
    cases = (  # (validation accuracy per epoch, patience) -> (best epoch, last epoch trained), both from 1
        (([0.50, 0.60, 0.55, 0.58, 0.57, 0.70], 2), (2, 4)),
        (([0.10, 0.20, 0.30], 2), (3, 3)),
        (([0.50, 0.50, 0.50, 0.50], 2), (1, 3)),
        (([0.50, 0.40, 0.90], 1), (1, 2)),
    )
    for (accuracies, patience), want in cases:
        got = answer(list(accuracies), patience)
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise NotYet("return a pair: (the best epoch, the last epoch trained), both counted from 1")
        got = tuple(int(v) for v in got)
        if got == want:
            continue
        if got == (want[0] - 1, want[1] - 1):
            raise NotYet("count epochs from 1, as train.fit's records do: the first epoch is epoch 1")
        if accuracies == [0.50, 0.50, 0.50, 0.50] and got[0] > 1:
            raise NotYet("a tie is not an improvement: the best epoch is the first one that reached the best accuracy")
        if got[1] == want[1] + 1:
            raise NotYet(f"with patience {patience}, training stops after {patience} epochs in a row without a new "
                         f"best, not {patience + 1}: {accuracies} stops at epoch {want[1]}")
        if got[1] == len(accuracies) and want[1] < len(accuracies):
            raise NotYet(f"{accuracies} with patience {patience} should stop at epoch {want[1]}, before the end; "
                         "count the epochs since the last improvement and stop when that count reaches the patience")
        raise NotYet(f"for {accuracies} with patience {patience} expected (best, last) = {want}, got {got}")
    return "stops after `patience` epochs without a new best; a tie is not a new best; epochs count from 1."


# --------------------------------------------------------------------------------------------
# Notebook 03: augmentation
# --------------------------------------------------------------------------------------------


def _gain_pipeline() -> Callable:
    """The notebook's pipeline (geometry and colour at strength 1) plus a random gain that can push pixels past 1."""
    from datl_helpers.transfer import augment

    course = augment.build_pipeline(1.0, kinds=("geometry", "colour"))

    def pipeline(group: torch.Tensor) -> torch.Tensor:
        return course(group) * (0.7 + 0.6 * torch.rand(()))

    return pipeline


@_exercise("3.A augmentation, one draw per group")
def augment_by_groups(answer: Callable) -> str:
    pipeline = _gain_pipeline()
    x = torch.rand(20, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    def reference(seed: int, size: int) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return torch.cat([pipeline(g) for g in x.split(size)]).clamp(0, 1)

    with torch.random.fork_rng(devices=[]):  # the check leaves the notebook's random state as it found it
        torch.manual_seed(0)
        before = torch.random.get_rng_state()
        out = answer(x.clone(), pipeline, seed=7)
        state_kept = torch.equal(torch.random.get_rng_state(), before)
        torch.manual_seed(1)  # another global state: a seeded answer does not care
        again = answer(x.clone(), pipeline, seed=7)
        other = answer(x.clone(), pipeline, seed=8)
        fives = answer(x.clone(), pipeline, seed=7, group_size=5)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        raise NotYet(f"return the augmented batch, a tensor of shape {tuple(x.shape)}")
    if out.min() < 0 or out.max() > 1:
        raise NotYet(f"values reach {out.max().item():.2f}, outside [0, 1]: a transform can push pixels past 1 (this "
                     "pipeline's random gain does), so clamp the result with .clamp(0, 1)")
    if not _close(out, again):
        raise NotYet("two calls with the same seed gave different images: call torch.manual_seed(seed) before "
                     "drawing, so that a run can be repeated exactly")
    if _close(out, other):
        raise NotYet("seeds 7 and 8 gave the same images: the seed must decide the draw (torch.manual_seed(seed))")
    if not state_kept:
        raise NotYet("the global random state changed: seed and draw inside torch.random.fork_rng(devices=[]), or "
                     "every call resets the training loop's own random numbers (shuffling, dropout)")
    if _close(out, reference(7, len(x))):
        raise NotYet("one draw for the whole batch: every image got the same rotation and colour change; transform "
                     "each group of x.split(group_size) on its own, so one batch shows many variations")
    if _close(out, reference(7, 1)):
        raise NotYet("one draw per image ignores group_size: draw once per group of group_size images "
                     "(x.split(group_size)), which costs group_size times fewer draws")
    if not _close(out, reference(7, 8)):
        raise NotYet("expected torch.manual_seed(seed), then pipeline(group) for each group of x.split(group_size), "
                     "concatenated and clamped to [0, 1]")
    if not isinstance(fives, torch.Tensor) or not _close(fives, reference(7, 5)):
        raise NotYet("group_size=5 did not give groups of 5: split with x.split(group_size), not a fixed 8")
    return ("3 draws for 20 images, the same images for the same seed, and the training loop's random state "
            "untouched: variety at a fraction of the per-image cost.")


def _flips(transform) -> list[str]:
    from torchvision.transforms import v2

    found = []
    stack = [transform]
    while stack:
        t = stack.pop()
        if isinstance(t, (v2.RandomHorizontalFlip, v2.RandomVerticalFlip)):
            found.append(type(t).__name__)
        stack.extend(getattr(t, "transforms", []) or [])
    return found


@_exercise("3.1 augmentations for a colourful target")
def colour_pipeline(answer: Callable) -> str:
    from datl_helpers.core import models, train
    from datl_helpers.data import registry as data

    transform = answer()
    if not callable(transform):
        raise NotYet("return a transform (for example v2.Compose([...])) that takes a batch of images")
    if _flips(transform):
        raise NotYet(f"{_flips(transform)[0]} mirrors digits: a mirrored 2 or 5 is not a digit the test "
                     "set contains; leave flips out")
    syn = data.load_domain("syn")
    x_u8, y = data.sample_test_set(syn, 400)
    x = data.to_float(x_u8)
    torch.manual_seed(0)
    # one random draw per image, as training would use it (a single draw for the whole batch would
    # judge a pipeline by one roll of its dice)
    out = [transform(image.clone()) for image in x]
    if not all(isinstance(o, torch.Tensor) and o.shape == x.shape[1:] for o in out):
        raise NotYet(f"the transform must keep an image's shape {tuple(x.shape[1:])} (and a batch's)")
    out = torch.stack(out)
    if out.min() < -0.01 or out.max() > 1.01:
        raise NotYet("values left [0, 1]: clamp them (x.clamp(0, 1)) or use transforms that stay in range")
    colour_change = (out.mean(dim=(2, 3)) - x.mean(dim=(2, 3))).abs().mean().item()
    if colour_change < 0.02:
        raise NotYet(f"colours barely change (mean channel shift {colour_change:.3f}, below 0.02): mnistm "
                     "differs from mnist in colour and texture, so add or strengthen v2.ColorJitter, "
                     "v2.RandomChannelPermutation or v2.RandomInvert")
    torch.manual_seed(1)
    if torch.equal(torch.stack([transform(image.clone()) for image in x[:32]]), out[:32]):
        raise NotYet("two calls give the same images: an augmentation must be random")
    model = models.load_pretrained()
    clean = train.evaluate(model, x_u8, y, device="cpu")["accuracy"]
    with torch.no_grad():
        model.eval()
        kept = (model(out).argmax(1) == y).float().mean().item()
    if kept < 0.6:
        raise NotYet(f"the augmented digits are hard to read: the pretrained backbone gets {100 * kept:.0f} % of "
                     f"them (clean: {100 * clean:.0f} %, needed: 60 %); lower the strengths so labels stay true")
    return (f"random colour changes ({colour_change:.2f} mean channel shift), no flips, and the digits "
            f"stay readable: the backbone still gets {100 * kept:.0f} % (clean {100 * clean:.0f} %).")


@_exercise("3.2 a paired gain over seeds")
def paired_gain(answer: Callable) -> str:
    with_aug = [88.1, 86.0, 90.2]
    without = [87.0, 84.1, 88.8]
    result = answer(with_aug, without)
    try:
        mean, std = (float(v) for v in result)
    except (TypeError, ValueError):
        raise NotYet("return two numbers: (mean, std) of the per-seed gains") from None
    diffs = np.subtract(with_aug, without)
    if not math.isclose(mean, diffs.mean(), abs_tol=1e-6):
        raise NotYet(f"the mean gain is {diffs.mean():.3f}, got {mean:.3f}: average with_aug - without")
    if math.isclose(std, diffs.std(ddof=0), abs_tol=1e-6):
        raise NotYet("use the sample standard deviation (ddof=1): with three seeds the difference is large")
    unpaired = math.sqrt(np.var(with_aug, ddof=1) + np.var(without, ddof=1))
    if math.isclose(std, unpaired, abs_tol=1e-3):
        raise NotYet("that spread treats the runs as independent; pair them by seed: take the "
                     "difference per seed first, then its std (the shared seed cancels out)")
    if not math.isclose(std, diffs.std(ddof=1), abs_tol=1e-6):
        raise NotYet(f"the std of the per-seed gains is {diffs.std(ddof=1):.3f}, got {std:.3f}")
    return (f"gain {mean:.2f} ± {std:.2f} points; unpaired the spread would look {unpaired:.2f}, "
            "hiding a gain that every seed shows.")


@_exercise("3.3 where augmentation starts to hurt")
def hurts_from(answer: Callable) -> str:
    cases = [
        ({0.0: 62.1, 0.25: 66.0, 0.5: 57.7, 0.75: 29.0, 1.0: 19.1}, 0.5),
        ({0.0: 88.1, 0.25: 88.3, 0.5: 87.7, 0.75: 86.1}, 0.5),
        ({0.0: 80.0, 0.5: 81.0, 0.25: 82.0, 1.0: 80.5}, None),  # unsorted keys, never below none
        ({0.0: 81.8, 0.25: 81.7, 0.5: 81.0}, 0.25),
    ]
    for sweep, expected in cases:
        got = answer(dict(sweep))
        if got != expected:
            hint = ("sort the strengths first" if sorted(sweep) != list(sweep) else
                    "find the best strength, then the first stronger one below the strength-0 accuracy")
            raise NotYet(f"for {sweep} the answer is {expected}, got {got}: {hint}")
    return "you found the turn-over: past it, augmentation costs accuracy (measure, don't assume)."


# --------------------------------------------------------------------------------------------
# Notebook 04: domain-adversarial training
# --------------------------------------------------------------------------------------------


@_exercise("4.A the gradient-reversal layer")
def grad_reverse(answer) -> str:
    if not (isinstance(answer, type) and issubclass(answer, torch.autograd.Function)):
        raise NotYet("pass the class itself (GradReverse), a subclass of torch.autograd.Function used as "
                     "GradReverse.apply(x, coeff)")
    torch.manual_seed(0)
    for coeff in (0.5, 2.0):
        x = torch.randn(4, 3, requires_grad=True)
        w = torch.randn(4, 3)
        y = answer.apply(x, coeff)
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            raise NotYet(f"forward must return a tensor of the same shape as x, {tuple(x.shape)}")
        if not torch.allclose(y, x, atol=1e-6):
            if torch.allclose(y, -coeff * x, atol=1e-6):
                raise NotYet("forward returned -coeff * x: going forward the layer is the identity (x.view_as(x)), "
                             "only the gradient is reversed, so the domain classifier sees the true features")
            raise NotYet("forward must return x unchanged (x.view_as(x)): the layer is the identity going forward")
        if not y.requires_grad:
            raise NotYet("no gradient flows back through the layer: return x.view_as(x), not a detached copy")
        try:
            (y * w).sum().backward()
        except RuntimeError as err:
            if "incorrect number of gradients" not in str(err):
                raise
            raise NotYet("backward must return one gradient per input of forward: (-ctx.coeff * grad_output, None), "
                         "None for coeff") from None
        g = x.grad
        if g is None or g.shape != x.shape:
            raise NotYet("backward must return the gradient for x, of x's shape, then None for coeff")
        if torch.allclose(g, w, atol=1e-6):
            raise NotYet("the gradient passed through unchanged: backward must return -coeff * grad_output, or the "
                         "features learn to help the domain classifier instead of fooling it")
        if torch.allclose(g, -w, atol=1e-6):
            raise NotYet("the gradient is negated but not scaled by coeff: multiply by ctx.coeff too, or lambda "
                         "cannot ramp the adversary's push up from 0")
        if torch.allclose(g, coeff * w, atol=1e-6):
            raise NotYet("the gradient is scaled by coeff but not negated: without the minus sign the features learn "
                         "to help the domain classifier instead of fooling it")
        if not torch.allclose(g, -coeff * w, atol=1e-6):
            raise NotYet("the gradient reaching x should be -coeff * grad_output")
    return ("the identity going forward, -coeff times the gradient going back: the features are trained to raise "
            "the very loss the domain classifier lowers.")


def _step_twin(model, disc, opt, xs, ys, xt, lam, *, per_domain: bool = True, set_lam: bool = True,
               label_rows: str = "source", swap: bool = False, zero: bool = True) -> tuple[float, float]:
    """A DANN step with one thing changed (for telling which mistake an answer made)."""
    import torch.nn.functional as F

    if set_lam:
        disc.reverse.coeff = lam
    feats = (torch.cat([model.features(xs), model.features(xt)]) if per_domain
             else model.features(torch.cat([xs, xt])))
    n = len(xs)
    label_loss = F.cross_entropy(model.head(feats[:n] if label_rows == "source" else feats[n:]), ys)
    domain = torch.cat([torch.zeros(n), torch.ones(len(xt))])
    domain_loss = F.binary_cross_entropy_with_logits(disc(feats), 1 - domain if swap else domain)
    if zero:
        opt.zero_grad()
    (label_loss + domain_loss).backward()
    opt.step()
    return label_loss.item(), domain_loss.item()


def _step_outcome(step: Callable, nets: tuple, batch: tuple, lam: float) -> tuple:
    """One DANN step on copies of ``nets``: what it returned and every parameter after it."""
    model, disc = copy.deepcopy(nets)
    params = [*model.parameters(), *disc.parameters()]
    for p in params:
        p.grad = torch.ones_like(p)  # a previous step's gradients, still there
    opt = torch.optim.SGD(params, lr=0.1)
    model.train()
    disc.train()
    returned = step(model, disc, opt, *batch, lam)
    return returned, [p.detach().clone() for p in params]


def _judge_step(answer: Callable, library: Callable, nets: tuple, batch: tuple, lam: float,
                mistakes: list[tuple[dict, str]]) -> tuple[float, float]:
    """Run ``answer`` and the library's step on the same copies; explain a difference by the first of
    ``mistakes`` (changes to :func:`_step_twin`, and what they mean) that reproduces it."""
    try:
        returned, after = _step_outcome(answer, nets, batch, lam)
    except ValueError as err:
        if "batch_size" not in str(err):
            raise
        n_rows, n_labels = len(batch[0]) + len(batch[2]), len(batch[1])
        raise NotYet(f"the label loss got logits for the target rows too ({n_rows} rows, {n_labels} labels): the "
                     "target has no labels, take the label loss on the first len(source_x) rows only") from None
    try:
        label_loss, domain_loss = (float(v) for v in returned)
    except (TypeError, ValueError):
        raise NotYet("return the two losses as floats: (label_loss.item(), domain_loss.item())") from None

    def same(outcome: tuple) -> bool:
        (want_label, want_domain), params = outcome
        return (math.isclose(label_loss, want_label, rel_tol=1e-5, abs_tol=1e-6)
                and math.isclose(domain_loss, want_domain, rel_tol=1e-5, abs_tol=1e-6)
                and all(_close(a, b, 1e-5) for a, b in zip(after, params)))

    if same(_step_outcome(library, nets, batch, lam)):
        return label_loss, domain_loss
    for changes, explanation in mistakes:
        if same(_step_outcome(functools.partial(_step_twin, **changes), nets, batch, lam)):
            raise NotYet(explanation)
    raise NotYet("the losses or the update differ from the library's step: label loss on the source rows, domain "
                 "loss (source 0, target 1) on both through disc with disc.reverse.coeff = lam, then zero_grad, "
                 "one backward of their sum, step")


_LAMBDA_NOT_SET = ("lambda was not set: assign disc.reverse.coeff = lam before the forward pass, or the reversal pushes "
                   "the features with its old strength (1.0 here instead of 0.3)")
_LABELS_ON_TARGET = ("the label loss used the target rows: the labels belong to the source, the first len(source_x) "
                     "rows, and the target has none")
_DOMAINS_SWAPPED = ("the domain labels are swapped: source is 0 and target 1, the convention every reading of the "
                    "domain classifier (its accuracy, its most target-like words) relies on")
_NOT_ZEROED = ("the gradients were not zeroed: call opt.zero_grad() before backward(), or the previous step's "
               "gradients are added to this one's")


@_exercise("4.B one DANN step")
def dann_step(answer: Callable) -> str:
    from datl_helpers.adaptation import dann

    model = _fresh_model()
    disc = dann.DomainClassifier(model.feature_dim, hidden=16)  # reverse.coeff starts at 1.0
    g = torch.Generator().manual_seed(0)
    xs, xt = torch.rand(8, 3, 32, 32, generator=g), torch.rand(8, 3, 32, 32, generator=g)
    ys = torch.randint(0, 10, (8,), generator=g)

    def library(model, disc, opt, xs, ys, xt, lam):
        disc.reverse.coeff = lam
        label_loss, domain_loss, *_ = dann.dann_step(model, disc, opt, torch.cat([xs, xt]), ys, len(xs), fast=False,
                                                     per_domain_bn=True)
        return label_loss.item(), domain_loss.item()

    one_pass = ("both domains went through the network in one forward pass, so BatchNorm normalised them with shared "
                "batch statistics: pass source_x and target_x separately (model.features on each), then concatenate")
    label_loss, domain_loss = _judge_step(answer, library, (model, disc), (xs, ys, xt), 0.3, [
        ({"set_lam": False}, _LAMBDA_NOT_SET), ({"per_domain": False}, one_pass),
        ({"label_rows": "target"}, _LABELS_ON_TARGET), ({"swap": True}, _DOMAINS_SWAPPED), ({"zero": False}, _NOT_ZEROED),
    ])
    return (f"label loss {label_loss:.3f} on the source, domain loss {domain_loss:.3f} on both domains through the "
            "reversal, one backward pass: the same losses and update as the library's dann_step.")


@_exercise("4.1 the reversal without an autograd.Function")
def reverse_without_function(answer: Callable) -> str:
    torch.manual_seed(0)
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    y = answer(x, 0.5)
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise NotYet(f"return a tensor of the same shape as x, {tuple(x.shape)}")
    if not torch.allclose(y, x, atol=1e-6):
        if torch.allclose(y, -0.5 * x, atol=1e-6):
            raise NotYet("the value came out as -coeff * x: the layer must be the identity going forward; "
                         "add a detached term that restores the value")
        raise NotYet("the value must equal x (the layer is the identity going forward)")
    if not y.requires_grad:
        raise NotYet("no gradient flows back at all: keep one term that is not detached")
    (y * w).sum().backward()
    g = x.grad
    if torch.allclose(g, w):
        raise NotYet("the gradient passed through unchanged: the non-detached term must carry -coeff")
    if torch.allclose(g, -w):
        raise NotYet("reversed, but coeff was ignored: the gradient must be scaled by coeff too")
    if not torch.allclose(g, -0.5 * w, atol=1e-6):
        raise NotYet("the gradient reaching x should be -coeff * grad_output")
    return "the value of x, the gradient of -coeff * x: the same layer as GradReverse, without a Function."


@_exercise("4.2 the lambda schedule")
def dann_lambda(answer: Callable) -> str:
    from datl_helpers.adaptation import dann

    if abs(float(answer(0.0, 10.0, 1.0))) > 1e-6:
        raise NotYet("lambda must start at 0: early on the domain classifier is random, and its reversed "
                     "gradient would only add noise to the features")
    for p in (0.1, 0.3, 0.5, 1.0):
        for gamma, lam_max in ((10.0, 1.0), (5.0, 0.3)):
            got, want = float(answer(p, gamma, lam_max)), dann.dann_lambda(p, gamma, lam_max)
            if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-7):
                raise NotYet(f"at p={p}, gamma={gamma}, lambda_max={lam_max} expected {want:.4f}, got {got:.4f}: "
                             "lambda_max * (2 / (1 + exp(-gamma * p)) - 1)")
    return "0 at the start, rising smoothly to lambda_max: the adversary's push grows as it learns."


@_exercise("4.3 the proxy A-distance")
def proxy_a_distance(answer: Callable) -> str:
    gen = torch.Generator().manual_seed(0)
    # few points in many dimensions: a classifier scored on its own training points "separates" even
    # two samples of one distribution, so only a held-out error gives a distance near 0 here
    same_a, same_b = torch.randn(150, 64, generator=gen), torch.randn(150, 64, generator=gen)
    far_a, far_b = torch.randn(150, 64, generator=gen), torch.randn(150, 64, generator=gen) + 1.0
    close = float(answer(same_a, same_b))
    apart = float(answer(far_a, far_b))
    if close < -0.05 or apart < -0.05:
        raise NotYet("the distance came out negative: use the classifier's error, 2 * (1 - 2 * error), "
                     "not its accuracy")
    if apart > 2.001 or close > 2.001:
        raise NotYet("the proxy A-distance lies in [0, 2]: 2 * (1 - 2 * error) with error in [0, 0.5]")
    if apart < 1.8:
        raise NotYet(f"two clearly separated clouds gave {apart:.2f}; expected close to 2 (a classifier "
                     "tells them apart almost perfectly)")
    if close > 0.3:
        raise NotYet(f"two samples of the same distribution gave {close:.2f}; expected close to 0. "
                     "Measure the error on held-out data (cross-validation), not on the training points")
    return f"same distribution {close:.2f}, separated {apart:.2f}: 0 means aligned, 2 means fully apart."


# --------------------------------------------------------------------------------------------
# Notebook 06: adversarial examples
# --------------------------------------------------------------------------------------------


def _attacked(answer: Callable, model, x: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """The images an attack answer returns for ``x`` (detached), after checking they are a batch like ``x``."""
    adv = answer(model, x.clone(), labels, eps)
    if not isinstance(adv, torch.Tensor) or adv.shape != x.shape:
        raise NotYet(f"return the attacked images, a tensor of shape {tuple(x.shape)}")
    return adv.detach()


def _linear_attack_setup(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    g = torch.Generator().manual_seed(seed)
    return model, torch.rand(12, 3, 4, 4, generator=g), torch.randint(0, 5, (12,), generator=g)


def _input_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    import torch.nn.functional as F

    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()


@_exercise("6.A FGSM")
def fgsm(answer: Callable) -> str:
    import torch.nn.functional as F

    from datl_helpers.robustness import robust

    model, x, y = _linear_attack_setup(2)
    eps = 0.1
    adv = _attacked(answer, model, x, y, eps)
    if _close(adv, robust.fgsm(model, x, y, eps)):
        return (f"every pixel moves by eps = {eps} along the sign of the loss's gradient: the loss rises from "
                f"{_input_loss(model, x, y):.3f} to {_input_loss(model, adv, y):.3f} in one step.")
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(xg), y), xg)
    if _close(adv, (x - eps * grad.sign()).clamp(0, 1)):
        raise NotYet("you stepped down the loss (x - eps * sign(grad)), which makes the model more sure of the right "
                     "class: an attack steps up, x + eps * sign(grad)")
    if _close(adv, (x + eps * grad).clamp(0, 1)) or _close(adv, x + eps * grad):
        raise NotYet("you stepped along the gradient itself: its entries are tiny, so the images barely move; FGSM "
                     "takes its sign (grad.sign()), moving every pixel by the full eps")
    if adv.min() < -1e-6 or adv.max() > 1 + 1e-6:
        raise NotYet("some pixels left [0, 1]: clamp the attacked images (.clamp(0, 1)), or they are not valid "
                     "images any more")
    if (adv - x).abs().max() > eps + 1e-5:
        raise NotYet(f"some pixels moved by {(adv - x).abs().max().item():.3f}, more than eps = {eps}: one step of "
                     "size eps, no more")
    raise NotYet("expected x + eps * sign(gradient of the cross-entropy with respect to x), clamped to [0, 1]")


def _pgd_setup():
    """A small ReLU network (the gradient's sign changes along the way) and a batch for PGD."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 5))
    g = torch.Generator().manual_seed(3)
    return model, torch.rand(12, 3, 4, 4, generator=g), torch.randint(0, 5, (12,), generator=g)


@_exercise("6.B PGD")
def pgd(answer: Callable) -> str:
    from datl_helpers.robustness import robust

    model, x, y = _pgd_setup()
    eps, steps = 0.1, 5
    adv = answer(model, x.clone(), y, eps, steps=steps, generator=torch.Generator().manual_seed(3))
    if not isinstance(adv, torch.Tensor) or adv.shape != x.shape:
        raise NotYet(f"return the attacked images, a tensor of shape {tuple(x.shape)}")
    adv = adv.detach()
    if adv.min() < -1e-6 or adv.max() > 1 + 1e-6:
        raise NotYet("some pixels left [0, 1]: clamp after every step (.clamp(0, 1)), or they are not valid images")
    if (adv - x).abs().max() > eps + 1e-5:
        raise NotYet(f"some pixels moved by {(adv - x).abs().max().item():.3f}, more than eps = {eps}: after every "
                     "step project back into the eps-ball around the clean x (torch.min(torch.max(adv, x - eps), "
                     "x + eps)), or the small steps add up to more than eps")
    clean, attacked = _input_loss(model, x, y), _input_loss(model, adv, y)
    if attacked <= clean:
        raise NotYet(f"the loss at your images ({attacked:.3f}) is not higher than at the clean ones ({clean:.3f}): "
                     "step up the loss, adv + alpha * sign(grad)")
    want = robust.pgd(model, x, y, eps, steps=steps, generator=torch.Generator().manual_seed(3))
    if _close(adv, want, 1e-5):
        fgsm_loss = _input_loss(model, robust.fgsm(model, x, y, eps), y)
        return (f"a random start, {steps} projected sign steps: the loss rises from {clean:.3f} to {attacked:.3f} "
                f"(FGSM's one step: {fgsm_loss:.3f}), never leaving the eps-ball or [0, 1].")
    if _close(adv, robust.pgd(model, x, y, eps, steps=steps, random_start=False), 1e-5):
        raise NotYet("no random start: begin at a random point of the eps-ball, (x + eps * (2 * torch.rand(x.shape, "
                     "generator=generator) - 1)).clamp(0, 1), so the attack does not always set off from x")
    again = answer(model, x.clone(), y, eps, steps=steps, generator=torch.Generator().manual_seed(3))
    if not _close(again.detach(), adv, 1e-5):
        raise NotYet("two calls with the same generator gave different images: draw the random start with "
                     "torch.rand(x.shape, generator=generator), so an attack can be repeated exactly")
    raise NotYet("inside the ball and up the loss, but not the course's PGD: the random start "
                 "(x + eps * (2 * torch.rand(x.shape, generator=generator) - 1)).clamp(0, 1), then `steps` sign steps "
                 "of alpha = 2.5 * eps / steps, each projected into the eps-ball and [0, 1]")


@_exercise("6.1 a targeted attack")
def targeted_fgsm(answer: Callable) -> str:
    import torch.nn.functional as F

    model, x, _ = _linear_attack_setup()
    target = (torch.arange(12) + 2) % 5
    eps = 0.1
    adv = _attacked(answer, model, x, target, eps)
    if (adv - x).abs().max() > eps + 1e-5:
        raise NotYet(f"some pixels moved by more than eps = {eps}: one step of size eps, then stay in the ball")
    if adv.min() < -1e-6 or adv.max() > 1 + 1e-6:
        raise NotYet("some pixels left [0, 1]: clamp the attacked images to the valid range")
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(xg), target), xg)
    want = (x - eps * grad.sign()).clamp(0, 1)
    away = (x + eps * grad.sign()).clamp(0, 1)
    if _close(adv, away, 1e-5):
        raise NotYet("you stepped *up* the loss of the target class, which pushes the images away from it: "
                     "a targeted attack steps down that loss (x - eps * sign(grad))")
    if not _close(adv, want, 1e-5):
        raise NotYet("expected x - eps * sign(gradient of the cross-entropy with the *target* labels), "
                     "clamped to [0, 1]")
    hits = (model(adv).argmax(1) == target).float().mean() - (model(x).argmax(1) == target).float().mean()
    return f"one signed step down the target class's loss (+{100 * hits:.0f} points of images now called the target)."


@_exercise("6.2 an L2 attack step")
def fgm_l2(answer: Callable) -> str:
    import torch.nn.functional as F

    model, x, y = _linear_attack_setup(1)
    eps = 0.5
    adv = _attacked(answer, model, x, y, eps)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(xg), y), xg)
    per_image = grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    want = (x + eps * grad / per_image).clamp(0, 1)
    if _close(adv, (x + eps * grad.sign()).clamp(0, 1), 1e-5):
        raise NotYet("that is the L-infinity step (sign of the gradient): an L2 step moves along the gradient "
                     "itself, scaled to length eps")
    if _close(adv, (x + eps * grad / grad.norm()).clamp(0, 1), 1e-5):
        raise NotYet("you divided by the norm of the whole batch's gradient: each image gets its own step of "
                     "length eps, so divide by each image's own norm (grad.flatten(1).norm(dim=1))")
    norms = (adv - x).flatten(1).norm(dim=1)
    if (norms > eps + 1e-4).any():
        raise NotYet(f"some images moved by more than eps = {eps} in L2 norm")
    if not _close(adv, want, 1e-5):
        raise NotYet("expected x + eps * grad / ||grad||_2 (one norm per image), clamped to [0, 1]")
    return "each image moves eps along its own gradient direction: the L2 ball's fastest way up the loss."


@_exercise("6.3 reading a robustness curve")
def half_accuracy_eps(answer: Callable) -> str:
    curve = {0.0: 0.9, 2 / 255: 0.8, 4 / 255: 0.6, 8 / 255: 0.3}
    got = answer(curve)
    want = 4 / 255 + (8 / 255 - 4 / 255) * (0.6 - 0.45) / (0.6 - 0.3)  # linear between 4 and 8 / 255
    if got is None:
        raise NotYet("this curve does fall to half its clean accuracy (0.45) between 4/255 and 8/255")
    if math.isclose(float(got), 8 / 255, rel_tol=1e-6):
        raise NotYet("8/255 is the first measured radius below half; interpolate linearly between the two "
                     "radii around the crossing (4/255 at 0.6 and 8/255 at 0.3)")
    if not math.isclose(float(got), want, rel_tol=1e-4):
        raise NotYet(f"expected {255 * want:.2f}/255: half the clean accuracy (the value at eps 0) is 0.45, "
                     "reached by linear interpolation between 4/255 and 8/255")
    if answer({0.0: 0.9, 8 / 255: 0.6}) is not None:
        raise NotYet("a curve that never falls to half its clean accuracy should give None")
    if not math.isclose(float(answer({8 / 255: 0.3, 0.0: 0.9, 4 / 255: 0.6})), want, rel_tol=1e-4):
        raise NotYet("sort the radii first: a dict need not list them in order")
    return f"accuracy halves at about {255 * want:.1f}/255 here; one number to compare models by."


# --------------------------------------------------------------------------------------------
# Notebook 07: text
# --------------------------------------------------------------------------------------------

@_exercise("7.A the DANN step on text")
def text_dann_step(answer: Callable) -> str:
    from datl_helpers.adaptation import dann
    from datl_helpers.beyond import text

    g = torch.Generator().manual_seed(0)

    def tfidf(n: int, vocab: int = 40) -> torch.Tensor:  # sparse, non-negative rows of unit length
        rows = torch.rand(n, vocab, generator=g) * (torch.rand(n, vocab, generator=g) < 0.2)
        return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-8)

    xs, xt = tfidf(8), tfidf(8)
    ys = torch.randint(0, 2, (8,), generator=g)
    torch.manual_seed(0)
    net, disc = text.TextNet(40, hidden=8, dropout=0.0), dann.DomainClassifier(8, hidden=8)
    label_loss, domain_loss = _judge_step(answer, text.text_dann_step, (net, disc), (xs, ys, xt), 0.3, [
        ({"set_lam": False}, _LAMBDA_NOT_SET), ({"label_rows": "target"}, _LABELS_ON_TARGET),
        ({"swap": True}, _DOMAINS_SWAPPED), ({"zero": False}, _NOT_ZEROED),
    ])
    return (f"label loss {label_loss:.3f} on the labelled source reviews, domain loss {domain_loss:.3f} on both "
            "through the reversal: notebook 04's step, unchanged, on TF-IDF features.")


_SOURCE_TEXTS = ["a moving film with a great cast", "the plot is dull and the film drags",
                 "great acting, a moving story", "dull dialogue and a weak plot"]
_TARGET_TEXTS = ["this tea tastes great", "stale cookies, weak flavour", "great coffee, fresh taste",
                 "the chips were stale"]


@_exercise("7.1 a vectoriser for two domains")
def text_vectorizer(answer: Callable) -> str:
    vec = answer(_SOURCE_TEXTS, _TARGET_TEXTS, 40)
    if not hasattr(vec, "transform") or not hasattr(vec, "vocabulary_"):
        raise NotYet("return the *fitted* vectoriser (TfidfVectorizer(...).fit(texts)), not a matrix")
    vocab = vec.vocabulary_
    if "tea" not in vocab and "stale" not in vocab:
        raise NotYet("words that only the target uses ('tea', 'stale') are missing: fit on the source texts "
                     "AND the unlabelled target texts")
    if not any(" " in w for w in vocab):
        raise NotYet("no word pairs in the vocabulary: use ngram_range=(1, 2) (uni- and bigrams)")
    if len(vocab) > 40:
        raise NotYet(f"the vocabulary has {len(vocab)} entries; cap it with max_features")
    row = vec.transform(["great film"]).toarray()[0]
    if abs(float(np.linalg.norm(row)) - 1) > 1e-4:
        raise NotYet("rows should be TF-IDF weights with unit length (TfidfVectorizer's default norm)")
    return f"{len(vocab)} words and word pairs from both domains, TF-IDF weighted."


@_exercise("7.2 the most domain-specific words")
def domain_words(answer: Callable) -> str:
    words = np.array(["film", "plot", "great", "tea", "stale", "the"])
    coef = np.array([-2.0, -1.5, 0.1, 2.5, 1.0, 0.0])  # negative: says "source", positive: says "target"
    got = answer(coef, words, 2)
    if not isinstance(got, tuple) or len(got) != 2:
        raise NotYet("return a pair: (the k most source-like words, the k most target-like words)")
    source, target = [list(map(str, side)) for side in got]
    if source == ["tea", "stale"] or target == ["film", "plot"]:
        raise NotYet("the sides are swapped: the domain classifier predicts target = 1, so negative weights "
                     "say 'source'")
    if source != ["film", "plot"]:
        raise NotYet(f"most source-like should be ['film', 'plot'] (most negative first), got {source}")
    if target != ["tea", "stale"]:
        raise NotYet(f"most target-like should be ['tea', 'stale'] (most positive first), got {target}")
    return "sorted by the domain classifier's weights: these words give the domain away."


@_exercise("7.3 the share of the gap closed")
def gap_closed(answer: Callable) -> str:
    for args, want in (((60.0, 70.0, 80.0), 0.5), ((60.0, 80.0, 80.0), 1.0), ((90.0, 88.0, 98.0), -0.25)):
        got = float(answer(*args))
        if want and math.isclose(got, -want):
            raise NotYet("measure how far DANN moved from source-only toward the oracle: "
                         "(dann - source_only) / (oracle - source_only)")
        if not math.isclose(got, want, abs_tol=1e-6):
            raise NotYet(f"for source-only {args[0]}, DANN {args[1]}, oracle {args[2]} expected {want}, got {got:.3g}"
                         + (" (a DANN below source-only closes a negative share)" if want < 0 else ""))
    return "(dann - source_only) / (oracle - source_only): negative when adaptation hurts."


EXERCISES: dict[str, list[Callable[..., Feedback]]] = {
    "01": [to_model_input, mlp_probe, pooled_features],
    "02": [freeze_first, decay_groups, early_stopping],
    "03": [colour_pipeline, paired_gain, hurts_from],
    "04": [reverse_without_function, dann_lambda, proxy_a_distance],
    "06": [targeted_fgsm, fgm_l2, half_accuracy_eps],
    "07": [text_vectorizer, domain_words, gap_closed],
}
"""The checks of each notebook, in order."""


IN_FLOW: dict[str, list[Callable[..., Feedback]]] = {
    "01": [make_linear_probe, probe_step],
    "02": [layerwise_param_groups, unfreeze_for_epoch, l2sp_penalty],
    "03": [augment_by_groups],
    "04": [grad_reverse, dann_step],
    "06": [fgsm, pgd],
    "07": [text_dann_step],
}
"""The checks of the exercises in the flow of each notebook (its mechanism), in order."""
