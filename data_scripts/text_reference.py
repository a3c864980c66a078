"""The converged reference of notebook 07 (text): source-only, DANN and target-oracle on two text
pairs, several seeds, at a budget shown to be converged.

    python data_scripts/text_reference.py [--seeds 0 1 2] [--budgets 1000 2000 4000] [--out PATH] [--resume PATH]

Protocol: :class:`datl_helpers.text.TextConfig` (the same for every method; early stopping on a
validation split of the labelled training texts, never on target test labels). Convergence: every
method and pair runs at each budget (each the double of the one before); the converged budget is
the first whose doubling moves no mean (target accuracy or AUC) by 1 point or more, and the
reference rows are those at that budget (otherwise at the largest, with the moves named in
``not_converged``). Also written: the shift
in words (most domain-specific words, a raw-feature domain classifier), how well a fresh probe
tells the domains apart from each method's features, each word's domain signal in the features,
and DANN at the paper's lambda_max (1.0) beside the protocol's 0.3. Runs on one CPU thread.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datl_helpers import __version__, data, text  # noqa: E402
from datl_helpers.cache import atomic_write  # noqa: E402

PAIRS = (("movies", "food"), ("spam_old", "spam_new"))
OUT = ROOT / "datl_helpers" / "reference_results" / "07_beyond_images_text.json"
TOLERANCE = 1.0  # points
WORDS = 8  # domain-specific words per side whose signal is measured


def mean_of(rows: list[dict], key: str, **where) -> float:
    vals = [r[key] for r in rows if all(r[k] == v for k, v in where.items())]
    return 100 * sum(vals) / len(vals)


def measured(curve: list[dict], pair: str, steps: int, seeds: list[int]) -> list[dict] | None:
    """The rows of an earlier run of this script for ``pair`` at ``steps`` (every method and seed), if any."""
    rows = [r for r in curve if r["pair"] == pair and r["steps"] == steps and r["seed"] in seeds]
    return rows if len(rows) == len(text.METHODS) * len(seeds) else None


def converged_budget(curve: list[dict], pairs: list[str], budgets: list[int]) -> tuple[int, list[dict]]:
    """The first budget whose doubling moves no mean (accuracy, AUC; any method and pair) by TOLERANCE
    or more, and every move measured; the largest budget when none is."""
    moves = []
    for small, large in zip(budgets, budgets[1:]):
        for pair in pairs:
            for m in text.METHODS:
                for key in ("target_accuracy", "target_auc"):
                    move = mean_of(curve, key, pair=pair, method=m, steps=large) - mean_of(
                        curve, key, pair=pair, method=m, steps=small)
                    moves.append({"from": small, "to": large, "pair": pair, "method": m, "value": key,
                                  "move_points": round(move, 2)})
    for small in budgets[:-1]:
        if all(abs(r["move_points"]) < TOLERANCE for r in moves if r["from"] == small):
            return small, moves
    return budgets[-1], moves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budgets", type=int, nargs="+", default=[1000, 2000, 4000],
                        help="steps, each the double of the one before")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--resume", type=Path, default=None,
                        help="reuse the budget-curve runs of an earlier output (same code and seeds: same numbers)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    base = text.TextConfig()
    earlier = json.loads(args.resume.read_text())["budget"]["curve"] if args.resume and args.resume.exists() else []
    curve, shift, vectorised = [], {}, {}
    pairs = [f"{s}->{t}" for s, t in PAIRS]
    for (s, t), pair in zip(PAIRS, pairs):
        vectorised[pair] = vec = text.vectorise(data.load_domain(s), data.load_domain(t), base.max_features)
        source_words, target_words = text.domain_words(vec, k=15)
        shift[pair] = {"raw_domain_accuracy": text.raw_domain_accuracy(vec),
                       "source_words": source_words, "target_words": target_words,
                       "positive_share": {"source": float(vec.source.y_train.mean()),
                                          "target": float(vec.target.y_train.mean())},
                       "classes": list(vec.source.classes)}
        for steps in args.budgets:
            rows = measured(earlier, pair, steps, args.seeds)
            if rows is None:
                rows = text.run_grid(vec, seeds=args.seeds, config=replace(base, steps=steps), pair=pair)
                for r in rows:
                    r["steps"] = steps
            curve += rows
            print(f"{pair} {steps} steps:", {m: round(mean_of(rows, 'target_accuracy', method=m), 1)
                                             for m in text.METHODS}, flush=True)
    steps, moves = converged_budget(curve, pairs, args.budgets)
    not_converged = [] if steps < args.budgets[-1] else [r for r in moves if r["to"] == steps and
                                                         abs(r["move_points"]) >= TOLERANCE]
    chosen = replace(base, steps=steps)
    lambda_rows, alignment, signal = [], {}, {}
    for pair in pairs:
        vec = vectorised[pair]
        lambda_rows += [{**r, "lambda_max": 1.0, "steps": steps} for r in text.run_grid(
            vec, ("dann",), args.seeds, replace(chosen, lambda_max=1.0), pair=pair)]
        source_words, target_words = shift[pair]["source_words"], shift[pair]["target_words"]
        words = [w for w, _ in source_words[:WORDS]] + [w for w, _ in target_words[:WORDS]]
        alignment[pair], signal[pair] = {}, {w: {} for w in words}
        for method in text.METHODS:
            net, _, _ = text.train_text(vec, method, chosen, seed=0)
            alignment[pair][method] = text.feature_domain_accuracy(net, vec)
            for w, v in text.word_domain_signal(net, vec, words).items():
                signal[pair][w][method] = v
    payload = {
        "smoke": False, "reference": True, "device": "cpu", "seeds": args.seeds, "pairs": pairs,
        "runs": [r for r in curve if r["steps"] == steps],
        "budget": {"steps": args.budgets, "chosen": steps, "tolerance_points": TOLERANCE,
                   "rule": "the first budget whose doubling moves no mean (accuracy, AUC; every method and pair) by "
                           "the tolerance or more; each run keeps the step with the best validation accuracy on its "
                           "labelled texts", "moves": moves, "curve": curve},
        "not_converged": not_converged,
        "lambda_sensitivity": lambda_rows,
        "shift": shift, "feature_domain_accuracy": alignment, "word_signal": signal,
        "config": text.config_dict(chosen),
        "date": datetime.date.today().isoformat(), "torch_threads_per_run": 1,
        "versions": {"datl_helpers": __version__, "torch": torch.__version__,
                     "scikit-learn": __import__("sklearn").__version__},
        "script": "data_scripts/text_reference.py", "seconds": round(time.perf_counter() - start, 1),
    }
    atomic_write(args.out, lambda tmp: tmp.write_text(json.dumps(payload, indent=1) + "\n"))
    print(f"wrote {args.out} in {payload['seconds']:.0f} s; converged budget {steps} steps; "
          f"not converged: {not_converged or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
