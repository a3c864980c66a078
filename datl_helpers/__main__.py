"""The command line: ``python -m datl_helpers COMMAND`` (or ``datl COMMAND``).

    domains  [--json PATH]                   the registry: names, sizes, cached or not, offline/online
    prepare  [--domains ...] [--download]    build and cache the offline domains (and fetch online ones)

Every command prints a readable table; ``--json PATH`` also writes machine-readable results. A
mistake of the user's (an unknown domain, missing data while offline, ...) prints one line that
says what to do, and the command exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from datl_helpers.errors import DatlError


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows of dicts as an aligned plain-text table."""
    if not rows:
        return "(nothing)"
    columns = columns or list(rows[0])
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def write_json(path: Path, payload: dict) -> None:
    from datl_helpers.data import atomic_write

    atomic_write(Path(path), lambda tmp: tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n"))


def versions() -> dict[str, str]:
    import torch
    import torchvision

    from datl_helpers import __version__

    return {"datl_helpers": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__}


def cmd_domains(args: argparse.Namespace) -> int:
    from datl_helpers import data

    rows = data.domain_table(args.data_dir)
    print(format_table(rows, ["name", "train", "test", "status", "kind"]))
    print(f"\ndata directory: {data.data_dir(args.data_dir)}")
    if args.json:
        write_json(args.json, {"command": "domains", "domains": rows, "data_dir": str(data.data_dir(args.data_dir))})
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from datl_helpers import data

    names = tuple(args.domains or data.OFFLINE_DOMAINS)
    for name in names:
        if name.startswith(("npz:", "folder:")):
            raise data.BadDataError(f"prepare builds registered domains only, not {name!r}")
        data.check_domain_name(name)
    rows = []
    for name in names:
        if name in data.ONLINE_DOMAINS:
            domain = data.build_online(name, data.data_dir(args.data_dir), download=args.download)
            rows.append({"name": name, "train": len(domain.y_train), "test": len(domain.y_test), "was": "online"})
        else:
            rows.extend(data.prepare((name,), args.data_dir))
        print(f"{name}: ready", flush=True)
    print()
    print(format_table(rows))
    print(f"\nready in {data.data_dir(args.data_dir)}")
    if args.json:
        write_json(args.json, {"command": "prepare", "domains": rows, "versions": versions()})
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m datl_helpers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="where domains are cached (default: $DATL_DATA_DIR or ~/.cache/datl)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("domains", help="list the domains: sizes, cached or not, offline or online")
    p.add_argument("--json", type=Path, help="also write the table as JSON here")
    p.set_defaults(func=cmd_domains)

    p = sub.add_parser("prepare", help="build and cache the offline domains")
    p.add_argument("--domains", nargs="+", help="which domains (default: the offline ones)")
    p.add_argument("--download", action="store_true", help="download online domains (needs internet)")
    p.add_argument("--json", type=Path, help="also write build times as JSON here")
    p.set_defaults(func=cmd_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
