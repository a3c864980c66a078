"""Notebook 02: fine-tuning strategies, regularisers, early stopping and k-fold CV at converged budgets."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reference.runner import Runner

from reference.common import REFERENCE, SEEDS, TARGET, add_families, provenance, write_json

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
