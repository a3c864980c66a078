"""``run-notebooks``: tiny notebooks written here are executed, exported and measured.

The kernel-running tests share one run of the command over a temporary notebooks folder holding a
notebook that works (parameters, a print, a figure), one that fails and one after it.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from datl_helpers import runner
from datl_helpers.cli.main import main

PRINTED = "smoke is True and device is cpu"  # what the parameters cell's overrides make 00_works print


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook whose first code cell is the ``parameters`` cell, then one cell per source."""
    parameters = new_code_cell('SMOKE = False\nDEVICE = "auto"')
    parameters.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell(f"# {path.stem}"), parameters, *map(new_code_cell, sources)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(scope="module")
def notebooks_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("notebooks")
    write_notebook(
        folder / "00_works.ipynb",
        'print("smoke is", SMOKE, "and device is", DEVICE)',
        "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([0, 1, 4, 9])\nplt.show()",
    )
    write_notebook(folder / "01_breaks.ipynb", 'print("before the error")', "1 / 0", 'print("never printed")')
    write_notebook(folder / "02_after.ipynb", 'print("the run went on")')
    # not course notebooks: a draft and an exercise (both would fail if they were run)
    write_notebook(folder / "_draft.ipynb", "1 / 0")
    write_notebook(folder / "exercises" / "00_exercise.ipynb", "1 / 0")
    return folder


@pytest.fixture(scope="module")
def course_run(notebooks_dir, tmp_path_factory) -> dict:
    """One ``run-notebooks`` over the temporary folder: exit code, printed text, JSON, out folder."""
    out = tmp_path_factory.mktemp("executed")
    report = out.parent / "run.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["run-notebooks", "--out", str(out), "--smoke", "--device", "cpu",
                     "--notebooks-dir", str(notebooks_dir), "--cell-timeout", "120", "--json", str(report)])
    return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue(),
            "json": json.loads(report.read_text()), "out": out}


def test_course_notebooks_in_order_without_drafts_and_subfolders(notebooks_dir):
    names = [p.name for p in runner.find_notebooks(notebooks_dir)]
    assert names == ["00_works.ipynb", "01_breaks.ipynb", "02_after.ipynb"]


def test_select_notebooks_by_name_keeps_course_order(notebooks_dir):
    notebooks = runner.find_notebooks(notebooks_dir)
    chosen = runner.select_notebooks(notebooks, ["02_after", "00_works.ipynb"])
    assert [p.stem for p in chosen] == ["00_works", "02_after"]
    assert runner.select_notebooks(notebooks, None) == notebooks


