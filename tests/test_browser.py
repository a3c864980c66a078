"""Widgets in a real browser: JupyterLab + headless Chromium (Playwright) run notebook 00 and the
domain browser's slider must render as a live ipywidget, not as its text repr.

Needs `pip install -e ".[browser]"` (playwright, jupyterlab) and a system Chromium (Debian: `apt-get
install chromium`); Playwright's own browser download is not used. Without them the test is skipped,
except under CI (CI=true), where it fails so that it cannot be skipped silently.
A screenshot goes to tests/_executed/browser_notebook00.png (the widget alone: ..._widget.png).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "00_setup_and_domains.ipynb"
SHOTS = ROOT / "tests" / "_executed"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
SERVER_START_S = 90
KERNEL_START_S = 90
RUN_ALL_S = 300
WIDGET_S = 60

pytestmark = pytest.mark.browser


def _missing(reason: str):
    """Skip on a developer machine; fail under CI, where the browser test must really run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}: see .ci/run")
    pytest.skip(reason)


def _chromium() -> str | None:
    explicit = os.environ.get("DATL_CHROMIUM")
    if explicit:
        return shutil.which(explicit)
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _smoke_copy(dest: Path) -> Path:
    """Notebook 00 with SMOKE = True in its parameters cell, in a directory of its own."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert "SMOKE = False" in params.source, "the parameters cell should set SMOKE = False"
    params.source = params.source.replace("SMOKE = False", "SMOKE = True", 1)
    path = dest / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


def _lab_settings(settings_dir: Path) -> None:
    """User settings for this server only: every cell attached to the DOM, no news/update toasts."""
    for plugin, values in {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _stop(proc: subprocess.Popen, shutdown_url: str, log) -> None:
    """Shut the server down (kernels included), however the test went."""
    try:
        import psutil

        family = psutil.Process(proc.pid).children(recursive=True)
    except Exception:  # psutil missing or the server already gone
        family = []
    if proc.poll() is None:
        try:  # the clean way: the server shuts its kernels down, then exits
            urllib.request.urlopen(urllib.request.Request(shutdown_url, method="POST"), timeout=10)
            proc.wait(timeout=20)
        except Exception:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    for child in family:  # kernels run in their own session, outside the server's process group
        with contextlib.suppress(Exception):
            child.kill()
    log.close()


@pytest.fixture
def chromium() -> str:
    """The system Chromium's path, once everything the test needs is known to be installed."""
    for module in ("playwright", "jupyterlab", "jupyterlab_widgets"):
        if importlib.util.find_spec(module) is None:
            _missing(f'{module} is not installed (pip install -e ".[browser]")')
    path = _chromium()
    if path is None:
        _missing("no Chromium on PATH (Debian: apt-get install chromium; or set DATL_CHROMIUM)")
    return path


@pytest.fixture
def jupyterlab(chromium, tmp_path):
    """A JupyterLab server on a free localhost port, rooted at a smoke-mode copy of notebook 00."""
    root = tmp_path / "notebooks"
    root.mkdir()
    notebook = _smoke_copy(root)
    jupyter_dirs = {  # no user config, kernels or workspaces leak in
        "JUPYTER_CONFIG_DIR": tmp_path / "config",
        "JUPYTER_DATA_DIR": tmp_path / "data",
        "JUPYTER_RUNTIME_DIR": tmp_path / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": tmp_path / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": tmp_path / "lab-workspaces",
        "IPYTHONDIR": tmp_path / "ipython",
    }
    _lab_settings(jupyter_dirs["JUPYTERLAB_SETTINGS_DIR"])
    env = {**os.environ, **{k: str(v) for k, v in jupyter_dirs.items()}, "DATL_QUIET": "1"}
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "jupyterlab.log"
    log = open(log_path, "w")  # noqa: SIM115 (open while the server runs; closed in the finally below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.allow_root=True"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab not up after {SERVER_START_S} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"url": base, "token": token, "notebook": notebook, "log": log_path}
    finally:
        _stop(proc, f"{base}/api/shutdown?token={token}", log)


# JavaScript run in the page through the app object JupyterLab exposes with expose_app_in_browser.
_PANEL = """() => {
  const app = window.jupyterapp;
  if (!app) return null;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path.endsWith('.ipynb')) return w;
  }
  return null;
}"""

_STATE = """(panel) => {
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.model.cells;
  const code = [], errors = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    code.push(cell.executionCount);
    for (let j = 0; j < cell.outputs.length; j++) {
      const out = cell.outputs.get(j).toJSON();
      if (out.output_type === 'error') errors.push({cell: i, ename: out.ename, evalue: out.evalue});
    }
  }
  return {kernel: kernel ? kernel.status : null, counts: code, errors: errors,
          pending: panel.content.widgets.filter(w => w.model.type === 'code' && w.promptNode &&
                                                 w.promptNode.textContent.includes('*')).length};
}"""


def _state(page):
    return page.evaluate(f"() => ({_STATE})(({_PANEL})())")


def _wait(page, done, timeout_s: float, what: str, log: Path):
    deadline = time.monotonic() + timeout_s
    state = None
    while time.monotonic() < deadline:
        try:
            state = _state(page)
        except Exception as err:  # app or panel not there yet
            state = {"not ready": str(err).splitlines()[0]}
        if state.get("errors"):
            pytest.fail(f"a cell raised while {what}: {state['errors']}")
        if done(state):
            return state
        time.sleep(1)
    pytest.fail(f"timed out after {timeout_s} s {what}; last state {state}\n"
                f"server log tail:\n{log.read_text()[-2000:]}")


