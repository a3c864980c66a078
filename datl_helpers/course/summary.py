"""Notebook 05: one table of every method, built from the results notebooks 01-04, 06 and 07 saved.

Each notebook writes ``results/NN_name.json``. For every notebook this module takes, in order:
a full-mode run of your own (``notebooks/results/``), the reference results measured by the course
authors in full mode (shipped inside the package, ``datl_helpers/reference_results/``), or a
smoke-mode run of your own. Every row
of the table says which one it came from, so a number is never shown without its origin.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from datl_helpers.core.errors import ClaimError, ResultsError, check_choice
from datl_helpers.core.results import paired_gain, pm
from datl_helpers.course import claims

RESULT_FILES = {
    "01": "01_feature_extraction.json",
    "02": "02_fine_tuning.json",
    "03": "03_augmentation.json",
    "04": "04_domain_adversarial.json",
    "06": "06_adversarial_robustness.json",
    "07": "07_beyond_images_text.json",
}


class NotMeasured:
    """Stands in for a fact the results at hand do not contain: formats as 'n/a'."""

    def __format__(self, spec: str) -> str:
        return "n/a"

    def __repr__(self) -> str:
        return "n/a"


NOT_MEASURED = NotMeasured()


@dataclass
class Results:
    """One notebook's saved results and where they came from."""

    notebook: str
    payload: dict
    origin: str  # "your full run", "converged reference", "reference (full run)" or "your smoke run"
    path: Path

    @property
    def label(self) -> str:
        seeds = self.payload.get("seeds", [])
        return f"{self.notebook}: {self.origin}, {self.payload.get('device', '?')}, seeds {seeds}"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ResultsError(f"cannot read {path} ({err}); delete it and re-run its notebook") from err


REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference_results"
# notebook 04's side studies: only their converged references exist (the notebook trains none live)
SIDE_STUDIES = {"04-semi": "04_semi_supervised.json", "04-paper": "04_paper_protocol.json"}


def load_results(results_dir: Path | str, reference_dir: Path | str | None = None) -> dict[str, Results]:
    """For each notebook with results (01-04, 06, 07), the best results available (full > reference > smoke).

    A notebook that trains only a live subset of its experiments and reads the rest from the
    converged reference (``"live_subset": true`` in its results) never replaces the reference.
    ``reference_dir`` defaults to the reference results shipped with the package."""
    reference_dir = REFERENCE_DIR if reference_dir is None else reference_dir
    found: dict[str, Results] = {}
    for key, name in RESULT_FILES.items():
        own, ref = Path(results_dir) / name, Path(reference_dir) / name
        own_payload = _read(own) if own.is_file() else None
        complete = own_payload is not None and not own_payload.get("live_subset", False)
        if complete and not own_payload.get("smoke", True):
            found[key] = Results(key, own_payload, "your full run", own)
        elif ref.is_file():
            payload = _read(ref)
            origin = "converged reference" if payload.get("reference") else "reference (full run)"
            found[key] = Results(key, payload, origin, ref)
        elif own_payload is not None:
            found[key] = Results(key, own_payload, "your smoke run", own)
    return found


