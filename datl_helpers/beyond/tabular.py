"""Notebook 08: shift between hospitals -- tabular medical data, label shift, and when DANN is the wrong tool.

A patient is a row of measurements, some missing. :class:`Preprocessor` standardises each column with the
*source* hospital's mean and spread, puts 0 (the source mean) where a value is missing, and adds one
missing-value indicator per column, so that "not measured" is an input of its own. :class:`TabularNet` is a
small MLP; DANN adds the **same** :class:`~datl_helpers.adaptation.adversarial.DomainClassifier` as notebooks
04 and 07 on its features.

Five methods, one protocol (:class:`TabularConfig`, early stopping on a validation split of the labelled
source patients; the target's labels are never looked at, except by the oracle):

* ``source-only``: the label loss on source patients (the domain classifier learns beside it, at lambda 0);
* ``dann``: the same, with the reversal layer at lambda rising to ``lambda_max``;
* ``importance-weighting``: the label loss with each source patient weighted by how typical of the target
  hospital they look (:func:`~datl_helpers.adaptation.reweighting.importance_weights`: covariate shift);
* ``label-shift``: source-only's model, its probabilities on the target re-weighted by the target's class
  priors, estimated by EM on the unlabelled target patients (:mod:`~datl_helpers.adaptation.reweighting`);
* ``target-oracle``: trained on the target hospital's labels (the upper bound).

Every run reports accuracy, balanced accuracy (the mean of the per-class recalls: a model that calls
everyone sick gets 50 %, whatever the share of sick patients), ROC AUC (ranking, blind to the threshold)
and the Brier score (calibration: the mean squared error of the predicted probability).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from datl_helpers.adaptation import reweighting
from datl_helpers.adaptation.adversarial import DomainClassifier
from datl_helpers.adaptation.dann import dann_lambda, dann_lr
from datl_helpers.core.errors import DatlError, check_choice
from datl_helpers.core.results import RunRow
from datl_helpers.data.tabular_domains import TabularDomain

TABULAR_METHODS = ("source-only", "dann", "importance-weighting", "label-shift", "target-oracle")


@dataclass
class TabularConfig:
    """One protocol for every method. ``steps`` is the largest budget; the weights of the check with the
    lowest validation loss on the labelled patients (every ``eval_every`` steps) are kept (early stopping).
    The schedules of lambda and of the learning rate run over the first ``schedule_steps`` steps and then
    stay at their end values, so that they do not depend on the budget: a few hundred patients are learnt
    (and over-fitted) in about a hundred steps, and a schedule stretched over a long budget would leave
    lambda near 0 at the step early stopping keeps."""

    hidden: int = 32
    dropout: float = 0.1
    steps: int = 1000  # the reference's budget: the heart pairs converge by 250 steps (data_scripts/tabular_reference.py)
    batch_size: int = 64  # per domain
    lr: float = 3e-3  # Adam, decayed with dann_lr's schedule
    weight_decay: float = 1e-4
    lambda_max: float = 0.3  # the image and text notebooks' value
    gamma: float = 10.0
    schedule_steps: int = 200  # lambda rises, and the learning rate decays, over these steps
    domain_hidden: int = 32
    val_fraction: float = 0.2  # of the labelled (source, or target for the oracle) training patients
    eval_every: int = 10
    clip: float = 10.0  # importance weights are clipped to [1/clip, clip]


@dataclass
class Preprocessor:
    """Standardise with the source's statistics, fill a missing value with 0 (the source mean) and add a
    missing-value indicator per column. A column the source never measured is left at 0 (mean 0, std 1)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x_source: np.ndarray) -> Preprocessor:
        with warnings.catch_warnings():  # a column with no value at all: its mean is NaN, set below
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std = np.nanmean(x_source, axis=0), np.nanstd(x_source, axis=0)
        mean = np.where(np.isnan(mean), 0.0, mean)
        std = np.where(np.isnan(std) | (std < 1e-6), 1.0, std)
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        missing = np.isnan(x)
        z = np.where(missing, 0.0, (x - self.mean) / self.std)
        return np.concatenate([z, missing], axis=1).astype(np.float32)


class TabularNet(nn.Module):
    """Features (two ReLU layers) and a linear label head."""

    def __init__(self, in_features: int, num_classes: int = 2, hidden: int = 32, dropout: float = 0.1):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass
class TabularData:
    """Both hospitals, preprocessed once with the source's statistics (reused by every run)."""

    source: TabularDomain
    target: TabularDomain
    prep: Preprocessor
    xs: np.ndarray
    xs_test: np.ndarray
    xt: np.ndarray
    xt_test: np.ndarray


