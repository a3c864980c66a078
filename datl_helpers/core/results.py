"""Result rows and what every table and claim does with them, written once.

A run is one dict (a *row*: ``seed``, ``target_accuracy`` in [0, 1], and the fields that say which
experiment it belongs to). :func:`select` finds rows, :func:`mean` averages them (in %),
:func:`paired_gain` compares two settings seed by seed (the same labelled subset and
initialisation, so the spread is the method's, not the draw's), :func:`best_of` picks the best
setting, :func:`pm` prints "mean ± std", and :func:`summarize` / :func:`mean_std_table` make tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

from datl_helpers.core.errors import ClaimError
from datl_helpers.core.metrics import mean_std


class RunRow(TypedDict, total=False):
    """One run, as every command's JSON results and every notebook's tables hold it. Accuracies are
    fractions in [0, 1]; the fields a run does not measure are absent (text runs have an AUC, image runs a
    macro F1; a fine-tuning run its strategy). The experiment's own fields (``pair``, ``method``,
    ``labels_per_class``, ...) are added by whoever runs the grid."""

    seed: int
    target_accuracy: float
    source_accuracy: float
    domain_accuracy: float  # the domain classifier's accuracy on the test images or texts (0.5: guessing)
    macro_f1: float
    target_auc: float
    labels: int | None  # labelled target images per class (None: all)
    kept_step: int  # early stopping: the step whose model was kept
    seconds: float
    config_steps: int


def pm(mean: float, std: float, scale: float = 100.0) -> str:
    """'mean ± std' with one decimal, both times ``scale`` (accuracies in [0, 1] print as %)."""
    return f"{scale * mean:.1f} ± {scale * std:.1f}"


def select(rows: Sequence[Mapping], **where) -> list[Mapping]:
    """The rows whose fields equal ``where`` (label counts compared as text: 10 == "10")."""
    def same(a, b) -> bool:
        return a == b or str(a) == str(b)

    return [r for r in rows if all(same(r.get(k), v) for k, v in where.items())]


def mean(rows: Sequence[Mapping], value: str = "target_accuracy", **where) -> float:
    """Mean ``value`` (in %) of the rows matching ``where``; a ClaimError when there are none."""
    vals = [float(r[value]) for r in select(rows, **where)]
    if not vals:
        raise ClaimError(f"no result rows with {where}")
    return 100 * sum(vals) / len(vals)


def paired_differences(rows: Sequence[Mapping], change: Mapping, base: Mapping, value: str = "target_accuracy",
                       **where) -> dict[int, float]:
    """Per seed: ``value`` with ``change`` minus with ``base`` (points), among the rows matching
    ``where``. Both sides must hold the same seeds, once each: a ClaimError says which are missing."""
    def by_seed(side: Mapping) -> dict[int, float]:
        found = select(rows, **where, **side)
        seeds = [r["seed"] for r in found]
        if len(set(seeds)) != len(seeds):
            raise ClaimError(f"more than one row per seed with {dict(side)} (where {where}): seeds {sorted(seeds)}")
        return {r["seed"]: float(r[value]) for r in found}

    a, b = by_seed(change), by_seed(base)
    if not a or not b:
        raise ClaimError(f"no seeds with both {change} and {base} (where {where})")
    if set(a) != set(b):
        raise ClaimError(f"unpaired seeds: {change} has {sorted(a)}, {base} has {sorted(b)} (where {where}); "
                         "a paired gain needs both sides run on the same seeds")
    return {s: 100 * (a[s] - b[s]) for s in sorted(a)}


def paired_gain(rows: Sequence[Mapping], change: Mapping, base: Mapping, value: str = "target_accuracy",
                **where) -> tuple[float, float]:
    """Mean and sample std (points) over seeds of ``value`` with ``change`` minus with ``base``,
    paired by seed (same labelled subset and initialisation), among the rows matching ``where``."""
    return mean_std(paired_differences(rows, change, base, value, **where).values())


def paired_interval(differences: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The two-sided ``level`` confidence interval (Student's t) of the mean of paired differences."""
    import math

    from scipy import stats

    n = len(differences)
    if n < 2:
        raise ClaimError(f"a confidence interval needs at least 2 paired differences, got {n}")
    m, sd = mean_std(differences)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return m - half, m + half


def best_of(rows: Sequence[Mapping], key: str, value: str = "target_accuracy", **where) -> tuple[str, float]:
    """The value of ``key`` with the highest mean ``value`` among the rows matching ``where``."""
    options = list(dict.fromkeys(r[key] for r in select(rows, **where)))
    if not options:
        raise ClaimError(f"no result rows with {where}")
    scored = {o: mean(rows, value, **where, **{key: o}) for o in options}
    best = max(scored, key=scored.get)
    return best, scored[best]


def summarize(rows: list[dict], by: Sequence[str], value: str = "target_accuracy"):
    """Mean, std and count of ``value`` grouped by the columns ``by`` (a pandas DataFrame)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    out = frame.groupby(list(by), sort=False)[value].agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def mean_std_table(rows: list[dict], index: str, columns: str, value: str = "target_accuracy"):
    """A pivot of 'mean ± std' strings (percent), for printing results tables."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    agg = frame.groupby([index, columns], sort=False)[value].agg(["mean", "std"]).fillna(0.0)
    text = agg.apply(lambda r: pm(r["mean"], r["std"]), axis=1)
    return text.unstack(columns)
