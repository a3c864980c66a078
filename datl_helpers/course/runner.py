"""Running and exporting the course notebooks (``python -m datl_helpers run-notebooks``).

An instructor runs every notebook once before class, to check that it works on the machine at hand
and to have executed copies to hand out. For each notebook in ``notebooks/`` (in course order) we

1. execute it with papermill, injecting the parameters ``SMOKE`` and ``DEVICE``, with the notebooks
   folder as working directory (so relative paths such as ``results/`` work as in Jupyter);
2. measure its wall time and the peak resident memory of the kernel (:class:`PeakMemory`);
3. write the executed notebook ``NAME.ipynb`` and an HTML export ``NAME.html`` to the output folder.

A notebook that fails does not stop the run: what was executed up to the failing cell is still
written, the error is recorded in the notebook's row, and the next notebook starts.

papermill, nbconvert and psutil are imported only when a notebook is run.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datl_helpers import __version__
from datl_helpers.core.errors import DatlError, NotebooksNotFoundError, UnknownNotebookError, check_choice

DEVICES = ("auto", "cpu", "cuda", "mps")  # what run-notebooks passes to the notebooks as DEVICE (train.resolve_device)
PUBLIC_REPO = "datl-course/datl"  # owner/name on GitHub, for the Binder and Colab links (forks: change it here)
PUBLIC_REF = f"v{__version__}"  # the release tag the Binder and Colab links open and Colab installs
CELL_TIMEOUT = 900  # seconds; a stalled cell fails its notebook instead of hanging the run
KERNEL = "python3"


class PeakMemory:
    """Peak resident memory of this process's children (a kernel and what it starts), in bytes.

    A background thread adds up the memory of the whole process tree every ``interval`` seconds::

        with PeakMemory() as memory:
            ...  # start a kernel and run a notebook
        print(memory.peak / 2**20, "MB")
    """

    def __init__(self, interval: float = 0.1) -> None:
        import psutil

        self.psutil, self.interval, self.peak = psutil, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = self.psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(self.psutil.Error):  # the child ended while we looked
                    total += child.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def binder_url(repo: str = PUBLIC_REPO, notebook: str = "00_setup_and_domains.ipynb", ref: str = PUBLIC_REF) -> str:
    """A mybinder.org link that builds ``repo`` at ``ref`` (from ``binder/``) and opens JupyterLab at ``notebook``."""
    return f"https://mybinder.org/v2/gh/{repo}/{ref}?urlpath=lab/tree/notebooks/{notebook}"


def colab_url(notebook: str, repo: str = PUBLIC_REPO, ref: str = PUBLIC_REF) -> str:
    """A Google Colab link that opens ``notebooks/NOTEBOOK`` of ``repo`` at ``ref`` (its first cell installs
    datl from the same ref)."""
    return f"https://colab.research.google.com/github/{repo}/blob/{ref}/notebooks/{notebook}"


def colab_install_cell(repo: str = PUBLIC_REPO, ref: str = PUBLIC_REF) -> str:
    """The first code cell of every notebook: on Colab, install the release ``ref`` of datl and build the
    data; elsewhere nothing."""
    return (
        "# On Google Colab: install datl and build the offline data (elsewhere this cell does nothing)\n"
        "import sys\n"
        "\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    !pip install -q \"datl @ git+https://github.com/{repo}@{ref}\"\n"
        "    !python -m datl_helpers prepare"
    )


def default_notebooks_dir() -> Path:
    """The ``notebooks/`` folder of the repository that this package lives in."""
    return Path(__file__).resolve().parents[2] / "notebooks"


def find_notebooks(folder: Path | None = None) -> list[Path]:
    """The course notebooks in ``folder``, in course order (00_..., 01_..., ...).

    Only the folder itself is searched (not ``exercises/`` or ``.ipynb_checkpoints/``), and names
    starting with ``_`` (drafts) or ``.`` are skipped.
    """
    folder = Path(folder) if folder is not None else default_notebooks_dir()
    if not folder.is_dir():
        raise NotebooksNotFoundError(
            f"no notebooks folder at {folder} (is datl installed without the course repository?); "
            "pass --notebooks-dir with the notebooks/ folder of a checkout"
        )
    notebooks = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith(("_", ".")))
    if not notebooks:
        raise NotebooksNotFoundError(f"no notebooks (*.ipynb) in {folder}")
    return notebooks


def select_notebooks(notebooks: list[Path], names: list[str] | None) -> list[Path]:
    """The notebooks called ``names`` (with or without ``.ipynb``), in course order; all if no names."""
    if not names:
        return notebooks
    known = {p.stem: p for p in notebooks}
    wanted = {Path(name).name.removesuffix(".ipynb") for name in names}
    unknown = sorted(wanted - set(known))
    if unknown:
        raise UnknownNotebookError(
            f"unknown notebook(s) {', '.join(unknown)}; choose from: {', '.join(known)}"
        )
    return [p for p in notebooks if p.stem in wanted]


def short_error(err: Exception) -> str:
    """One line that says what went wrong: the exception of the failing cell, or papermill's own."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        first_line = (str(err.evalue).strip().splitlines() or [""])[0]
        return f"{err.ename}: {first_line} (cell In [{err.exec_count}])"
    first_line = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first_line}".rstrip(": ")