def prepare_pair(source: TabularDomain, target: TabularDomain) -> TabularData:
    """Check the two domains share their columns, fit the preprocessing on the source and apply it to both."""
    if source.features != target.features:
        raise DatlError(f"source {source.name!r} and target {target.name!r} have different columns; "
                        "pair hospitals of one family (heart_*, or rotterdam with gbsg)")
    prep = Preprocessor.fit(source.x_train)
    return TabularData(source, target, prep, prep(source.x_train), prep(source.x_test), prep(target.x_train),
                       prep(target.x_test))


def tabular_step(net: TabularNet, disc: DomainClassifier, opt: torch.optim.Optimizer, xs: torch.Tensor,
                 ys: torch.Tensor, xt: torch.Tensor, lam: float, weights: torch.Tensor | None = None
                 ) -> tuple[float, float]:
    """One step (written out in notebook 08; a test checks the two agree): the label loss on the source
    rows (weighted per row when ``weights`` are given), the domain loss through the reversal layer."""
    feats = net.features(torch.cat([xs, xt]))
    losses = F.cross_entropy(net.head(feats[: len(xs)]), ys, reduction="none")
    label_loss = (losses * weights).mean() if weights is not None else losses.mean()
    disc.reverse.coeff = lam
    domain_loss = disc.loss(feats, len(xs)).loss
    opt.zero_grad(set_to_none=True)
    (label_loss + domain_loss).backward()
    opt.step()
    return label_loss.item(), domain_loss.item()


@torch.no_grad()
def predict_proba(net: TabularNet, x: np.ndarray) -> np.ndarray:
    """Class probabilities of every row (dropout off), in float64: in float32 a confident row's probability
    rounds to exactly 1 and ties with the others, which the label-shift correction would then untie."""
    net.eval()
    out = F.softmax(net(torch.from_numpy(x)).double(), 1).numpy()
    net.train()
    return out


