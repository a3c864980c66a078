"""Notebook 06's exercise checks (adversarial examples)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from datl_helpers.course.check.feedback import NotYet, close, exercise


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


@exercise("6.A FGSM")
def fgsm(answer: Callable) -> str:
    import torch.nn.functional as F

    from datl_helpers.robustness import robust

    model, x, y = _linear_attack_setup(2)
    eps = 0.1
    adv = _attacked(answer, model, x, y, eps)
    if close(adv, robust.fgsm(model, x, y, eps)):
        return (f"every pixel moves by eps = {eps} along the sign of the loss's gradient: the loss rises from "
                f"{_input_loss(model, x, y):.3f} to {_input_loss(model, adv, y):.3f} in one step.")
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(xg), y), xg)
    if close(adv, (x - eps * grad.sign()).clamp(0, 1)):
        raise NotYet("you stepped down the loss (x - eps * sign(grad)), which makes the model more sure of the right "
                     "class: an attack steps up, x + eps * sign(grad)")
    if close(adv, (x + eps * grad).clamp(0, 1)) or close(adv, x + eps * grad):
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


@exercise("6.B PGD")
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
    if close(adv, want, 1e-5):
        fgsm_loss = _input_loss(model, robust.fgsm(model, x, y, eps), y)
        return (f"a random start, {steps} projected sign steps: the loss rises from {clean:.3f} to {attacked:.3f} "
                f"(FGSM's one step: {fgsm_loss:.3f}), never leaving the eps-ball or [0, 1].")
    if close(adv, robust.pgd(model, x, y, eps, steps=steps, random_start=False), 1e-5):
        raise NotYet("no random start: begin at a random point of the eps-ball, (x + eps * (2 * torch.rand(x.shape, "
                     "generator=generator) - 1)).clamp(0, 1), so the attack does not always set off from x")
    again = answer(model, x.clone(), y, eps, steps=steps, generator=torch.Generator().manual_seed(3))
    if not close(again.detach(), adv, 1e-5):
        raise NotYet("two calls with the same generator gave different images: draw the random start with "
                     "torch.rand(x.shape, generator=generator), so an attack can be repeated exactly")
    raise NotYet("inside the ball and up the loss, but not the course's PGD: the random start "
                 "(x + eps * (2 * torch.rand(x.shape, generator=generator) - 1)).clamp(0, 1), then `steps` sign steps "
                 "of alpha = 2.5 * eps / steps, each projected into the eps-ball and [0, 1]")


@exercise("6.1 a targeted attack")
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
    if close(adv, away, 1e-5):
        raise NotYet("you stepped *up* the loss of the target class, which pushes the images away from it: "
                     "a targeted attack steps down that loss (x - eps * sign(grad))")
    if not close(adv, want, 1e-5):
        raise NotYet("expected x - eps * sign(gradient of the cross-entropy with the *target* labels), "
                     "clamped to [0, 1]")
    hits = (model(adv).argmax(1) == target).float().mean() - (model(x).argmax(1) == target).float().mean()
    return f"one signed step down the target class's loss (+{100 * hits:.0f} points of images now called the target)."


@exercise("6.2 an L2 attack step")
def fgm_l2(answer: Callable) -> str:
    import torch.nn.functional as F

    model, x, y = _linear_attack_setup(1)
    eps = 0.5
    adv = _attacked(answer, model, x, y, eps)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(xg), y), xg)
    per_image = grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    want = (x + eps * grad / per_image).clamp(0, 1)
    if close(adv, (x + eps * grad.sign()).clamp(0, 1), 1e-5):
        raise NotYet("that is the L-infinity step (sign of the gradient): an L2 step moves along the gradient "
                     "itself, scaled to length eps")
    if close(adv, (x + eps * grad / grad.norm()).clamp(0, 1), 1e-5):
        raise NotYet("you divided by the norm of the whole batch's gradient: each image gets its own step of "
                     "length eps, so divide by each image's own norm (grad.flatten(1).norm(dim=1))")
    norms = (adv - x).flatten(1).norm(dim=1)
    if (norms > eps + 1e-4).any():
        raise NotYet(f"some images moved by more than eps = {eps} in L2 norm")
    if not close(adv, want, 1e-5):
        raise NotYet("expected x + eps * grad / ||grad||_2 (one norm per image), clamped to [0, 1]")
    return "each image moves eps along its own gradient direction: the L2 ball's fastest way up the loss."


@exercise("6.3 reading a robustness curve")
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
