"""What every reference shares: where they live, the seeds, and how one is written (with its provenance)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "datl_helpers" / "reference_results"
SEEDS = [0, 1, 2]
TARGET = "mnistm"


def provenance(budget: dict | None = None, threads: int | dict = 1) -> dict:
    """The date, device, thread count, versions, command, commit and script of a reference (its
    ``code`` is added by :func:`write_json`, which knows the file)."""
    from datl_helpers import provenance as prov

    return {**prov.record(None, threads, script="data_scripts/converged_reference.py"),
            **({"budget": budget} if budget else {})}


def write_json(path: Path, payload: dict) -> None:
    """Write a reference atomically, with a sha256 of every source file its runs depend on."""
    from datl_helpers import provenance as prov
    from datl_helpers.cli.reproduce import modules_of

    prov.write_json(path, {**payload, "code": prov.code_hashes(modules_of(path.name))})
    print(f"wrote {path}")


def add_families(families: dict) -> None:
    """Add (or replace) budget-curve families in the shipped ``budget_curves.json`` and print them."""
    from datl_helpers import budget

    path = REFERENCE / "budget_curves.json"
    payload = json.loads(path.read_text())
    payload["families"].update(families)
    write_json(path, payload)
    for name, family in families.items():
        print(f"{name}: converged budget {family['budget']} steps")
        print(budget.curve_table(family).to_string())


def run_in_processes(run_job, jobs: list[dict], workers: int, init) -> list[dict]:
    """``run_job(job)`` for every job, in the jobs' order: here (after ``init()``) with one worker, else in
    ``workers`` processes started with ``init`` (one torch thread each, say)."""
    from concurrent.futures import ProcessPoolExecutor

    if workers <= 1:
        init()
        return [run_job(j) for j in jobs]
    with ProcessPoolExecutor(workers, initializer=init) as pool:
        return list(pool.map(run_job, jobs))


def mean_points(rows: list[dict], key: str, **where) -> float:
    """The mean of ``key`` over the rows matching ``where``, in points (x 100)."""
    vals = [r[key] for r in rows if all(r[k] == v for k, v in where.items())]
    return 100 * sum(vals) / len(vals)


def converged_budget(curve: list[dict], pairs: list[str], budgets: list[int], methods, values,
                     tolerance: float = 1.0) -> tuple[int, list[dict]]:
    """The first budget whose doubling moves no mean (every value, method and pair) by ``tolerance`` points
    or more, and every move measured; the largest budget when none is."""
    import itertools

    moves = []
    for small, large in itertools.pairwise(budgets):
        for pair in pairs:
            for m in methods:
                for key in values:
                    move = mean_points(curve, key, pair=pair, method=m, steps=large) - mean_points(
                        curve, key, pair=pair, method=m, steps=small)
                    moves.append({"from": small, "to": large, "pair": pair, "method": m, "value": key,
                                  "move_points": round(move, 2)})
    for small in budgets[:-1]:
        if all(abs(r["move_points"]) < tolerance for r in moves if r["from"] == small):
            return small, moves
    return budgets[-1], moves
