"""Notebook 07: domain-adversarial training on text.

The gradient-reversal layer does not care what the features are. Here they are computed from
TF-IDF vectors of words and word pairs (scikit-learn), fitted on the source texts and the
*unlabelled* target texts, by a small MLP; the label head is trained on source labels, and the
**same** :class:`~datl_helpers.adaptation.dann.DomainClassifier` as notebook 04 (gradient reversal, then an MLP)
tries to tell source features from target features. This is the setting of the DANN paper's
sentiment experiments (Ganin et al. 2016, Amazon reviews; 5,000 uni- and bigram features and a
shallow network).

``source-only`` trains exactly like DANN with lambda = 0 (the domain classifier still learns, and
measures how separable the domains are, but sends no gradient into the features);
``target-oracle`` trains on target labels (the upper bound). The protocol (:class:`TextConfig`) is
the same for all three, and the number of steps is chosen by early stopping on a validation split
of the *source* labels (the target's test labels are never looked at before the end).
``label-shift`` (notebook 08's correction, for the spam pair whose share of spam moves) is source-only's
network with its target probabilities re-weighted by the target's class priors, estimated by EM.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from datl_helpers.adaptation import reweighting
from datl_helpers.adaptation.adversarial import DomainClassifier
from datl_helpers.adaptation.dann import COMPARED_METHODS, dann_lambda, dann_lr
from datl_helpers.core.errors import DatlError, check_choice
from datl_helpers.core.results import RunRow
from datl_helpers.data.text_domains import TextDomain

TEXT_METHODS = (*COMPARED_METHODS, "label-shift")  # every method run_text accepts


@dataclass
class TextConfig:
    """One protocol for every method. ``steps`` is the largest budget; with ``val_fraction`` > 0 the
    weights of the step with the best source-validation accuracy (checked every ``eval_every``) are kept."""

    max_features: int = 5000  # TF-IDF vocabulary (uni- and bigrams), as in the DANN paper
    hidden: int = 64  # width of the feature layer
    dropout: float = 0.5
    steps: int = 2000  # the converged budget of the reference's curve (1000 / 2000 / 4000: data_scripts/text_reference.py)
    batch_size: int = 64  # per domain
    lr: float = 1e-3  # Adam, decayed with dann_lr's schedule
    weight_decay: float = 1e-4
    lambda_max: float = 0.3  # the image notebooks' value, fixed before any text run; 1.0 is measured too
    gamma: float = 10.0
    domain_hidden: int = 64
    val_fraction: float = 0.1  # of the labelled (source, or target for the oracle) training texts
    eval_every: int = 100


# --------------------------------------------------------------------------------------------
# Vectorisation
# --------------------------------------------------------------------------------------------


def tfidf_vectorizer(source_texts: Sequence[str], target_texts: Sequence[str], max_features: int = 5000):
    """A TF-IDF vectoriser (uni- and bigrams, ``max_features`` most frequent, sublinear tf) fitted on
    the source texts and the unlabelled target texts together, so both domains' words are in it."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), max_features=max_features, min_df=2, sublinear_tf=True,
                          dtype=np.float32)
    return vec.fit(list(source_texts) + list(target_texts))


def rows(matrix, idx) -> torch.Tensor:
    """Rows ``idx`` of a sparse TF-IDF matrix as a dense float tensor (only one batch is ever dense)."""
    return torch.from_numpy(matrix[np.asarray(idx)].toarray())


# --------------------------------------------------------------------------------------------
# The networks
# --------------------------------------------------------------------------------------------


