"""Notebook 06: the robustness of transferred models, trained at their converged budgets and attacked."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reference.runner import Runner

from reference.common import REFERENCE, SEEDS, TARGET, add_families, provenance, write_json
from reference.finetuning import _domain

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
