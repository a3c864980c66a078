"""``run-notebooks``: execute the course notebooks, export .ipynb and .html, report time and peak memory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datl_helpers.cli.common import format_table
from datl_helpers.core.provenance import versions, write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``run-notebooks`` command's arguments."""
    from datl_helpers.course.runner import CELL_TIMEOUT, DEVICES

    p = sub.add_parser("run-notebooks", help="execute every course notebook, export .ipynb and .html, time it")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the executed NAME.ipynb and NAME.html")
    p.add_argument("--smoke", action="store_true", help="the quick run the tests use (SMOKE=True); default: full")
    p.add_argument("--device", choices=DEVICES, default="auto", help="passed to the notebooks as DEVICE")
    p.add_argument("--notebooks", nargs="+", metavar="NAME", help="only these, e.g. 02_fine_tuning (default: all)")
    p.add_argument("--notebooks-dir", type=Path, default=None, metavar="DIR",
                   help="where the notebooks are (default: notebooks/ of the repository)")
    p.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT, metavar="SECONDS",
                   help="a cell that runs longer fails its notebook")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write config and per-notebook rows as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datl_helpers.course import runner

    notebooks = runner.select_notebooks(runner.find_notebooks(args.notebooks_dir), args.notebooks)
    mode = "smoke" if args.smoke else "full"
    print(f"running {len(notebooks)} notebook(s), {mode} mode, device {args.device}, into {args.out}\n", flush=True)
    name_width = max(len(p.stem) for p in notebooks)
    printed: list[dict] = []

    def show(row: dict) -> None:
        table = format_table([runner.table_row(row, name_width)])
        print(table if not printed else table.splitlines()[-1], flush=True)
        printed.append(row)

    rows = runner.run_notebooks(notebooks, args.out, smoke=args.smoke, device=args.device,
                                cell_timeout=args.cell_timeout, on_result=show)
    total = sum(r["seconds"] for r in rows)
    failed = [r["notebook"] for r in rows if r["status"] != "ok"]
    print(f"\ntotal: {len(rows)} notebook(s) in {total:.0f} s, peak memory up to "
          f"{max(r['peak_memory_mb'] for r in rows)} MB, {len(failed)} failed; executed .ipynb and .html in {args.out}")
    if args.json:
        write_json(args.json, {
            "command": "run-notebooks",
            "config": {"out": str(args.out), "smoke": args.smoke, "device": args.device,
                       "notebooks_dir": str(notebooks[0].parent), "notebooks": [p.stem for p in notebooks],
                       "cell_timeout": args.cell_timeout, "kernel": runner.KERNEL},
            "notebooks": rows, "total_seconds": round(total, 1), "failed": failed, "versions": versions(),
        })
    if failed:
        print(f"failed: {', '.join(failed)} (the executed part of each is in {args.out})", file=sys.stderr)
        return 1
    return 0
