"""The converged reference of notebook 08 (hospitals): every method of
:data:`datl_helpers.beyond.tabular.TABULAR_METHODS` on six pairs of hospitals or studies, ten seeds, at a
budget shown to be converged; and the label-shift correction on the spam pair of notebook 07.

    python data_scripts/tabular_reference.py [--seeds 0 ... 9] [--budgets 250 500 1000] [--workers 2] [--out PATH]

Protocol: :class:`datl_helpers.beyond.tabular.TabularConfig` (the same for every method; early stopping on
the validation loss of a split of the labelled patients, never on the target's test labels). Convergence:
every method and pair runs at each budget (each the double of the one before); the converged budget is the
first whose doubling moves no mean (accuracy, balanced accuracy or AUC) by 1 point or more, and the
reference rows are those at that budget (otherwise at the largest, with the moves named in
``not_converged``). The schedules of lambda and the learning rate run over the first
``TabularConfig.schedule_steps`` whatever the budget, so a longer budget only lets early stopping look further. Also written: what shifts between the two sides of each pair (the share of patients
with the label, missingness per column, how well a classifier tells the two sides apart), the share of the
source-only -> oracle gap each method closes, and on spam_old -> spam_new (notebook 07's text model at its
converged budget) the source-only network's accuracy before and after the label-shift correction, and with
the exact target priors. Each run uses one CPU thread (``--workers`` runs go side by side).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reference.common import converged_budget, mean_points, run_in_processes  # noqa: E402

from datl_helpers import data, provenance, reweighting, tabular, text  # noqa: E402

PAIRS = (("heart_cleveland", "heart_hungary"), ("heart_cleveland", "heart_va"), ("heart_hungary", "heart_va"),
         ("heart_va", "heart_cleveland"), ("heart_switzerland", "heart_hungary"), ("rotterdam", "gbsg"))
SPAM = ("spam_old", "spam_new")
OUT = ROOT / "datl_helpers" / "reference_results" / "08_hospitals.json"
TOLERANCE = 1.0  # points
VALUES = ("target_accuracy", "target_balanced_accuracy", "target_auc")
SEEDS = list(range(10))
MODULES = ("tabular", "text", "data")  # what the runs depend on (provenance.code_hashes follows their imports)

_PAIRS: dict[str, tabular.TabularData] = {}


def pair_data(pair: str) -> tabular.TabularData:
    """Both sides of ``pair`` preprocessed, once per process."""
    if pair not in _PAIRS:
        s, t = pair.split("->")
        _PAIRS[pair] = tabular.prepare_pair(data.load_domain(s), data.load_domain(t))
    return _PAIRS[pair]


def _one_thread() -> None:
    torch.set_num_threads(1)
    os.environ["DATL_QUIET"] = "1"


def run_job(job: dict) -> dict:
    """One run: a tabular method on a pair at ``steps``, or (``kind`` spam) the label-shift correction on spam."""
    if job.get("kind") == "spam":
        return spam_job(job["seed"])
    config = replace(tabular.TabularConfig(), steps=job["steps"])
    row = tabular.run_tabular(pair_data(job["pair"]), job["method"], job["seed"], config)
    return {"pair": job["pair"], "method": job["method"], "steps": job["steps"], **row}


def spam_job(seed: int) -> dict:
    """Notebook 07's source-only text network on spam_old -> spam_new, scored as it is, after the label-shift
    correction (EM priors), and with the exact target priors (a diagnostic that reads the target's labels)."""
    vec = text.vectorize(data.load_domain(SPAM[0]), data.load_domain(SPAM[1]))
    net, disc, _ = text.fit(vec, "source-only", text.TextConfig(), seed)
    plain = text.evaluate(net, disc, vec)
    corrected = text.label_shift_scores(net, vec)
    source_priors, true_priors = (reweighting.class_priors(y) for y in (vec.source.y_train, vec.target.y_train))
    exact = reweighting.adjust_probabilities(text.predict_proba(net, vec.xt_test), source_priors, true_priors)
    return {"pair": "->".join(SPAM), "seed": seed, "steps": text.TextConfig().steps,
            "source_only_accuracy": plain["target_accuracy"], "label_shift_accuracy": corrected["target_accuracy"],
            "true_prior_accuracy": float((exact.argmax(1) == vec.target.y_test).mean()),
            "estimated_positive_share": corrected["estimated_positive_share"],
            "positive_share": {"source": float(source_priors[1]), "target": float(true_priors[1])}}


def run_jobs(jobs: list[dict], workers: int) -> list[dict]:
    """Every job's row, in the jobs' order, ``workers`` processes of one thread each."""
    return run_in_processes(run_job, jobs, workers, _one_thread)


def shift_of(pair: str) -> dict:
    """What differs between the two sides: label shares, missingness per column, and how well a classifier
    tells the two sides' patients apart (:func:`datl_helpers.beyond.tabular.separability`)."""
    d = pair_data(pair)
    return {"positive_share": {"source": d.source.positive_share, "target": d.target.positive_share},
            "missing": {"source": d.source.missing_share(), "target": d.target.missing_share()},
            "domain_accuracy_raw": tabular.separability(d),
            "sizes": {"source": [len(d.source.y_train), len(d.source.y_test)],
                      "target": [len(d.target.y_train), len(d.target.y_test)]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--budgets", type=int, nargs="+", default=[250, 500, 1000],
                        help="steps, each the double of the one before")
    parser.add_argument("--workers", type=int, default=2, help="processes side by side, one torch thread each")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    pairs = [f"{s}->{t}" for s, t in PAIRS]
    for name in {*itertools.chain(*PAIRS), *SPAM}:
        data.load_domain(name)  # fetched and cached once, before the workers start
    jobs = [{"pair": p, "method": m, "seed": seed, "steps": b} for p in pairs for b in args.budgets
            for m in tabular.TABULAR_METHODS for seed in args.seeds]
    jobs += [{"kind": "spam", "seed": seed} for seed in args.seeds]
    print(f"{len(jobs)} runs to do", flush=True)
    done = run_jobs(jobs, args.workers)
    curve, spam = [r for r in done if "method" in r], [r for r in done if "method" not in r]
    for pair in pairs:
        for steps in args.budgets:
            print(f"{pair} {steps} steps:", {m: round(mean_points(curve, "target_balanced_accuracy", pair=pair, method=m,
                                                              steps=steps), 1) for m in tabular.TABULAR_METHODS},
                  flush=True)
    steps, moves = converged_budget(curve, pairs, args.budgets, tabular.TABULAR_METHODS, VALUES, TOLERANCE)
    not_converged = [] if steps < args.budgets[-1] else [r for r in moves if r["to"] == steps and
                                                         abs(r["move_points"]) >= TOLERANCE]
    runs = [r for r in curve if r["steps"] == steps]
    gaps = {p: {m: {v: tabular.gap_closed(runs, p, m, v) for v in VALUES}
                for m in tabular.TABULAR_METHODS if m not in ("source-only", "target-oracle")} for p in pairs}
    payload = {
        "smoke": False, "reference": True, "seeds": args.seeds, "pairs": pairs, "runs": runs,
        "budget": {"steps": args.budgets, "chosen": steps, "tolerance_points": TOLERANCE,
                   "rule": "the first budget whose doubling moves no mean (accuracy, balanced accuracy, AUC; every "
                           "method and pair) by the tolerance or more; each run keeps the weights of the check with "
                           "the lowest validation loss on its labelled patients", "moves": moves, "curve": curve},
        "not_converged": not_converged, "gap_closed": gaps, "shift": {p: shift_of(p) for p in pairs},
        "spam_label_shift": spam,
        "config": provenance.config_dict(replace(tabular.TabularConfig(), steps=steps)),
        **provenance.record(MODULES, threads=1, script="data_scripts/tabular_reference.py"),
        "seconds": round(time.perf_counter() - start, 1),
    }
    provenance.write_json(args.out, payload)
    print(f"wrote {args.out} in {payload['seconds']:.0f} s; converged budget {steps} steps; "
          f"not converged: {not_converged or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
