"""Notebook 04: domain-adversarial training (DANN, Ganin & Lempitsky 2015; Ganin et al. 2016).

Three parts are trained together on labelled source images and *unlabelled* target images:

* a feature extractor (the stages of a :class:`~datl_helpers.core.models.StagedNet`),
* a label classifier (its head), trained on source labels only,
* a domain classifier, which tries to tell source features from target features.

Between the features and the domain classifier sits a **gradient-reversal layer**: the identity
going forward, ``-lambda * gradient`` going back. The domain classifier gets better at telling the
domains apart, while the feature extractor receives the *reversed* gradient and gets better at
hiding the domain: its features become domain-invariant while staying good for the labels.

The protocol (:class:`DannConfig`; the same for every method, so the comparison is fair) keeps
what the shipped backbone knows: its own 10-class head (the classes are the same digits), its own
colour augmentation (:mod:`datl_helpers.transfer.recolour`) on every batch, and BatchNorm **per domain**:
the source batch and the target batch pass through the network separately, so each is normalised
with its own statistics, and the target is tested with statistics re-estimated on its unlabelled
training images. ``source-only`` trains exactly like DANN with the domain loss switched off;
``target-oracle`` trains on target labels instead (the upper bound). ``DannConfig(head="new",
augment=False, bn="mixed")`` is the naive protocol, which forgets much of the backbone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from datl_helpers.adaptation.adversarial import DomainClassifier
from datl_helpers.adaptation.batchnorm import adabn
from datl_helpers.adaptation.reversal import GradientReversal, GradReverse, grad_reverse  # noqa: F401 (dann.grad_reverse)
from datl_helpers.core import metrics, models, train
from datl_helpers.core.budget import check_steps
from datl_helpers.core.domain import Domain, to_float
from datl_helpers.core.errors import DatlError, DivergenceError, check_choice
from datl_helpers.core.results import RunRow, pm
from datl_helpers.transfer.recolour import pretraining_augment

COMPARED_METHODS = ("source-only", "dann", "target-oracle")
HEADS = ("own", "new")  # DannConfig.head
BN_MODES = ("mixed", "per-domain")  # DannConfig.bn
NETWORKS = ("digitnet", "paper")  # DannConfig.network, from random weights
OPTIMIZERS = ("adamw", "sgd")  # DannConfig.optimizer


# --------------------------------------------------------------------------------------------
# The paper's schedules (p is the progress of the run, from 0 to 1)
# --------------------------------------------------------------------------------------------


def dann_lambda(p: float, gamma: float = 10.0, lambda_max: float = 1.0) -> float:
    """lambda(p) = lambda_max * (2 / (1 + exp(-gamma * p)) - 1): 0 at the start, -> lambda_max."""
    return lambda_max * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


def dann_lr(p: float, lr0: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """mu(p) = mu0 / (1 + alpha * p) ** beta."""
    return lr0 / (1.0 + alpha * p) ** beta


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclass
class DannConfig:
    """Everything a run of :func:`fit` depends on besides its data and seed. The defaults are the
    course's protocol from the shipped backbone; :func:`paper_config` gives the DANN paper's protocol
    from random weights. Every method of notebook 04 runs with the same config, so the comparison is fair."""

    steps: int = 600  # generic; `adapt` and notebook 04 use each method's measured budget (budget.adapt_budget)
    batch_size: int = 64  # per domain: each step sees batch_size source + batch_size target images
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lambda_max: float = 0.3  # 1.0 (the paper) over-aligns here: 69.7 % vs 84.8 % on mnist -> mnistm, seed 0
    gamma: float = 10.0
    alpha: float = 10.0
    beta: float = 0.75
    pretrained: bool = True  # start from the shipped backbone (else random weights)
    # The protocol that keeps what the backbone knows; what each part is worth is measured in
    # reference_results/04_domain_adversarial.json ("protocol_steps", notebook 04 section 3).
    head: str = "own"  # "own": the backbone's 10-class head when the classes match; "new": a fresh head
    feature_lr_scale: float = 1.0  # the features train at lr * this (0.1, 0.03 kept less of DANN's gain)
    augment: bool = True  # the backbone's own colour augmentation (datl_helpers.transfer.recolour) on every batch
    bn: str = "per-domain"  # each domain normalised alone, target statistics at test; "mixed": together
    network: str = "digitnet"  # from random weights (pretrained=False): "digitnet" or "paper" (models.PaperNet)
    optimizer: str = "adamw"  # "sgd": momentum 0.9, the paper's
    log_every: int = 50
    fast: bool | None = None  # None: the fast path (see use_fast_path); False: the plain path


# The DANN paper's MNIST -> MNIST-M results (Ganin et al. 2016, JMLR, Table 2), target accuracy in %:
# its MNIST-M blends MNIST digits with patches of the 200 BSDS500 training photographs, ours with
# patches of the 8 photographs shipped with scikit-learn and scikit-image (data.shipped_photos).
PAPER_RESULTS = {"source-only": 52.25, "dann": 76.66, "target-oracle": 95.96}


def paper_config(steps: int = 600, **changes) -> DannConfig:
    """The paper's protocol (Ganin et al. 2016, section 5.2.2): its MNIST network from random weights,
    SGD with momentum 0.9, lr 0.01 annealed as 0.01 / (1 + 10 p) ** 0.75, lambda rising to 1 as
    2 / (1 + exp(-10 p)) - 1, batches of 64 source + 64 target images, no augmentation and no
    BatchNorm. ``changes`` override any field."""
    paper = {"steps": steps, "pretrained": False, "network": "paper", "head": "new", "augment": False, "bn": "mixed",
             "optimizer": "sgd", "lr": 0.01, "weight_decay": 0.0, "lambda_max": 1.0, "gamma": 10.0, "alpha": 10.0,
             "beta": 0.75, "batch_size": 64}
    return DannConfig(**{**paper, **changes})


def _guard(
    step: int, p: float, label_loss: float, domain_loss: float, target_pred: torch.Tensor, num_classes: int
) -> None:
    """Stop a run whose loss is not finite, or that predicts one class for 90% of a target batch
    after the first fifth of training while it fits the source (label loss under half of chance's
    log(classes)): a collapse, the target's features lost the labels. A network from random
    weights that has not learned the source yet predicts one class too: that is not a collapse."""
    if not (math.isfinite(label_loss) and math.isfinite(domain_loss)):
        raise DivergenceError(
            f"training diverged at step {step} (label loss {label_loss}, domain loss {domain_loss}); "
            "lower the learning rate or lambda_max"
        )
    share = torch.bincount(target_pred, minlength=num_classes).max().item() / max(1, len(target_pred))
    if num_classes > 2 and share > 0.9 and p > 0.2 and label_loss < 0.5 * math.log(num_classes):
        raise DivergenceError(
            f"collapse at step {step}: {share:.0%} of a target batch is predicted as one class; "
            "lower lambda_max or the learning rate"
        )


def use_fast_path(config: DannConfig) -> bool:
    """The fast path (channels_last; on CUDA also a fused optimizer, and bf16 autocast where the GPU
    has bf16 tensor cores) unless ``config.fast`` is False. ``None`` means on: it paid on every
    device measured (the CPU here; see the GPU column of docs/instructors.md), so no device is excluded."""
    return True if config.fast is None else bool(config.fast)


def bf16_pays(device: torch.device) -> bool:
    """bf16 autocast on the fast path: only on GPUs with bf16 tensor cores (compute capability 8.0+,
    e.g. A100, H100); older GPUs such as the T4 only emulate bf16, which is slower than fp32."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


