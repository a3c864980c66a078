"""``domains``: the registry -- names, sizes, cached or not, offline or online."""

from __future__ import annotations

import argparse
from pathlib import Path

from datl_helpers.cli.common import format_table
from datl_helpers.core.provenance import write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``domains`` command's arguments."""
    p = sub.add_parser("domains", help="list the domains: sizes, cached or not, offline or online")
    p.add_argument("--json", type=Path, help="also write the table as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datl_helpers.data import registry as data

    rows = data.domain_table(args.data_dir)
    print(format_table(rows, ["name", "train", "test", "status", "kind"]))
    print(f"\ndata directory: {data.data_dir(args.data_dir)}")
    if args.json:
        write_json(args.json, {"command": "domains", "domains": rows, "data_dir": str(data.data_dir(args.data_dir))})
    return 0