def _stats(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample std and count of the measured values (None and NaN left out)."""
    from datl_helpers.core.metrics import mean_std

    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return float("nan"), float("nan"), 0
    return (*mean_std(vals), len(vals))


def _labels(value) -> str:
    return "all" if value in (None, "all") else str(value)


def _row(family: str, method: str, target: str, labels: str, values: Iterable[float], origin: Results) -> dict:
    mean, std, n = _stats(values)
    return {"family": family, "method": method, "target": target, "labels": labels,
            "accuracy": mean, "std": std, "seeds": n, "from": f"{origin.notebook} ({origin.origin})"}


def _values(runs: list[dict], value: str, **where) -> list[float]:
    """``value`` of the runs whose fields match ``where`` (``labels_per_class`` compared as text)."""
    def matches(run: dict) -> bool:
        return all(_labels(run.get(key)) == _labels(want) if key == "labels_per_class" else run.get(key) == want
                   for key, want in where.items())

    return [run[value] for run in runs if matches(run)]


def comparison_rows(results: dict[str, Results], labels_per_class: int = 10) -> list[dict]:
    """Rows of the comparison table: accuracy (fraction) mean, std and seed count per method."""
    rows: list[dict] = []
    k = str(labels_per_class)

    def add(family: str, row_name: str, row_target: str, row_labels: str, runs: list[dict], value: str,
            **where) -> None:
        vals = _values(runs, value, **where)
        if vals:
            rows.append(_row(family, row_name, row_target, row_labels, vals, r))

    if "01" in results:
        r = results["01"]
        runs = r.payload.get("label_efficiency", [])
        for method in ("scratch", "linear-probe", "finetune"):
            for labels in (k, "all"):
                add("01 feature extraction", method, "mnistm", f"{labels}/class", runs, "target_accuracy",
                    method=method, target="mnistm", labels_per_class=labels)
    if "02" in results:
        r = results["02"]
        runs = r.payload.get("runs", [])
        for name in dict.fromkeys(x["strategy"] for x in runs):
            for labels in (k, "all"):
                add("02 fine-tuning", name, r.payload.get("target", "mnistm"), f"{labels}/class", runs, "accuracy",
                    strategy=name, labels_per_class=labels)
    if "03" in results:
        r = results["03"]
        grid = r.payload.get("grid", [])
        for method in ("scratch", "linear-probe", "finetune"):
            for augment in dict.fromkeys(x["augment"] for x in grid):
                name = f"{method}, no augmentation" if augment == "none" else f"{method} + {augment} augmentation"
                add("03 augmentation", name, r.payload.get("target", "mnistm"), f"{k}/class", grid, "target_accuracy",
                    method=method, augment=augment, labels_per_class=k)
    if "04" in results:
        r = results["04"]
        runs = r.payload.get("runs", [])
        unlabelled = "all source labels + unlabelled target"
        described = {"source-only": "all source labels + unlabelled target (BatchNorm only)", "dann": unlabelled,
                     "adabn": unlabelled,
                     "coral": unlabelled, "entropy": unlabelled, "target-oracle": "all target labels"}
        for pair in dict.fromkeys(x["pair"] for x in runs):
            for method, labels in described.items():
                add("04 domain adaptation", method, pair, labels, runs, "target_accuracy", pair=pair, method=method)
    if "07" in results:
        r = results["07"]
        runs = r.payload.get("runs", [])
        described = {"source-only": "all source labels", "dann": "all source labels + unlabelled target",
                     "target-oracle": "all target labels"}
        for pair in dict.fromkeys(x["pair"] for x in runs):
            for method, labels in described.items():
                add("07 text adaptation", method, pair.replace("->", " -> "), labels, runs, "target_accuracy",
                    pair=pair, method=method)
    return rows


def robustness_rows(results: dict[str, Results], eps: str = "8/255") -> list[dict]:
    """Notebook 06's models: clean accuracy and accuracy under FGSM and PGD at ``eps`` (fractions),
    mean, std and seed count per model (empty when notebook 06's results are not at hand)."""
    if "06" not in results:
        return []
    r = results["06"]
    runs = r.payload.get("runs", [])
    rows = []
    for name in dict.fromkeys(x["name"] for x in runs):
        picked = [x for x in runs if x["name"] == name]
        clean, clean_std, n = _stats(x["clean_accuracy"] for x in picked)
        row = {"model": name, "clean": clean, "clean_std": clean_std, "seeds": n,
               "from": f"{r.notebook} ({r.origin})"}
        for attack in ("fgsm", "pgd"):
            row[attack], row[f"{attack}_std"], _ = _stats(x["robust_accuracy"][attack].get(eps) for x in picked)
        rows.append(row)
    return rows


def robustness_table(rows: list[dict], eps: str = "8/255"):
    """:func:`robustness_rows` as a pandas table with 'mean ± std' in percent."""
    import pandas as pd

    return pd.DataFrame([{"model": r["model"], "clean (%)": pm(r["clean"], r["clean_std"]),
                          f"FGSM {eps} (%)": pm(r["fgsm"], r["fgsm_std"]),
                          f"PGD-10 {eps} (%)": pm(r["pgd"], r["pgd_std"]), "seeds": r["seeds"], "from": r["from"]}
                         for r in rows])


def comparison_table(rows: list[dict]):
    """The rows as a pandas table with 'mean ± std' accuracy in percent."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["accuracy (%)"] = [pm(m, s) for m, s in zip(frame["accuracy"], frame["std"])]
    return frame[["family", "method", "target", "labels", "accuracy (%)", "seeds", "from"]]


def lookup(rows: list[dict], family: str, method: str, labels: str | None = None, target: str | None = None) -> float:
    """The mean accuracy (percent) of one row; NaN when it is missing (say, a notebook not yet run)."""
    for row in rows:
        if (row["family"].startswith(family) and row["method"] == method
                and (labels is None or row["labels"] == labels) and (target is None or row["target"] == target)):
            return 100 * row["accuracy"]
    return float("nan")


def recompute(
    notebook: str, seed: int = 0, steps: int = 30, device: str = "auto", labels_per_class: int = 10
) -> Results:
    """A quick (smoke-sized) stand-in for one notebook's results, when nothing was saved.

    One seed and ``steps`` training steps per run: enough to fill the table with real, measured
    numbers of the same kind, far too little to judge the methods by. The table says so.
    """
    import dataclasses

    from datl_helpers.adaptation import dann
    from datl_helpers.data import registry as data
    from datl_helpers.transfer import finetune
    from datl_helpers.transfer import recipe as transfer

    mnistm = data.load_domain("mnistm")
    k = labels_per_class
    if notebook == "01":
        config = transfer.TransferConfig(steps=steps)
        runs = [{"target": "mnistm", "labels_per_class": k, "method": m,
                 **transfer.run_transfer(mnistm, m, k, seed=seed, config=config, device=device)}
                for m in ("scratch", "linear-probe", "finetune")]
        payload = {"label_efficiency": runs}
    elif notebook == "02":
        budget = dict(epochs=2, steps_per_epoch=max(1, steps // 2))
        runs = [finetune.run_strategy(name, mnistm, k, seed=seed, device=device,
                                      config=dataclasses.replace(finetune.STRATEGIES[name], **budget))[0]
                for name in ("head only", "layer-wise LRs", "too-high LR")]
        payload = {"target": "mnistm", "runs": runs}
    elif notebook == "03":
        grid = [{"method": m, "labels_per_class": k, "augment": a,
                 **transfer.run_transfer(mnistm, m, k, seed=seed, device=device,
                                         config=transfer.TransferConfig(steps=steps, augment=a))}
                for m in ("scratch", "finetune") for a in ("none", "light")]
        payload = {"target": "mnistm", "grid": grid}
    elif notebook == "06":
        from datl_helpers.robustness import robust

        config = robust.RobustConfig(steps=steps, n_test=100, pgd_steps=3)
        runs = [{"name": name, **robust.run_robust(mnistm, robust.MODELS[name][0], k, config=config, seed=seed,
                                                     device=device)} for name in ("linear probe", "finetune")]
        payload = {"runs": runs}
    elif notebook == "07":
        from datl_helpers.beyond import text

        source, target = (text.subset(data.load_domain(n), 600, seed) for n in ("movies", "food"))
        config = text.TextConfig(steps=steps, eval_every=max(1, steps // 5))
        runs = text.run_grid(text.vectorise(source, target), seeds=[seed], config=config, pair="movies->food",
                             progress=False)
        payload = {"runs": runs}
    elif notebook == "04":
        mnist = data.load_domain("mnist")
        config = dann.DannConfig(steps=steps, batch_size=32)
        runs = [{"pair": "mnist -> mnistm", "method": m,
                 **dann.run_adaptation(mnist, mnistm, m, seed=seed, config=config, device=device)}
                for m in dann.METHODS]
        payload = {"runs": runs}
    else:
        check_choice("notebook", notebook, RESULT_FILES)
    payload.update({"smoke": True, "device": str(device), "seeds": [seed], "steps": steps})
    return Results(notebook, payload, f"recomputed here ({steps} steps)", Path("(not saved)"))


def _mean(values: Iterable[float], scale: float = 100.0) -> float:
    return scale * _stats(values)[0]


def facts(results: dict[str, Results], labels_per_class: int = 10) -> dict[str, float | str | None]:
    """The numbers the interview answers cite, by name (percent; NaN or None where not measured)."""
    rows = comparison_rows(results, labels_per_class)
    k = f"{labels_per_class}/class"
    f: dict[str, float | str | None] = defaultdict(lambda: NOT_MEASURED)  # a missing fact shows as 'n/a'
    f["labels"] = labels_per_class
    for method, short in (("scratch", "scratch"), ("linear-probe", "probe"), ("finetune", "finetune")):
        f[f"{short}"] = lookup(rows, "01", method, k)
        f[f"{short}_all"] = lookup(rows, "01", method, "all/class")
    runs01 = results["01"].payload if "01" in results else {}
    for method, short in (("linear-probe", "probe"), ("finetune", "finetune"), ("scratch", "scratch")):
        f[f"{short}_1"] = _mean(r["target_accuracy"] for r in runs01.get("label_efficiency", [])
                                if r["method"] == method and r["target"] == "mnistm"
                                and str(r["labels_per_class"]) == "1")
    pre = {}
    for r in runs01.get("preprocessing", []):
        if r["target"] == "mnistm":
            pre.setdefault(r["preprocessing"], []).append(r["accuracy"])
    if pre:
        means = {name: _mean(vals) for name, vals in pre.items()}
        matched = next(name for name in means if name.startswith("as pretrained"))
        worst = min(means, key=means.get)
        f["pre_match"], f["pre_worst"], f["pre_worst_name"] = means[matched], means[worst], worst
    for name, short in (("head only", "head"), ("last stage", "last"), ("gradual unfreezing", "gradual"),
                        ("layer-wise LRs", "layerwise"), ("too-high LR", "toohigh")):
        f[short] = lookup(rows, "02", name, k)
        f[f"{short}_all"] = lookup(rows, "02", name, "all/class")
    runs02 = results["02"].payload.get("runs", []) if "02" in results else []
    for name, short in (("head only", "head"), ("layer-wise LRs", "layerwise"), ("too-high LR", "toohigh")):
        for labels, suffix in ((str(labels_per_class), ""), ("all", "_all")):
            f[f"source_{short}{suffix}"] = _mean(r.get("source_accuracy") for r in runs02
                                                 if r["strategy"] == name and _labels(r["labels_per_class"]) == labels)
    for recipe in ("careful", "aggressive"):
        baseline = "layer-wise LRs" if recipe == "careful" else "too-high LR"
        base = {r["seed"]: r["accuracy"] for r in runs02
                if r["strategy"] == baseline and str(r["labels_per_class"]) == str(labels_per_class)}
        l2sp = [r for r in runs02 if r.get("recipe") == recipe and r.get("regulariser", "").startswith("L2-SP")]
        f[f"l2sp_gain_{recipe}"] = _mean(r["accuracy"] - base[r["seed"]] for r in l2sp if r["seed"] in base)
        f[f"source_l2sp_{recipe}"] = _mean(r.get("source_accuracy") for r in l2sp)
    if "03" in results:
        payload = results["03"].payload
        for method, short in (("scratch", "scratch"), ("finetune", "finetune"), ("linear-probe", "probe")):
            grid = [r for r in payload.get("grid", [])
                    if r["method"] == method and str(r["labels_per_class"]) == str(labels_per_class)]
            by_aug = {a: _mean(r["target_accuracy"] for r in grid if r["augment"] == a)
                      for a in dict.fromkeys(r["augment"] for r in grid)}
            if by_aug:
                best = max(by_aug, key=lambda a: by_aug[a])
                no_aug = by_aug.get("none", math.nan)
                f[f"aug_{short}_none"] = no_aug
                f[f"aug_{short}_best"] = by_aug[best]
                f[f"aug_{short}_best_preset"] = best
                f[f"aug_{short}_heavy"] = by_aug.get("heavy", math.nan)
                f[f"aug_{short}_gain"] = gain = by_aug[best] - no_aug
                f[f"aug_{short}_effect"] = (
                    f"no preset helped ({pct(no_aug)} without augmentation)" if not gain > 0.1 else
                    f"{points(gain)} from its best preset (*{best}*: {pct(no_aug)} → {pct(by_aug[best])})")
            turn = [t for t in payload.get("turnover", [])
                    if t["method"] == method and str(t["labels_per_class"]) == str(labels_per_class)]
            if turn:
                f[f"turn_{short}_best_strength"] = turn[0]["best_strength"]
                hurts = turn[0]["hurts_from"]
                f[f"turn_{short}_hurts"] = ("never fell clearly below no augmentation" if hurts is None else
                                            f"was clearly below no augmentation from strength {hurts:g} on")
        sweep = [r for r in payload.get("sweep_extra", [])
                 if r["method"] == "scratch" and str(r["labels_per_class"]) == str(labels_per_class)]
        f["aug_scratch_full_strength"] = _mean(r["target_accuracy"] for r in sweep) if sweep else math.nan
        over = payload.get("over_augmentation", [])
        for method, short in (("scratch", "scratch"), ("finetune", "finetune")):
            for labels in (labels_per_class, 50):
                try:
                    f[f"rot_{short}_{labels}"] = paired_gain(
                        over, {"augment": "rotation 180°"}, {"augment": "none"},
                        method=method, labels_per_class=labels)[0]
                except ClaimError:
                    pass  # not measured in these results: reads 'n/a'
    if "04" in results:
        payload = results["04"].payload
        steps = payload.get("config", {}).get("steps", "?")
        rising = payload.get("not_converged", [])
        f["da_budget"] = (f"{steps} steps per run, not yet shown to be converged (see the budget policy in docs/results.md)"
                          if not payload.get("reference") else "trained to convergence" if not rising else
                          f"trained to convergence, except {' and '.join(rising)}, whose accuracy was still rising at the "
                          "largest budget measured: a lower bound")
        runs = [r for r in payload.get("runs", []) if r["pair"] == "mnist -> mnistm"]
        for method, short in (("source-only", "so"), ("dann", "dann"), ("target-oracle", "oracle")):
            f[f"da_{short}"] = _mean(r["target_accuracy"] for r in runs if r["method"] == method)
            f[f"da_{short}_domain_acc"] = _mean((r["domain_accuracy"] for r in runs if r["method"] == method), 1.0)
        gap = f["da_oracle"] - f["da_so"]
        f["da_gap_closed"] = 100 * (f["da_dann"] - f["da_so"]) / gap if gap and not math.isnan(gap) else math.nan
        pad = {row["features of"]: row["proxy A-distance"] for row in payload.get("proxy_a_distance", [])}
        f["pad_so"], f["pad_dann"] = pad.get("source-only", NOT_MEASURED), pad.get("dann", NOT_MEASURED)
        zero_shot = payload.get("zero_shot", {})
        others, gains, below_zero_shot = [], {}, []
        for pair in dict.fromkeys(r["pair"] for r in payload.get("runs", [])):
            acc = {m: _mean(r["target_accuracy"] for r in payload["runs"] if r["pair"] == pair and r["method"] == m)
                   for m in ("source-only", "dann", "target-oracle")}
            closed = 100 * (acc["dann"] - acc["source-only"]) / (acc["target-oracle"] - acc["source-only"])
            gains[pair] = acc["dann"] - acc["source-only"]
            if pair in zero_shot and acc["dann"] < 100 * zero_shot[pair]:
                below_zero_shot.append(f"`{pair.replace('->', '→')}`")
            text = (f"{pair.replace('->', '→')}: source-only {pct(acc['source-only'])}, DANN {pct(acc['dann'])}, "
                    f"oracle {pct(acc['target-oracle'])} ({closed:.0f} % of the gap closed")
            if pair in zero_shot:
                text += f"; the pretrained backbone alone: {pct(100 * zero_shot[pair])}"
            others.append(text + ")")
        f["da_all_pairs"] = "; ".join(others)
        if gains:
            helped = sum(g > 0 for g in gains.values())
            most = max(gains, key=gains.get)
            f["da_verdict"] = (("DANN helped on every pair" if helped == len(gains) else
                                f"DANN helped on {helped} of {len(gains)} pairs")
                               + f" without a single target label, most on `{most.replace('->', '→')}` "
                               f"({gains[most]:+.1f} points)")
            f["da_below_zero_shot"] = (
                f"; on {' and '.join(below_zero_shot)} it stayed below the pretrained backbone alone"
                if below_zero_shot else "")
        selection = payload.get("selection", [])
        if selection:
            oracle = max(selection, key=lambda r: r["target_accuracy"])
            picks = {
                "source_val": max(selection, key=lambda r: r["source_val_accuracy"]),
                "entropy": min(selection, key=lambda r: r["target_entropy"]),
                "DEV": min(selection, key=lambda r: r["dev_risk"]),
            }
            f["select_seed"] = payload.get("seeds", ["?"])[0]
            f["select_oracle"], f["select_oracle_acc"] = oracle["candidate"], 100 * oracle["target_accuracy"]
            for name, row in picks.items():
                f[f"select_{name}"], f[f"select_{name}_acc"] = row["candidate"], 100 * row["target_accuracy"]
    if "07" in results:
        runs = results["07"].payload.get("runs", [])
        for pair, short in (("movies->food", "movies"), ("spam_old->spam_new", "spam")):
            for method, m in (("source-only", "so"), ("dann", "dann"), ("target-oracle", "oracle")):
                for value, v in (("target_accuracy", "acc"), ("target_auc", "auc")):
                    f[f"text_{short}_{m}_{v}"] = _mean(r.get(value) for r in runs
                                                       if r["pair"] == pair and r["method"] == method)
    robust_rows = {r["model"]: r for r in robustness_rows(results)}
    for name, short in (("scratch", "scratch"), ("finetune", "finetune"), ("finetune + FGSM training", "adv"),
                        ("DANN (mnist -> mnistm)", "dann"), ("robust backbone + linear probe", "robust_probe")):
        if name in robust_rows:
            f[f"rob_{short}_clean"] = 100 * robust_rows[name]["clean"]
            f[f"rob_{short}_pgd"] = 100 * robust_rows[name]["pgd"]
    references = {key: r.payload for key, r in results.items() if r.payload.get("reference")}
    references |= {key: _read(REFERENCE_DIR / name) for key, name in SIDE_STUDIES.items()}
    for key, payload in references.items():  # the headline claims, from the converged references
        if key in claims.CLAIMS:
            for verdict in claims.verdicts(key, payload):
                f[f"claim_{verdict.claim.name}"] = (
                    verdict.text if verdict.holds else f"(not supported here: {verdict.text})")
    return f


def pct(value: float | None, digits: int = 1) -> str:
    """'87.5 %', or 'n/a' for a number that was not measured in the results at hand."""
    if not _measured(value):
        return "n/a"
    return f"{value:.{digits}f} %"


def points(value: float | None, digits: int = 1) -> str:
    """'+3.2 points', or 'n/a'."""
    if not _measured(value):
        return "n/a"
    return f"{value:+.{digits}f} points"


def _measured(value) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)
