"""The converged reference of notebook 07 (text): source-only, DANN and target-oracle on two text
pairs, several seeds, at a budget shown to be converged.

    python data_scripts/text_reference.py [--seeds 0 1 ... 9] [--budgets 1000 2000 4000] [--workers 2] [--out PATH] [--resume PATH]

Protocol: :class:`datl_helpers.beyond.text.TextConfig` (the same for every method; early stopping on a
validation split of the labelled training texts, never on target test labels). Convergence: every
method and pair runs at each budget (each the double of the one before); the converged budget is
the first whose doubling moves no mean (target accuracy or AUC) by 1 point or more, and the
reference rows are those at that budget (otherwise at the largest, with the moves named in
``not_converged``). Also written: the shift
in words (most domain-specific words, a raw-feature domain classifier), how well a fresh probe
tells the domains apart from each method's features, each word's domain signal in the features,
and DANN at the paper's lambda_max (1.0) beside the protocol's 0.3. Each run uses one CPU thread
(``--workers`` runs go side by side); ten seeds, since one text run's accuracy depends on which
validation step early stopping keeps, and that varies by several points from seed to seed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reference.common import converged_budget, mean_points, run_in_processes  # noqa: E402

from datl_helpers import data, provenance, text  # noqa: E402

PAIRS = (("movies", "food"), ("spam_old", "spam_new"))
OUT = ROOT / "datl_helpers" / "reference_results" / "07_beyond_images_text.json"
TOLERANCE = 1.0  # points
WORDS = 8  # domain-specific words per side whose signal is measured
LAMBDA_DOUBLINGS = 2  # lambda_max 1.0 is measured at the converged budget and at two doublings of it
SEEDS = list(range(10))
MODULES = ("text", "data")  # what the runs depend on (provenance.code_hashes follows their imports)

_VECTORISED: dict[str, text.TextData] = {}


def vectorised(pair: str, max_features: int) -> text.TextData:
    """Both domains of ``pair`` vectorised, once per process."""
    if pair not in _VECTORISED:
        s, t = pair.split("->")
        _VECTORISED[pair] = text.vectorize(data.load_domain(s), data.load_domain(t), max_features)
    return _VECTORISED[pair]


def _one_thread() -> None:
    torch.set_num_threads(1)
    os.environ["DATL_QUIET"] = "1"


def run_job(job: dict) -> dict:
    """One run: ``job`` holds the pair, the method, the seed and the TextConfig fields that differ."""
    config = replace(text.TextConfig(), **job["config"])
    row = text.run_text(vectorised(job["pair"], config.max_features), job["method"], job["seed"], config)
    return {"pair": job["pair"], "method": job["method"], **row, **job["config"]}


def run_jobs(jobs: list[dict], workers: int) -> list[dict]:
    """Every job's row, in the jobs' order, ``workers`` processes of one thread each."""
    return run_in_processes(run_job, jobs, workers, _one_thread)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--budgets", type=int, nargs="+", default=[1000, 2000, 4000],
                        help="steps, each the double of the one before")
    parser.add_argument("--workers", type=int, default=2, help="processes side by side, one torch thread each")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--resume", type=Path, default=None,
                        help="reuse the runs of an earlier output (same code and seeds: same numbers)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    base = text.TextConfig()
    earlier = json.loads(args.resume.read_text()) if args.resume and args.resume.exists() else {}
    pairs = [f"{s}->{t}" for s, t in PAIRS]
    done = {(r["pair"], r["steps"], r["method"], r["seed"]): r for r in earlier.get("budget", {}).get("curve", [])}
    curve, todo = [], []
    for pair in pairs:
        for steps in args.budgets:
            for m in text.COMPARED_METHODS:
                for seed in args.seeds:
                    if (pair, steps, m, seed) in done:
                        curve.append(done[(pair, steps, m, seed)])
                    else:
                        todo.append({"pair": pair, "method": m, "seed": seed, "config": {"steps": steps}})
    print(f"{len(todo)} budget-curve runs to do ({len(curve)} reused)", flush=True)
    curve += run_jobs(todo, args.workers)
    for pair in pairs:
        for steps in args.budgets:
            print(f"{pair} {steps} steps:", {m: round(mean_points(curve, "target_accuracy", pair=pair, method=m,
                                                              steps=steps), 1) for m in text.COMPARED_METHODS}, flush=True)
    values = ("target_accuracy", "target_auc")
    steps, moves = converged_budget(curve, pairs, args.budgets, text.COMPARED_METHODS, values, TOLERANCE)
    not_converged = [] if steps < args.budgets[-1] else [r for r in moves if r["to"] == steps and
                                                         abs(r["move_points"]) >= TOLERANCE]
    chosen = replace(base, steps=steps)
    # DANN at the paper's lambda_max 1.0: its own curve, from the protocol's converged budget, doubling
    lambda_budgets = [steps * 2 ** k for k in range(LAMBDA_DOUBLINGS + 1)]
    old_lambda = {(r["pair"], r["steps"], r["seed"]): r for r in
                  earlier.get("lambda_budget", {}).get("curve", earlier.get("lambda_sensitivity", []))
                  if r["lambda_max"] == 1.0}
    lambda_jobs = [{"pair": p, "method": "dann", "seed": seed, "config": {"steps": b, "lambda_max": 1.0}}
                   for p in pairs for b in lambda_budgets for seed in args.seeds if (p, b, seed) not in old_lambda]
    print(f"{len(lambda_jobs)} lambda_max = 1.0 runs to do", flush=True)
    new_lambda = {(r["pair"], r["steps"], r["seed"]): r for r in run_jobs(lambda_jobs, args.workers)}
    lambda_curve = [{**old_lambda.get((p, b, seed), new_lambda.get((p, b, seed))), "lambda_max": 1.0}
                    for p in pairs for b in lambda_budgets for seed in args.seeds]
    lambda_steps, lambda_moves = converged_budget([{**r, "method": "dann"} for r in lambda_curve], pairs,
                                                  lambda_budgets, ("dann",), values, TOLERANCE)
    lambda_rows = [r for r in lambda_curve if r["steps"] == lambda_steps]
    lambda_not_converged = [] if lambda_steps < lambda_budgets[-1] else [
        m for m in lambda_moves if m["to"] == lambda_steps and abs(m["move_points"]) >= TOLERANCE]
    shift, alignment, signal = {}, {}, {}
    for pair in pairs:
        vec = vectorised(pair, base.max_features)
        source_words, target_words = text.domain_words(vec, k=15)
        shift[pair] = {"raw_domain_accuracy": text.raw_domain_accuracy(vec),
                       "source_words": source_words, "target_words": target_words,
                       "positive_share": {"source": float(vec.source.y_train.mean()),
                                          "target": float(vec.target.y_train.mean())},
                       "classes": list(vec.source.classes)}
        words = [w for w, _ in source_words[:WORDS]] + [w for w, _ in target_words[:WORDS]]
        alignment[pair], signal[pair] = {}, {w: {} for w in words}
        for method in text.COMPARED_METHODS:
            net, _, _ = text.fit(vec, method, chosen, seed=0)
            alignment[pair][method] = text.feature_domain_accuracy(net, vec)
            for w, v in text.word_domain_signal(net, vec, words).items():
                signal[pair][w][method] = v
    payload = {
        "smoke": False, "reference": True, "seeds": args.seeds, "pairs": pairs,
        "runs": [r for r in curve if r["steps"] == steps],
        "budget": {"steps": args.budgets, "chosen": steps, "tolerance_points": TOLERANCE,
                   "rule": "the first budget whose doubling moves no mean (accuracy, AUC; every method and pair) by "
                           "the tolerance or more; each run keeps the step with the best validation accuracy on its "
                           "labelled texts", "moves": moves, "curve": curve},
        "not_converged": not_converged,
        "lambda_sensitivity": lambda_rows,
        "lambda_budget": {"steps": lambda_budgets, "chosen": lambda_steps, "moves": lambda_moves,
                          "not_converged": lambda_not_converged, "curve": lambda_curve},
        "shift": shift, "feature_domain_accuracy": alignment, "word_signal": signal,
        "config": provenance.config_dict(chosen),
        "reused": {"runs": sum(1 for r in curve if (r["pair"], r["steps"], r["method"], r["seed"]) in done)
                   + sum(1 for r in lambda_curve if (r["pair"], r["steps"], r["seed"]) in old_lambda),
                   "from": earlier.get("date")} if earlier else None,
        **provenance.record(MODULES, threads=1, script="data_scripts/text_reference.py"),
        "seconds": round(time.perf_counter() - start, 1),
    }
    provenance.write_json(args.out, payload)
    print(f"wrote {args.out} in {payload['seconds']:.0f} s; converged budget {steps} steps; "
          f"not converged: {not_converged or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
