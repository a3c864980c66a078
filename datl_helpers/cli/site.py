"""``site``: the course website from executed notebooks and the docs pages."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from datl_helpers.core.provenance import versions, write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``site`` command's arguments."""
    p = sub.add_parser("site", help="the course website from executed notebooks and the docs pages (Jupyter Book, offline)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the site (replaced when the build succeeds)")
    p.add_argument("--executed", type=Path, required=True, metavar="DIR",
                   help="executed notebooks: run-notebooks --out DIR (full mode for the course; --smoke says so on every page)")
    p.add_argument("--notebooks-dir", type=Path, default=None, help="the course notebooks (default: notebooks/)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write what was built as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datl_helpers.course import site

    start = time.perf_counter()
    info = site.build(args.executed, args.out, args.notebooks_dir)
    kind = "smoke runs (it says so on every page)" if info["smoke"] else "full-mode runs"
    print(f"built {len(info['pages'])} pages ({info['bytes'] / 2**20:.1f} MB) from {kind} of "
          f"{len(info['notebooks'])} notebooks in {time.perf_counter() - start:.0f} s: open {args.out / 'index.html'}")
    if args.json:
        write_json(args.json, {"command": "site", "out": str(args.out), "executed": str(args.executed), **info,
                               "versions": versions()})
    return 0