def execute(notebook: Path, output: Path, *, smoke: bool, device: str,
            cell_timeout: int = CELL_TIMEOUT) -> str | None:
    """Execute ``notebook`` with papermill into ``output``; return None, or a short error message.

    papermill saves ``output`` after every cell, so a failed run still leaves what was executed.
    """
    import papermill as pm

    try:
        pm.execute_notebook(
            str(notebook), str(output), parameters={"SMOKE": smoke, "DEVICE": device},
            kernel_name=KERNEL, cwd=str(notebook.parent), progress_bar=False,
            execution_timeout=cell_timeout,
        )
    except Exception as err:  # any failure of this notebook is reported, and the run goes on
        return short_error(err)
    return None


def to_html(notebook: Any) -> str:
    """An executed notebook (an nbformat node) as one self-contained HTML page, images embedded."""
    from nbconvert import HTMLExporter

    notebook = copy.deepcopy(notebook)
    notebook.metadata.pop("widgets", None)  # live widgets do not work in a static page
    html, _resources = HTMLExporter(embed_images=True).from_notebook_node(notebook)
    return html


def write_outputs(notebook: Any, ipynb: Path, html: Path) -> None:
    """Write the executed notebook and its HTML export, each atomically (never half a file).

    Both are made readable by everyone (a temporary file is private to its owner): they are handouts.
    """
    import nbformat

    from datl_helpers.core.cache import atomic_write

    def write_notebook(tmp: Path) -> None:
        nbformat.write(notebook, str(tmp))
        tmp.chmod(0o644)

    def write_page(tmp: Path) -> None:
        tmp.write_text(page, encoding="utf-8")
        tmp.chmod(0o644)

    atomic_write(ipynb, write_notebook)
    page = to_html(notebook)
    atomic_write(html, write_page)


def run_notebook(notebook: Path, out_dir: Path, *, smoke: bool, device: str,
                 cell_timeout: int = CELL_TIMEOUT) -> dict:
    """Execute one notebook, export it to ``out_dir`` and return its row: time, memory, status."""
    import nbformat

    out_dir = Path(out_dir)
    ipynb, html = out_dir / f"{notebook.stem}.ipynb", out_dir / f"{notebook.stem}.html"
    with tempfile.TemporaryDirectory(prefix="datl-notebook-") as scratch_dir:
        scratch = Path(scratch_dir) / notebook.name  # papermill writes here, cell by cell
        start = time.perf_counter()
        with PeakMemory() as memory:
            error = execute(notebook, scratch, smoke=smoke, device=device, cell_timeout=cell_timeout)
        seconds = time.perf_counter() - start
        written = scratch.exists()
        if written:
            executed = nbformat.read(scratch, as_version=4)
            executed.metadata.get("papermill", {})["output_path"] = str(ipynb)
            write_outputs(executed, ipynb, html)
        else:  # nothing ran (the kernel did not start, say): leave no stale copies of an earlier run
            ipynb.unlink(missing_ok=True)
            html.unlink(missing_ok=True)
    return {
        "notebook": notebook.stem,
        "status": "failed" if error else "ok",
        "seconds": round(seconds, 1),
        "peak_memory_mb": round(memory.peak / 2**20),
        "error": error,
        "ipynb": str(ipynb) if written else None,
        "html": str(html) if written else None,
    }


def run_notebooks(notebooks: list[Path], out_dir: Path, *, smoke: bool = False, device: str = "auto",
                  cell_timeout: int = CELL_TIMEOUT,
                  on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Run and export each notebook in turn; ``on_result(row)`` is called as each one finishes."""
    out_dir = Path(out_dir)
    if any(out_dir.resolve() == p.parent.resolve() for p in notebooks):
        raise DatlError(f"--out {out_dir} is the notebooks folder: choose another folder, "
                        "the executed copies would overwrite the course notebooks")
    check_choice("device", device, DEVICES)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for notebook in notebooks:
        rows.append(run_notebook(notebook, out_dir, smoke=smoke, device=device, cell_timeout=cell_timeout))
        if on_result is not None:
            on_result(rows[-1])
    return rows


def table_row(row: dict, name_width: int) -> dict:
    """A result row for printing, padded so that rows printed one at a time line up."""
    status = "ok" if row["status"] == "ok" else f"FAILED: {row['error']}"
    return {
        "notebook": row["notebook"].ljust(name_width),
        "seconds": f"{row['seconds']:7.1f}",
        "peak MB": f"{row['peak_memory_mb']:7d}",
        "status": status,
    }
