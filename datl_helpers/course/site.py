"""The course website: the executed notebooks and the docs pages, built offline with Jupyter Book.

``python -m datl_helpers site --out site/ --executed DIR`` takes the notebooks that ``run-notebooks``
executed (full mode for the course's site; the test suite uses its smoke runs), prepares a copy of
each for a static page, and builds one HTML site with Jupyter Book 1 (Sphinx): the pages in course
order, each titled with its study time, then the docs pages. Nothing is fetched while it builds or
while it is read: MathJax comes from the ``jupyter-server-mathjax`` package, and the theme's assets
ship with it.

What a static page cannot do is run Python. Widgets become a note saying where they work; the
self-check questions (jupyterquiz) are HTML and JavaScript, so they work on the page. A site built
from smoke runs says so on every page.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from datl_helpers.core.errors import SiteError
from datl_helpers.course import study
from datl_helpers.course.runner import default_notebooks_dir, find_notebooks

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("results", "reproducibility", "cli", "data", "instructors")
WIDGET = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("*An interactive control is here when the notebook runs in Jupyter (JupyterLab, Binder or Colab); "
               "a static page cannot run it.*")
SMOKE_BANNER = ("Built from smoke runs (SMOKE=True): the numbers on these pages come from short runs and are not the "
                "course's results. Build from full-mode runs for those.")


def is_smoke(nb: dict) -> bool:
    """Whether papermill ran this executed notebook with ``SMOKE=True``."""
    return bool(nb.get("metadata", {}).get("papermill", {}).get("parameters", {}).get("SMOKE"))


def static_notebook(nb: dict, smoke: bool) -> dict:
    """A copy of an executed notebook for a static page: every widget output becomes a note, the saved
    widget state goes (it would make the page load the widget library from the internet), and a smoke
    run says so at the top."""
    nb = json.loads(json.dumps(nb))
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb["cells"]:
        outputs = []
        for out in cell.get("outputs", []):
            if WIDGET in out.get("data", {}):
                outputs.append({"output_type": "display_data", "metadata": {},
                                "data": {"text/markdown": WIDGET_NOTE, "text/plain": WIDGET_NOTE}})
            else:
                outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
    if smoke:
        nb["cells"].insert(0, {"cell_type": "markdown", "metadata": {}, "source": f"> **{SMOKE_BANNER}**"})
    return nb


def index_page(readme: str) -> str:
    """The README as the site's home page: without the badges (images from the internet)."""
    lines = [ln for ln in readme.splitlines() if not ln.lstrip().startswith("[![")]
    return "\n".join(lines) + "\n"


def toc(notebooks: list[Path], minutes: dict[str, int]) -> str:
    """Jupyter Book's table of contents: the core path, the optional notebooks, then the docs pages."""
    def entries(keys: tuple[str, ...]) -> str:
        return "".join(f"      - file: notebooks/{p.stem}\n" for p in notebooks if p.stem[:2] in keys)

    def total(keys: tuple[str, ...]) -> int:
        return sum(m for stem, m in minutes.items() if stem[:2] in keys)

    return ("format: jb-book\nroot: index\nparts:\n"
            f"  - caption: Core path (about {total(study.CORE)} min of study)\n    chapters:\n{entries(study.CORE)}"
            f"  - caption: Optional (about {total(study.OPTIONAL)} min)\n    chapters:\n{entries(study.OPTIONAL)}"
            "  - caption: Reference\n    chapters:\n" + "".join(f"      - file: docs/{d}\n" for d in DOCS))


def config(smoke: bool) -> str:
    """Jupyter Book's _config.yml: nothing executed, nothing fetched (local MathJax, no launch buttons)."""
    announcement = f'  announcement: "{SMOKE_BANNER}"\n' if smoke else ""
    return (
        'title: "datl: transfer learning, from feature extraction to domain-adversarial training"\n'
        "author: the datl course\n"
        "only_build_toc_files: true\n"
        "execute:\n  execute_notebooks: \"off\"\n"
        "html:\n  use_repository_button: false\n  use_issues_button: false\n  use_edit_page_button: false\n"
        "  use_download_button: false\n" + announcement +
        "launch_buttons:\n  notebook_interface: classic\n  binderhub_url: \"\"\n  colab_url: \"\"\n  thebe: false\n"
        "sphinx:\n  config:\n"
        "    html_extra_path: [\"_extra\"]\n"  # copied as they are: not added to every page, as _static's .js would be
        "    mathjax_path: \"mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML\"\n"
        "    html_show_copyright: false\n"
        "    nb_ipywidgets_js: {}\n"
        "    suppress_warnings: [\"myst.header\", \"myst.xref_missing\", \"misc.highlighting_failure\"]\n"
    )


