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
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the reference/ package beside this script

from reference.adaptation import SEMI_PAIRS, adaptation, paper, reused_threads, semi_supervised, shipped_adaptation_runs  # noqa: F401
from reference.common import ROOT
from reference.finetuning import finetune_job, finetuning  # noqa: F401
from reference.robustness import robustness
from reference.runner import Runner, job_key, run_job  # noqa: F401
from reference.transfer_runs import augmentation, budgets, labels


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
