"""Notebook 05's facts: the numbers its model answers cite, by name (``{probe:pct}``), in percent.

Each notebook's facts come from the same places as its claims: the claim's own evidence function where
a claim measures that number (notebook 01's preprocessing, 02's L2-SP gains, 03's label-changing
rotations), and otherwise the result helpers every claim uses (:mod:`datl_helpers.core.results`). A
number the results at hand do not hold (a smoke run, a notebook not yet run) reads 'n/a'.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

from datl_helpers.core.errors import ClaimError
from datl_helpers.core.results import best_of, mean, select
from datl_helpers.course import claims
from datl_helpers.course.claims import augmentation, feature_extraction, fine_tuning
from datl_helpers.course.summary import (
    NOT_MEASURED,
    REFERENCE_DIR,
    SIDE_STUDIES,
    Results,
    comparison_rows,
    lookup,
    pct,
    points,
    read_results,
    robustness_rows,
)

Facts = dict[str, float | str | None]


def _measured(compute: Callable[[], float]) -> float:
    """``compute()``, or NaN when the results at hand lack what it needs."""
    try:
        return compute()
    except (ClaimError, KeyError, TypeError, ValueError, ZeroDivisionError):
        return math.nan


def _evidence(evidence: Callable[[dict], dict], payload: dict) -> dict:
    """A claim's evidence on ``payload``, or nothing when the payload lacks it (a smoke run, say)."""
    try:
        return evidence(payload)
    except (ClaimError, KeyError, ValueError, StopIteration):
        return {}


def _feature_extraction(f: Facts, payload: dict, rows: list[dict], k: str) -> None:
    for method, short in (("scratch", "scratch"), ("linear-probe", "probe"), ("finetune", "finetune")):
        f[short], f[f"{short}_all"] = lookup(rows, "01", method, k), lookup(rows, "01", method, "all/class")
        f[f"{short}_1"] = _measured(lambda m=method: mean(payload["label_efficiency"], method=m, target="mnistm",
                                                          labels_per_class=1))
    if pre := _evidence(feature_extraction.preprocessing, payload):
        losses = {"BGR channel order": pre["bgr"], "0-255, not divided": pre["unscaled"],
                  "normalised twice": pre["twice"]}
        worst = max(losses, key=losses.get)
        f["pre_match"], f["pre_worst"], f["pre_worst_name"] = pre["base"], pre["base"] - losses[worst], worst


def _fine_tuning(f: Facts, payload: dict, rows: list[dict], k: str, labels: int) -> None:
    for name, short in (("head only", "head"), ("last stage", "last"), ("gradual unfreezing", "gradual"),
                        ("layer-wise LRs", "layerwise"), ("too-high LR", "toohigh")):
        f[short], f[f"{short}_all"] = lookup(rows, "02", name, k), lookup(rows, "02", name, "all/class")
    runs = payload.get("runs", [])
    for name, short in (("head only", "head"), ("layer-wise LRs", "layerwise"), ("too-high LR", "toohigh")):
        for count, suffix in ((labels, ""), ("all", "_all")):
            f[f"source_{short}{suffix}"] = _measured(lambda n=name, c=count: mean(
                runs, "source_accuracy", strategy=n, labels_per_class=c))
    for recipe in fine_tuning.RECIPE_BASELINES:
        f[f"l2sp_gain_{recipe}"] = _measured(lambda r=recipe: fine_tuning.reg_gain(payload, "L2-SP 0.1", r)[0])
        f[f"source_l2sp_{recipe}"] = _measured(lambda r=recipe: mean(runs, "source_accuracy",
                                                                     strategy=f"L2-SP 0.1 ({r})"))


