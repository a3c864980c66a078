"""Notebook 04's exercise checks (domain-adversarial training)."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable

import torch

from datl_helpers.course.check.feedback import NotYet, close, exercise, fresh_model


@exercise("4.A the gradient-reversal layer")
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


def _step_twin(model, disc, opt, xs, ys, xt, lam, *, per_domain: bool = True, set_lam: bool = True,  # noqa: PLR0913 (one switch per mistake it can make)
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


def judge_step(answer: Callable, library: Callable, nets: tuple, batch: tuple, lam: float,
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
                and all(close(a, b, 1e-5) for a, b in zip(after, params)))

    if same(_step_outcome(library, nets, batch, lam)):
        return label_loss, domain_loss
    for changes, explanation in mistakes:
        if same(_step_outcome(functools.partial(_step_twin, **changes), nets, batch, lam)):
            raise NotYet(explanation)
    raise NotYet("the losses or the update differ from the library's step: label loss on the source rows, domain "
                 "loss (source 0, target 1) on both through disc with disc.reverse.coeff = lam, then zero_grad, "
                 "one backward of their sum, step")


LAMBDA_NOT_SET = ("lambda was not set: assign disc.reverse.coeff = lam before the forward pass, or the reversal pushes "
                   "the features with its old strength (1.0 here instead of 0.3)")
LABELS_ON_TARGET = ("the label loss used the target rows: the labels belong to the source, the first len(source_x) "
                     "rows, and the target has none")
DOMAINS_SWAPPED = ("the domain labels are swapped: source is 0 and target 1, the convention every reading of the "
                    "domain classifier (its accuracy, its most target-like words) relies on")
NOT_ZEROED = ("the gradients were not zeroed: call opt.zero_grad() before backward(), or the previous step's "
               "gradients are added to this one's")


@exercise("4.B one DANN step")
def dann_step(answer: Callable) -> str:
    from datl_helpers.adaptation import dann

    model = fresh_model()
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
    label_loss, domain_loss = judge_step(answer, library, (model, disc), (xs, ys, xt), 0.3, [
        ({"set_lam": False}, LAMBDA_NOT_SET), ({"per_domain": False}, one_pass),
        ({"label_rows": "target"}, LABELS_ON_TARGET), ({"swap": True}, DOMAINS_SWAPPED), ({"zero": False}, NOT_ZEROED),
    ])
    return (f"label loss {label_loss:.3f} on the source, domain loss {domain_loss:.3f} on both domains through the "
            "reversal, one backward pass: the same losses and update as the library's dann_step.")


@exercise("4.1 the reversal without an autograd.Function")
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


@exercise("4.2 the lambda schedule")
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


@exercise("4.3 the proxy A-distance")
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
