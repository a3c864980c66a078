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
