"""Notebook 02's exercise checks (fine-tuning)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from datl_helpers.course.check.feedback import NotYet, exercise, fresh_model


@exercise("2.A layer-wise learning rates")
def layerwise_param_groups(answer: Callable) -> str:
    from datl_helpers.core import models

    model = fresh_model()
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


@exercise("2.B one step of gradual unfreezing")
def unfreeze_for_epoch(answer: Callable) -> str:
    from datl_helpers.transfer import finetune

    for every in (2, 1):
        model, twin = fresh_model(), fresh_model()
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


@exercise("2.1 freeze the first k stages, BatchNorm included")
def freeze_first(answer: Callable) -> str:
    for k in (0, 2, 4):
        model = fresh_model()
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


@exercise("2.2 no weight decay on biases and BatchNorm")
def decay_groups(answer: Callable) -> str:
    model = fresh_model()
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


@exercise("2.C the L2-SP penalty")
def l2sp_penalty(answer: Callable) -> str:
    model = fresh_model()
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


@exercise("2.3 early stopping with patience")
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