def _augmentation(f: Facts, payload: dict, labels: int) -> None:
    for method, short in (("scratch", "scratch"), ("finetune", "finetune"), ("linear-probe", "probe")):
        grid = select(payload.get("grid", []), method=method, labels_per_class=labels)
        by_aug = {a: mean(grid, augment=a) for a in dict.fromkeys(r["augment"] for r in grid)}
        if by_aug:
            best = max(by_aug, key=by_aug.get)
            no_aug = by_aug.get("none", math.nan)
            f[f"aug_{short}_none"], f[f"aug_{short}_best"], f[f"aug_{short}_best_preset"] = no_aug, by_aug[best], best
            f[f"aug_{short}_heavy"] = by_aug.get("heavy", math.nan)
            f[f"aug_{short}_gain"] = gain = by_aug[best] - no_aug
            f[f"aug_{short}_effect"] = (
                f"no preset helped ({pct(no_aug)} without augmentation)" if not gain > 0.1 else
                f"{points(gain)} from its best preset (*{best}*: {pct(no_aug)} → {pct(by_aug[best])})")
        if turn := select(payload.get("turnover", []), method=method, labels_per_class=labels):
            hurts = turn[0]["hurts_from"]
            f[f"turn_{short}_best_strength"] = turn[0]["best_strength"]
            f[f"turn_{short}_hurts"] = ("never fell clearly below no augmentation" if hurts is None else
                                        f"was clearly below no augmentation from strength {hurts:g} on")
    f["aug_scratch_full_strength"] = _measured(lambda: mean(payload["sweep_extra"], method="scratch",
                                                            labels_per_class=labels))
    rotation = _evidence(augmentation.label_changing, payload)
    for method, short in (("scratch", "scratch"), ("finetune", "finetune")):
        for count in (10, 50):
            if f"{method}_{count}" in rotation:
                f[f"rot_{short}_{count}"] = rotation[f"{method}_{count}"]


def _adaptation(f: Facts, payload: dict) -> None:
    steps, rising = payload.get("config", {}).get("steps", "?"), payload.get("not_converged", [])
    f["da_budget"] = (f"{steps} steps per run, not yet shown to be converged (see the budget policy in docs/results.md)"
                      if not payload.get("reference") else "trained to convergence" if not rising else
                      f"trained to convergence, except {' and '.join(rising)}, whose accuracy was still rising at the "
                      "largest budget measured: a lower bound")
    runs = payload.get("runs", [])
    for method, short in (("source-only", "so"), ("dann", "dann"), ("target-oracle", "oracle")):
        f[f"da_{short}"] = _measured(lambda m=method: mean(runs, pair="mnist -> mnistm", method=m))
        f[f"da_{short}_domain_acc"] = _measured(lambda m=method: mean(runs, "domain_accuracy", pair="mnist -> mnistm",
                                                                      method=m) / 100)
    gap = f["da_oracle"] - f["da_so"]
    f["da_gap_closed"] = 100 * (f["da_dann"] - f["da_so"]) / gap if gap and not math.isnan(gap) else math.nan
    pad = {row["features of"]: row["proxy A-distance"] for row in payload.get("proxy_a_distance", [])}
    f["pad_so"], f["pad_dann"] = pad.get("source-only", NOT_MEASURED), pad.get("dann", NOT_MEASURED)
    zero_shot, texts, gains, below_zero_shot = payload.get("zero_shot", {}), [], {}, []
    for pair in dict.fromkeys(r["pair"] for r in runs):
        acc = {m: _measured(lambda m=m, p=pair: mean(runs, pair=p, method=m)) for m in ("source-only", "dann", "target-oracle")}
        closed = 100 * (acc["dann"] - acc["source-only"]) / (acc["target-oracle"] - acc["source-only"])
        gains[pair] = acc["dann"] - acc["source-only"]
        arrow = pair.replace("->", "→")
        if pair in zero_shot and acc["dann"] < 100 * zero_shot[pair]:
            below_zero_shot.append(f"`{arrow}`")
        text = (f"{arrow}: source-only {pct(acc['source-only'])}, DANN {pct(acc['dann'])}, "
                f"oracle {pct(acc['target-oracle'])} ({closed:.0f} % of the gap closed")
        if pair in zero_shot:
            text += f"; the pretrained backbone alone: {pct(100 * zero_shot[pair])}"
        texts.append(text + ")")
    f["da_all_pairs"] = "; ".join(texts)
    if gains:
        helped, most = sum(g > 0 for g in gains.values()), max(gains, key=gains.get)
        f["da_verdict"] = (("DANN helped on every pair" if helped == len(gains) else
                            f"DANN helped on {helped} of {len(gains)} pairs")
                           + f" without a single target label, most on `{most.replace('->', '→')}` "
                           f"({gains[most]:+.1f} points)")
        f["da_below_zero_shot"] = (f"; on {' and '.join(below_zero_shot)} it stayed below the pretrained backbone alone"
                                   if below_zero_shot else "")
    if selection := payload.get("selection", []):
        picks = {"oracle": best_of(selection, "candidate")[0],
                 "source_val": best_of(selection, "candidate", "source_val_accuracy")[0],
                 "entropy": min(selection, key=lambda r: r["target_entropy"])["candidate"],
                 "DEV": min(selection, key=lambda r: r["dev_risk"])["candidate"]}
        f["select_seed"] = payload.get("seeds", ["?"])[0]
        for name, candidate in picks.items():
            f[f"select_{name}"], f[f"select_{name}_acc"] = candidate, mean(selection, candidate=candidate)