def make_dann_optimizer(model: nn.Module, disc: nn.Module, config: DannConfig, device: torch.device, fast: bool):
    """AdamW (or the paper's SGD) over the network and the domain classifier, in two groups: the feature extractor at
    ``lr * feature_lr_scale``, the head and the domain classifier at ``lr`` (each group's
    ``lr_scale`` says which); fused into one kernel on CUDA's fast path."""
    features = [p for name, p in model.named_parameters() if not name.startswith("head.")]
    groups = [
        {"params": features, "lr_scale": config.feature_lr_scale},
        {"params": list(model.head.parameters()) + list(disc.parameters()), "lr_scale": 1.0},
    ]
    for group in groups:
        group["lr"] = config.lr * group["lr_scale"]
    fused = fast and device.type == "cuda"
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay,
                               fused=fused or None)
    return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay, fused=fused or None)


def to_fast_layout(model: nn.Module, fast: bool) -> nn.Module:
    """channels_last (NHWC) weights on the fast path: faster convolutions on CPU and GPU."""
    return model.to(memory_format=torch.channels_last) if fast else model


# An extra loss term of a step: (features, logits, n_source) -> loss; the first n_source rows are
# the source images. Deep CORAL aligns the features, entropy minimisation sharpens target logits.
ExtraLoss = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def dann_step(  # noqa: PLR0913 (the step's switches: fast path, BatchNorm per domain, extra loss, semi-supervised rows)
    model: models.StagedNet, disc: DomainClassifier, opt: torch.optim.Optimizer, batch: torch.Tensor,
    labels: torch.Tensor, n_source: int, target_labels: bool = False, fast: bool = True,
    extra_loss: ExtraLoss | None = None, per_domain_bn: bool = False, n_labelled: int | None = None,
) -> tuple[torch.Tensor, ...]:
    """One training step on a float batch holding ``n_source`` source images, then the target images
    (taught in notebook 04 §2, written out as ``dann_step_by_hand``; a test checks the two agree).

    ``labels`` belong to the source images, or to the target images when ``target_labels``
    (the oracle), or to the first ``n_labelled`` rows (the source images, then the few labelled
    target images of the semi-supervised variant). ``extra_loss``, when given, adds a term computed from the step's features and
    logits (Deep CORAL, entropy minimisation: :mod:`datl_helpers.adaptation.methods`). With
    ``per_domain_bn`` the source and the target images pass separately, so BatchNorm normalises
    each domain with its own batch statistics. Returns the losses
    and logits as tensors, without waiting for the device. On the fast path the model must be in
    channels_last layout (:func:`to_fast_layout`).
    """
    dev = batch.device
    if fast:  # the model was converted once with to_fast_layout
        batch = batch.contiguous(memory_format=torch.channels_last)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=fast and bf16_pays(dev)):
        if per_domain_bn:  # each domain's batch is normalised with its own BatchNorm statistics
            feats = torch.cat([model.features(batch[:n_source]), model.features(batch[n_source:])])
        else:
            feats = model.features(batch)
        logits = model.head(feats)
        labelled = logits[n_source:] if target_labels else logits[:n_labelled or n_source]
        label_loss = F.cross_entropy(labelled.float(), labels)
        dom_logits = disc(feats)
    domain_loss, dom_logits, dom_target = disc.loss(feats, n_source, logits=dom_logits)
    # With lambda = 0 (source-only, target-oracle) the reversal layer passes no gradient to the
    # features: the domain classifier still learns, and measures how separable the domains are.
    loss = label_loss + domain_loss
    if extra_loss is not None:
        loss = loss + extra_loss(feats.float(), logits.float(), n_source)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return label_loss.detach(), domain_loss.detach(), logits.detach(), dom_logits.detach(), dom_target


