"""``exercises``: write (or check) the student versions of the notebooks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``exercises`` command's arguments."""
    p = sub.add_parser("exercises", help="write the student versions of the notebooks (solutions -> stubs)")
    p.add_argument("--out", type=Path, default=Path("notebooks/exercises"), metavar="DIR")
    p.add_argument("--check", action="store_true", help="only check that DIR is up to date (exit 1 if not)")
    p.add_argument("--notebooks-dir", type=Path, default=None, metavar="DIR",
                   help="where the course notebooks are (default: notebooks/ of the repository)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datl_helpers.course import exercises, runner

    src = args.notebooks_dir or runner.find_notebooks()[0].parent
    if args.check:
        stale = exercises.stale(src, args.out)
        if stale:
            print(f"missing or out of date in {args.out}: {', '.join(stale)}; regenerate with "
                  f"`python -m datl_helpers exercises --out {args.out}`", file=sys.stderr)
            return 1
        print(f"student versions in {args.out} are up to date")
        return 0
    for path in exercises.write_student_notebooks(src, args.out):
        print(f"wrote {path}")
    return 0
