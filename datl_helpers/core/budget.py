"""The budget policy: a result counts only once training has converged.

A number measured after too few steps measures the budget, not the method. For each experiment
family, ``data_scripts/converged_reference.py budgets`` trains at doubling budgets (100, 200, 400,
... steps) with several seeds; the **converged budget** of a configuration is the first budget
``b`` whose mean accuracy moves by less than :data:`TOLERANCE_POINTS` when the budget is doubled
to ``2b``, and a family's budget is the largest of its configurations'. The families today are
few-label transfer by method and label count: to ``mnistm`` (``transfer-scratch-10``,
``transfer-scratch-50``, ``transfer-scratch-all`` and the same for ``finetune``), each measured
without augmentation and with the heavy preset (the slowest to converge), and to ``mnist``
without augmentation (``transfer-scratch-10-mnist``, ...); see :func:`transfer_steps`; and
notebook 02's fine-tuning strategies at 10 labels/class and with all labels
(``finetune-strategies-10``, ``finetune-strategies-all``, 10 epochs each; :func:`finetune_steps`);
and notebook 04's adaptation methods on its three pairs (``adapt-dann``, ``adapt-source-only``, ...,
one per method; :func:`adapt_steps`); and notebook 06's fine-tuned models, whose curves follow the
clean and the PGD-10 accuracy (``robust-finetune-standard-fgsm``, ...; :func:`robust_steps`).
The curves and the chosen budgets ship in ``datl_helpers/reference_results/budget_curves.json``;
the notebooks and the command line read their defaults from there (:func:`converged_steps`).
"""

from __future__ import annotations

import json
import numbers
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from datl_helpers.core.errors import BudgetError

TOLERANCE_POINTS = 1.0  # doubling the budget moves the mean by less than this: converged
CURVES_FILE = Path(__file__).resolve().parents[1] / "reference_results" / "budget_curves.json"


