"""The course website: built offline from executed notebooks, then read in a real browser.

The notebooks executed by tests/test_notebooks.py (smoke mode, tests/_executed/) are the site's
pages when they are all there and up to date; otherwise this test runs them itself. The browser part
serves the built site on localhost and opens every page in Chromium through Playwright (as
tests/test_browser.py does for JupyterLab): no console error, no failed request, every image loaded,
the navigation reaches every notebook, notebook 05's page shows its table, and a quiz answers a click.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from datl_helpers import runner, site

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "tests" / "_executed"
SCREENSHOTS = EXECUTED


def _executed_notebooks(tmp_path_factory) -> Path:
    """tests/_executed when it holds an executed copy of every notebook, newer than its source; else
    a fresh smoke run of all of them."""
    notebooks = runner.find_notebooks()
    fresh = all((EXECUTED / p.name).is_file() and (EXECUTED / p.name).stat().st_mtime >= p.stat().st_mtime
                for p in notebooks)
    if fresh:
        return EXECUTED
    out = tmp_path_factory.mktemp("executed")
    rows = runner.run_notebooks(notebooks, out, smoke=True, device="cpu")
    assert all(r["status"] == "ok" for r in rows), rows
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    try:
        import jupyter_book  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI=true but Jupyter Book is missing: pip install -e '.[site]' (.ci/run does)")
        pytest.skip("the site extra: pip install -e '.[site]'")
    out = tmp_path_factory.mktemp("site") / "site"
    executed = _executed_notebooks(tmp_path_factory)
    return out, site.build(executed, out), executed


def test_static_notebook_replaces_widgets_and_marks_smoke_runs():
    widget = {"output_type": "display_data", "metadata": {},
              "data": {site.WIDGET: {"model_id": "x"}, "text/plain": "VBox(...)"}}
    figure = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}}
    nb = {"metadata": {"widgets": {"state": {}}, "papermill": {"parameters": {"SMOKE": True}}},
          "cells": [{"cell_type": "code", "source": "w", "outputs": [widget, figure], "metadata": {}}]}
    assert site.is_smoke(nb)
    page = site.static_notebook(nb, smoke=True)
    assert "widgets" not in page["metadata"]
    assert page["cells"][0]["cell_type"] == "markdown" and site.SMOKE_BANNER in page["cells"][0]["source"]
    outputs = page["cells"][1]["outputs"]
    assert outputs[0]["data"]["text/markdown"] == site.WIDGET_NOTE and outputs[1] == figure
    assert nb["cells"][0]["outputs"][0] is widget  # the executed notebook itself is left as it was
    assert not site.is_smoke({"metadata": {"papermill": {"parameters": {"SMOKE": False}}}})


def test_toc_puts_the_core_path_first_with_study_times():
    names = [Path(f"{k}_x.ipynb") for k in ("00", "01", "02", "03", "04", "05", "06", "07")]
    text = site.toc(names, {p.stem: 10 for p in names})
    core, optional = text.index("Core path (about 50 min"), text.index("Optional (about 30 min)")
    assert core < text.index("notebooks/04_x") < optional < text.index("notebooks/03_x") < text.index("docs/results")


def test_a_missing_executed_notebook_is_a_clear_error(tmp_path):
    with pytest.raises(site.SiteError, match="run-notebooks --out"):
        site.stage(tmp_path, tmp_path / "book")


@pytest.mark.slow
def test_the_site_builds_offline_with_every_page(built):
    out, info, executed = built
    assert (out / "index.html").is_file()
    for stem in info["notebooks"]:
        page = (out / site.page_of(stem)).read_text()
        figures = sum("image/png" in o.get("data", {}) for c in json.loads((executed / f"{stem}.ipynb").read_text())["cells"]
                      for o in c.get("outputs", []))
        assert page.count("<img") >= figures, (stem, figures)  # every figure is on the page
        assert site.WIDGET_NOTE.strip("*")[:40] in page or "widget" not in page.lower(), stem
    for rel in info["pages"]:  # nothing is loaded from the internet (links to elsewhere are fine)
        external = re.findall(r"<(?:script|img|link)\b[^>]*(?:src|href)=\"https?://[^\"]*", (out / rel).read_text())
        assert not [e for e in external if "rel=\"icon\"" not in e], (rel, external[:3])
    assert (out / "_static" / "mathjax" / "MathJax.js").is_file()
    if info["smoke"]:
        assert all(site.SMOKE_BANNER[:30] in (out / p).read_text() for p in info["pages"])
    for doc in site.DOCS:
        assert (out / "docs" / f"{doc}.html").is_file()


def _serve(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.slow
@pytest.mark.browser
def test_every_page_reads_in_a_browser(built):
    playwright = pytest.importorskip("playwright.sync_api", reason="the browser extra: pip install -e '.[browser]'")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("CI=true but no chromium: apt-get install chromium")
        pytest.skip("no chromium (apt-get install chromium)")
    out, info, _ = built
    server = _serve(out)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    problems: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
        page.goto(f"{base}/index.html")
        links = page.eval_on_selector_all("nav a.reference.internal", "els => els.map(e => e.getAttribute('href'))")
        reached = {Path(h.split("#")[0]).stem for h in links}
        assert set(info["notebooks"]) <= reached, f"the navigation misses {set(info['notebooks']) - reached}"
        for rel in info["pages"]:
            page.goto(f"{base}/{rel}")
            page.wait_for_load_state("networkidle")
            broken = page.eval_on_selector_all("img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0))"
                                                      ".map(e => e.src.slice(0, 80))")
            problems += [f"{rel}: image not loaded: {src}" for src in broken]
        page.goto(f"{base}/{site.page_of('05_summary_and_interview')}")
        assert page.locator("table").count() >= 1 and "accuracy (%)" in page.locator("table").first.inner_text()
        page.goto(f"{base}/{site.page_of('02_fine_tuning')}")
        option = page.locator(".MCButton").first  # a jupyterquiz answer: the page itself explains it
        option.scroll_into_view_if_needed()
        option.click()
        feedback = page.locator(".Feedback").first
        page.wait_for_function("el => el.textContent.trim().length > 10", arg=feedback.element_handle(), timeout=10_000)
        page.locator(".Quiz").first.screenshot(path=str(SCREENSHOTS / "site_quiz.png"))
        page.goto(f"{base}/{site.page_of('04_domain_adversarial')}")
        page.screenshot(path=str(SCREENSHOTS / "site_notebook04.png"), full_page=False)
        browser.close()
    server.shutdown()
    assert not problems, "\n".join(problems[:20])
    (SCREENSHOTS / "site.json").write_text(json.dumps({k: v for k, v in info.items() if k != "minutes"}, indent=1))
