"""Measure the converged budgets, then reproduce the experiments at them: the reference results.

    python data_scripts/converged_reference.py budgets        # -> reference_results/budget_curves.json
    python data_scripts/converged_reference.py augmentation   # -> reference_results/03_augmentation.json
    python data_scripts/converged_reference.py labels         # -> reference_results/01_feature_extraction.json
    python data_scripts/converged_reference.py finetuning     # -> reference_results/02_fine_tuning.json
    python data_scripts/converged_reference.py adaptation --workers 1  # -> reference_results/04_domain_adversarial.json
    python data_scripts/converged_reference.py semi --workers 1  # -> reference_results/04_semi_supervised.json
    python data_scripts/converged_reference.py paper --start 1000 # -> reference_results/04_paper_protocol.json
    python data_scripts/converged_reference.py robustness --workers 1  # -> reference_results/06_adversarial_robustness.json

``budgets`` trains each configuration at doubling budgets (from ``--start`` steps, 3 seeds) until
doubling moves the mean by less than one point (:mod:`datl_helpers.core.budget`). The families:
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

``adaptation`` measures the budget curves of every adaptation method of notebook 04 on its three
pairs (from 300 steps, doubling; added to ``budget_curves.json`` as ``adapt-<method>``), then
writes every method on every pair at its converged budget, what each change of the protocol is
worth (source-only on ``syn -> mnist``), the backbone's zero-shot accuracy and the alignment and
model-selection diagnostics (``04_domain_adversarial.json``).

``semi`` runs DANN with 1, 5 and 10 labelled target images per class (at DANN's budget on the pair,
checked by doubling it at 10 labels/class: family ``adapt-semi-dann``), beside fine-tuning on those
images alone from notebook 01's reference (``04_semi_supervised.json``).

``paper`` measures source-only and DANN under the DANN paper's protocol (its MNIST network from
random weights, SGD, lambda up to 1: ``dann.paper_config``) on ``mnist -> mnistm``: budget curves
(families ``adapt-scratch-<method>``), then both at their converged budget, beside the paper's
numbers (``04_paper_protocol.json``).

``robustness`` measures the budget curves of notebook 06's trained models (clean accuracy and
PGD-10 accuracy at 8/255, from 100 steps, doubling; added as ``robust-<method>-<backbone>-<training>``),
then trains every model of ``robust.MODELS`` at its converged budget (3 seeds, mnistm, 10
labels/class) and attacks it with FGSM and PGD-10 at 2, 4 and 8/255 on 500 test images, with the
gradient-masking sanity checks on 200 of them for seed 0 (``06_adversarial_robustness.json``).

Runs go to ``--workers`` processes, each with (cores / workers) torch threads (on 2 cores, two
one-thread processes did about 1.75x the work of one two-thread process for the small transfer
runs, but not for the adaptation runs, which ran best as one two-thread process; the thread
count changes the last digits of a result, so it is recorded). Every finished run is appended to ``--cache`` (JSON lines):
an interrupted script goes on where it stopped, and the two commands share runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "datl_helpers" / "reference_results"
SEEDS = [0, 1, 2]
TARGET = "mnistm"


def _init_worker(threads: int = 1) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ["DATL_QUIET"] = "1"


def run_job(job: dict) -> dict:
    """One run described by ``job`` (a plain dict, so it can cross process boundaries)."""
    if job.get("kind") in FINETUNE_KINDS:
        return {**run_finetune_job(job), **job}  # the job's own fields win: they are its cache key
    if job.get("kind") == ADAPT_KIND:
        return {**run_adapt_job(job), **job}
    if job.get("kind") == ROBUST_KIND:
        return {**run_robust_job(job), **job}
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
    if job.get("kind") == ADAPT_KIND:  # target_labels only where a run has it (the semi-supervised variant)
        return json.dumps({k: job[k] for k in (*ADAPT_KEYS, "target_labels") if k in job}, sort_keys=True)
    if job.get("kind") == ROBUST_KIND:
        return json.dumps({k: job[k] for k in ROBUST_KEYS}, sort_keys=True)
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

    def __init__(self, cache: Path, workers: int, threads: int | None = None):
        self.cache, self.workers = cache, workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)  # torch threads per worker
        self.done: dict[str, dict] = {}
        if cache.exists():
            for line in cache.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.done[job_key(row)] = row

    def reuse(self, rows: list[dict]) -> int:
        """Take runs measured before (e.g. by the shipped reference) as done, in memory only: the
        cache file keeps what this machine measured. Returns how many were new."""
        fresh = {job_key(r): r for r in rows if job_key(r) not in self.done}
        self.done.update(fresh)
        return len(fresh)

    def run(self, jobs: list[dict], need: tuple[str, ...] = ()) -> list[dict]:
        """Every job's row, running the jobs not done yet (or done without one of the keys ``need``)."""
        todo = {job_key(j): j for j in jobs
                if job_key(j) not in self.done or any(k not in self.done[job_key(j)] for k in need)}
        if todo:
            print(f"  {len(todo)} runs to do ({len(jobs) - len(todo)} from the cache)", flush=True)
            start = time.perf_counter()
            with ProcessPoolExecutor(self.workers, initializer=_init_worker, initargs=(self.threads,)) as pool:
                futures = [pool.submit(run_job, j) for j in todo.values()]
                for i, fut in enumerate(as_completed(futures), 1):
                    row = fut.result()
                    self.done[job_key(row)] = row
                    self.cache.parent.mkdir(parents=True, exist_ok=True)
                    with self.cache.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    what = f"{row['name']} ({row['kind']})" if "kind" in row else f"{row['method']} {row['augment']}"
                    labels = f" {row['labels_per_class']}/class" if "labels_per_class" in row else ""
                    score = row.get("target_accuracy", row.get("accuracy", row.get("cv_accuracy")))
                    print(f"  [{i}/{len(todo)} {time.perf_counter() - start:.0f} s] {what}{labels}"
                          f" {row['steps']} steps seed {row['seed']}: {100 * score:.1f} %", flush=True)
        return [{**self.done[job_key(j)], **j} if j.get("kind") in (*FINETUNE_KINDS, ADAPT_KIND, ROBUST_KIND) else
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
        curves = [{"name": f"{TARGET}: {s}, {labels} labels/class", "strategy": s, "labels_per_class": labels}
                  for s in finetune.STRATEGIES]
        budget.measure_curves(  # budgets in steps; a job trains EPOCHS epochs of steps // EPOCHS steps
            curves, start * EPOCHS,
            lambda c, steps: [finetune_job("strategy", c["strategy"], c["labels_per_class"], steps // EPOCHS, seed)
                              for seed in SEEDS],
            runner.run, largest, keep=lambda row: {**row, "target_accuracy": row["accuracy"]},
            label=f"strategies, {labels} labels/class")
        families[f"finetune-strategies-{labels}"] = {
            "description": f"notebook 02's fine-tuning strategies, {labels} labels/class of {TARGET}, "
                           f"{EPOCHS} epochs, batch 64, seeds {SEEDS}",
            "target": TARGET, "method": "finetune-strategies", "labels_per_class": labels,
            "tolerance_points": budget.TOLERANCE_POINTS, "budget": budget.family_budget(curves), "curves": curves}
    add_families(families)

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
    keep = ("seed", "labels_per_class", "accuracy", "macro_precision", "macro_recall", "macro_f1",
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


# --------------------------------------------------------------------------------------------
# Notebook 04: domain adaptation
# --------------------------------------------------------------------------------------------

ADAPT_KIND = "adapt"
ADAPT_KEYS = ("kind", "method", "source", "target", "steps", "seed", "protocol")
PAIRS = (("mnist", "mnistm"), ("syn", "mnist"), ("syn", "digits"))


def adapt_job(method: str, source: str, target: str, steps: int, seed: int, protocol: dict | None = None,
              target_labels: int = 0) -> dict:
    """One adaptation run: ``protocol`` holds the DannConfig fields that differ from the defaults;
    ``target_labels`` > 0 is the semi-supervised variant (a key only then, so older runs keep theirs)."""
    job = {"kind": ADAPT_KIND, "name": f"{method} {source} -> {target}", "method": method, "source": source,
           "target": target, "pair": f"{source} -> {target}", "steps": steps, "seed": seed,
           "protocol": protocol or {}}
    if target_labels:
        job.update(target_labels=target_labels, name=f"{method} + {target_labels} labels/class {source} -> {target}")
    return job


def run_adapt_job(job: dict) -> dict:
    import dataclasses

    from datl_helpers import adaptation, dann, provenance

    config = dataclasses.replace(dann.DannConfig(), steps=job["steps"], **job["protocol"])
    row = adaptation.run_method(_domain(job["source"]), _domain(job["target"]), job["method"], seed=job["seed"],
                                config=config, device="cpu", target_labels=job.get("target_labels", 0))
    return {**row, "config": provenance.config_dict(config)}


def curve_row(row: dict) -> dict:
    """What a budget curve keeps of an adaptation run."""
    return {k: row[k] for k in ("steps", "seed", "target_accuracy", "source_accuracy", "seconds")}


def adapt_curves(runner: Runner, methods, pairs, protocol: dict, start: int, largest: int, family: str,
                 description: str) -> dict[str, dict]:
    """Budget curves of ``methods`` on ``pairs``, doubling from ``start`` steps until converged:
    one family per method, one curve per pair."""
    from datl_helpers import budget

    curves = {m: [{"name": f"{m}: {s} -> {t}", "method": m, "source": s, "target": t} for s, t in pairs]
              for m in methods}
    budget.measure_curves(
        [c for own in curves.values() for c in own], start,
        lambda c, steps: [adapt_job(c["method"], c["source"], c["target"], steps, seed, protocol) for seed in SEEDS],
        runner.run, largest, keep=curve_row, label=family)
    return {f"{family}-{m}": {"description": f"{m}: {description}, batch 64 per domain, seeds {SEEDS}",
                              "method": m, "protocol": protocol, "tolerance_points": budget.TOLERANCE_POINTS,
                              "budget": budget.family_budget(own), "curves": own}
            for m, own in curves.items()}


# What keeps the backbone's knowledge, one change at a time (source-only on the pair where the naive
# protocol lost most); None is the protocol itself, dann.DannConfig's defaults
CAUSES_PAIR = ("syn", "mnist")
PROTOCOL_STEPS = {
    "naive: new head, mixed BatchNorm, no augmentation": {"head": "new", "augment": False, "bn": "mixed"},
    "+ the backbone's own head": {"head": "own", "augment": False, "bn": "mixed"},
    "+ its colour augmentation": {"head": "own", "augment": True, "bn": "mixed"},
    "+ BatchNorm per domain (the protocol)": None,
}
SELECTION_LAMBDAS = (0.1, 0.3, 1.0)  # notebook 04's label-free model selection: candidates beside source-only


def adapt_diagnostics(steps: dict[str, int], protocol: dict) -> tuple[list[dict], list[dict]]:
    """Notebook 04's diagnostics on the first pair, seed 0, each method at that pair's converged
    budget (``steps``): the proxy A-distance of the backbone's, source-only's and DANN's features,
    and the label-free selection among source-only and DANN at each of SELECTION_LAMBDAS (trained
    here, in this process: the runs keep no models)."""
    import dataclasses

    import torch

    from datl_helpers import dann, models, selection

    torch.set_num_threads(os.cpu_count() or 1)
    source, target = (_domain(n) for n in PAIRS[0])
    config = dataclasses.replace(dann.DannConfig(), steps=steps["dann"], **protocol)
    so_config = dataclasses.replace(config, steps=steps["source-only"])
    trained = {"source-only": dann.train_dann(source, target, "source-only", so_config, seed=0, device="cpu")[0]}
    for lam in SELECTION_LAMBDAS:
        cfg = dataclasses.replace(config, lambda_max=lam)
        trained[f"dann λ={lam:g}"] = dann.train_dann(source, target, "dann", cfg, seed=0, device="cpu")[0]
    default = f"dann λ={config.lambda_max:g}"
    pad_rows, _ = selection.alignment({"pretrained backbone": models.load_pretrained(), "source-only":
                                  trained["source-only"], "dann": trained[default]}, source, target, device="cpu")
    selection_rows = [{"candidate": name, **selection.selection_criteria(model, source, target, seed=0, device="cpu")}
                      for name, model in trained.items()]
    return pad_rows, selection_rows


def zero_shot(pairs) -> dict[str, float]:
    """The shipped backbone's accuracy on each pair's target with its own head: no training, no seed."""
    from datl_helpers import models, train

    model = models.load_pretrained()
    return {f"{s} -> {t}": train.evaluate(model, _domain(t).x_test, _domain(t).y_test, device="cpu")["accuracy"]
            for s, t in pairs}


def shipped_adaptation_runs() -> list[dict]:
    """The adaptation runs the shipped references already hold, as cache rows: every budget-curve
    row (marked ``partial``: curves keep fewer keys than the table), every run of notebook 04's
    table, of the protocol's causes, of the paper's protocol and of the semi-supervised variant.
    ``--from-shipped`` (adaptation, paper, semi) goes on from them instead of from scratch."""
    curves = json.loads((REFERENCE / "budget_curves.json").read_text())["families"]
    reference = json.loads((REFERENCE / "04_domain_adversarial.json").read_text())
    rows = []
    for name, family in curves.items():
        if name.startswith("adapt-"):  # the semi-supervised family's runs are its own (target_labels)
            rows += [{**r, **adapt_job(family["method"], c["source"], c["target"], r["steps"], r["seed"],
                                        family["protocol"], family.get("target_labels", 0)), "partial": True}
                     for c in family["curves"] for r in c["rows"]]
    for r in reference["runs"]:
        rows.append({**r, **adapt_job(r["method"], *r["pair"].split(" -> "), r["steps"], r["seed"])})
    for r in reference["protocol_steps"]:
        protocol = PROTOCOL_STEPS[r["protocol_step"]] or {}
        rows.append({**r, **adapt_job(r["method"], *r["pair"].split(" -> "), r["steps"], r["seed"], protocol)})
    paper_runs = json.loads((REFERENCE / "04_paper_protocol.json").read_text())["runs"]
    rows += [{**r, **adapt_job(r["method"], *r["pair"].split(" -> "), r["steps"], r["seed"], paper_protocol())}
             for r in paper_runs]
    semi_runs = json.loads((REFERENCE / "04_semi_supervised.json").read_text())["runs"]
    rows += [{**r, **adapt_job(r["method"], *r["pair"].split(" -> "), r["steps"], r["seed"],
                               target_labels=r["target_labels"])} for r in semi_runs]
    return rows


REPRODUCE_POINTS = 0.5  # another CPU may change the last digits of a run (a few test images), not more


def reused_threads(new: int, shipped: dict) -> int | dict:
    """The torch threads per run of a reference that reuses ``shipped``'s runs: one number where every
    run used the same, else the new runs' and the distinct counts of the reused ones."""
    def counts(value) -> set[int]:  # a number, a list of them, or {what: either} (older references nest)
        if isinstance(value, int):
            return {value}
        return set().union(*map(counts, value.values() if isinstance(value, dict) else value))

    old = counts(shipped["torch_threads_per_run"])
    return new if old == {new} else {"new runs": new, "reused runs": sorted(old)}


def check_shipped_reproduces(reference: dict, protocol: dict | None, command: str) -> dict:
    """Re-run the first run of the shipped ``reference`` (trained under ``protocol``), with its
    thread count, and stop unless the result is within REPRODUCE_POINTS of it: runs are only reused
    from code that still gives the same numbers (the same CPU gives the same digits; another may
    move a test image or two). Returns what was compared, for the provenance."""
    import torch

    first = reference["runs"][0]
    # the first run's threads: the reference's one number, or (after an earlier --from-shipped, when
    # new and reused runs differ) the number its own check recorded
    threads = reference["torch_threads_per_run"]
    if isinstance(threads, dict):
        threads = reference["reused"]["check"]["threads"]
    torch.set_num_threads(threads)
    row = run_adapt_job(adapt_job(first["method"], *first["pair"].split(" -> "), first["steps"], first["seed"],
                                  protocol, first.get("target_labels", 0)))
    moved = 100 * (row["target_accuracy"] - first["target_accuracy"])
    what = f"{first['method']} {first['pair']} seed {first['seed']} {first['steps']} steps"
    if abs(moved) > REPRODUCE_POINTS:
        raise SystemExit(f"the shipped run {what} gave {100 * first['target_accuracy']:.1f} % and "
                         f"{100 * row['target_accuracy']:.1f} % now: the code changed since the reference was "
                         f"measured; run `{command}` without --from-shipped")
    print(f"shipped run reproduced within {moved:+.1f} points: {what}", flush=True)
    return {"run": what, "shipped": first["target_accuracy"], "now": row["target_accuracy"], "threads": threads}


def reuse_shipped(runner: Runner, reference_file: str, protocol: dict | None, command: str) -> tuple[dict, dict]:
    """``--from-shipped``: check that the shipped ``reference_file``'s first run still reproduces,
    then take every shipped adaptation run as done. Returns that reference and the check."""
    shipped = json.loads((REFERENCE / reference_file).read_text())
    check = check_shipped_reproduces(shipped, protocol, command)
    print(f"reusing {runner.reuse(shipped_adaptation_runs())} shipped runs", flush=True)
    return shipped, check


def reuse_provenance(runner: Runner, budget: dict, shipped: dict | None, check: dict | None) -> dict:
    """:func:`provenance`, preceded by which reference's runs were reused (when ``shipped``), with the
    thread counts of the new and the reused runs."""
    if shipped is None:
        return provenance(budget, runner.threads)
    return {"reused": {"from_reference_of": shipped["date"], "check": check},
            **provenance(budget, reused_threads(runner.threads, shipped))}


def adaptation(runner: Runner, start: int, largest: int, from_shipped: bool = False) -> dict:
    """Notebook 04: the budget curves of every adaptation method on every pair (from the
    backbone), then every method on every pair at that pair's converged budget, the protocol's
    causes and the diagnostics. With ``from_shipped`` the runs of the shipped reference are reused
    (after one of them is reproduced), so only longer budgets and missing runs are trained."""
    from datl_helpers import adaptation as methods
    from datl_helpers import budget, dann, provenance

    protocol = {}  # the defaults of dann.DannConfig are the protocol
    shipped, check = reuse_shipped(runner, "04_domain_adversarial.json", protocol, "adaptation") if from_shipped \
        else (None, None)
    families = adapt_curves(runner, methods.METHODS, PAIRS, protocol, start, largest, "adapt",
                            "adaptation from the shipped backbone on notebook 04's pairs")
    add_families(families)
    # each method on each pair at that pair's converged budget (budget.adapt_budget(method, pair));
    # a curve still rising at --largest runs at the largest budget measured, and the reference says
    # so (its numbers are then lower bounds of a rising curve)
    pair_name = "{} -> {}".format
    steps = {m: {pair_name(c["source"], c["target"]): budget.converged_budget(c["means"]) or max(c["means"])
                 for c in families[f"adapt-{m}"]["curves"]} for m in methods.METHODS}
    rising = [f"{c['name']}" for m in methods.METHODS for c in families[f"adapt-{m}"]["curves"]
              if budget.converged_budget(c["means"]) is None]
    unconverged = [m for m in methods.METHODS if families[f"adapt-{m}"]["budget"] is None]
    if rising:
        print(f"NOT converged up to {largest} steps: {', '.join(rising)}; those runs use the largest budget")
    keep = ("pair", "method", "seed", "steps", "target_accuracy", "source_accuracy", "domain_accuracy", "macro_f1",
            "seconds")
    jobs = [adapt_job(m, s, t, steps[m][pair_name(s, t)], seed, protocol)
            for s, t in PAIRS for m in methods.METHODS for seed in SEEDS]
    runs = [{k: r[k] for k in keep} for r in runner.run(jobs, need=keep)]
    so_steps = steps["source-only"][pair_name(*CAUSES_PAIR)]
    causes = [{**r, "protocol_step": name} for name, step in PROTOCOL_STEPS.items() for r in runner.run(
        [adapt_job("source-only", *CAUSES_PAIR, so_steps, seed, step or protocol) for seed in SEEDS], need=keep)]
    causes = [{k: r[k] for k in (*keep, "protocol_step")} for r in causes]
    first = pair_name(*PAIRS[0])
    diag_steps = {m: steps[m][first] for m in ("source-only", "dann")}  # the first pair's own budgets
    if shipped is not None and shipped["diagnostics"]["steps"] == diag_steps:
        pad_rows, selection_rows = shipped["proxy_a_distance"], shipped["selection"]  # the same runs
    else:
        pad_rows, selection_rows = adapt_diagnostics(diag_steps, protocol)
    payload = {"smoke": False, "reference": True, "device": "cpu", "seeds": SEEDS, "runs": runs,
               "zero_shot": zero_shot(PAIRS), "protocol_steps": causes, "proxy_a_distance": pad_rows,
               "selection": selection_rows,
               "config": provenance.config_dict(dann.DannConfig()),
               "diagnostics": {"pair": first, "seed": 0, "steps": diag_steps}, "not_converged": unconverged,
               "not_converged_curves": rising,
               **reuse_provenance(runner, {"steps": steps, "batch_size": dann.DannConfig().batch_size}, shipped, check)}
    write_json(REFERENCE / "04_domain_adversarial.json", payload)
    return payload


def paper_protocol() -> dict:
    """The DannConfig fields of the paper's protocol (dann.paper_config) that differ from the defaults."""
    import dataclasses

    from datl_helpers import dann

    default, paper = dataclasses.asdict(dann.DannConfig()), dataclasses.asdict(dann.paper_config())
    return {k: v for k, v in paper.items() if v != default[k] and k != "steps"}


def paper(runner: Runner, start: int, largest: int, from_shipped: bool = False) -> dict:
    """Notebook 04's comparison with the paper: source-only and DANN from random weights under the
    paper's protocol on ``mnist -> mnistm``, budget curves from ``start`` steps (3 seeds, doubling;
    families ``adapt-scratch-<method>``), then both at their converged budget. With ``from_shipped``
    the shipped runs are reused (after one of them is reproduced): only longer budgets are trained."""
    from datl_helpers import budget, dann, provenance

    protocol = paper_protocol()
    shipped, check = reuse_shipped(runner, "04_paper_protocol.json", protocol, "paper") if from_shipped \
        else (None, None)
    pair = PAIRS[0]
    families = adapt_curves(runner, ("source-only", "dann"), [pair], protocol, start, largest, "adapt-scratch",
                            "the paper's protocol from random weights (dann.paper_config)")
    add_families(families)
    keep = ("pair", "method", "seed", "steps", "target_accuracy", "source_accuracy", "domain_accuracy", "macro_f1",
            "seconds")
    steps = {m: budget.converged_budget(f["curves"][0]["means"]) or max(f["curves"][0]["means"])
             for m, f in ((f["method"], f) for f in families.values())}
    rows = runner.run([adapt_job(m, *pair, steps[m], seed, protocol) for m in steps for seed in SEEDS], need=keep)
    adapt04 = json.loads((REFERENCE / "04_domain_adversarial.json").read_text())
    from_backbone = [{k: r[k] for k in ("pair", "method", "seed", "steps", "target_accuracy")} for r in adapt04["runs"]
                     if r["pair"] == "{} -> {}".format(*pair) and r["method"] in steps]
    payload = {"reference": True, "device": "cpu", "seeds": SEEDS, "pair": "{} -> {}".format(*pair),
               "runs": [{k: r[k] for k in keep} for r in rows], "paper": dann.PAPER_RESULTS,
               "from_backbone": from_backbone, "from_backbone_source": f"04_domain_adversarial.json ({adapt04['date']})",
               "config": provenance.config_dict(dann.paper_config()),
               "not_converged": [m for m, f in ((f["method"], f) for f in families.values()) if f["budget"] is None],
               **reuse_provenance(runner, {"steps": steps, "batch_size": dann.paper_config().batch_size}, shipped,
                                  check)}
    write_json(REFERENCE / "04_paper_protocol.json", payload)
    return payload


SEMI_PAIRS = (("mnist", "mnistm"), ("syn", "mnist"))  # targets whose fine-tuning curves notebook 01 measured
SEMI_LABELS = (1, 5, 10)


def semi_supervised(runner: Runner, largest: int, pairs=SEMI_PAIRS, from_shipped: bool = False) -> dict:
    """Notebook 04's semi-supervised variant: DANN with 1, 5 and 10 labelled target images per class
    on SEMI_PAIRS, beside fine-tuning the backbone on those images alone (the same images: notebook
    01's converged reference, ``data.few_labels`` with the same seeds). The budget: DANN's budget on
    the pair, checked by doubling it at 10 labels/class (family ``adapt-semi-dann``). ``pairs``: a
    subset of SEMI_PAIRS (``--pairs mnist:mnistm``). With ``from_shipped`` the shipped runs are
    reused (after one of them is reproduced): only missing pairs and budgets are trained."""
    from datl_helpers import budget

    shipped, check = reuse_shipped(runner, "04_semi_supervised.json", None, "semi") if from_shipped else (None, None)
    keep = ("pair", "method", "target_labels", "seed", "steps", "target_accuracy", "source_accuracy",
            "domain_accuracy", "macro_f1", "seconds")
    k_curve = max(SEMI_LABELS)
    curves = [{"name": f"dann + {k_curve} labels/class: {s} -> {t}", "method": "dann", "source": s, "target": t,
               "target_labels": k_curve} for s, t in pairs]
    budget.measure_curves(  # from DANN's own budget on the pair, checked by doubling
        curves, lambda c: budget.adapt_budget("dann", f"{c['source']} -> {c['target']}")[0],
        lambda c, n: [adapt_job("dann", c["source"], c["target"], n, seed, target_labels=k_curve) for seed in SEEDS],
        runner.run, largest, keep=curve_row, label="adapt-semi-dann")
    add_families({"adapt-semi-dann": {
        "description": f"DANN with {k_curve} labelled target images per class beside the unlabelled ones, from the "
                       f"shipped backbone, batch 64 per domain, seeds {SEEDS}",
        "method": "dann", "target_labels": k_curve, "protocol": {}, "tolerance_points": budget.TOLERANCE_POINTS,
        "budget": budget.family_budget(curves), "curves": curves}})
    steps = {f"{c['source']} -> {c['target']}": budget.converged_budget(c["means"]) or max(c["means"]) for c in curves}
    jobs = [adapt_job("dann", s, t, steps[f"{s} -> {t}"], seed, target_labels=k)
            for s, t in pairs for k in SEMI_LABELS for seed in SEEDS]
    runs = [{k: r[k] for k in keep} for r in runner.run(jobs, need=keep)]
    labels01 = json.loads((REFERENCE / "01_feature_extraction.json").read_text())
    targets = {t: f"{s} -> {t}" for s, t in pairs}
    finetune = [{"pair": targets[r["target"]], "method": "finetune on the labels alone",
                 "target_labels": r["labels_per_class"], **{k: r[k] for k in ("seed", "steps", "target_accuracy")}}
                for r in labels01["label_efficiency"] if r["method"] == "finetune" and r["target"] in targets
                and r["labels_per_class"] in SEMI_LABELS]
    adapt04 = json.loads((REFERENCE / "04_domain_adversarial.json").read_text())
    unsupervised = [{**{k: r[k] for k in ("pair", "method", "seed", "steps", "target_accuracy")}, "target_labels": 0}
                    for r in adapt04["runs"] if r["pair"] in targets.values()
                    and r["method"] in ("source-only", "dann", "target-oracle")]
    payload = {"reference": True, "device": "cpu", "seeds": SEEDS, "labels_per_class": list(SEMI_LABELS),
               "runs": runs, "finetune": finetune, "unsupervised": unsupervised,
               "sources": {"finetune": f"01_feature_extraction.json ({labels01['date']})",
                           "unsupervised": f"04_domain_adversarial.json ({adapt04['date']})"},
               "not_converged": [c["name"] for c in curves if budget.converged_budget(c["means"]) is None],
               **reuse_provenance(runner, {"steps": steps, "batch_size": 64}, shipped, check)}
    write_json(REFERENCE / "04_semi_supervised.json", payload)
    return payload


# --------------------------------------------------------------------------------------------
# Notebook 06: adversarial robustness
# --------------------------------------------------------------------------------------------

ROBUST_KIND = "robust"
ROBUST_KEYS = ("kind", "method", "backbone", "adversarial", "labels_per_class", "steps", "seed", "eps", "attacks",
               "n_test", "sanity_images")
ROBUST_LABELS = 10
CURVE_EPS = "8/255"  # the budget curves follow clean accuracy and PGD-10 accuracy at this radius


def robust_job(name: str, steps: int, seed: int, eps=("0/255", "2/255", "4/255", "8/255"), attacks=("fgsm", "pgd"),
               sanity_images: int = 0) -> dict:
    from datl_helpers import robust

    method, backbone, adversarial = robust.MODELS[name]
    return {"kind": ROBUST_KIND, "name": name, "method": method, "backbone": backbone, "adversarial": adversarial,
            "labels_per_class": ROBUST_LABELS, "steps": steps, "seed": seed, "eps": list(eps),
            "attacks": list(attacks), "n_test": 500, "sanity_images": sanity_images, "target": TARGET,
            "source": "mnist"}


def run_robust_job(job: dict) -> dict:
    from datl_helpers import robust

    config = robust.RobustConfig(steps=job["steps"] or None, adversarial=job["adversarial"],
                                 eps=tuple(robust.parse_eps(e) for e in job["eps"]), attacks=tuple(job["attacks"]),
                                 n_test=job["n_test"], sanity_images=job["sanity_images"])
    source = _domain(job["source"]) if job["method"] in ("dann", "source-only") else None
    row = robust.run_robust(_domain(job["target"]), job["method"], job["labels_per_class"], backbone=job["backbone"],
                            config=config, seed=job["seed"], device="cpu", source=source)
    return {**row, "target_accuracy": row["clean_accuracy"]}


def robust_curves(runner: Runner, names, start: int, largest: int) -> dict[str, dict]:
    """Budget curves of notebook 06's trained models: clean accuracy and PGD-10 accuracy at
    ``CURVE_EPS``, doubling from ``start`` steps until both move by less than a point."""
    from datl_helpers import budget, robust

    values = (("clean accuracy", "target_accuracy"), (f"PGD-10 {CURVE_EPS}", "robust_accuracy"))

    def next_for(model: dict) -> int | None:  # both curves must converge: the larger of their next budgets
        nxt = [budget.next_budget(budget.curve_means(model["rows"], value)) for _, value in values]
        return max((b for b in nxt if b is not None), default=None)

    measured = budget.measure_curves(
        [{"name": n} for n in names], start,
        lambda model, steps: [robust_job(model["name"], steps, seed, eps=("0/255", CURVE_EPS), attacks=("pgd",))
                              for seed in SEEDS],
        runner.run, largest, next_for=next_for, label="robustness curves",
        keep=lambda row: {"steps": row["steps"], "seed": row["seed"], "target_accuracy": row["clean_accuracy"],
                          "robust_accuracy": row["robust_accuracy"]["pgd"][CURVE_EPS], "seconds": row["seconds"]})
    curves = {m["name"]: [{"name": f"{m['name']}: {what}", "value": value, "rows": m["rows"],
                           "means": budget.curve_means(m["rows"], value)} for what, value in values]
              for m in measured}
    families = {}
    for n in names:
        method, backbone, adversarial = robust.MODELS[n]
        families[budget.robust_family(method, backbone, adversarial)] = {
            "description": f"{n}: mnistm, {ROBUST_LABELS} labels/class, batch 64, clean and PGD-10 {CURVE_EPS} "
                           f"accuracy on 500 test images, seeds {SEEDS}",
            "model": n, "backbone": backbone, "adversarial": adversarial,  # no "method"/"target": not a transfer family
            "tolerance_points": budget.TOLERANCE_POINTS,
            "budget": budget.family_budget(curves[n]), "curves": curves[n]}
    return families


def robustness(runner: Runner, start: int, largest: int) -> dict:
    """Notebook 06: budget curves of the trained models, then every model of ``robust.MODELS`` at its
    converged budget, 3 seeds, FGSM and PGD-10 at 2, 4, 8/255, sanity checks for seed 0."""
    from datl_helpers import budget, models, robust

    trained = [n for n, (m, _, _) in robust.MODELS.items() if m == "finetune"]
    add_families(robust_curves(runner, trained, start, largest))
    steps = {n: budget.robust_steps(*robust.MODELS[n]) for n in robust.MODELS}
    jobs = [robust_job(n, steps[n], seed, sanity_images=200 if seed == 0 else 0)
            for n in robust.MODELS for seed in SEEDS]
    rows = [{k: r[k] for k in ("name", "method", "backbone", "adversarial", "labels_per_class", "steps", "seed",
                               "clean_accuracy", "robust_accuracy", "train_seconds", "seconds")}
            | ({"sanity": r["sanity"]} if "sanity" in r else {}) for r in runner.run(jobs)]
    backbones = {}
    for name, file in robust.BACKBONES.items():
        info = models.pretrained_info(file)
        backbones[name] = {"test_accuracy": info["test_accuracy"], "robust_accuracy": info.get("robust_accuracy"),
                           "adversarial": info["training"].get("adversarial")}
    payload = {"reference": True, "target": TARGET, "labels_per_class": ROBUST_LABELS, "seeds": SEEDS,
               "steps": steps, "n_test": 500, "pgd_steps": 10, "sanity_images": 200, "runs": rows,
               "backbones": backbones, **provenance(budget=steps, threads=runner.threads)}
    write_json(REFERENCE / "06_adversarial_robustness.json", payload)
    return payload


def add_families(families: dict) -> None:
    """Add (or replace) budget-curve families in the shipped ``budget_curves.json`` and print them."""
    from datl_helpers import budget

    path = REFERENCE / "budget_curves.json"
    payload = json.loads(path.read_text())
    payload["families"].update(families)
    write_json(path, payload)
    for name, family in families.items():
        print(f"{name}: converged budget {family['budget']} steps")
        print(budget.curve_table(family).to_string())


def provenance(budget: dict | None = None, threads: int | dict = 1) -> dict:
    """The date, device, thread count, versions, command, commit and script of a reference (its
    ``code`` is added by :func:`write_json`, which knows the file)."""
    from datl_helpers import provenance as prov

    return {**prov.record(None, threads, script="data_scripts/converged_reference.py"),
            **({"budget": budget} if budget else {})}


def write_json(path: Path, payload: dict) -> None:
    """Write a reference atomically, with a sha256 of every source file its runs depend on."""
    from datl_helpers import provenance as prov
    from datl_helpers.cli.reproduce import modules_of

    prov.write_json(path, {**payload, "code": prov.code_hashes(modules_of(path.name))})
    print(f"wrote {path}")


TRANSFER_CONFIGS = [(t, m, k, a) for t, augments in (("mnistm", ("none", "heavy")), ("mnist", ("none",)))
                    for k in (10, 50, "all") for m in ("scratch", "finetune") for a in augments]


def budgets(runner: Runner, start: int, largest: int) -> dict:
    from datl_helpers import augment, budget

    curves = []
    for target, method, labels, preset in TRANSFER_CONFIGS:
        curves.append({"name": f"{target}: {method}, {labels} labels/class, augment {preset}", "target": target,
                       "method": method, "labels_per_class": labels, "augment": preset})
    budget.measure_curves(
        curves, start,
        lambda c, steps: [make_job(c["method"], c["labels_per_class"], augment.PRESETS[c["augment"]], augment.KINDS,
                                   steps, seed, c["augment"], target=c["target"]) for seed in SEEDS],
        runner.run, largest, label="budgets")
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
    from datl_helpers import augment, budget, provenance, transfer

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
        "config": {**provenance.config_dict(transfer.TransferConfig()), "steps": steps, "probe_copies": 4},
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
    parser.add_argument("what", choices=["budgets", "augmentation", "labels", "finetuning", "adaptation", "paper",
                                         "semi", "robustness"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: cores / workers)")
    parser.add_argument("--cache", type=Path, default=ROOT / ".datl_cache" / "reference_runs.jsonl")
    parser.add_argument("--start", type=int, default=100, help="the first budget of a curve (steps)")
    parser.add_argument("--largest", type=int, default=3200, help="stop doubling past this budget")
    parser.add_argument("--pairs", nargs="+", metavar="SOURCE:TARGET",
                        help="semi: a subset of its pairs (default: mnist:mnistm syn:mnist)")
    parser.add_argument("--from-shipped", action="store_true",
                        help="adaptation, paper, semi: reuse the shipped reference's runs (after reproducing one) and train only "
                             "what is missing, e.g. with a larger --largest")
    parser.add_argument("--steps", nargs=6, type=int,
                        metavar=("SCRATCH10", "SCRATCH50", "SCRATCH_ALL", "FINETUNE10", "FINETUNE50", "FINETUNE_ALL"),
                        help="augmentation: train at these budgets instead of the converged ones")
    args = parser.parse_args(argv)
    runner = Runner(args.cache, args.workers, args.threads)
    start = time.perf_counter()
    if args.what == "budgets":
        budgets(runner, args.start, args.largest)
    elif args.what == "labels":
        labels(runner)
    elif args.what == "finetuning":
        finetuning(runner, 8, args.largest)
    elif args.what == "adaptation":
        adaptation(runner, 300, args.largest, args.from_shipped)
    elif args.what == "semi":
        pairs = [tuple(p.split(":")) for p in args.pairs] if args.pairs else SEMI_PAIRS
        semi_supervised(runner, args.largest, pairs, args.from_shipped)
    elif args.what == "paper":
        paper(runner, args.start, args.largest, args.from_shipped)
    elif args.what == "robustness":
        robustness(runner, args.start, args.largest)
    else:
        names = ("scratch-10", "scratch-50", "scratch-all", "finetune-10", "finetune-50", "finetune-all")
        augmentation(runner, dict(zip(names, args.steps)) if args.steps else None)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
