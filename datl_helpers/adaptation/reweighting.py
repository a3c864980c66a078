"""The other kinds of shift, and what fixes them: reweighting instead of aligning features (notebook 08).

* **Covariate shift** (p(x) moves, p(y|x) stays): weight each source example by how much more typical it is
  of the target, ``w(x) = p(target|x) / p(source|x) * n_source / n_target``, with the probabilities from a
  domain classifier (:func:`importance_weights`), and train on the weighted loss.
* **Label shift** (p(y) moves, p(x|y) stays: a hospital that sees sicker patients): estimate the target's
  class priors from the model's predictions on unlabelled target data, either by EM (Saerens, Latinne &
  Decaestecker 2002: :func:`em_priors`) or by inverting the source confusion matrix (black-box shift
  estimation, Lipton, Wang & Smola 2018: :func:`bbse_priors`), then re-weight the predicted probabilities
  by ``prior_target / prior_source`` (:func:`adjust_probabilities`). No retraining: the ranking of the
  patients (AUC) does not move, the decisions and the calibration do.

Notebook 08 writes each by hand first; the tests check both agree, and check EM against a direct
maximum-likelihood fit of the priors (scipy).
"""

from __future__ import annotations

import numpy as np

from datl_helpers.core.errors import DatlError


def importance_weights(x_source: np.ndarray, x_target: np.ndarray, clip: float = 10.0, seed: int = 0) -> np.ndarray:
    """One weight per source row, ``p(target|x) / p(source|x) * n_source / n_target`` from a logistic
    regression told to separate the two samples, clipped to ``[1/clip, clip]`` and scaled to mean 1.
    ``x_*`` must be complete (no NaN): preprocess them first."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([x_source, x_target])
    d = np.concatenate([np.zeros(len(x_source)), np.ones(len(x_target))])
    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed).fit(x, d)
    p = np.clip(clf.predict_proba(x_source)[:, 1], 1e-6, 1 - 1e-6)
    w = p / (1 - p) * len(x_source) / len(x_target)
    w = np.clip(w, 1 / clip, clip)
    return (w / w.mean()).astype(np.float32)


def class_priors(y: np.ndarray, num_classes: int = 2) -> np.ndarray:
    """The share of each class among the labels ``y``."""
    return np.bincount(y, minlength=num_classes) / len(y)


def adjust_probabilities(proba: np.ndarray, source_priors: np.ndarray, target_priors: np.ndarray) -> np.ndarray:
    """Bayes' rule under label shift: ``p_t(y|x) ∝ p_s(y|x) * π_t(y) / π_s(y)``, each row renormalised."""
    adjusted = proba * (np.asarray(target_priors) / np.asarray(source_priors))[None, :]
    return adjusted / adjusted.sum(axis=1, keepdims=True)


def em_priors(proba: np.ndarray, source_priors: np.ndarray, iterations: int = 1000, tol: float = 1e-8,
              floor: float = 1e-6) -> np.ndarray:
    """The target's class priors by EM (Saerens et al. 2002): adjust the source model's probabilities on the
    unlabelled target rows to the current priors (E step), take their mean as the new priors (M step),
    until the priors stop moving. Converges to the maximum-likelihood priors. No prior falls below ``floor``:
    a model that calls every row one class drives EM toward a prior of exactly 0 for the other, and
    re-weighting by 0 would tie every score (and so change the ranking)."""
    priors = np.asarray(source_priors, dtype=np.float64)
    for _ in range(iterations):
        new = np.clip(adjust_probabilities(proba, source_priors, priors).mean(axis=0), floor, None)
        new /= new.sum()
        if np.abs(new - priors).max() < tol:
            return new
        priors = new
    return priors


def bbse_priors(proba_target: np.ndarray, proba_val: np.ndarray, y_val: np.ndarray) -> np.ndarray:
    """The target's class priors by black-box shift estimation (Lipton et al. 2018): with ``C[i, j]`` the
    share of labelled source validation rows predicted ``i`` whose label is ``j`` and ``mu[i]`` the share of
    target rows predicted ``i``, solve ``C w = mu`` for the weights ``w = π_t / π_s`` and return ``π_s w``
    (clipped at 0 and renormalised: small samples can overshoot)."""
    k = proba_val.shape[1]
    pred_val, pred_target = proba_val.argmax(1), proba_target.argmax(1)
    confusion = np.zeros((k, k))
    np.add.at(confusion, (pred_val, y_val), 1.0)
    confusion /= len(y_val)
    mu = np.bincount(pred_target, minlength=k) / len(pred_target)
    try:
        w = np.linalg.solve(confusion, mu)
    except np.linalg.LinAlgError:
        raise DatlError("the validation confusion matrix is singular (a class never predicted): BBSE cannot "
                        "invert it; use em_priors") from None
    priors = np.clip(w, 0, None) * class_priors(y_val, k)
    return priors / priors.sum()