def check_steps(steps: int, what: str = "steps") -> int:
    """``steps`` as an int, or a BudgetError when it is below 1 (nothing would be trained)."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise BudgetError(f"{what} must be a whole number of at least 1, got {steps!r}: nothing would be trained")
    return int(steps)


def curve_means(rows: Iterable[Mapping], value: str = "target_accuracy") -> dict[int, float]:
    """Mean ``value`` per budget (``steps``) over the rows of one configuration (one per seed)."""
    by_steps: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        by_steps[int(row["steps"])].append(float(row[value]))
    return {steps: sum(v) / len(v) for steps, v in sorted(by_steps.items())}


def converged_budget(means: Mapping[int, float], tolerance: float = TOLERANCE_POINTS) -> int | None:
    """The first budget ``b`` whose doubling ``2b`` moves the mean by less than ``tolerance``
    percentage points (``means``: budget -> mean accuracy as a fraction); None when no measured
    doubling is that small yet (train longer)."""
    for steps in sorted(means):
        if 2 * steps in means and abs(100 * (means[2 * steps] - means[steps])) < tolerance:
            return steps
    return None


def next_budget(means: Mapping[int, float], tolerance: float = TOLERANCE_POINTS) -> int | None:
    """The budget to measure next when doubling until convergence: None once converged."""
    if converged_budget(means, tolerance) is not None:
        return None
    return 2 * max(means)


def family_budget(curves: Sequence[Mapping], tolerance: float = TOLERANCE_POINTS) -> int | None:
    """One budget for a family of configurations: the largest of their converged budgets, so that
    every configuration in it has converged (None when one of them has not)."""
    budgets = [converged_budget(c["means"], tolerance) for c in curves]
    return None if any(b is None for b in budgets) or not budgets else max(budgets)


def measure_curves(
    curves: list[dict],
    first: int | Callable[[dict], int],
    jobs_for: Callable[[dict, int], list[dict]],
    run: Callable[[list[dict]], list[dict]],
    largest: int,
    *,
    keep: Callable[[dict], dict] = dict,
    next_for: Callable[[dict], int | None] | None = None,
    label: str = "budget curves",
) -> list[dict]:
    """Double every curve's budget until it converges: the rule of this module, as a loop.

    Each curve is a dict with a ``"name"``; it gains ``"rows"`` (``keep(row)`` of every run) and
    ``"means"`` (:func:`curve_means`). The first round measures ``first`` and twice ``first`` steps
    (``first(curve)`` when it differs per curve); each later round measures :func:`next_budget`
    (or ``next_for(curve)``) of the curves that have not converged, until none is left below
    ``largest``. ``jobs_for(curve, steps)`` gives the jobs of one budget (one per seed) and
    ``run(jobs)`` their rows, in order, each with the ``steps`` it trained; all the curves' jobs of a
    round go to one ``run`` call, so they can run in parallel."""
    for curve in curves:
        curve.setdefault("rows", [])
        curve["means"] = curve_means(curve["rows"])
    todo = {}
    for curve in curves:
        start = first(curve) if callable(first) else first
        todo[curve["name"]] = [start, 2 * start]
    while any(todo.values()):
        jobs, owners = [], []
        for curve in curves:
            for steps in todo[curve["name"]]:
                new = jobs_for(curve, steps)
                jobs += new
                owners += [curve] * len(new)
        print(f"{label}: {sorted({j['steps'] for j in jobs})} steps", flush=True)
        for curve, row in zip(owners, run(jobs)):
            curve["rows"].append(keep(row))
        for curve in curves:
            curve["means"] = curve_means(curve["rows"])
            nxt = next_for(curve) if next_for is not None else next_budget(curve["means"])
            todo[curve["name"]] = [nxt] if nxt is not None and nxt <= largest else []
    return curves


def load_curves(path: Path | str = CURVES_FILE) -> dict:
    """The shipped budget curves: ``{"families": {name: {"budget": ..., "curves": [...]}}, ...}``."""
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BudgetError(
            f"cannot read the budget curves {path} ({err}); rebuild them with "
            "`python data_scripts/converged_reference.py budgets`") from err
    for family in payload["families"].values():
        for curve in family["curves"]:
            curve["means"] = {int(k): v for k, v in curve["means"].items()}
    return payload


def converged_steps(family: str, path: Path | str = CURVES_FILE) -> int:
    """The converged budget (training steps) of an experiment ``family`` (e.g. ``"transfer-scratch"``)."""
    families = load_curves(path)["families"]
    if family not in families:
        raise BudgetError(f"no budget curve for {family!r}; measured families: {', '.join(families)}")
    budget = families[family]["budget"]
    if budget is None:
        raise BudgetError(f"the budget curve of {family!r} has not converged; measure larger budgets")
    return int(budget)


def transfer_steps(method: str, labels_per_class=None, augmented: bool = True, target: str = "mnistm",
                   path: Path | str = CURVES_FILE) -> int:
    """The converged budget of few-label transfer to ``target`` with ``method`` (``scratch`` or
    ``finetune``) at ``labels_per_class`` (None or "all": every label): the family's budget, which
    covers augmented training where the family measured it, or with ``augmented=False`` the budget
    of its un-augmented curves alone. For a label count without a family of its own, the nearest
    measured family with more labels per class: an upper bound, since runs on more images take
    longer to converge."""
    families = {str(f["labels_per_class"]): (name, f) for name, f in load_curves(path)["families"].items()
                if name.startswith("transfer-") and f.get("method") == method and f.get("target") == target}
    if not families:
        raise BudgetError(f"no budget curve for method {method!r} on {target!r}; measured: "
                          + ", ".join(sorted(load_curves(path)["families"])))
    wanted = "all" if labels_per_class in (None, "all") else int(labels_per_class)
    if str(wanted) not in families:
        larger = sorted(int(k) for k in families if k != "all" and wanted != "all" and int(k) > wanted)
        wanted = larger[0] if larger else "all" if "all" in families else max(int(k) for k in families)
    name, family = families[str(wanted)]
    curves = family["curves"] if augmented else [c for c in family["curves"] if c["augment"] == "none"]
    steps = family_budget(curves)
    if steps is None:
        raise BudgetError(f"the budget curve of {name} has not converged; measure larger budgets")
    return int(steps)


def adapt_budget(method: str = "dann", pair: str | None = None, path: Path | str = CURVES_FILE,
                 init: str = "backbone") -> tuple[int, bool]:
    """The budget of adaptation ``method`` (``dann``, ``source-only``, ...) from the shipped backbone,
    from its family ``adapt-<method>`` measured on notebook 04's three pairs: the family's budget
    (the largest any pair needed), or with ``pair`` ("mnist -> mnistm") that pair's own; and whether
    it converged. A curve still rising at the largest budget measured gives that budget and False:
    its results are lower bounds, and must be labelled so. ``init="scratch"``: the paper's protocol
    from random weights (family ``adapt-scratch-<method>``, measured on ``mnist -> mnistm``)."""
    families = load_curves(path)["families"]
    family = f"adapt-{method}" if init == "backbone" else f"adapt-{init}-{method}"
    if family not in families:
        script = "adaptation" if init == "backbone" else "paper"
        raise BudgetError(f"no budget curve for {family!r}; measure it with "
                          f"`python data_scripts/converged_reference.py {script}`, or give --steps")
    curves = families[family]["curves"]
    if pair is not None:
        curves = [c for c in curves if f"{c['source']} -> {c['target']}" == pair]
        if not curves:
            raise BudgetError(f"no budget curve of {method!r} on {pair!r}; measured: "
                              + ", ".join(f"{c['source']} -> {c['target']}" for c in families[family]["curves"]))
    means = [{int(k): v for k, v in c["means"].items()} for c in curves]
    budgets = [converged_budget(m) for m in means]
    if all(b is not None for b in budgets):
        return max(budgets), True
    return max(max(m) for m in means), False


def adapt_steps(method: str = "dann", pair: str | None = None, path: Path | str = CURVES_FILE) -> int:
    """:func:`adapt_budget`'s steps where they converged; a BudgetError where the curve is still rising."""
    steps, converged = adapt_budget(method, pair, path)
    if not converged:
        raise BudgetError(f"the budget curve of adapt-{method}{' on ' + pair if pair else ''} has not converged "
                          f"by {steps} steps; measure larger budgets")
    return steps


