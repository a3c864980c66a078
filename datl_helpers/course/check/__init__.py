"""Checks for the exercises in notebooks 01-04 and 06-08: each takes your answer and returns ``Feedback``.

Two kinds: the exercises in the flow of a notebook (1.A, 1.B, ...) are its own mechanism, written where
it is taught (``IN_FLOW``); those of its '## Exercises' section (1.1, 1.2, ...) go further (``EXERCISES``).

A check builds small inputs of its own, runs your function on them, compares the result with the
library's own answer, and explains a wrong one in a sentence ("the head is frozen too: ...")
instead of a traceback. An unanswered exercise (still ``raise NotImplementedError``) says so.

    from datl_helpers.course import check
    check.mlp_probe(make_mlp_probe)             # shows ✅ ... or ❌ ...
"""

from __future__ import annotations

from collections.abc import Callable

from datl_helpers.course.check.augmentation import augment_by_groups, colour_pipeline, hurts_from, paired_gain
from datl_helpers.course.check.beyond_images import domain_words, gap_closed, text_dann_step, text_vectorizer
from datl_helpers.course.check.domain_adaptation import (
    dann_lambda,
    dann_step,
    grad_reverse,
    proxy_a_distance,
    reverse_without_function,
)
from datl_helpers.course.check.feature_extraction import (
    make_linear_probe,
    mlp_probe,
    pooled_features,
    probe_step,
    to_model_input,
)
from datl_helpers.course.check.feedback import STUB_MESSAGE, Feedback, NotYet
from datl_helpers.course.check.fine_tuning import (
    decay_groups,
    early_stopping,
    freeze_first,
    l2sp_penalty,
    layerwise_param_groups,
    unfreeze_for_epoch,
)
from datl_helpers.course.check.hospitals import (
    adjust_to_priors,
    balanced_accuracy,
    brier_score,
    em_priors,
    importance_weights,
    preprocess,
)
from datl_helpers.course.check.robustness import fgm_l2, fgsm, half_accuracy_eps, pgd, targeted_fgsm

__all__ = [
    "EXERCISES", "IN_FLOW", "STUB_MESSAGE", "Feedback", "NotYet", "adjust_to_priors", "augment_by_groups",
    "balanced_accuracy", "brier_score", "colour_pipeline", "dann_lambda", "dann_step", "decay_groups",
    "domain_words", "early_stopping", "em_priors", "fgm_l2", "fgsm", "freeze_first", "gap_closed",
    "grad_reverse", "half_accuracy_eps", "hurts_from", "importance_weights", "l2sp_penalty",
    "layerwise_param_groups", "make_linear_probe", "mlp_probe", "paired_gain", "pgd", "pooled_features",
    "preprocess", "probe_step", "proxy_a_distance", "reverse_without_function", "targeted_fgsm",
    "text_dann_step", "text_vectorizer", "to_model_input", "unfreeze_for_epoch",
]

EXERCISES: dict[str, list[Callable[..., Feedback]]] = {
    "01": [to_model_input, mlp_probe, pooled_features],
    "02": [freeze_first, decay_groups, early_stopping],
    "03": [colour_pipeline, paired_gain, hurts_from],
    "04": [reverse_without_function, dann_lambda, proxy_a_distance],
    "06": [targeted_fgsm, fgm_l2, half_accuracy_eps],
    "07": [text_vectorizer, domain_words, gap_closed],
    "08": [balanced_accuracy, adjust_to_priors, brier_score],
}
"""The checks of each notebook, in order."""


IN_FLOW: dict[str, list[Callable[..., Feedback]]] = {
    "01": [make_linear_probe, probe_step],
    "02": [layerwise_param_groups, unfreeze_for_epoch, l2sp_penalty],
    "03": [augment_by_groups],
    "04": [grad_reverse, dann_step],
    "06": [fgsm, pgd],
    "07": [text_dann_step],
    "08": [preprocess, importance_weights, em_priors],
}
"""The checks of the exercises in the flow of each notebook (its mechanism), in order."""
