"""The command line: ``python -m datl_helpers COMMAND`` (or ``datl COMMAND``).

    domains  [--json PATH]                   the registry: names, sizes, cached or not, offline/online
    prepare  [--domains ...] [--download]    build and cache the offline domains and fetch the text and tabular domains
                                             (and online ones when named, with --download)
    transfer --target T --labels-per-class K --method scratch|linear-probe|finetune [--seeds ...]
             [--augment none|light|medium|heavy] [--augment-strength X]
    adapt    --source S --target T --method source-only|dann|target-oracle|adabn|coral|entropy [--init backbone|scratch] [--target-labels K] [--steps N] [--seeds ...]
             (tabular domains also --method importance-weighting|label-shift; text also label-shift)
    bench    [--device auto] [--batch-size 256] [--workers 0 4]   images/s of the DANN step, ours vs DataLoader
    robust   --target T --labels-per-class K --method scratch|linear-probe|finetune|dann|source-only [--backbone standard|robust]
             [--adversarial-training none|fgsm|pgd] [--eps 2/255 4/255 8/255] [--seeds ...]
             clean and robust (FGSM, PGD-10) accuracy of a transferred model
    run-notebooks --out DIR [--smoke] [--device auto|cpu|cuda|mps] [--notebooks NAME ...]
             execute every course notebook, export .ipynb and .html, report time and peak memory
    exercises --out notebooks/exercises [--check]   write (or check) the student versions
    study-time [--executed DIR] [--check]   measure each section's run time from full-mode runs, write
             every notebook's course map and study time per section
    reproduce [--only FILE ...] [--record]   re-run one cheap row of every reference result and compare
    site     --out DIR --executed DIR          the course website from executed notebooks (Jupyter Book, offline)

Every command prints a readable table; ``--json PATH`` also writes machine-readable results. A
mistake of the user's (an unknown domain, missing data while offline, ...) prints one line that
says what to do, and the command exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from datl_helpers.cli import (
    adapt,
    bench,
    domains,
    exercises,
    prepare,
    reproduce,
    robust,
    run_notebooks,
    site,
    study_time,
    transfer,
)
from datl_helpers.core.errors import DatlError

COMMANDS = (domains, prepare, transfer, adapt, bench, robust, reproduce, run_notebooks, exercises, study_time, site)


def build_parser() -> argparse.ArgumentParser:
    """The parser: the shared ``--data-dir``, then each command's own arguments (its module's ``add_parser``)."""
    parser = argparse.ArgumentParser(prog="python -m datl_helpers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="where domains are cached (default: $DATL_DATA_DIR or ~/.cache/datl)")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded with the results (--json)
    try:
        return args.func(args)
    except DatlError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
