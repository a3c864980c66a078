"""What the commands share: tables, seeds, JSON results and argument types."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from datl_helpers.core.errors import DatlError
from datl_helpers.core.provenance import versions, write_json


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows of dicts as an aligned plain-text table."""
    if not rows:
        return "(nothing)"
    columns = columns or list(rows[0])
    show = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    cells = [[show(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def load_named(name: str, data_dir: Path | None):
    """The domain ``name`` from ``--data-dir`` (an unknown name is a clear error that lists the known ones)."""
    from datl_helpers.data import registry as data

    return data.load_domain(data.check_domain_name(name), root=data_dir)


def run_seeds(seeds: list[int], run_one, show=None) -> list[dict]:
    """Call ``run_one(seed)`` for every seed, printing each result row as it arrives (``show(run)``:
    the row to print, default the whole run)."""
    runs = []
    for seed in seeds:
        runs.append(run_one(seed))
        table = format_table([show(runs[-1]) if show else runs[-1]])
        print(table if len(runs) == 1 else table.splitlines()[-1], flush=True)
    return runs


def save_runs(args: argparse.Namespace, config: dict, runs: list[dict], mean: dict, std: dict, device) -> None:
    """With ``--json PATH``: the command, its config, every run, their mean and std, and what else changes
    results: the device, the torch thread count, the versions, the command line and the commit."""
    if args.json:
        import torch

        from datl_helpers.core.provenance import git_commit

        write_json(args.json, {"command": args.command, "config": config, "runs": runs, "mean": mean, "std": std,
                               "device": str(device), "torch_threads": torch.get_num_threads(),
                               "versions": versions(), "command_line": "python -m datl_helpers " + " ".join(map(shlex.quote, getattr(args, "argv", []))),
                               **git_commit()})


def mean_and_std(runs: list[dict], keys: tuple[str, ...]) -> tuple[dict, dict]:
    """Mean and sample standard deviation of ``keys`` over runs (one per seed)."""
    from datl_helpers.core.metrics import mean_std

    stats = {k: mean_std(r[k] for r in runs) for k in keys}
    return {k: v[0] for k, v in stats.items()}, {k: v[1] for k, v in stats.items()}


def labels_per_class(text: str) -> int | None:
    """argparse type: a positive integer, or 'all' (None)."""
    if text.lower() == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")
    return int(text)


def unit_interval(text: str) -> float:
    """argparse type: an augmentation strength in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def eps_value(text: str) -> float:
    """argparse type: an attack radius such as 8/255 or 0.03."""
    from datl_helpers.robustness.robust import parse_eps

    try:
        return parse_eps(text)
    except DatlError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
