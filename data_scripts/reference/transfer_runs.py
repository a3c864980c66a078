"""Notebooks 01 and 03: the budget curves of few-label transfer, notebook 03's augmentation experiments and
notebook 01's label-efficiency curves."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reference.runner import Runner

from reference.common import REFERENCE, SEEDS, TARGET, provenance, write_json


def make_job(method: str, labels, strength: float, kinds, steps: int, seed: int, name: str, target: str = TARGET,  # noqa: PLR0913 (one argument per field of a job)
             batch_size: int = 64) -> dict:
    from datl_helpers import augment

    kinds = list(kinds) if strength > 0 else []
    if method == "linear-probe":
        steps = 0  # the probe is a logistic regression fitted to convergence: no step budget
    return {"target": target, "method": method, "labels_per_class": labels, "augment": name,
            "strength": float(strength), "kinds": kinds, "steps": steps, "batch_size": batch_size, "seed": seed,
            "kinds_name": next((n for n, k in augment.KIND_SETS.items() if list(k) == kinds), "none")}


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
    methods = list(transfer.TRANSFER_METHODS)
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
            for t in targets for k in counts for m in transfer.TRANSFER_METHODS for seed in SEEDS]
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