def test_unknown_notebook_is_a_one_line_error(notebooks_dir, tmp_path, capsys):
    with pytest.raises(runner.UnknownNotebookError, match="00_works, 01_breaks, 02_after"):
        runner.select_notebooks(runner.find_notebooks(notebooks_dir), ["00_work"])
    code = main(["run-notebooks", "--out", str(tmp_path / "out"), "--notebooks-dir", str(notebooks_dir),
                 "--notebooks", "00_works", "03_missing"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: unknown notebook(s) 03_missing; choose from: 00_works")
    assert not (tmp_path / "out").exists()  # nothing ran


def test_missing_notebooks_folder_says_what_to_do(tmp_path, capsys):
    assert main(["run-notebooks", "--out", str(tmp_path / "out"), "--notebooks-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no notebooks folder at") and "--notebooks-dir" in err


def test_out_folder_must_not_be_the_notebooks_folder(notebooks_dir, capsys):
    assert main(["run-notebooks", "--out", str(notebooks_dir), "--notebooks-dir", str(notebooks_dir)]) == 2
    assert "overwrite the course notebooks" in capsys.readouterr().err


def test_peak_memory_sees_a_child_process():
    grow = "import time; block = bytearray(80 * 2**20); time.sleep(1.0)"
    with runner.PeakMemory(interval=0.05) as memory:
        subprocess.run([sys.executable, "-c", grow], check=True, timeout=60)
    assert memory.peak > 60 * 2**20


def test_short_error_of_a_failing_cell():
    from papermill.exceptions import PapermillExecutionError

    err = PapermillExecutionError(3, 3, "1 / 0", "ZeroDivisionError", "division by zero", ["long", "traceback"])
    assert runner.short_error(err) == "ZeroDivisionError: division by zero (cell In [3])"
    timeout = TimeoutError("Cell execution timed out\nmore details")
    assert runner.short_error(timeout) == "TimeoutError: Cell execution timed out"


def test_executed_notebook_and_html_are_written(course_run):
    out = course_run["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "00_works.html", "00_works.ipynb", "01_breaks.html", "01_breaks.ipynb", "02_after.html", "02_after.ipynb",
    ]  # no temporary files left, and neither the draft nor the exercise
    executed = nbformat.read(out / "00_works.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert PRINTED in printed
    assert executed.metadata.papermill.parameters == {"SMOKE": True, "DEVICE": "cpu"}
    assert executed.metadata.papermill.output_path == str(out / "00_works.ipynb")
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in out.iterdir())  # handouts: readable by others
    html = (out / "00_works.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert PRINTED in html
    assert "data:image/png;base64," in html  # the figure is inside the page, not a separate file


def test_each_notebook_has_seconds_and_peak_memory(course_run):
    rows = course_run["json"]["notebooks"]
    assert [r["notebook"] for r in rows] == ["00_works", "01_breaks", "02_after"]
    for row in rows:
        assert row["seconds"] > 0
        assert row["peak_memory_mb"] > 20  # a Python kernel alone takes more
    config = course_run["json"]["config"]
    assert (config["smoke"], config["device"]) == (True, "cpu")
    assert config["notebooks"] == ["00_works", "01_breaks", "02_after"]
    assert course_run["json"]["total_seconds"] == pytest.approx(sum(r["seconds"] for r in rows), abs=0.2)
    lines = course_run["stdout"].splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("notebook"))
    assert lines[header].split() == ["notebook", "seconds", "peak", "MB", "status"]
    table = lines[header + 2: header + 5]
    assert [line.split()[0] for line in table] == ["00_works", "01_breaks", "02_after"]
    assert len({line.index(" ok") if " ok" in line else line.index(" FAILED") for line in table}) == 1  # aligned
    assert any(line.startswith("total: 3 notebook(s)") and "1 failed" in line for line in lines)


def test_a_failing_notebook_is_reported_and_the_others_still_run(course_run):
    assert course_run["code"] == 1
    assert "failed: 01_breaks" in course_run["stderr"]
    rows = {r["notebook"]: r for r in course_run["json"]["notebooks"]}
    assert [r["status"] for r in rows.values()] == ["ok", "failed", "ok"]
    # In [4]: papermill's injected-parameters cell runs as In [2]
    assert rows["01_breaks"]["error"] == "ZeroDivisionError: division by zero (cell In [4])"
    assert rows["00_works"]["error"] is None
    assert course_run["json"]["failed"] == ["01_breaks"]
    assert "FAILED: ZeroDivisionError: division by zero" in course_run["stdout"]
    # what ran before the failure is kept, with the error; the cell after it never ran
    partial = nbformat.read(course_run["out"] / "01_breaks.ipynb", as_version=4)
    outputs = [o for c in partial.cells if c.cell_type == "code" for o in c.outputs]
    assert any("before the error" in o.get("text", "") for o in outputs)
    assert any(o.output_type == "error" and o.ename == "ZeroDivisionError" for o in outputs)
    assert not any("never printed" in o.get("text", "") for o in outputs)
    assert "ZeroDivisionError" in (course_run["out"] / "01_breaks.html").read_text(encoding="utf-8")


def test_exit_status_is_zero_when_every_notebook_runs(notebooks_dir, tmp_path, capsys):
    code = main(["run-notebooks", "--out", str(tmp_path / "out"), "--notebooks-dir", str(notebooks_dir),
                 "--notebooks", "02_after.ipynb", "--cell-timeout", "120"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["02_after.html", "02_after.ipynb"]
    assert "02_after" in printed.out and " ok" in printed.out and "0 failed" in printed.out


def test_a_stalled_cell_fails_its_notebook_after_the_cell_timeout(tmp_path):
    stalls = write_notebook(tmp_path / "nb" / "00_stalls.ipynb", 'print("started")', "import time\ntime.sleep(600)")
    [row] = runner.run_notebooks([stalls], tmp_path / "out", smoke=True, device="cpu", cell_timeout=2)
    assert row["status"] == "failed" and row["error"].startswith("CellTimeoutError")
    assert row["seconds"] < 120
    assert "started" in (tmp_path / "out" / "00_stalls.html").read_text(encoding="utf-8")


def test_every_notebook_opens_with_the_colab_install_cell_and_the_readme_links_them():
    import nbformat

    from datl_helpers import runner

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert runner.binder_url() in readme  # the Binder badge opens JupyterLab at notebook 00
    from datl_helpers import __version__

    assert f"v{__version__}" == runner.PUBLIC_REF and f"/{runner.PUBLIC_REF}?" in runner.binder_url()
    instructors = (Path(__file__).resolve().parents[1] / "docs" / "instructors.md").read_text()
    assert f"`{runner.PUBLIC_REF}`" in instructors and "PUBLIC_REPO" in instructors  # the docs name the same release
    assert "lab/tree/notebooks/00_setup_and_domains.ipynb" in runner.binder_url()
    for path in runner.find_notebooks():
        nb = nbformat.read(path, as_version=4)
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert first_code.source == runner.colab_install_cell(), f"{path.name}: run the Colab cell script"
        assert "google.colab" in first_code.source and "prepare" in first_code.source
        assert f"git+https://github.com/{runner.PUBLIC_REPO}@{runner.PUBLIC_REF}\"" in first_code.source  # a release
        assert f"/blob/{runner.PUBLIC_REF}/" in runner.colab_url(path.name)  # opened at the release it installs
        assert runner.colab_url(path.name) in readme, f"README lacks the Colab link of {path.name}"
