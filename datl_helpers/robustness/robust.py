"""Notebook 06: adversarial examples, the other meaning of "adversarial".

In DANN (notebook 04) the adversary is a domain classifier. Here it is an attacker who changes an
input by at most ``eps`` per pixel (an L-infinity ball) so that the model gets it wrong:

* :func:`fgsm` - the fast gradient sign method (Goodfellow et al. 2015): one step of size ``eps``
  in the direction of the sign of the loss gradient (optionally from a random start);
* :func:`pgd` - projected gradient descent (Madry et al. 2018): ``steps`` smaller sign steps from a
  random start, each followed by a projection back into the ``eps``-ball and the valid pixel range.

Both work on float images in [0, 1] **before** normalisation: the course's models normalise
inside their first layer, so ``eps = 8/255`` means 8 grey levels of the real image (attacking the
normalised tensor, as the PyTorch FGSM tutorial once did, silently changes what ``eps`` means).
Taught in notebook 06 §1 (the cells write FGSM and PGD out; a test checks they agree with these).

Then: robust accuracy over a list of ``eps`` (:func:`robust_accuracy`), an adversarial training
step that :func:`datl_helpers.core.train.fit` can use in place of its ordinary step
(:func:`adversarial_step`), and sanity checks against gradient masking (:func:`sanity_checks`).
The experiments of the notebook (which model, which backbone, which training) are in
:func:`run_robust`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from datl_helpers.core import models, train
from datl_helpers.core.domain import Domain, few_labels, to_float
from datl_helpers.core.errors import DatlError, check_choice

ATTACKS = ("fgsm", "pgd")
BACKBONES = {"standard": models.PRETRAINED_NAME, "robust": "digitnet_syn_robust"}
TRAINING_METHODS = ("scratch", "linear-probe", "finetune", "dann", "source-only")
ADVERSARIAL_TRAINING = ("none", "fgsm", "pgd")
EPS_GRID = (0.0, 2 / 255, 4 / 255, 8 / 255)  # the robust-accuracy curves of notebook 06
SANITY_EPS = (8 / 255, 32 / 255, 128 / 255)  # robust accuracy must fall towards zero over these


def _loss_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d(cross-entropy)/d(input) at ``x`` (the model's parameters get no gradient)."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def _random_start(x: torch.Tensor, eps: float, generator: torch.Generator | None) -> torch.Tensor:
    """A uniform random point of the ``eps``-ball around ``x``, inside [0, 1] (drawn on the CPU with
    ``generator``, so every device starts from the same point)."""
    noise = torch.rand(x.shape, generator=generator).to(x.device, x.dtype)
    return (x + (2 * noise - 1) * eps).clamp(0, 1)


def fgsm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, random_start: bool = False,
    alpha: float | None = None, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """FGSM: ``x + alpha * sign(grad)``, projected into the ``eps``-ball around ``x`` and [0, 1].

    Plain FGSM steps ``alpha = eps`` from ``x``. With ``random_start`` it steps from a random point
    of the ball (the "fast" adversarial training of Wong et al. 2020 uses ``alpha = 1.25 * eps``).
    """
    alpha = eps if alpha is None else alpha
    start = _random_start(x, eps, generator) if random_start else x
    adv = start + alpha * _loss_gradient(model, start, y).sign()
    return torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1).detach()


def pgd(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 10,
    alpha: float | None = None, random_start: bool = True, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PGD-``steps``: repeated sign steps of size ``alpha`` (default ``2.5 * eps / steps``, Madry et
    al.), each projected back into the ``eps``-ball around ``x`` and into [0, 1]."""
    alpha = 2.5 * eps / steps if alpha is None else alpha
    adv = _random_start(x, eps, generator) if random_start else x.clone()
    for _ in range(steps):
        adv = adv + alpha * _loss_gradient(model, adv, y).sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def attack(
    name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 10,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Adversarial versions of float images ``x``: ``fgsm`` (no random start) or ``pgd`` (``steps``)."""
    check_choice("attack", name, ATTACKS)
    if eps == 0:
        return x
    if name == "fgsm":
        return fgsm(model, x, y, eps)
    return pgd(model, x, y, eps, steps=steps, generator=generator)


def robust_accuracy(  # noqa: PLR0913 (the attack's settings, keyword-only)
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_list: Sequence[float] = EPS_GRID,
    attack_name: str = "pgd", *, steps: int = 10, batch_size: int = 500, seed: int = 0,
    device: str | torch.device = "auto",
) -> dict[float, float]:
    """Accuracy of ``model`` (in eval mode) on uint8 images ``x`` attacked at every ``eps``:
    ``{eps: accuracy}``; ``eps = 0`` is the clean accuracy. Seeded: the same numbers every run."""
    check_choice("attack", attack_name, ATTACKS)
    dev = train.resolve_device(device)
    was_training = model.training
    model.to(dev).eval()
    out = {}
    for eps in eps_list:
        if eps < 0:
            raise DatlError(f"eps must be >= 0 (a radius in [0, 1] pixel units), got {eps}")
        generator = torch.Generator().manual_seed(seed)
        correct = 0
        for i in range(0, len(y), batch_size):
            xb = to_float(x[i : i + batch_size].to(dev))
            yb = y[i : i + batch_size].to(dev)
            adv = attack(attack_name, model, xb, yb, eps, steps=steps, generator=generator)
            with torch.no_grad():
                correct += (model(adv).argmax(1) == yb).sum().item()
        out[float(eps)] = correct / len(y)
    model.train(was_training)
    return out


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    probs = torch.softmax(model(x), 1)
    conf, pred = probs.max(1)
    return pred.cpu(), conf.cpu()


def adversarial_examples(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, attack_name: str = "pgd", *, seed: int = 0,
    device: str | torch.device = "auto",
) -> dict[str, torch.Tensor]:
    """Clean and attacked versions of uint8 images ``x`` with the model's predictions and confidences:
    ``clean``, ``adversarial`` (float in [0, 1], on the CPU), ``clean_pred``, ``clean_conf``,
    ``adv_pred``, ``adv_conf``, and ``labels``. What notebook 06's ε widget shows."""
    dev = train.resolve_device(device)
    was_training = model.training
    model.to(dev).eval()
    xb, yb = to_float(x.to(dev)), y.to(dev)
    adv = attack(attack_name, model, xb, yb, eps, generator=torch.Generator().manual_seed(seed))
    (clean_pred, clean_conf), (adv_pred, adv_conf) = _predict(model, xb), _predict(model, adv)
    model.train(was_training)
    return {"clean": xb.cpu(), "adversarial": adv.cpu(), "labels": y.cpu(), "clean_pred": clean_pred,
            "clean_conf": clean_conf, "adv_pred": adv_pred, "adv_conf": adv_conf}


# --------------------------------------------------------------------------------------------
# Adversarial training: a step for train.fit
# --------------------------------------------------------------------------------------------


def adversarial_step(
    attack_name: str = "fgsm", eps: float = 8 / 255, pgd_steps: int = 3, seed: int = 0,
) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """A training step with the signature of :func:`datl_helpers.core.train.train_step` that trains on
    adversarial versions of each batch instead of the batch itself.

    ``fgsm``: FGSM from a random start with ``alpha = 1.25 * eps`` (Wong et al. 2020, "fast is
    better than free"); ``pgd``: PGD-``pgd_steps`` from a random start (Madry et al.). The attack
    sees the model as it trains (train mode, like the papers). Returns the loss and the logits on
    the adversarial batch.
    """
    check_choice("adversarial training", attack_name, ATTACKS)
    generator = torch.Generator().manual_seed(seed)

    def step(model, opt, xb, yb, label_smoothing=0.0, penalty=None):
        if attack_name == "fgsm":
            adv = fgsm(model, xb, yb, eps, random_start=True, alpha=1.25 * eps, generator=generator)
        else:
            adv = pgd(model, xb, yb, eps, steps=pgd_steps, generator=generator)
        return train.train_step(model, opt, adv, yb, label_smoothing, penalty)

    return step


# --------------------------------------------------------------------------------------------
# Sanity checks against gradient masking (Athalye et al. 2018; Carlini et al. 2019)
# --------------------------------------------------------------------------------------------


def sanity_checks(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float = 8 / 255, seed: int = 0,
    device: str | torch.device = "auto", tolerance: float = 0.02,
) -> list[dict]:
    """Three checks that the attacks really attack; each row: ``check``, ``passed``, ``detail``.

    1. robust accuracy falls to near zero as ``eps`` grows (at most 15 % at ``128/255``; a model
       that stays accurate there hides its gradients rather than being robust);
    2. PGD-10 is never weaker than FGSM (at every ``eps`` of the grid, within ``tolerance``);
    3. more PGD steps do not help the defender much: PGD-50 is at most ``tolerance`` above PGD-10.
    """
    grid = (*EPS_GRID[1:], *SANITY_EPS[1:])
    kw = {"seed": seed, "device": device}
    pgd10 = robust_accuracy(model, x, y, grid, "pgd", steps=10, **kw)
    fgsm_acc = robust_accuracy(model, x, y, grid, "fgsm", **kw)
    pgd50 = robust_accuracy(model, x, y, (eps,), "pgd", steps=50, **kw)[eps]
    falls = pgd10[SANITY_EPS[-1]]
    weaker = [e for e in grid if pgd10[e] > fgsm_acc[e] + tolerance]
    return [
        {"check": "robust accuracy falls to near 0 as eps grows", "passed": falls <= 0.15,
         "detail": "PGD-10: " + ", ".join(f"{255 * e:.0f}/255 {100 * pgd10[e]:.1f} %" for e in grid)},
        {"check": "PGD is never weaker than FGSM", "passed": not weaker,
         "detail": "FGSM: " + ", ".join(f"{255 * e:.0f}/255 {100 * fgsm_acc[e]:.1f} %" for e in grid)
         + (f"; PGD weaker at {[f'{255 * e:.0f}/255' for e in weaker]}" if weaker else "")},
        {"check": "more PGD steps do not help the defender", "passed": pgd50 <= pgd10[eps] + tolerance,
         "detail": f"eps {255 * eps:.0f}/255: PGD-10 {100 * pgd10[eps]:.1f} %, PGD-50 {100 * pgd50:.1f} %"},
    ]


# --------------------------------------------------------------------------------------------
# The experiments of notebook 06
# --------------------------------------------------------------------------------------------


# The models of notebook 06: name -> (method, backbone, adversarial training)
MODELS = {
    "scratch": ("scratch", "standard", "none"),
    "linear probe": ("linear-probe", "standard", "none"),
    "finetune": ("finetune", "standard", "none"),
    "finetune + FGSM training": ("finetune", "standard", "fgsm"),
    "finetune + PGD training": ("finetune", "standard", "pgd"),
    "source-only (mnist -> mnistm)": ("source-only", "standard", "none"),
    "DANN (mnist -> mnistm)": ("dann", "standard", "none"),
    "robust backbone + linear probe": ("linear-probe", "robust", "none"),
    "robust backbone + finetune": ("finetune", "robust", "none"),
    "robust backbone + finetune + FGSM training": ("finetune", "robust", "fgsm"),
}


@dataclass
class RobustConfig:
    """How the models of :func:`run_robust` are trained and attacked."""

    steps: int | None = None  # training steps; None: the model's converged budget (budget.robust_steps)
    batch_size: int = 64
    lr: float = 3e-3
    lr_decay: float = 0.3  # finetune: layer-wise rates, as in datl_helpers.transfer.recipe
    weight_decay: float = 1e-4
    adversarial: str = "none"  # adversarial training: none, fgsm (random start) or pgd
    train_eps: float = 8 / 255  # the radius adversarial training defends
    pgd_train_steps: int = 3
    eps: tuple[float, ...] = field(default=EPS_GRID, metadata={"as_json": lambda radii: [eps_name(e) for e in radii]})
    # robust accuracy is measured at these radii (written as "8/255" in result files)
    attacks: tuple[str, ...] = ATTACKS
    pgd_steps: int = 10
    n_test: int = 500  # test images attacked (a seeded random subset of the target's test set)
    sanity_images: int = 0  # > 0: also run the gradient-masking sanity checks on this many of them


def load_backbone(backbone: str = "standard") -> models.DigitNet:
    """The shipped DigitNet pretrained on ``syn``: ``standard`` or ``robust`` (adversarially
    pretrained by ``data_scripts/pretrain_backbone.py --adversarial``), hash-checked."""
    check_choice("backbone", backbone, BACKBONES)
    return models.load_pretrained(BACKBONES[backbone])


def probe_as_head(probe, feature_dim: int) -> nn.Linear:
    """A fitted scikit-learn probe (``StandardScaler`` + ``LogisticRegression``, from
    :func:`datl_helpers.transfer.features.fit_logistic_probe`) as one ``nn.Linear`` on raw features:
    ``W = coef / scale`` and ``b = intercept - W @ mean``, so the attacker sees the same function."""
    scaler, logistic = probe[0], probe[-1]
    weight = torch.as_tensor(logistic.coef_ / scaler.scale_, dtype=torch.float32)
    bias = torch.as_tensor(logistic.intercept_, dtype=torch.float32) - weight @ torch.as_tensor(
        scaler.mean_, dtype=torch.float32)
    head = nn.Linear(feature_dim, weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return head


def train_model(
    method: str, target: Domain, labels_per_class: int | None, *, backbone: str = "standard",
    config: RobustConfig | None = None, seed: int = 0, device: str | torch.device = "auto",
    source: Domain | None = None,
) -> models.StagedNet:
    """The model of ``method`` trained on ``labels_per_class`` labelled target images, in eval mode.

    ``scratch`` (random DigitNet), ``linear-probe`` (the frozen ``backbone`` with a logistic
    regression head, turned into a torch head so it can be attacked), ``finetune`` (the ``backbone``
    with a new head, layer-wise rates), ``dann`` (trained on labelled ``source`` and unlabelled
    target images with notebook 04's protocol and its converged budget; no target labels) or
    ``source-only`` (the same protocol without the domain classifier: DANN's control).
    ``config.adversarial`` switches the scratch and finetune training to adversarial training.
    ``config.steps`` None trains each model at its converged budget (:func:`datl_helpers.core.budget.robust_steps`).
    """
    from datl_helpers.transfer.features import extract_features, fit_logistic_probe

    check_choice("method", method, TRAINING_METHODS)
    config = config or RobustConfig()
    check_choice("adversarial training", config.adversarial, ADVERSARIAL_TRAINING)
    if config.adversarial != "none" and method in ("linear-probe", "dann", "source-only"):
        raise DatlError(f"adversarial training applies to scratch and finetune, not to {method}")
    dev = train.resolve_device(device)
    steps = config.steps
    if steps is None and method != "linear-probe":
        from datl_helpers.core import budget

        steps = budget.robust_steps(method, backbone, config.adversarial)
    train.seed_everything(seed)
    if method in ("dann", "source-only"):
        from datl_helpers.adaptation import dann

        if source is None:
            raise DatlError(f"{method} needs a labelled source domain (source=...), e.g. mnist for mnistm")
        model, _, _ = dann.fit(source, target, method, dann.DannConfig(steps=steps), seed=seed, device=dev)
        return model.eval()
    x, y = few_labels(target, labels_per_class, seed)
    if method == "scratch":
        model = models.DigitNet(**dict(models.pretrained_info()["config"], num_classes=target.num_classes))
    else:
        model = models.replace_head(load_backbone(backbone), target.num_classes)
    if method == "linear-probe":
        probe = fit_logistic_probe(extract_features(model, x, device=dev), y, seed=seed)
        model.head = probe_as_head(probe, model.feature_dim)
        return model.to(dev).eval()
    groups = models.stage_param_groups(model, lr=config.lr, decay=config.lr_decay) if method == "finetune" else None
    step = None
    if config.adversarial != "none":
        step = adversarial_step(config.adversarial, config.train_eps, config.pgd_train_steps, seed=seed)
    fit_config = train.FitConfig(epochs=1, steps_per_epoch=steps, batch_size=config.batch_size, lr=config.lr,
                                 weight_decay=config.weight_decay)
    train.fit(model, x, y, fit_config, param_groups=groups, step=step, seed=seed, device=dev)
    return model.eval()


def run_robust(
    target: Domain, method: str, labels_per_class: int | None = 10, *, backbone: str = "standard",
    config: RobustConfig | None = None, seed: int = 0, device: str | torch.device = "auto",
    source: Domain | None = None,
) -> dict:
    """Train one model (:func:`train_model`) and attack it with FGSM and PGD at every ``config.eps``.

    Returns ``{"seed", "clean_accuracy", "robust_accuracy": {"fgsm": {eps: acc}, "pgd": {...}},
    "train_seconds", "seconds"}`` (and ``"sanity"`` with ``config.sanity_images``); eps keys are
    strings like ``"8/255"`` (JSON keys); ``clean_accuracy`` is on the whole test set, ``"0/255"`` on
    the attacked subset."""
    config = config or RobustConfig()
    start = time.perf_counter()
    model = train_model(method, target, labels_per_class, backbone=backbone, config=config, seed=seed,
                        device=device, source=source)
    train_seconds = time.perf_counter() - start
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(target.y_test), generator=g)[: config.n_test]
    x, y = target.x_test[pick], target.y_test[pick]
    robust = {}
    for name in config.attacks:
        acc = robust_accuracy(model, x, y, config.eps, name, steps=config.pgd_steps, seed=seed, device=device)
        robust[name] = {eps_name(e): a for e, a in acc.items()}  # "0/255": clean, on the subset
    clean = train.evaluate(model, target.x_test, target.y_test, device=device)["accuracy"]
    row = {"seed": seed, "clean_accuracy": clean, "robust_accuracy": robust, "train_seconds": round(train_seconds, 2)}
    if config.sanity_images:
        n = config.sanity_images
        row["sanity"] = sanity_checks(model, x[:n], y[:n], seed=seed, device=device)
    return {**row, "seconds": round(time.perf_counter() - start, 2)}


def robustness_table(rows: Sequence[dict], attacks: Sequence[str] = ("pgd",), train_time: bool = False):
    """'mean ± std' (%) over seeds: one row per model (``name``), the clean accuracy on the whole test
    set and one column per attack and eps (the attacked subset), optionally the training seconds."""
    from datl_helpers.core.results import mean_std_table

    labels = {"fgsm": "FGSM", "pgd": "PGD"}
    long = []
    for r in rows:
        long.append({"model": r["name"], "column": "clean", "accuracy": r["clean_accuracy"]})
        long += [{"model": r["name"], "column": f"{labels[a]} {e}", "accuracy": acc}
                 for a in attacks for e, acc in r["robust_accuracy"][a].items() if e != "0/255"]
    table = mean_std_table(long, "model", "column", "accuracy")[list(dict.fromkeys(x["column"] for x in long))]
    if train_time:
        seconds = {}
        for r in rows:
            seconds.setdefault(r["name"], []).append(r["train_seconds"])
        table["training (s)"] = [f"{sum(seconds[m]) / len(seconds[m]):.0f}" for m in table.index]
    return table


def mean_and_std(runs: list[dict]) -> tuple[dict, dict]:
    """Mean and sample std over seeds of :func:`run_robust` rows, in the same nested shape
    (``clean_accuracy``, ``robust_accuracy[attack][eps]``, ``seconds``)."""
    from datl_helpers.core.metrics import mean_std

    def both(get) -> tuple[float, float]:
        return mean_std(get(r) for r in runs)

    stats = {"clean_accuracy": both(lambda r: r["clean_accuracy"]), "seconds": both(lambda r: r["seconds"]),
             "robust_accuracy": {a: {e: both(lambda r, a=a, e=e: r["robust_accuracy"][a][e]) for e in by_eps}
                                 for a, by_eps in runs[0]["robust_accuracy"].items()}}

    def part(i: int) -> dict:
        return {"clean_accuracy": stats["clean_accuracy"][i], "seconds": stats["seconds"][i],
                "robust_accuracy": {a: {e: v[i] for e, v in by_eps.items()}
                                    for a, by_eps in stats["robust_accuracy"].items()}}

    return part(0), part(1)


def eps_name(eps: float) -> str:
    """``8/255`` for ``8 / 255``: the radius in grey levels, as papers write it (``7.65/255`` for 0.03)."""
    levels = 255 * eps
    return f"{round(levels):d}/255" if abs(levels - round(levels)) < 1e-6 else f"{levels:.3g}/255"


def parse_eps(text: str) -> float:
    """``"8/255"`` or ``"0.03"`` as a radius in [0, 1] pixel units; a clear error otherwise."""
    try:
        num, _, den = text.partition("/")
        value = float(num) / (float(den) if den else 1.0)
    except (ValueError, ZeroDivisionError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise DatlError(f"eps must be a radius in [0, 1] pixel units such as 8/255 or 0.03, got {text!r}")
    return value