def mathjax_dir() -> Path:
    """MathJax's files, from the ``jupyter-server-mathjax`` package (the ``site`` extra)."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise SiteError("the site needs a local MathJax: pip install -e '.[site]'") from None
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def _icon(path: Path) -> None:
    """The site's icon: a small blue square (written here, so nothing is fetched)."""
    from PIL import Image

    Image.new("RGB", (32, 32), (31, 119, 180)).save(path)


def stage(executed: Path, staging: Path, notebooks_dir: Path | None = None) -> dict:
    """Write Jupyter Book's source folder: the static notebooks, the home page, the docs pages, the
    config and the table of contents. Returns what went in (notebooks, whether smoke)."""
    notebooks_dir = Path(notebooks_dir or default_notebooks_dir())
    course = find_notebooks(notebooks_dir)
    missing = [p.name for p in course if not (executed / p.name).is_file()]
    if missing:
        raise SiteError(f"{executed} lacks executed copies of {', '.join(missing)}; run "
                        f"`python -m datl_helpers run-notebooks --out {executed}` first")
    (staging / "notebooks").mkdir(parents=True)
    runs = {p.stem: json.loads((executed / p.name).read_text()) for p in course}
    smoke = any(is_smoke(nb) for nb in runs.values())
    for stem, nb in runs.items():
        (staging / "notebooks" / f"{stem}.ipynb").write_text(json.dumps(static_notebook(nb, smoke)))
    (staging / "index.md").write_text(index_page((ROOT / "README.md").read_text()))
    (staging / "docs").mkdir()
    for page in DOCS:
        shutil.copy(ROOT / "docs" / f"{page}.md", staging / "docs" / f"{page}.md")
    minutes = {p.stem: study.minutes(p, notebooks_dir)[0] for p in course}  # the main path's
    (staging / "_toc.yml").write_text(toc(course, minutes))
    (staging / "_config.yml").write_text(config(smoke))
    shutil.copytree(mathjax_dir(), staging / "_extra" / "_static" / "mathjax")  # lands in the site's _static/
    _icon(staging / "favicon.png")
    return {"notebooks": [p.stem for p in course], "smoke": smoke, "minutes": minutes}


JUPYTER_BOOK = "from jupyter_book.cli.main import main; main()"
# Added to the conf.py that Jupyter Book writes. sphinx-thebe (live code cells through a remote
# kernel) would declare its script URL twice on every page, a console error, and it could not work
# offline anyway. The theme starts in light mode instead of an empty one (another console error), and
# the pages name their icon, so that no browser asks for a missing /favicon.ico.
CONF_TAIL = """
extensions = [e for e in extensions if e != "sphinx_thebe"]
html_context = {**globals().get("html_context", {}), "default_mode": "light"}
html_favicon = "favicon.png"
"""


def _run(command: list[str]) -> None:
    """Run a build step; its last lines become the error when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SiteError(f"building the site failed ({' '.join(command[:4])} ...):\n{tail}")


def build(executed: Path, out: Path, notebooks_dir: Path | None = None) -> dict:
    """Build the site from the executed notebooks in ``executed`` into ``out`` (replaced only once
    the new build is complete). Returns the pages, the smoke flag and the size in bytes."""
    executed, out = Path(executed), Path(out)
    try:
        import jupyter_book  # noqa: F401
    except ImportError:
        raise SiteError("the site is built with Jupyter Book 1: pip install -e '.[site]'") from None
    with tempfile.TemporaryDirectory(prefix="datl-site-") as tmp:
        staging = Path(tmp) / "book"
        info = stage(executed, staging, notebooks_dir)
        html = Path(tmp) / "html"
        _run([sys.executable, "-c", JUPYTER_BOOK, "config", "sphinx", str(staging)])  # Jupyter Book's conf.py
        with (staging / "conf.py").open("a") as conf:
            conf.write(CONF_TAIL)
        _run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "--keep-going", str(staging), str(html)])
        if not (html / "index.html").is_file():
            raise SiteError(f"Sphinx wrote no index.html in {html}")
        partial = out.with_name(out.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(html, partial)
        shutil.rmtree(out, ignore_errors=True)
        partial.rename(out)
    pages = sorted(str(p.relative_to(out)) for p in out.rglob("*.html")
                   if p.parent.name != "_static" and not p.name.startswith(("genindex", "search")))
    return {**info, "pages": pages, "bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file())}


def page_of(notebook: str) -> str:
    """The site path of a notebook's page, e.g. ``notebooks/05_summary_and_interview.html``."""
    return f"notebooks/{notebook}.html"

