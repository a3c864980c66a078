"""Notebook 08's exercise checks (patients' records, covariate and label shift)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from datl_helpers.course.check.feedback import NotYet, exercise


def _records(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two small hospitals of 3 measurements; some values missing; the second's patients older and heavier."""
    rng = np.random.default_rng(seed)
    xs = rng.normal([50, 120, 200], [10, 15, 40], (40, 3))
    xt = rng.normal([60, 130, 240], [10, 15, 40], (30, 3))
    xs[rng.random(xs.shape) < 0.15] = np.nan
    xt[rng.random(xt.shape) < 0.3] = np.nan
    return xs.astype(np.float32), xt.astype(np.float32)


@exercise("8.A preprocessing fitted on the source")
def preprocess(answer: Callable) -> str:
    from datl_helpers.beyond.tabular import Preprocessor

    xs, xt = _records()
    out = np.asarray(answer(xs, xt), dtype=np.float64)
    expected = Preprocessor.fit(xs)(xt)
    if out.shape == (len(xt), xt.shape[1]):
        raise NotYet("one column per measurement: add a missing-value indicator column per measurement "
                     f"(1 where the value is missing), {2 * xt.shape[1]} columns in all")
    if out.shape != expected.shape:
        raise NotYet(f"expected {expected.shape} (the standardised measurements, then one indicator per "
                     f"measurement), got {out.shape}")
    if np.isnan(out).any():
        raise NotYet("NaN left in the output: put 0 (the source mean, after standardising) where a value is missing")
    own = Preprocessor.fit(xt)(xt)
    if np.allclose(out, own, atol=1e-4) and not np.allclose(out, expected, atol=1e-4):
        raise NotYet("standardised with the target's own mean and spread: use the *source's* (fit on x_source); "
                     "the model learned its weights on the source's scale, and the target's statistics would hide "
                     "the shift instead of showing it to the model")
    if not np.allclose(out[:, 3:], expected[:, 3:]):
        raise NotYet("the indicator columns are wrong: 1 where the value is missing, 0 where it was measured")
    if not np.allclose(out, expected, atol=1e-4):
        raise NotYet("the standardised values differ: (x - mean of the source) / std of the source, ignoring "
                     "missing values (np.nanmean, np.nanstd), then 0 where missing")
    return ("the target hospital on the source's scale: its patients sit about "
            f"{np.nanmean(expected[:, 0]):+.1f} standard deviations from the source's mean age, and what was not "
            "measured is an input of its own.")


@exercise("8.B importance weights")
def importance_weights(answer: Callable) -> str:
    rng = np.random.default_rng(1)
    xs, xt = rng.normal(0, 1, (600, 1)), rng.normal(1, 1, (600, 1))
    w = np.asarray(answer(xs, xt), dtype=np.float64).ravel()
    if w.shape != (len(xs),):
        raise NotYet(f"return one weight per *source* row ({len(xs)}), got shape {w.shape}")
    if (w < 0).any():
        raise NotYet("a weight below 0: a weight is a ratio of probabilities, p(target|x) / p(source|x)")
    if abs(w.mean() - 1) > 0.02:
        raise NotYet(f"the weights average {w.mean():.2f}: scale them to mean 1, so the loss keeps its size")
    inside = np.abs(xs[:, 0]) < 1.5
    r = np.corrcoef(np.log(np.clip(w[inside], 1e-12, None)), xs[inside, 0])[0, 1]
    if r < -0.9:
        raise NotYet("your weights favour the source rows that look *least* like the target: the ratio is "
                     "p(target|x) / p(source|x), not the other way round")
    if r < 0.95:
        raise NotYet("the weights do not follow how target-like each row is: train a classifier to tell source "
                     "(0) from target (1) rows and use p(target|x) / p(source|x) for each source row")
    return ("the source patients who look like the target's count up to several times more in the loss; the "
            "true density ratio here is exp(x - 1/2), and your weights follow it.")


def _shifted_posteriors(n: int = 3000, prior_source: float = 0.3, prior_target: float = 0.8):
    """A calibrated source model's probabilities on a target whose share of positives moved."""
    from scipy.stats import norm

    rng = np.random.default_rng(2)
    y = (rng.random(n) < prior_target).astype(int)
    x = rng.normal(1.5 * y, 1.0)
    a, b = (1 - prior_source) * norm.pdf(x, 0, 1), prior_source * norm.pdf(x, 1.5, 1)
    return np.stack([a, b], 1) / (a + b)[:, None], np.array([1 - prior_source, prior_source])


