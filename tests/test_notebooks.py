"""Execute every notebook under notebooks/ with papermill, then let nbval (lax) check the outputs of
the cells marked ``# NBVAL_CHECK_OUTPUT`` by running the executed copy once more (only notebooks that
have such cells: for the others a second run would compare nothing).

Smoke mode by default. ``DATL_NOTEBOOKS=full`` runs the full mode instead and
``DATL_TEST_DEVICE=cuda`` runs on a GPU; the run time and the peak memory of each kernel (its
whole process tree, sampled with psutil) are written to ``tests/_executed/notebook_metrics.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datl_helpers.course.runner import PeakMemory, execute, find_notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "tests" / "_executed"
FULL = os.environ.get("DATL_NOTEBOOKS") == "full"
DEVICE = os.environ.get("DATL_TEST_DEVICE", "cpu")


def discover() -> list[Path]:
    """The course notebooks (the student versions in exercises/ are checked by test_exercises.py)."""
    return find_notebooks(NOTEBOOKS)


def _record(name: str, entry: dict) -> None:
    path = EXECUTED / "notebook_metrics.json"
    metrics = json.loads(path.read_text()) if path.exists() else {}
    metrics.setdefault("full" if FULL else "smoke", {})[name] = entry
    path.write_text(json.dumps(metrics, indent=1) + "\n")


def test_notebooks_are_stored_without_outputs():
    import nbformat

    for path in discover():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name}: strip outputs"
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
        assert "SMOKE" in tagged[0].source and "DEVICE" in tagged[0].source


def _checked_cells(path: Path) -> int:
    """How many cells of the notebook nbval compares (marked ``# NBVAL_CHECK_OUTPUT``)."""
    import nbformat

    return sum("NBVAL_CHECK_OUTPUT" in c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def test_nbval_compares_the_outputs_of_the_setup_notebook():
    """Notebook 00's domain cards and zero-shot accuracies must come out the same on every run."""
    assert _checked_cells(NOTEBOOKS / "00_setup_and_domains.ipynb") >= 2


@pytest.mark.slow
@pytest.mark.parametrize("path", discover(), ids=lambda p: p.name)
def test_notebook_executes(path, record_property):
    EXECUTED.mkdir(exist_ok=True)
    out = EXECUTED / path.name
    start = time.perf_counter()
    with PeakMemory() as mem:  # the same papermill call as `run-notebooks` (a stalled cell times out)
        error = execute(path, out, smoke=not FULL, device=DEVICE)
    seconds = time.perf_counter() - start
    assert error is None, f"{path.name}: {error}; the executed copy with the traceback is {out}"
    entry = {"seconds": round(seconds, 1), "peak_memory_mb": round(mem.peak / 2**20), "device": DEVICE}
    _record(path.name, entry)
    record_property("notebook", entry)
    print(f"{path.name}: {entry}")
    if FULL:
        assert mem.peak < 1.5 * 2**30, f"{path.name} peaked at {mem.peak / 2**20:.0f} MB (Binder stops at 2 GB)"
        return
    # nbval runs the executed copy (with its injected smoke parameters) again and compares the
    # outputs of the cells marked NBVAL_CHECK_OUTPUT: the same numbers twice. A notebook without such
    # a cell would only be executed a second time, with nothing compared, so it is not.
    if not _checked_cells(path):
        return
    check = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", str(out)],
        cwd=path.parent, capture_output=True, text=True, timeout=600,
    )
    assert check.returncode == 0, check.stdout[-4000:] + check.stderr[-2000:]