def build_networks(
    num_classes: int, config: DannConfig, device: torch.device, fast: bool
) -> tuple[models.StagedNet, DomainClassifier, torch.optim.Optimizer]:
    """The feature extractor + label head (pretrained or not), the domain classifier and one
    optimizer over both, on ``device`` and in the fast layout when ``fast``."""
    if config.pretrained:
        model = models.load_pretrained()
        if config.head == "new" or num_classes != model.head.out_features:
            models.replace_head(model, num_classes)
    elif config.network == "paper":
        model = models.PaperNet(num_classes)
    else:
        model = models.DigitNet(**dict(models.pretrained_info()["config"], num_classes=num_classes))
    to_fast_layout(model.to(device), fast)
    shape = model.domain_classifier  # the network's own (the paper's network: 100 units, then 1) or the default
    disc = (DomainClassifier(model.feature_dim) if shape is None
            else DomainClassifier(model.feature_dim, hidden=shape[0], layers=shape[1])).to(device)
    return model, disc, make_dann_optimizer(model, disc, config, device, fast)


def fit(
    source: Domain,
    target: Domain,
    method: str = "dann",
    config: DannConfig | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    extra_loss: ExtraLoss | None = None,
    labelled_target: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[models.StagedNet, DomainClassifier, train.History]:
    """Train ``method`` (``source-only``, ``dann`` or ``target-oracle``) from ``source`` to ``target``.

    Target labels are used only by ``target-oracle``, and by the semi-supervised variant: with
    ``labelled_target`` (a few labelled target training images and their labels), every step's
    target half starts with up to a quarter of a batch of them, and the label loss covers them
    beside the source images (:func:`datl_helpers.adaptation.methods.run_semi_supervised`). ``extra_loss`` adds a term to every step
    (:func:`dann_step`); ``source-only`` with Deep CORAL's loss is Deep CORAL. The
    history records, every ``log_every`` steps: label loss, domain loss, domain-classifier accuracy
    on the step's batch, lambda and lr.
    """
    check_choice("method", method, COMPARED_METHODS)
    if source.num_classes != target.num_classes:
        raise DatlError(
            f"source {source.name!r} has {source.num_classes} classes and target {target.name!r} has "
            f"{target.num_classes}; domain adaptation needs the same classes in both"
        )
    config = config or DannConfig()
    check_choice("head", config.head, HEADS)
    check_choice("bn", config.bn, BN_MODES)
    if labelled_target is not None and method == "target-oracle":
        raise DatlError("the target-oracle trains on every target label already: give labelled_target to "
                        "'dann' or 'source-only'")
    check_choice("network", config.network, NETWORKS)
    check_choice("optimizer", config.optimizer, OPTIMIZERS)
    check_steps(config.steps, "steps")
    check_steps(config.batch_size, "batch_size")
    dev = train.resolve_device(device)
    fast = use_fast_path(config)
    train.seed_everything(seed)
    model, disc, opt = build_networks(source.num_classes, config, dev, fast)
    xs, ys = source.x_train.to(dev), source.y_train.to(dev)
    xt, yt = target.x_train.to(dev), target.y_train.to(dev)
    gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator().manual_seed(seed + 1)
    src_batches = train.index_batches(len(ys), config.batch_size, gen, device=dev)
    n_few = 0
    if labelled_target is not None:  # the target half: n_few labelled images, then unlabelled ones
        xl, yl = (t.to(dev) for t in labelled_target)
        n_few = min(len(yl), max(1, config.batch_size // 4))
        few_batches = train.index_batches(len(yl), n_few, gen, device=dev)
    tgt_batches = train.index_batches(len(yt), config.batch_size - n_few, gen, device=dev)
    use_domain = method == "dann"
    history = train.History()
    start = time.perf_counter()
    model.train()
    disc.train()
    from tqdm.auto import tqdm

    bar = tqdm(range(config.steps), desc=f"{method} steps", disable=train.quiet(), leave=False)  # quiet in CI
    for step in bar:
        p = step / config.steps
        lam = dann_lambda(p, config.gamma, config.lambda_max) if use_domain else 0.0
        for group in opt.param_groups:
            group["lr"] = dann_lr(p, config.lr, config.alpha, config.beta) * group["lr_scale"]
        disc.reverse.coeff = lam
        i_s, i_t = next(src_batches), next(tgt_batches)
        labels = yt[i_t] if method == "target-oracle" else ys[i_s]
        if n_few:
            i_l = next(few_batches)
            batch = to_float(torch.cat([xs[i_s], xl[i_l], xt[i_t]]))
            labels = torch.cat([labels, yl[i_l]])
        else:
            batch = to_float(torch.cat([xs[i_s], xt[i_t]]))
        if config.augment:
            batch = pretraining_augment(batch, aug_gen)
        out = dann_step(model, disc, opt, batch, labels, len(i_s), method == "target-oracle", fast, extra_loss,
                        config.bn == "per-domain", n_labelled=len(i_s) + n_few)
        # Reading a number from the GPU waits for it: only every log_every steps.
        if step % config.log_every == 0 or step == config.steps - 1:
            label_loss, domain_loss, logits, dom_logits, dom_target = out
            record = {
                "step": step + 1,
                "label_loss": label_loss.item(),
                "domain_loss": domain_loss.item(),
                "domain_accuracy": ((dom_logits > 0).float() == dom_target).float().mean().item(),
                "lambda": lam,
                "lr": opt.param_groups[-1]["lr"],  # the head's (the features train at lr * feature_lr_scale)
            }
            target_pred = logits[len(i_s):].argmax(1)
            _guard(step, p, record["label_loss"], record["domain_loss"], target_pred, source.num_classes)
            history.records.append(record)
    bar.close()
    if config.bn == "per-domain":  # test on the target with the target's own statistics
        adabn(model, target.x_train, device=dev)
        model.train()
    history.seconds = time.perf_counter() - start
    return model, disc, history


@torch.no_grad()
def domain_accuracy(
    model: models.StagedNet, disc: DomainClassifier, source: Domain, target: Domain, n: int = 1000,
    device: str | torch.device = "auto", seed: int = 0,
) -> float:
    """Accuracy of the domain classifier on held-out (test) features: 0.5 means indistinguishable.

    Uses ``n`` test images of each domain drawn at random with ``seed`` (test sets are stored
    sorted by class, so the first ``n`` would cover only a few classes)."""
    from datl_helpers.transfer.features import extract_features

    dev = train.resolve_device(device)
    gen = torch.Generator().manual_seed(seed)
    pick = lambda x: x[torch.randperm(len(x), generator=gen)[:n]]  # noqa: E731
    fs = extract_features(model, pick(source.x_test), device=dev)
    ft = extract_features(model, pick(target.x_test), device=dev)
    disc.eval()
    logits = disc(torch.cat([fs, ft]).to(dev)).cpu()
    disc.train()
    labels = torch.cat([torch.zeros(len(fs)), torch.ones(len(ft))])
    return ((logits > 0).float() == labels).float().mean().item()


def run_adaptation(
    source: Domain, target: Domain, method: str, seed: int = 0, config: DannConfig | None = None,
    device: str | torch.device = "auto",
) -> RunRow:
    """One run of ``method``: target and source test accuracy, macro F1, domain accuracy, seconds."""
    start = time.perf_counter()
    model, disc, _ = fit(source, target, method, config, seed=seed, device=device)
    return result_row(model, disc, source, target, seed, start, device)


def result_row(model: models.StagedNet, disc: DomainClassifier, source: Domain, target: Domain, seed: int,
               start: float, device: str | torch.device = "auto") -> RunRow:
    """One run's result: its seed, :func:`evaluate_adaptation`'s scores and the seconds since ``start``."""
    scores = evaluate_adaptation(model, disc, source, target, device=device)
    return {"seed": seed, **scores, "seconds": round(time.perf_counter() - start, 2)}


def evaluate_adaptation(
    model: models.StagedNet, disc: DomainClassifier, source: Domain, target: Domain,
    device: str | torch.device = "auto",
) -> RunRow:
    """Target and source test accuracy, target macro F1 and the domain classifier's accuracy."""
    pred = train.predict(model, target.x_test, device=device)
    rep = metrics.report(target.y_test, pred, num_classes=target.num_classes)
    return {
        "target_accuracy": rep["accuracy"],
        "source_accuracy": train.evaluate(model, source.x_test, source.y_test, device=device)["accuracy"],
        "domain_accuracy": domain_accuracy(model, disc, source, target, device=device),
        "macro_f1": rep["macro_f1"],
    }


# --------------------------------------------------------------------------------------------
# The results table
# --------------------------------------------------------------------------------------------


def gap_closed(source_only: float, dann: float, oracle: float) -> float:
    """Share of the source-only -> target-oracle gap that DANN closes (1.0: all of it)."""
    return (dann - source_only) / (oracle - source_only) if oracle != source_only else float("nan")


def results_table(rows: list[dict], methods: Sequence[str] = COMPARED_METHODS):
    """Mean ± std target accuracy per pair and method (columns in the order of ``methods``), and
    the share of the gap DANN closes.

    ``rows`` have keys ``pair``, ``method``, ``seed`` and ``target_accuracy``."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    stats = frame.groupby(["pair", "method"], sort=False)["target_accuracy"].agg(["mean", "std"]).fillna(0.0)
    table = stats.apply(lambda r: pm(r["mean"], r["std"]), axis=1).unstack("method")
    table = table[[m for m in methods if m in table.columns]]
    if set(COMPARED_METHODS) <= set(frame["method"]):
        means = stats["mean"].unstack("method")
        table["gap closed"] = [
            f"{gap_closed(means.loc[p, 'source-only'], means.loc[p, 'dann'], means.loc[p, 'target-oracle']):.0%}"
            for p in table.index
        ]
    return table