@exercise("8.C the target's priors by EM")
def em_priors(answer: Callable) -> str:
    from datl_helpers.adaptation import reweighting

    proba, source = _shifted_posteriors()
    expected = reweighting.em_priors(proba, source)
    got = np.asarray(answer(proba, source), dtype=np.float64).ravel()
    if got.shape != (2,):
        raise NotYet(f"return one prior per class (2 here), got shape {got.shape}")
    if abs(got.sum() - 1) > 1e-3:
        raise NotYet(f"the priors sum to {got.sum():.3f}: they are the shares of the classes, summing to 1")
    if np.allclose(got, proba.mean(0), atol=1e-3):
        raise NotYet(f"that is the mean predicted probability ({got[1]:.2f}), EM's first step only: repeat, "
                     "re-weighting the probabilities by the current priors each time, until the priors stop moving")
    if np.allclose(got, source):
        raise NotYet("you returned the source's priors: the E step adjusts the probabilities to the current "
                     "priors, the M step averages them into new priors")
    if not np.allclose(got, expected, atol=2e-3):
        raise NotYet(f"got a positive share of {got[1]:.3f}, EM converges to {expected[1]:.3f}: adjust with "
                     "p * (priors / source_priors), renormalise each row, average, and repeat until it stops moving")
    return (f"the source saw 30 % positives; EM reads {100 * expected[1]:.0f} % off the unlabelled target (the truth "
            "here is 80 %) without a single label.")


@exercise("8.1 balanced accuracy")
def balanced_accuracy(answer: Callable) -> str:
    from sklearn.metrics import balanced_accuracy_score

    y = np.array([1] * 18 + [0] * 2)
    everyone_sick = np.ones(20, dtype=int)
    got = float(answer(y, everyone_sick))
    if abs(got - 0.9) < 1e-9:
        raise NotYet("0.9 is plain accuracy: average the recall of each class (here 1.0 for the sick, 0.0 for "
                     "the healthy), whatever their sizes")
    rng = np.random.default_rng(3)
    y2, p2 = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    if abs(got - 0.5) > 1e-9 or abs(float(answer(y2, p2)) - balanced_accuracy_score(y2, p2)) > 1e-9:
        raise NotYet("for each class, the share of its rows predicted as that class; then the mean over the classes")
    return ("calling everyone sick scores 90 % accuracy in a hospital where 90 % are sick, and 50 % balanced "
            "accuracy anywhere: it tells the classes apart no better than a coin.")


@exercise("8.2 re-weighting probabilities to new priors")
def adjust_to_priors(answer: Callable) -> str:
    from datl_helpers.adaptation import reweighting

    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    source, target = np.array([0.7, 0.3]), np.array([0.2, 0.8])
    got = np.asarray(answer(proba, source, target), dtype=np.float64)
    expected = reweighting.adjust_probabilities(proba, source, target)
    if got.shape != proba.shape:
        raise NotYet(f"return adjusted probabilities of the same shape as proba {proba.shape}, got {got.shape}")
    if not np.allclose(got.sum(1), 1):
        raise NotYet("each row must sum to 1 again: divide by the row's sum after multiplying")
    if np.allclose(got, reweighting.adjust_probabilities(proba, target, source)):
        raise NotYet("the ratio is upside down: multiply by target_priors / source_priors (Bayes' rule)")
    if not np.allclose(got, expected):
        raise NotYet("multiply each class's probability by target_priors / source_priors, then renormalise each row")
    return (f"the patient at 40 % becomes {100 * expected[1, 1]:.0f} % in a hospital where 80 % are sick: the same "
            "evidence, a different prior.")


@exercise("8.3 the Brier score")
def brier_score(answer: Callable) -> str:
    from sklearn.metrics import brier_score_loss

    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.8, 0.4, 0.9])
    got = float(answer(y, p))
    if abs(got - np.abs(p - y).mean()) < 1e-9:
        raise NotYet("that is the mean absolute error: square the differences before averaging")
    if abs(got - ((p > 0.5) != y).mean()) < 1e-9:
        raise NotYet("that is the error rate of the decisions: the Brier score reads the probability itself")
    if abs(got - brier_score_loss(y, p)) > 1e-9:
        raise NotYet("the mean over patients of (predicted probability of the positive class - label)^2")
    return (f"{got:.3f} here; 0.25 for always saying 50 %, 0 for certainty that is always right: it rewards "
            "probabilities a clinician can act on, not just the right side of 0.5.")