def finetune_steps(labels_per_class=10, path: Path | str = CURVES_FILE) -> int:
    """The converged budget (steps in all, 10 epochs of batch 64) of notebook 02's fine-tuning
    strategies at ``labels_per_class`` (10, or None / "all"): family ``finetune-strategies-10`` or
    ``finetune-strategies-all``, whose budget covers every strategy."""
    wanted = "all" if labels_per_class in (None, "all") else labels_per_class
    return converged_steps(f"finetune-strategies-{wanted}", path)


def robust_family(method: str, backbone: str = "standard", adversarial: str = "none") -> str:
    """The budget family of one of notebook 06's fine-tuned models, e.g. ``robust-finetune-standard-fgsm``."""
    return f"robust-{method}-{backbone}-{adversarial}"


def robust_steps(method: str, backbone: str = "standard", adversarial: str = "none", labels_per_class=10,
                 path: Path | str = CURVES_FILE) -> int:
    """The converged budget of a model of notebook 06 (mnistm, 10 labels/class). Fine-tuned models
    have families of their own (:func:`robust_family`), whose curves follow both the clean and the
    PGD-10 accuracy; scratch takes few-label transfer's un-augmented budget, DANN and source-only
    their budgets on ``mnist -> mnistm``; the linear probe has no step budget (0)."""
    if method == "linear-probe":
        return 0
    if method == "scratch" and adversarial == "none":
        return transfer_steps("scratch", labels_per_class, augmented=False, path=path)
    if method in ("dann", "source-only"):
        return adapt_steps(method, "mnist -> mnistm", path)
    return converged_steps(robust_family(method, backbone, adversarial), path)


def curve_table(family: Mapping):
    """The curves of one family as a table: one row per configuration, one column per budget
    (mean accuracy in %), and the converged budget of each row."""
    import pandas as pd

    rows = []
    for curve in family["curves"]:
        row = {"configuration": curve["name"]}
        row.update({f"{steps} steps": round(100 * mean, 1) for steps, mean in sorted(curve["means"].items())})
        row["converged at"] = converged_budget(curve["means"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("configuration")


def side_by_side(live: Sequence[Mapping], reference: Sequence[Mapping], by: Sequence[str],
                 live_label: str, reference_label: str, value: str = "target_accuracy"):
    """Live runs beside the converged reference, one row per group ``by``: 'mean ± std (n seeds)' (%)
    of each (the mean alone for one seed) and the difference of the means in points. Only the groups
    the live run measured are shown."""
    import pandas as pd

    def stats(rows):
        frame = pd.DataFrame(rows)
        frame = frame.assign(**{k: frame[k].astype(str) for k in by})
        return frame.groupby(list(by), sort=False)[value].agg(["mean", "std", "count"]).fillna({"std": 0.0})

    def fmt(part) -> list[str]:  # one seed has no spread to show
        return ["not measured" if n != n else f"{100 * m:.1f} (1 seed)" if n == 1
                else f"{100 * m:.1f} ± {100 * s:.1f} ({int(n)} seeds)"
                for m, s, n in zip(part["mean"], part["std"], part["count"])]

    ours, ref = stats(live), stats(reference)
    ref = ref.reindex(ours.index)
    return pd.DataFrame({live_label: fmt(ours), reference_label: fmt(ref),
                         "live − reference (points)": (100 * (ours["mean"] - ref["mean"])).round(1)}, index=ours.index)
