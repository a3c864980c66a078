"""Measure the converged budgets, then reproduce the experiments at them: the reference results.

    python data_scripts/converged_reference.py budgets        # -> reference_results/budget_curves.json
    python data_scripts/converged_reference.py augmentation   # -> reference_results/03_augmentation.json
    python data_scripts/converged_reference.py labels         # -> reference_results/01_feature_extraction.json

``budgets`` trains each configuration at doubling budgets (from ``--start`` steps, 3 seeds) until
doubling moves the mean by less than one point (:mod:`datl_helpers.budget`). The families:
few-label transfer to ``mnistm``, one per method (scratch, fine-tuning) and label count (10, 50,
all), each without augmentation and with the ``heavy`` preset (augmentation makes the training
task harder, so it is the slowest to converge); a family's budget is the largest converged budget
of its configurations.

``augmentation`` runs notebook 03's experiments, each method and label count at its family's
converged budget: methods x presets (and strength 1.0) at 10 and 50 labels/class, the generic and
domain-targeted kinds at 10 labels/class, and the over-augmentation search: strength 1.0 and
label-changing rotations (up to 180 degrees, which turn a 6 into a 9) at 10 and 50 labels/class
and with all labels.

``finetuning`` measures the budget curves of notebook 02's fine-tuning strategies (10 epochs of
8, 16, 32, ... steps, at 10 labels/class and with all labels; added to ``budget_curves.json`` as
``finetune-strategies-10`` and ``finetune-strategies-all``), then runs notebook 02's experiments at
those budgets: the strategies with their source (``syn``) accuracy, BatchNorm modes, regularisers
on the careful and the aggressive recipe, early stopping, and k-fold CV choosing a strategy.

``labels`` runs notebook 01's label-efficiency curves (1, 5, 10, 50 and all labels/class on
``mnistm`` and ``mnist``) at the un-augmented converged budgets, and its probes.

Runs go to ``--workers`` processes with one torch thread each (on 2 cores, two one-thread
processes do about 1.75x the work of one two-thread process; the thread count changes the last
digits of a result, so it is recorded). Every finished run is appended to ``--cache`` (JSON lines):
an interrupted script goes on where it stopped, and the two commands share runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "datl_helpers" / "reference_results"
SEEDS = [0, 1, 2]
TARGET = "mnistm"


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ["DATL_QUIET"] = "1"


def run_job(job: dict) -> dict:
    """One run described by ``job`` (a plain dict, so it can cross process boundaries)."""
    if job.get("kind") in FINETUNE_KINDS:
        return {**run_finetune_job(job), **job}  # the job's own fields win: they are its cache key
    from datl_helpers import augment, data, transfer

    target = data.load_domain(job["target"])
    config = transfer.TransferConfig(steps=job["steps"], batch_size=job["batch_size"])
    aug = None
    if job["strength"] > 0:
        aug = augment.BatchAugment(job["strength"], job["kinds"], seed=job["seed"])
    labels = None if job["labels_per_class"] == "all" else job["labels_per_class"]
    row = transfer.run_transfer(target, job["method"], labels, seed=job["seed"], config=config, device="cpu",
                                transform=aug)
    return {**job, **row}


def job_key(job: dict) -> str:
    if job.get("kind") in FINETUNE_KINDS:
        return json.dumps({k: job[k] for k in FINETUNE_KEYS}, sort_keys=True)
    keys = ("target", "method", "labels_per_class", "kinds", "strength", "steps", "batch_size", "seed")
    return json.dumps([job[k] for k in keys])


def make_job(method: str, labels, strength: float, kinds, steps: int, seed: int, name: str, target: str = TARGET,
             batch_size: int = 64) -> dict:
    from datl_helpers import augment

    kinds = list(kinds) if strength > 0 else []
    if method == "linear-probe":
        steps = 0  # the probe is a logistic regression fitted to convergence: no step budget
    return {"target": target, "method": method, "labels_per_class": labels, "augment": name,
            "strength": float(strength), "kinds": kinds, "steps": steps, "batch_size": batch_size, "seed": seed,
            "kinds_name": next((n for n, k in augment.KIND_SETS.items() if list(k) == kinds), "none")}


class Runner:
    """Runs jobs in a process pool, reusing every run already in the cache."""

    def __init__(self, cache: Path, workers: int):
        self.cache, self.workers = cache, workers
        self.done: dict[str, dict] = {}
        if cache.exists():
            for line in cache.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.done[job_key(row)] = row

    def run(self, jobs: list[dict]) -> list[dict]:
        todo = {job_key(j): j for j in jobs if job_key(j) not in self.done}
        if todo:
            print(f"  {len(todo)} runs to do ({len(jobs) - len(todo)} from the cache)", flush=True)
            start = time.perf_counter()
            with ProcessPoolExecutor(self.workers, initializer=_init_worker) as pool:
                futures = [pool.submit(run_job, j) for j in todo.values()]
                for i, fut in enumerate(as_completed(futures), 1):
                    row = fut.result()
                    self.done[job_key(row)] = row
                    self.cache.parent.mkdir(parents=True, exist_ok=True)
                    with self.cache.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    what = f"{row['name']} ({row['kind']})" if "kind" in row else f"{row['method']} {row['augment']}"
                    score = row.get("target_accuracy", row.get("accuracy", row.get("cv_accuracy")))
                    print(f"  [{i}/{len(todo)} {time.perf_counter() - start:.0f} s] {what} {row['labels_per_class']}"
                          f"/class {row['steps']} steps seed {row['seed']}: {100 * score:.1f} %", flush=True)
        return [{**self.done[job_key(j)], **j} if j.get("kind") in FINETUNE_KINDS else
                {k: v for k, v in self.done[job_key(j)].items() if k != "kinds_name"} | {"kinds": j["kinds_name"],
                "augment": j["augment"]} for j in jobs]


# --------------------------------------------------------------------------------------------
# Notebook 02: fine-tuning strategies
# --------------------------------------------------------------------------------------------

FINETUNE_KINDS = ("strategy", "early-stopping", "cv")
FINETUNE_KEYS = ("kind", "name", "strategy", "changes", "labels_per_class", "steps_per_epoch", "epochs", "seed",
                 "source")
EPOCHS = 10  # every fine-tuning budget is 10 epochs, so gradual unfreezing keeps its schedule
REGULARISERS = {"dropout 0.5": {"dropout": 0.5}, "weight decay 0.5": {"weight_decay": 0.5},
                "L1 1e-4": {"l1": 1e-4}, "L2-SP 0.1": {"l2sp": 0.1}}
RECIPES = {"careful": "layer-wise LRs", "aggressive": "too-high LR"}
CV_CANDIDATES = ("head only", "layer-wise LRs", "too-high LR")
_DOMAINS: dict = {}


def _domain(name: str):
    from datl_helpers import data

    if name not in _DOMAINS:
        _DOMAINS[name] = data.load_domain(name)
    return _DOMAINS[name]


def finetune_job(kind: str, strategy: str, labels, steps_per_epoch: int, seed: int, name: str | None = None,
                 changes: dict | None = None, source: bool = True) -> dict:
    return {"kind": kind, "name": name or strategy, "strategy": strategy, "changes": changes or {},
            "labels_per_class": labels, "steps_per_epoch": steps_per_epoch, "epochs": EPOCHS, "seed": seed,
            "source": source, "target": TARGET, "steps": steps_per_epoch * EPOCHS}


def run_finetune_job(job: dict) -> dict:
    import dataclasses

    from datl_helpers import data, finetune, metrics

    target = _domain(job["target"])
    labels = None if job["labels_per_class"] == "all" else job["labels_per_class"]
    config = dataclasses.replace(finetune.STRATEGIES[job["strategy"]], epochs=job["epochs"],
                                 steps_per_epoch=job["steps_per_epoch"], **job["changes"])
    if job["kind"] == "early-stopping":
        return finetune.run_early_stopping(target, labels, seed=job["seed"], config=config, device="cpu")
    if job["kind"] == "cv":
        x, y = data.few_labels(target, labels, job["seed"])
        folds = finetune.cross_validate(x, y, config, folds=5, seed=job["seed"], device="cpu")
        cv, spread = metrics.mean_std(r["accuracy"] for r in folds)
        return {"cv_accuracy": cv, "cv_std": spread, "folds": folds}
    row, _ = finetune.run_strategy(job["name"], target, labels, seed=job["seed"], config=config, device="cpu",
                                   source=_domain("syn") if job["source"] else None, source_curve=False)
    return row


def finetuning(runner: Runner, start: int, largest: int) -> dict:
    """Notebook 02: the strategies' budget curves (from ``start`` steps per epoch, doubling up to
    ``largest`` steps in all), then every experiment at the converged budget."""
    from datl_helpers import budget, finetune

    families = {}
    for labels in (10, "all"):
        curves = [{"name": f"{TARGET}: {s}, {labels} labels/class", "strategy": s, "labels_per_class": labels,
                   "rows": [], "means": {}} for s in finetune.STRATEGIES]
        todo = {c["name"]: [start, 2 * start] for c in curves}
        while any(todo.values()):
            jobs, owners = [], []
            for c in curves:
                for spe in todo[c["name"]]:
                    jobs += [finetune_job("strategy", c["strategy"], labels, spe, seed) for seed in SEEDS]
                    owners += [c] * len(SEEDS)
            print(f"strategies, {labels} labels/class: {sorted({j['steps'] for j in jobs})} steps", flush=True)
            for c, row in zip(owners, runner.run(jobs)):
                c["rows"].append({**row, "target_accuracy": row["accuracy"]})
            for c in curves:
                c["means"] = budget.curve_means(c["rows"])
                nxt = budget.next_budget(c["means"])
                todo[c["name"]] = [nxt // EPOCHS] if nxt is not None and nxt <= largest else []
        families[f"finetune-strategies-{labels}"] = {
            "description": f"notebook 02's fine-tuning strategies, {labels} labels/class of {TARGET}, "
                           f"{EPOCHS} epochs, batch 64, seeds {SEEDS}",
            "target": TARGET, "method": "finetune-strategies", "labels_per_class": labels,
            "tolerance_points": budget.TOLERANCE_POINTS, "budget": budget.family_budget(curves), "curves": curves}
    path = REFERENCE / "budget_curves.json"
    payload = json.loads(path.read_text())
    payload["families"].update(families)
    write_json(path, payload)
    for name, family in families.items():
        print(f"{name}: converged budget {family['budget']} steps")
        print(budget.curve_table(family).to_string())

    unconverged = [name for name, f in families.items() if f["budget"] is None]
    if unconverged:
        raise SystemExit(f"{', '.join(unconverged)} did not converge up to {largest} steps: raise --largest")
    spe = {labels: families[f"finetune-strategies-{labels}"]["budget"] // EPOCHS for labels in (10, "all")}
    strategies = [finetune_job("strategy", s, labels, spe[labels], seed)
                  for labels in (10, "all") for s in finetune.STRATEGIES for seed in SEEDS]
    bn = [finetune_job("strategy", "last stage", 10, spe[10], seed, name=f"BatchNorm {mode} mode",
                       changes={"bn_frozen": mode}, source=False) for mode in ("eval", "train") for seed in SEEDS]
    regs = [dict(finetune_job("strategy", strategy, 10, spe[10], seed, name=f"{reg} ({recipe})", changes=change),
                 recipe=recipe, regulariser=reg)
            for recipe, strategy in RECIPES.items() for reg, change in REGULARISERS.items() for seed in SEEDS]
    stops = [dict(finetune_job("early-stopping", "layer-wise LRs", 10, spe[10], seed, name="early stopping (val 20%)",
                               source=False), recipe="careful", regulariser="early stopping (val 20%)")
             for seed in SEEDS]
    cvs = [finetune_job("cv", s, 10, spe[10], seed, source=False) for s in CV_CANDIDATES for seed in SEEDS]
    rows = runner.run(strategies + bn + regs + stops + cvs)  # each row carries its job's fields
    keep = ("seed", "labels_per_class", "accuracy", "precision_macro", "recall_macro", "f1_macro",
            "seconds", "source_accuracy", "steps", "best_epoch", "recipe", "regulariser")
    runs = [{"strategy": r["name"], **{k: r[k] for k in keep if k in r}} for r in rows if r["kind"] != "cv"]
    cv_rows = [{"strategy": r["name"], "seed": r["seed"], "labels_per_class": r["labels_per_class"],
                "cv_accuracy": r["cv_accuracy"], "cv_std": r["cv_std"], "folds": r["folds"]}
               for r in rows if r["kind"] == "cv"]
    steps = {f"{labels}": spe[labels] * EPOCHS for labels in spe}
    payload = {"smoke": False, "reference": True, "device": "cpu", "seeds": SEEDS, "target": TARGET,
               "runs": runs, "cv_choice": cv_rows,
               **provenance({"epochs": EPOCHS, "steps_per_epoch": spe, "steps": steps, "batch_size": 64})}
    write_json(REFERENCE / "02_fine_tuning.json", payload)
    return payload


def provenance(budget: dict | None = None) -> dict:
    import torch
    import torchvision

    import datl_helpers

    return {"date": datetime.date.today().isoformat(), "device": "cpu", "torch_threads_per_run": 1,
            "versions": {"datl_helpers": datl_helpers.__version__, "torch": torch.__version__,
                         "torchvision": torchvision.__version__, "python": platform.python_version()},
            "script": "data_scripts/converged_reference.py", **({"budget": budget} if budget else {})}


def write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")


TRANSFER_CONFIGS = [(t, m, k, a) for t, augments in (("mnistm", ("none", "heavy")), ("mnist", ("none",)))
                    for k in (10, 50, "all") for m in ("scratch", "finetune") for a in augments]


def budgets(runner: Runner, start: int, largest: int) -> dict:
    from datl_helpers import augment, budget

    curves = []
    for target, method, labels, preset in TRANSFER_CONFIGS:
        curves.append({"name": f"{target}: {method}, {labels} labels/class, augment {preset}", "target": target,
                       "method": method, "labels_per_class": labels, "augment": preset, "rows": [], "means": {}})
    steps = {c["name"]: [start, 2 * start] for c in curves}
    while True:
        jobs, owners = [], []
        for c in curves:
            for s in steps[c["name"]]:
                if s not in c["means"]:
                    for seed in SEEDS:
                        jobs.append(make_job(c["method"], c["labels_per_class"], augment.PRESETS[c["augment"]],
                                             augment.KINDS, s, seed, c["augment"], target=c["target"]))
                        owners.append(c)
        if not jobs:
            break
        print(f"budgets: {sorted({j['steps'] for j in jobs})} steps", flush=True)
        for c, row in zip(owners, runner.run(jobs)):
            c["rows"].append(row)
        for c in curves:
            c["means"] = budget.curve_means(c["rows"])
            nxt = budget.next_budget(c["means"])
            steps[c["name"]] = [nxt] if nxt is not None and nxt <= largest else []
    families = {}
    for target, method, labels in dict.fromkeys((c["target"], c["method"], c["labels_per_class"]) for c in curves):
        own = [c for c in curves if (c["target"], c["method"], c["labels_per_class"]) == (target, method, labels)]
        name = f"transfer-{method}-{labels}" + ("" if target == TARGET else f"-{target}")
        families[name] = {
            "description": f"{method}, {labels} labels/class: few-label transfer to {target}, batch 64, seeds {SEEDS}",
            "target": target, "method": method, "labels_per_class": labels,
            "tolerance_points": budget.TOLERANCE_POINTS, "budget": budget.family_budget(own), "curves": own}
    payload = {"families": families, **provenance()}
    write_json(REFERENCE / "budget_curves.json", payload)
    for name, family in families.items():
        print(f"{name}: converged budget {family['budget']} steps")
        print(budget.curve_table(family).to_string())
    return payload


def augmentation(runner: Runner, steps: dict[str, int] | None = None) -> dict:
    from datl_helpers import augment, budget, transfer

    steps = steps or {f"{m}-{k}": budget.transfer_steps(m, k) for m in ("scratch", "finetune") for k in (10, 50, "all")}
    steps.update({f"linear-probe-{k}": 0 for k in (10, 50, "all")})
    strengths = {**augment.PRESETS, "1": 1.0}
    methods = list(transfer.METHODS)
    grid = [make_job(m, k, s, augment.KINDS, steps[f"{m}-{k}"], seed, name)
            for k in (10, 50) for m in methods for name, s in strengths.items() for seed in SEEDS]
    kinds = [make_job(m, 10, augment.PRESETS["medium"], augment.KIND_SETS[kind], steps[f"{m}-10"], seed, kind)
             for m in methods for kind in ("generic", "domain") for seed in SEEDS]
    over = [make_job(m, k, s, kset, steps[f"{m}-{k}"], seed, name)
            for k in (10, 50, "all") for m in ("scratch", "finetune")
            for name, s, kset in (("none", 0.0, augment.KINDS), ("1", 1.0, augment.KINDS),
                                  ("rotation 180°", 1.0, augment.LABEL_CHANGING))
            for seed in SEEDS]
    # the budget this notebook once used (48 steps of batch 32): what a too-short budget concludes
    short = [make_job("scratch", 10, s, augment.KINDS, 48, seed, name, batch_size=32)
             for name, s in (("none", 0.0), ("heavy", augment.PRESETS["heavy"])) for seed in SEEDS]
    print(f"augmentation at {steps} steps", flush=True)
    rows = runner.run(grid + kinds + over + short)
    parts, start = [], 0
    for part in (grid, kinds, over, short):
        parts.append(rows[start: start + len(part)])
        start += len(part)
    grid_rows, kind_rows, over_rows, short_rows = parts
    presets = [r for r in grid_rows if r["augment"] in augment.PRESETS]
    full_strength = [r for r in grid_rows if r["augment"] not in augment.PRESETS]
    # the domain-gap comparison: none and every kind (the medium preset) from the grid, beside the kinds alone
    medium_all = [dict(r, augment="none" if r["strength"] == 0 else "all") for r in presets
                  if r["labels_per_class"] == 10 and r["augment"] in ("none", "medium")]
    payload = {
        "smoke": False, "reference": True, "seeds": SEEDS, "target": TARGET,
        "config": {**transfer.config_dict(transfer.TransferConfig()), "steps": steps, "probe_copies": 4},
        "presets": augment.PRESETS, "kind_sets": augment.KIND_SETS,
        "grid": presets, "sweep_extra": full_strength, "turnover": augment.turnover(grid_rows),
        "domain_gap": medium_all + kind_rows,
        "over_augmentation": over_rows, "short_budget": short_rows,
        **provenance({"steps": steps, "batch_size": 64}),
    }
    write_json(REFERENCE / "03_augmentation.json", payload)
    return payload


def labels(runner: Runner) -> dict:
    """Notebook 01 at converged budgets: label-efficiency curves on mnistm and mnist (scratch, linear
    probe, fine-tuning; 1, 5, 10, 50 and all labels/class), the stage probe and the preprocessing
    mismatch (logistic probes, fitted to convergence)."""
    import torch

    from datl_helpers import budget, data, features, models, transfer

    targets, counts = ("mnistm", "mnist"), (1, 5, 10, 50, "all")
    steps = {f"{m}-{k}-{t}": budget.transfer_steps(m, k, augmented=False, target=t)
             for t in targets for k in counts for m in ("scratch", "finetune")}
    jobs = [make_job(m, k, 0.0, [], steps.get(f"{m}-{k}-{t}", 0), seed, "none", target=t)
            for t in targets for k in counts for m in transfer.METHODS for seed in SEEDS]
    print(f"label efficiency at {steps} steps", flush=True)
    keep = ("target", "labels_per_class", "method", "seed", "labels", "target_accuracy", "macro_f1", "seconds", "steps")
    curve_rows = [{k: r[k] for k in keep} for r in runner.run(jobs)]
    torch.set_num_threads(1)  # the probes below, like every run above, on one thread
    stage_rows, pre_rows = [], []
    for t in targets:
        domain = data.load_domain(t)
        stage_rows += [{"target": t, **row} for row in features.stage_probe(models.load_pretrained(), domain, 10, SEEDS,
                                                                           device="cpu")]
        pre_rows += [{"target": t, **row} for row in features.preprocessing_mismatch(models.load_pretrained(), domain, 10,
                                                                                      SEEDS, device="cpu")]
    payload = {"smoke": False, "reference": True, "device": "cpu", "seeds": SEEDS, "steps": steps,
               "label_efficiency": curve_rows, "stage_probe": stage_rows, "preprocessing": pre_rows,
               **provenance({"steps": steps, "batch_size": 64})}
    write_json(REFERENCE / "01_feature_extraction.json", payload)
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["budgets", "augmentation", "labels", "finetuning"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=ROOT / ".datl_cache" / "reference_runs.jsonl")
    parser.add_argument("--start", type=int, default=100, help="the first budget of a curve (steps)")
    parser.add_argument("--largest", type=int, default=3200, help="stop doubling past this budget")
    parser.add_argument("--steps", nargs=6, type=int,
                        metavar=("SCRATCH10", "SCRATCH50", "SCRATCH_ALL", "FINETUNE10", "FINETUNE50", "FINETUNE_ALL"),
                        help="augmentation: train at these budgets instead of the converged ones")
    args = parser.parse_args(argv)
    runner = Runner(args.cache, args.workers)
    start = time.perf_counter()
    if args.what == "budgets":
        budgets(runner, args.start, args.largest)
    elif args.what == "labels":
        labels(runner)
    elif args.what == "finetuning":
        finetuning(runner, 8, args.largest)
    else:
        names = ("scratch-10", "scratch-50", "scratch-all", "finetune-10", "finetune-50", "finetune-all")
        augmentation(runner, dict(zip(names, args.steps)) if args.steps else None)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