class TextNet(nn.Module):
    """Feature extractor (TF-IDF -> ``hidden`` ReLU units, dropout) and label head, like a
    StagedNet's ``features`` and ``head``."""

    def __init__(self, vocab_size: int, num_classes: int = 2, hidden: int = 64, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(vocab_size, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, num_classes)
        self.feature_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def text_dann_step(
    net: TextNet, disc: DomainClassifier, opt: torch.optim.Optimizer, xs: torch.Tensor, ys: torch.Tensor,
    xt: torch.Tensor, lam: float, yt: torch.Tensor | None = None,
) -> tuple[float, float]:
    """One step (taught in notebook 07 §3, written out there by hand; a test checks the two agree):
    features of the source and target batches, the label loss on the source (on the target when
    ``yt`` is given: the oracle), the domain loss through the reversal layer with coefficient ``lam``."""
    feats = net.features(torch.cat([xs, xt]))
    n = len(xs)
    logits = net.head(feats)
    label_loss = F.cross_entropy(logits[n:], yt) if yt is not None else F.cross_entropy(logits[:n], ys)
    disc.reverse.coeff = lam
    domain_loss = disc.loss(feats, n).loss
    opt.zero_grad(set_to_none=True)
    (label_loss + domain_loss).backward()
    opt.step()
    return label_loss.item(), domain_loss.item()


# --------------------------------------------------------------------------------------------
# Training and evaluation
# --------------------------------------------------------------------------------------------


@dataclass
class TextData:
    """Both domains vectorised once: sparse matrices and label arrays (reused by every run)."""

    source: TextDomain
    target: TextDomain
    vectorizer: object
    xs: object
    xs_test: object
    xt: object
    xt_test: object


def vectorize(source: TextDomain, target: TextDomain, max_features: int = 5000) -> TextData:
    if source.num_classes != target.num_classes:
        raise DatlError(
            f"source {source.name!r} has classes {list(source.classes)} and target {target.name!r} has "
            f"{list(target.classes)}; domain adaptation needs the same classes in both"
        )
    vec = tfidf_vectorizer(source.text_train, target.text_train, max_features)
    return TextData(source, target, vec, vec.transform(source.text_train), vec.transform(source.text_test),
                    vec.transform(target.text_train), vec.transform(target.text_test))


def _split_val(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    k = round(n * fraction)
    return np.sort(perm[k:]), np.sort(perm[:k])


@torch.no_grad()
def predict_proba(net: TextNet, matrix, batch_size: int = 2048) -> np.ndarray:
    """Class probabilities for every row of a TF-IDF matrix."""
    net.eval()
    out = [F.softmax(net(rows(matrix, range(i, min(i + batch_size, matrix.shape[0])))), 1)
           for i in range(0, matrix.shape[0], batch_size)]
    net.train()
    return torch.cat(out).numpy()


def _accuracy(net: TextNet, matrix, y: np.ndarray) -> float:
    return float((predict_proba(net, matrix).argmax(1) == y).mean())


def fit(data: TextData, method: str = "dann", config: TextConfig | None = None, seed: int = 0):
    """Train ``method`` (``source-only``, ``dann`` or ``target-oracle``) on vectorised ``data``.

    Returns the network, the domain classifier and a history (one record per ``eval_every`` steps:
    step, label loss, domain loss, lambda, validation accuracy). Runs on the CPU: the model is tiny."""
    check_choice("method", method, COMPARED_METHODS)
    config = config or TextConfig()
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    oracle = method == "target-oracle"
    labelled, y_all = (data.xt, data.target.y_train) if oracle else (data.xs, data.source.y_train)
    train_idx, val_idx = _split_val(labelled.shape[0], config.val_fraction, seed)
    x_lab, y_lab = labelled[train_idx], torch.from_numpy(y_all[train_idx])
    x_val, y_val = labelled[val_idx], y_all[val_idx]
    net = TextNet(labelled.shape[1], data.source.num_classes, config.hidden, config.dropout)
    disc = DomainClassifier(config.hidden, config.domain_hidden)
    opt = torch.optim.Adam([*net.parameters(), *disc.parameters()], lr=config.lr, weight_decay=config.weight_decay)
    unlabelled = data.xs if oracle else data.xt  # the other domain, without its labels
    best, best_state, history = -1.0, None, []
    for step in range(config.steps):
        p = step / config.steps
        for group in opt.param_groups:
            group["lr"] = dann_lr(p, config.lr)
        lam = dann_lambda(p, config.gamma, config.lambda_max) if method == "dann" else 0.0
        i = gen.integers(0, x_lab.shape[0], config.batch_size)
        j = gen.integers(0, unlabelled.shape[0], config.batch_size)
        if oracle:  # the target batch is labelled; the source batch only feeds the domain classifier
            losses = text_dann_step(net, disc, opt, rows(unlabelled, j), None, rows(x_lab, i), lam, y_lab[i])
        else:
            losses = text_dann_step(net, disc, opt, rows(x_lab, i), y_lab[i], rows(unlabelled, j), lam)
        if (step + 1) % config.eval_every == 0 or step == config.steps - 1:
            val = _accuracy(net, x_val, y_val) if len(val_idx) else float("nan")
            history.append({"step": step + 1, "label_loss": losses[0], "domain_loss": losses[1], "lambda": lam,
                            "val_accuracy": val})
            if not len(val_idx) or val > best:
                best, best_state = val, {k: v.clone() for k, v in net.state_dict().items()}
                best_disc = {k: v.clone() for k, v in disc.state_dict().items()}
                history[-1]["kept"] = True
    net.load_state_dict(best_state)
    disc.load_state_dict(best_disc)
    return net, disc, history


def auc(y: np.ndarray, proba: np.ndarray) -> float:
    """ROC AUC (binary), or the one-vs-rest macro AUC with more classes."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, proba[:, 1]) if proba.shape[1] == 2 else roc_auc_score(y, proba, multi_class="ovr"))


@torch.no_grad()
def features(net: TextNet, matrix) -> np.ndarray:
    """The learned features of every row (dropout off)."""
    net.eval()
    out = net.features(rows(matrix, range(matrix.shape[0]))).numpy()
    net.train()
    return out


def domain_accuracy(net: TextNet, disc: DomainClassifier, data: TextData) -> float:
    """Accuracy of the trained domain classifier on the test texts of both domains (0.5: it cannot tell)."""
    fs, ft = features(net, data.xs_test), features(net, data.xt_test)
    with torch.no_grad():
        logits = disc(torch.from_numpy(np.concatenate([fs, ft]))).numpy()
    truth = np.r_[np.zeros(len(fs)), np.ones(len(ft))]
    # balanced: the mean of the two domains' accuracies, whatever their sizes
    return float(((logits[: len(fs)] <= 0).mean() + (logits[len(fs):] > 0).mean()) / 2) if len(truth) else float("nan")


def evaluate(net: TextNet, disc: DomainClassifier, data: TextData) -> RunRow:
    """Target accuracy and AUC, source test accuracy, the domain classifier's balanced accuracy."""
    proba = predict_proba(net, data.xt_test)
    return {
        "target_accuracy": float((proba.argmax(1) == data.target.y_test).mean()),
        "target_auc": auc(data.target.y_test, proba),
        "source_accuracy": _accuracy(net, data.xs_test, data.source.y_test),
        "domain_accuracy": domain_accuracy(net, disc, data),
    }


def label_shift_scores(net: TextNet, data: TextData) -> RunRow:
    """Target accuracy and AUC after the label-shift correction: the target's priors estimated by EM on
    the unlabelled target training texts, the test probabilities re-weighted by them (the AUC of a binary
    task does not move: the ranking is the same). Also the estimated share of the second class."""
    source_priors = reweighting.class_priors(data.source.y_train, data.source.num_classes)
    priors = reweighting.em_priors(predict_proba(net, data.xt), source_priors)
    proba = reweighting.adjust_probabilities(predict_proba(net, data.xt_test), source_priors, priors)
    return {"target_accuracy": float((proba.argmax(1) == data.target.y_test).mean()),
            "target_auc": auc(data.target.y_test, proba), "estimated_positive_share": float(priors[-1])}


def run_text(data: TextData, method: str, seed: int = 0, config: TextConfig | None = None) -> RunRow:
    """One run: the seed, :func:`evaluate`'s scores, the step kept by early stopping and the seconds
    (``label-shift``: source-only's network, scored after :func:`label_shift_scores`)."""
    check_choice("method", method, TEXT_METHODS)
    start = time.perf_counter()
    net, disc, history = fit(data, "source-only" if method == "label-shift" else method, config, seed)
    kept = max((h["step"] for h in history if h.get("kept")), default=history[-1]["step"])
    row = evaluate(net, disc, data)
    if method == "label-shift":
        row.update(label_shift_scores(net, data))
    return {"seed": seed, **row, "kept_step": kept, "seconds": round(time.perf_counter() - start, 2)}


def run_grid(data: TextData, methods: Sequence[str] = COMPARED_METHODS, seeds: Sequence[int] = (0, 1, 2),
             config: TextConfig | None = None, pair: str | None = None, progress: bool = True) -> list[dict]:
    """Every method x seed on one pair: rows with ``pair``, ``method`` and :func:`run_text`'s keys."""
    from tqdm.auto import tqdm

    from datl_helpers.core.train import quiet

    pair = pair or f"{data.source.name}->{data.target.name}"
    jobs = [(m, s) for m in methods for s in seeds]
    return [{"pair": pair, "method": m, **run_text(data, m, s, config)}
            for m, s in tqdm(jobs, desc=pair, disable=not progress or quiet())]



# --------------------------------------------------------------------------------------------
# The shift in words
# --------------------------------------------------------------------------------------------


def domain_words(data: TextData, k: int = 15, seed: int = 0) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The ``k`` words (or word pairs) that most say "source" and most say "target": the largest
    weights of a logistic regression that tells the two domains' training texts apart."""
    from scipy.sparse import vstack
    from sklearn.linear_model import LogisticRegression

    x = vstack([data.xs, data.xt])
    y = np.r_[np.zeros(data.xs.shape[0]), np.ones(data.xt.shape[0])]
    clf = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed).fit(x, y)
    words = data.vectorizer.get_feature_names_out()
    order = np.argsort(clf.coef_[0])
    return ([(words[i], float(clf.coef_[0, i])) for i in order[:k]],
            [(words[i], float(clf.coef_[0, i])) for i in order[::-1][:k]])


def raw_domain_accuracy(data: TextData, seed: int = 0) -> float:
    """Balanced accuracy of a logistic regression telling source from target on raw TF-IDF
    (trained on the training texts, scored on the test texts): how visible the shift is in words."""
    from scipy.sparse import vstack
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    y = np.r_[np.zeros(data.xs.shape[0]), np.ones(data.xt.shape[0])]
    clf = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed).fit(vstack([data.xs, data.xt]), y)
    y_test = np.r_[np.zeros(data.xs_test.shape[0]), np.ones(data.xt_test.shape[0])]
    return float(balanced_accuracy_score(y_test, clf.predict(vstack([data.xs_test, data.xt_test]))))


