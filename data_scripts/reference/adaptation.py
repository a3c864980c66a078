"""Notebook 04: every adaptation method on every pair at its converged budget, the diagnostics, and the two
side studies (a few target labels; the DANN paper's protocol)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reference.runner import Runner

from reference.common import REFERENCE, SEEDS, add_families, provenance, write_json
from reference.finetuning import _domain

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
    trained = {"source-only": dann.fit(source, target, "source-only", so_config, seed=0, device="cpu")[0]}
    for lam in SELECTION_LAMBDAS:
        cfg = dataclasses.replace(config, lambda_max=lam)
        trained[f"dann λ={lam:g}"] = dann.fit(source, target, "dann", cfg, seed=0, device="cpu")[0]
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
    families = adapt_curves(runner, methods.ADAPTATION_METHODS, PAIRS, protocol, start, largest, "adapt",
                            "adaptation from the shipped backbone on notebook 04's pairs")
    add_families(families)
    # each method on each pair at that pair's converged budget (budget.adapt_budget(method, pair));
    # a curve still rising at --largest runs at the largest budget measured, and the reference says
    # so (its numbers are then lower bounds of a rising curve)
    pair_name = "{} -> {}".format
    steps = {m: {pair_name(c["source"], c["target"]): budget.converged_budget(c["means"]) or max(c["means"])
                 for c in families[f"adapt-{m}"]["curves"]} for m in methods.ADAPTATION_METHODS}
    rising = [f"{c['name']}" for m in methods.ADAPTATION_METHODS for c in families[f"adapt-{m}"]["curves"]
              if budget.converged_budget(c["means"]) is None]
    unconverged = [m for m in methods.ADAPTATION_METHODS if families[f"adapt-{m}"]["budget"] is None]
    if rising:
        print(f"NOT converged up to {largest} steps: {', '.join(rising)}; those runs use the largest budget")
    keep = ("pair", "method", "seed", "steps", "target_accuracy", "source_accuracy", "domain_accuracy", "macro_f1",
            "seconds")
    jobs = [adapt_job(m, s, t, steps[m][pair_name(s, t)], seed, protocol)
            for s, t in PAIRS for m in methods.ADAPTATION_METHODS for seed in SEEDS]
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
