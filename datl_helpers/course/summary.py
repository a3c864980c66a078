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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from datl_helpers.core.errors import ResultsError, check_choice
from datl_helpers.core.results import pm

RESULT_FILES = {
    "01": "01_feature_extraction.json",
    "02": "02_fine_tuning.json",
    "03": "03_augmentation.json",
    "04": "04_domain_adversarial.json",
    "06": "06_adversarial_robustness.json",
    "07": "07_beyond_images_text.json",
    "08": "08_hospitals.json",
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


def read_results(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ResultsError(f"cannot read {path} ({err}); delete it and re-run its notebook") from err


REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference_results"
# notebook 04's side studies: only their converged references exist (the notebook trains none live)
SIDE_STUDIES = {"04-semi": "04_semi_supervised.json", "04-paper": "04_paper_protocol.json"}


def load_results(results_dir: Path | str, reference_dir: Path | str | None = None) -> dict[str, Results]:
    """For each notebook with results (01-04, 06-08), the best results available (full > reference > smoke).

    A notebook that trains only a live subset of its experiments and reads the rest from the
    converged reference (``"live_subset": true`` in its results) never replaces the reference.
    ``reference_dir`` defaults to the reference results shipped with the package."""
    reference_dir = REFERENCE_DIR if reference_dir is None else reference_dir
    found: dict[str, Results] = {}
    for key, name in RESULT_FILES.items():
        own, ref = Path(results_dir) / name, Path(reference_dir) / name
        own_payload = read_results(own) if own.is_file() else None
        complete = own_payload is not None and not own_payload.get("live_subset", False)
        if complete and not own_payload.get("smoke", True):
            found[key] = Results(key, own_payload, "your full run", own)
        elif ref.is_file():
            payload = read_results(ref)
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
    if "08" in results:  # balanced accuracy: under label shift, plain accuracy rewards the majority class
        r = results["08"]
        runs = r.payload.get("runs", [])
        unlabelled = "all source labels + unlabelled target"
        described = {"source-only": "all source labels", "dann": unlabelled, "importance-weighting": unlabelled,
                     "label-shift": unlabelled, "target-oracle": "all target labels"}
        for pair in dict.fromkeys(x["pair"] for x in runs):
            for method, labels in described.items():
                add("08 hospitals (balanced accuracy)", method, pair.replace("->", " -> "), labels, runs,
                    "target_balanced_accuracy", pair=pair, method=method)
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
        budget = {"epochs": 2, "steps_per_epoch": max(1, steps // 2)}
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
        runs = text.run_grid(text.vectorize(source, target), seeds=[seed], config=config, pair="movies->food",
                             progress=False)
        payload = {"runs": runs}
    elif notebook == "04":
        mnist = data.load_domain("mnist")
        config = dann.DannConfig(steps=steps, batch_size=32)
        runs = [{"pair": "mnist -> mnistm", "method": m,
                 **dann.run_adaptation(mnist, mnistm, m, seed=seed, config=config, device=device)}
                for m in dann.COMPARED_METHODS]
        payload = {"runs": runs}
    elif notebook == "08":
        from datl_helpers.beyond import tabular

        pair = tabular.prepare_pair(data.load_domain("heart_cleveland"), data.load_domain("heart_va"))
        config = tabular.TabularConfig(steps=steps, eval_every=max(1, steps // 5))
        runs = tabular.run_grid(pair, seeds=[seed], config=config)
        payload = {"runs": runs}
    else:
        check_choice("notebook", notebook, RESULT_FILES)
    payload.update({"smoke": True, "device": str(device), "seeds": [seed], "steps": steps})
    return Results(notebook, payload, f"recomputed here ({steps} steps)", Path("(not saved)"))


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