def feature_domain_accuracy(net: TextNet, data: TextData, seed: int = 0) -> float:
    """Balanced accuracy of a fresh logistic regression telling the domains apart from the learned
    features (trained on the training texts, scored on the test texts): 0.5 means aligned."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    x = np.concatenate([features(net, data.xs), features(net, data.xt)])
    y = np.r_[np.zeros(data.xs.shape[0]), np.ones(data.xt.shape[0])]
    clf = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed).fit(x, y)
    x_test = np.concatenate([features(net, data.xs_test), features(net, data.xt_test)])
    y_test = np.r_[np.zeros(data.xs_test.shape[0]), np.ones(data.xt_test.shape[0])]
    return float(balanced_accuracy_score(y_test, clf.predict(x_test)))


def word_domain_signal(net: TextNet, data: TextData, words: Sequence[str], seed: int = 0) -> dict[str, float]:
    """How strongly each word, alone, pushes the learned features towards one domain: a logistic
    regression is trained to tell the domains apart from the features, and a word's signal is the
    change of its logit between a text holding only that word and an empty text (0: the features
    no longer carry the word's domain)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([features(net, data.xs), features(net, data.xt)])
    y = np.r_[np.zeros(data.xs.shape[0]), np.ones(data.xt.shape[0])]
    scaler = StandardScaler().fit(x)
    probe = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed).fit(scaler.transform(x), y)
    vocab = data.vectorizer.vocabulary_
    one_word = np.zeros((len(words) + 1, len(vocab)), dtype=np.float32)
    for r, w in enumerate(words):
        one_word[r + 1, vocab[w]] = 1.0  # a TF-IDF row is L2-normalised: one word has weight 1
    with torch.no_grad():
        net.eval()
        f = net.features(torch.from_numpy(one_word)).numpy()
        net.train()
    logits = probe.decision_function(scaler.transform(f))
    return {w: float(logits[r + 1] - logits[0]) for r, w in enumerate(words)}


