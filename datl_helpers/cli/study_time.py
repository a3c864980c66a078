"""``study-time``: each notebook's course map and study time per section."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``study-time`` command's arguments."""
    p = sub.add_parser("study-time", help="course map and study time per section in every notebook's first cell")
    p.add_argument("--executed", type=Path, default=None, metavar="DIR",
                   help="full-mode executed notebooks (run-notebooks --out DIR) to measure run time per section from")
    p.add_argument("--notebooks-dir", type=Path, default=None, help="the course notebooks (default: notebooks/)")
    p.add_argument("--check", action="store_true", help="only check that every notebook's study time is up to date")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datl_helpers.course import runner, study

    src = args.notebooks_dir or runner.find_notebooks()[0].parent
    if args.check:
        stale = study.stale(src)
        if stale:
            print(f"study time out of date in {', '.join(stale)}; rewrite with `python -m datl_helpers study-time`",
                  file=sys.stderr)
            return 1
        print("every notebook's study time is up to date")
        return 0
    if args.executed:
        print(f"wrote {study.measure(args.executed, src)}")
    for name in study.write_front_matter(src):
        print(f"wrote the study time of {name}")
    return 0