def _split_val(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified train/validation split of the labelled rows, drawn with ``seed``."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    stratify = y if np.bincount(y).min() >= 2 else None
    train, val = train_test_split(idx, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(val)


def fit(data: TabularData, method: str = "dann", config: TabularConfig | None = None, seed: int = 0):
    """Train ``method`` (any of :data:`TABULAR_METHODS`; ``label-shift`` trains source-only's model) on ``data``.

    Returns the network, the domain classifier and a history (one record per ``eval_every`` steps: step,
    label loss, domain loss, lambda, validation loss, and ``kept`` on the record whose weights were kept)."""
    check_choice("method", method, TABULAR_METHODS)
    config = config or TabularConfig()
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    oracle = method == "target-oracle"
    labelled, y_all = (data.xt, data.target.y_train) if oracle else (data.xs, data.source.y_train)
    unlabelled = data.xs if oracle else data.xt
    train_idx, val_idx = _split_val(y_all, config.val_fraction, seed)
    weights = np.ones(len(y_all), dtype=np.float32)
    if method == "importance-weighting":
        weights = reweighting.importance_weights(data.xs, data.xt, config.clip, seed)
    x_lab, y_lab, w_lab = (torch.from_numpy(labelled[train_idx]), torch.from_numpy(y_all[train_idx]),
                           torch.from_numpy(weights[train_idx]))
    x_val, y_val, w_val = (torch.from_numpy(labelled[val_idx]), torch.from_numpy(y_all[val_idx]),
                           torch.from_numpy(weights[val_idx]))
    x_other = torch.from_numpy(unlabelled)
    net = TabularNet(labelled.shape[1], data.source.num_classes, config.hidden, config.dropout)
    disc = DomainClassifier(config.hidden, config.domain_hidden, layers=1)
    opt = torch.optim.Adam([*net.parameters(), *disc.parameters()], lr=config.lr, weight_decay=config.weight_decay)
    best, best_state, history = float("inf"), None, []
    for step in range(config.steps):
        p = min(1.0, step / config.schedule_steps)
        for group in opt.param_groups:
            group["lr"] = dann_lr(p, config.lr)
        lam = dann_lambda(p, config.gamma, config.lambda_max) if method == "dann" else 0.0
        i = gen.integers(0, len(x_lab), config.batch_size)
        j = gen.integers(0, len(x_other), config.batch_size)
        w = w_lab[i] if method == "importance-weighting" else None
        losses = tabular_step(net, disc, opt, x_lab[i], y_lab[i], x_other[j], lam, w)
        if (step + 1) % config.eval_every == 0 or step == config.steps - 1:
            with torch.no_grad():
                net.eval()
                val = float((F.cross_entropy(net(x_val), y_val, reduction="none") * w_val).mean())
                net.train()
            history.append({"step": step + 1, "label_loss": losses[0], "domain_loss": losses[1], "lambda": lam,
                            "val_loss": val})
            if val < best:
                best, best_state = val, {k: v.clone() for k, v in net.state_dict().items()}
                best_disc = {k: v.clone() for k, v in disc.state_dict().items()}
                history[-1]["kept"] = True
    net.load_state_dict(best_state)
    disc.load_state_dict(best_disc)
    return net, disc, history


def scores(y: np.ndarray, proba: np.ndarray, prefix: str = "target_") -> dict[str, float]:
    """Accuracy, balanced accuracy, ROC AUC and Brier score (scikit-learn) of binary probabilities. The AUC
    ranks the rows by their log-odds, log p1 - log p0: the same order as p1, kept where p1 rounds to 1."""
    from sklearn.metrics import balanced_accuracy_score, brier_score_loss, roc_auc_score

    pred = proba.argmax(1)
    log_odds = np.log(np.clip(proba[:, 1], 1e-300, None)) - np.log(np.clip(proba[:, 0], 1e-300, None))
    return {f"{prefix}accuracy": float((pred == y).mean()),
            f"{prefix}balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            f"{prefix}auc": float(roc_auc_score(y, log_odds)) if len(set(y)) == 2 else float("nan"),
            f"{prefix}brier": float(brier_score_loss(y, proba[:, 1]))}


def separability(data: TabularData, folds: int = 5) -> float:
    """How well a logistic regression tells the two sides' (preprocessed) training patients apart: balanced
    accuracy, cross-validated (50 %: the hospitals look alike; 100 %: every patient gives their hospital away)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    x = np.concatenate([data.xs, data.xt])
    side = np.r_[np.zeros(len(data.xs)), np.ones(len(data.xt))]
    return float(cross_val_score(LogisticRegression(max_iter=2000), x, side, cv=folds,
                                 scoring="balanced_accuracy").mean())


def resample_to_share(y: np.ndarray, share: float, size: int | None = None, seed: int = 0) -> np.ndarray:
    """Indices of ``size`` rows drawn with replacement so that a share ``share`` has label 1 (the label shift
    of a hospital that sees sicker, or healthier, patients; within a class, patients are drawn alike)."""
    if not 0 < share < 1:
        raise DatlError(f"share must lie strictly between 0 and 1, got {share}")
    rng = np.random.default_rng(seed)
    size = size or len(y)
    sick = round(share * size)
    return np.concatenate([rng.choice(np.flatnonzero(y == 1), sick), rng.choice(np.flatnonzero(y == 0), size - sick)])


def scores_at_share(y: np.ndarray, proba: np.ndarray, source_priors: np.ndarray, share: float, seed: int = 0
                    ) -> dict[str, dict[str, float]]:
    """The target's test patients resampled to ``share`` with the label, scored three ways: the model as it
    is, after the label-shift correction (EM on the resampled patients' own probabilities: no labels), and
    a rule that calls everyone positive. The widget of notebook 08."""
    idx = resample_to_share(y, share, seed=seed)
    y_s, p_s = y[idx], proba[idx]
    corrected = reweighting.adjust_probabilities(p_s, source_priors, reweighting.em_priors(p_s, source_priors))
    everyone = np.tile([0.0, 1.0], (len(idx), 1))
    return {name: scores(y_s, p, prefix="") for name, p in
            (("as trained", p_s), ("label-shift corrected", corrected), ("everyone positive", everyone))}


def domain_accuracy(net: TabularNet, disc: DomainClassifier, data: TabularData) -> float:
    """Balanced accuracy of the trained domain classifier on the test patients of both hospitals."""
    with torch.no_grad():
        net.eval()
        logits_s = disc(net.features(torch.from_numpy(data.xs_test))).numpy()
        logits_t = disc(net.features(torch.from_numpy(data.xt_test))).numpy()
        net.train()
    return float(((logits_s <= 0).mean() + (logits_t > 0).mean()) / 2)


def run_tabular(data: TabularData, method: str, seed: int = 0, config: TabularConfig | None = None) -> RunRow:
    """One run: the seed, the target scores, source accuracy, domain accuracy, the kept step and seconds.

    ``label-shift`` trains source-only's network and scores its target probabilities re-weighted by the
    target priors that EM estimates on the unlabelled target training patients (``estimated_positive_share``);
    as a diagnostic that reads the target's training labels, it also scores them re-weighted by the exact
    priors (``true_prior_*``)."""
    start = time.perf_counter()
    net, disc, history = fit(data, "source-only" if method == "label-shift" else method, config, seed)
    proba = predict_proba(net, data.xt_test)
    extra: dict = {}
    if method == "label-shift":
        source_priors = reweighting.class_priors(data.source.y_train, proba.shape[1])
        priors = reweighting.em_priors(predict_proba(net, data.xt), source_priors)
        exact = reweighting.adjust_probabilities(proba, source_priors,
                                                 reweighting.class_priors(data.target.y_train, proba.shape[1]))
        extra = {"estimated_positive_share": float(priors[1]),
                 **scores(data.target.y_test, exact, prefix="true_prior_")}
        proba = reweighting.adjust_probabilities(proba, source_priors, priors)
    row = {"seed": seed, **scores(data.target.y_test, proba),
           "source_accuracy": float((predict_proba(net, data.xs_test).argmax(1) == data.source.y_test).mean()),
           "domain_accuracy": domain_accuracy(net, disc, data),
           "kept_step": max(h["step"] for h in history if h.get("kept")), **extra}
    return {**row, "seconds": round(time.perf_counter() - start, 2)}


def run_grid(data: TabularData, methods: Sequence[str] = TABULAR_METHODS, seeds: Sequence[int] = range(10),
             config: TabularConfig | None = None, pair: str | None = None) -> list[dict]:
    """Every method x seed on one pair: rows with ``pair``, ``method`` and :func:`run_tabular`'s keys."""
    pair = pair or f"{data.source.name}->{data.target.name}"
    return [{"pair": pair, "method": m, **run_tabular(data, m, s, config)} for m in methods for s in seeds]


def gap_closed(rows: Sequence[dict], pair: str, method: str, value: str = "target_balanced_accuracy",
               min_gap: float = 2.0) -> float:
    """The share of the source-only -> target-oracle gap that ``method`` closes on ``pair`` (1.0: all of it;
    below 0: worse than source-only). NaN where the oracle is less than ``min_gap`` points ahead of
    source-only: no gap worth closing (a share of a smaller gap measures the seeds' noise)."""
    from datl_helpers.core.results import mean

    so, oracle = mean(rows, value, pair=pair, method="source-only"), mean(rows, value, pair=pair, method="target-oracle")
    return (mean(rows, value, pair=pair, method=method) - so) / (oracle - so) if oracle - so >= min_gap else float("nan")


def results_table(rows: Sequence[dict], methods: Sequence[str] = TABULAR_METHODS):
    """One row per pair and method: 'mean ± std' (over seeds) of accuracy, balanced accuracy and AUC (%), the
    Brier score, and the share of the source-only -> oracle gap closed in accuracy and in balanced accuracy
    (blank where the oracle is less than 2 points ahead)."""
    import pandas as pd

    from datl_helpers.core.metrics import mean_std

    out = []
    for pair in dict.fromkeys(r["pair"] for r in rows):
        for m in methods:
            picked = [r for r in rows if r["pair"] == pair and r["method"] == m]
            if not picked:
                continue
            row = {"pair": pair.replace("->", " → "), "method": m}
            for key, name in (("target_accuracy", "accuracy %"), ("target_balanced_accuracy", "balanced accuracy %"),
                              ("target_auc", "AUC %")):
                mu, sd = mean_std([r[key] for r in picked])
                row[name] = f"{100 * mu:.1f} ± {100 * sd:.1f}"
            mu, sd = mean_std([r["target_brier"] for r in picked])
            row["Brier"] = f"{mu:.3f} ± {sd:.3f}"
            for key, name in (("target_accuracy", "gap closed (accuracy)"),
                              ("target_balanced_accuracy", "gap closed (balanced)")):
                closed = gap_closed(rows, pair, m, key) if m not in ("source-only", "target-oracle") else float("nan")
                row[name] = "" if closed != closed else f"{closed:.0%}"
            out.append(row)
    return pd.DataFrame(out).set_index(["pair", "method"])


def prior_table(reference: dict):
    """Per pair: the share with the label in the source and the target, EM's estimate (mean and range over seeds), and
    the accuracy of source-only, of the correction with EM's share and with the exact share (%)."""
    import pandas as pd

    from datl_helpers.core.results import mean

    runs, out = reference["runs"], []
    for pair in reference["pairs"]:
        shares = reference["shift"][pair]["positive_share"]
        out.append({"pair": pair.replace("->", " → "), "source share %": 100 * shares["source"],
                    "target share %": 100 * shares["target"],
                    "EM's estimate %": mean(runs, "estimated_positive_share", pair=pair, method="label-shift"),
                    "its range over seeds %": "{:.0f}–{:.0f}".format(*(100 * f(r["estimated_positive_share"] for r in runs
                                                                            if r["pair"] == pair and r["method"] == "label-shift")
                                                                     for f in (min, max))),
                    "accuracy: source-only": mean(runs, pair=pair, method="source-only"),
                    "corrected (EM's share)": mean(runs, pair=pair, method="label-shift"),
                    "corrected (exact share)": mean(runs, "true_prior_accuracy", pair=pair, method="label-shift")})
    return pd.DataFrame(out).set_index("pair").round(1)