def predict_text(net: TextNet, data: TextData, text: str) -> tuple[str, float]:
    """The class a network predicts for one typed text, and its confidence."""
    proba = predict_proba(net, data.vectorizer.transform([text]))[0]
    return data.source.classes[int(proba.argmax())], float(proba.max())


# --------------------------------------------------------------------------------------------
# Smaller domains (smoke runs) and the results table
# --------------------------------------------------------------------------------------------


def subset(domain: TextDomain, max_texts: int | None, seed: int = 0) -> TextDomain:
    """At most ``max_texts`` training and test texts of ``domain``, drawn at random with ``seed`` (None: all)."""
    if max_texts is None:
        return domain
    rng = np.random.default_rng(seed)
    pick = lambda n: np.sort(rng.permutation(n)[:max_texts])  # noqa: E731
    tr, te = pick(len(domain.y_train)), pick(len(domain.y_test))
    return TextDomain(domain.name, [domain.text_train[i] for i in tr], domain.y_train[tr],
                      [domain.text_test[i] for i in te], domain.y_test[te], domain.classes, dict(domain.card))


def results_table(rows: Sequence[dict], methods: Sequence[str] = COMPARED_METHODS):
    """Per pair and method: target accuracy and AUC (mean ± std over seeds, %), and the share of the
    source-only -> oracle gap that DANN closes in each."""
    import pandas as pd

    from datl_helpers.adaptation.dann import gap_closed
    from datl_helpers.core.metrics import mean_std
    from datl_helpers.core.results import pm

    out = []
    for pair in dict.fromkeys(r["pair"] for r in rows):
        line, means = {"pair": pair}, {}
        for key, label in (("target_accuracy", "accuracy"), ("target_auc", "AUC")):
            for m in methods:
                vals = [r[key] for r in rows if r["pair"] == pair and r["method"] == m]
                if vals:
                    mean, std = mean_std(vals)
                    means[(key, m)] = mean
                    line[f"{m} {label}"] = pm(mean, std)
            if all((key, m) in means for m in COMPARED_METHODS):
                share = gap_closed(*(means[(key, m)] for m in COMPARED_METHODS))
                line[f"gap closed ({label})"] = f"{share:.0%}"
        out.append(line)
    return pd.DataFrame(out).set_index("pair")