def _answer_quiz_and_interview(page, sync_api) -> None:
    """Notebook 00's self-check (jupyterquiz) and interview practice (ipywidgets): click an option and see
    its explanation; write an answer, reveal the model answer, tick a rubric point and see the score."""
    quiz_out = page.locator(".jp-CodeCell").filter(has_text='quiz.show("00")').first.locator(".jp-OutputArea")
    option = quiz_out.locator(".MCButton").first
    option.scroll_into_view_if_needed()
    option.click()
    feedback = quiz_out.locator(".Feedback").first
    page.wait_for_function("el => el.textContent.trim().length > 10", arg=feedback.element_handle(), timeout=WIDGET_S * 1000)
    quiz_out.locator(".Quiz").first.screenshot(path=str(SHOTS / "browser_quiz.png"))

    card = page.locator(".jp-CodeCell").filter(has_text="interview.practice(").first.locator(".jp-OutputArea")
    card.locator("textarea").first.fill("Domain shift: the inputs differ between training and use.")
    card.locator("button", has_text="Show model answer").first.click()
    card.get_by_text("Model answer.").first.wait_for(state="visible", timeout=WIDGET_S * 1000)
    card.locator("input[type=checkbox]").first.check()
    page.wait_for_function("el => /Score: 1 of/.test(el.textContent)", arg=card.element_handle(), timeout=WIDGET_S * 1000)
    card.screenshot(path=str(SHOTS / "browser_interview.png"))


def test_notebook00_widgets_render_in_jupyterlab(chromium, jupyterlab):
    from playwright import sync_api

    SHOTS.mkdir(parents=True, exist_ok=True)
    shot, widget_shot = SHOTS / "browser_notebook00.png", SHOTS / "browser_notebook00_widget.png"
    for old in (shot, widget_shot):
        old.unlink(missing_ok=True)
    lab, log = jupyterlab, jupyterlab["log"]
    started = time.monotonic()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WIDGET_S * 1000)
            page.goto(f"{lab['url']}/lab/tree/{lab['notebook'].name}?token={lab['token']}",
                      wait_until="domcontentloaded", timeout=SERVER_START_S * 1000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=KERNEL_START_S * 1000)
            _wait(page, lambda s: s.get("kernel") == "idle", KERNEL_START_S, "waiting for the kernel to start", log)

            page.evaluate(f"""() => {{
              const panel = ({_PANEL})();
              window.jupyterapp.shell.activateById(panel.id);
              window.jupyterapp.commands.execute('notebook:run-all-cells');
            }}""")
            state = _wait(page, lambda s: s.get("kernel") == "idle" and s["counts"] and
                          all(c is not None for c in s["counts"]) and s["pending"] == 0,
                          RUN_ALL_S, "running all cells", log)
            run_s = time.monotonic() - started

            # The domain browser's cell: its output area must hold live widgets, not their repr.
            cell = page.locator(".jp-CodeCell").filter(has_text="widgets.domain_browser(domains)").first
            output = cell.locator(".jp-OutputArea")
            slider = output.locator(".jupyter-widgets.widget-slider")
            try:
                slider.first.wait_for(state="visible", timeout=WIDGET_S * 1000)
            except sync_api.TimeoutError:
                page.screenshot(path=str(shot))
                pytest.fail("no ipywidgets slider rendered in the domain browser's output; output text:\n"
                            f"{output.inner_text()[:2000]!r}\nstate: {state}\nscreenshot: {shot}")
            text = output.inner_text()
            for repr_text in ("IntSlider(", "VBox(children=", "Error displaying widget", "Loading widget"):
                assert repr_text not in text, f"widget shown as text ({repr_text!r}):\n{text[:2000]}"
            handle = slider.locator(".noUi-handle")
            assert handle.count() == 1, f"the slider has no noUiSlider handle; output text:\n{text[:2000]}"
            assert "sample" in slider.inner_text(), slider.inner_text()
            readout = slider.locator(".widget-readout")
            assert readout.inner_text().strip() == "0", readout.inner_text()
            image = output.locator(".jupyter-widgets.widget-image img, img.widget-image").first
            image.wait_for(state="visible")
            before = image.get_attribute("src")

            # It is live: a key press moves the slider and the kernel redraws the image.
            handle.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function("([el, v]) => el.textContent.trim() === v",
                                   arg=[readout.element_handle(), "1"], timeout=WIDGET_S * 1000)
            page.wait_for_function("([img, src]) => img.getAttribute('src') !== src",
                                   arg=[image.element_handle(), before], timeout=WIDGET_S * 1000)

            widget_box = output.locator(".jupyter-widgets.widget-vbox").first
            widget_box.evaluate("el => el.scrollIntoView({block: 'center'})")
            page.wait_for_timeout(300)
            widget_box.screenshot(path=str(widget_shot))
            page.screenshot(path=str(shot))

            _answer_quiz_and_interview(page, sync_api)
        finally:
            browser.close()
    total_s = time.monotonic() - started
    print(f"notebook 00 (smoke) in JupyterLab + Chromium: run all {run_s:.0f} s, test {total_s:.0f} s; "
          f"{len(state['counts'])} code cells; screenshots {shot.name}, {widget_shot.name}")