def _text(f: Facts, payload: dict) -> None:
    runs = payload.get("runs", [])
    for pair, short in (("movies->food", "movies"), ("spam_old->spam_new", "spam")):
        for method, m in (("source-only", "so"), ("dann", "dann"), ("target-oracle", "oracle")):
            for value, v in (("target_accuracy", "acc"), ("target_auc", "auc")):
                f[f"text_{short}_{m}_{v}"] = _measured(lambda p=pair, me=method, va=value: mean(
                    runs, va, pair=p, method=me))


def _hospitals(f: Facts, payload: dict) -> None:
    runs = payload.get("runs", [])
    for pair in dict.fromkeys(r["pair"] for r in runs):
        short = pair.replace("heart_", "").replace("->", "_to_")
        for method in dict.fromkeys(r["method"] for r in runs if r["pair"] == pair):
            m = method.replace("-", "_").replace("target_oracle", "oracle").replace("source_only", "so")
            for value, v in (("target_accuracy", "acc"), ("target_balanced_accuracy", "bacc"), ("target_auc", "auc")):
                f[f"hosp_{short}_{m}_{v}"] = _measured(lambda p=pair, me=method, va=value: mean(
                    runs, va, pair=p, method=me))


def _robustness(f: Facts, results: dict[str, Results]) -> None:
    by_model = {r["model"]: r for r in robustness_rows(results)}
    for name, short in (("scratch", "scratch"), ("finetune", "finetune"), ("finetune + FGSM training", "adv"),
                        ("DANN (mnist -> mnistm)", "dann"), ("robust backbone + linear probe", "robust_probe")):
        if name in by_model:
            f[f"rob_{short}_clean"], f[f"rob_{short}_pgd"] = 100 * by_model[name]["clean"], 100 * by_model[name]["pgd"]


def _claims(f: Facts, results: dict[str, Results]) -> None:
    """The headline claims, from the converged references (a run of your own is not one)."""
    references = {key: r.payload for key, r in results.items() if r.payload.get("reference")}
    references |= {key: read_results(REFERENCE_DIR / name) for key, name in SIDE_STUDIES.items()}
    for key, payload in references.items():
        for verdict in claims.verdicts(key, payload) if key in claims.CLAIMS else []:
            f[f"claim_{verdict.claim.name}"] = verdict.text if verdict.holds else f"(not supported here: {verdict.text})"


def collect(results: dict[str, Results], labels_per_class: int = 10) -> Facts:
    """The numbers the interview answers cite, by name (percent; 'n/a' where not measured)."""
    f: Facts = defaultdict(lambda: NOT_MEASURED)  # a missing fact shows as 'n/a'
    f["labels"] = labels_per_class
    rows, k = comparison_rows(results, labels_per_class), f"{labels_per_class}/class"
    payload = {key: r.payload for key, r in results.items()}
    _feature_extraction(f, payload.get("01", {}), rows, k)
    _fine_tuning(f, payload.get("02", {}), rows, k, labels_per_class)
    if "03" in payload:
        _augmentation(f, payload["03"], labels_per_class)
    if "04" in payload:
        _adaptation(f, payload["04"])
    if "07" in payload:
        _text(f, payload["07"])
    if "08" in payload:
        _hospitals(f, payload["08"])
    _robustness(f, results)
    _claims(f, results)
    return f
