"""The install files agree with each other, and CI runs the README's test command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch", "pytorch-cpu": "torch", "playwright-python": "playwright"}
NOT_PACKAGES = {"python", "pip"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower()


def pyproject_names() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [s for extra in project["optional-dependencies"].values() for s in extra]
    return {_name(s) for s in specs}


def conda_names(path: Path) -> set[str]:
    env = yaml.safe_load(path.read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):  # the pip: section: packages only PyPI has, and the course itself (-e .)
            names |= {_name(d) for d in dep.get("pip", []) if not d.startswith("-")}
            continue
        name = _name(dep)
        names.add(CONDA_TO_PIP.get(name, name))
    return names - NOT_PACKAGES


def test_environment_file_parses():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert isinstance(env, dict) and env.get("name") and env.get("channels")
    assert isinstance(env.get("dependencies"), list) and env["dependencies"]


def test_environment_file_lists_the_same_packages_as_pyproject():
    assert conda_names(ROOT / "environment.yml") == pyproject_names()


TEST_ONLY = {"pytest", "nbval", "ruff", "playwright", "adversarial-robustness-toolbox", "jupyter-repo2docker"}


def binder_requirements() -> dict[str, str]:
    """binder/requirements.txt as {package: its specifier}."""
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "binder" / "requirements.txt").read_text().splitlines()]
    return {_name(ln): ln[len(_name(ln)):] for ln in lines if ln}


def test_binder_installs_what_the_notebooks_need_and_no_test_tooling():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needs = {_name(s) for s in project["dependencies"]}
    assert set(binder_requirements()) == needs  # JupyterLab comes with repo2docker's own environment
    assert not set(binder_requirements()) & TEST_ONLY
    assert not (ROOT / "binder" / "environment.yml").exists(), "repo2docker would use it instead of requirements.txt"


def test_binder_pins_every_package_and_bounds_torch():
    for name, spec in binder_requirements().items():
        if name in ("torch", "torchvision"):  # a tested range, never one exact build
            assert ">=" in spec and "<=" in spec and "==" not in spec, (name, spec)
        else:
            assert spec.startswith("==") and "," not in spec, (name, spec)


def test_torch_is_a_range_not_a_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_specs = [s for s in project["dependencies"] if _name(s) in ("torch", "torchvision")]
    assert len(torch_specs) == 2 and all(">=" in s and "==" not in s for s in torch_specs)


def test_postbuild_is_executable_and_stops_on_error():
    post = ROOT / "binder" / "postBuild"
    assert os.access(post, os.X_OK)
    text = post.read_text()
    assert text.startswith("#!") and "set -e" in text and "prepare" in text
    # requirements.txt brings the dependencies; postBuild must install datl itself
    assert re.search(r"^\s*python -m pip install (--no-deps )?(-e )?\.\s*$", text, flags=re.M), text


def test_binder_python_satisfies_requires_python():
    from packaging.specifiers import SpecifierSet

    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime), runtime
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert runtime.removeprefix("python-") in SpecifierSet(requires), f"binder runs {runtime}, pyproject needs {requires}"


def test_repo2docker_plans_the_build_we_expect(tmp_path):
    """repo2docker's own detection, offline and without Docker: the Dockerfile it would build."""
    import shutil

    if shutil.which("repo2docker") is None and not (Path(sys.executable).parent / "repo2docker").exists():
        pytest.fail("repo2docker is missing: pip install -e '.[test]' installs jupyter-repo2docker")
    exe = shutil.which("repo2docker") or str(Path(sys.executable).parent / "repo2docker")
    repo = tmp_path / "repo"  # the files repo2docker looks at; it reads, it does not build
    shutil.copytree(ROOT / "binder", repo / "binder")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    shutil.copy(ROOT / "environment.yml", repo / "environment.yml")
    done = subprocess.run([exe, "--no-build", "--no-run", "--debug", str(repo)], capture_output=True, text=True,
                          timeout=120)
    plan = done.stdout + done.stderr
    assert done.returncode == 0, plan[-3000:]
    assert "apt-get install --yes --no-install-recommends r-cran-modeldata" in plan  # apt.txt, at build time
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in plan
    assert "./binder/postBuild" in plan
    assert "environment.yml" not in plan  # binder/ wins over the top-level conda file
    assert plan.index("r-cran-modeldata") < plan.index("binder/requirements.txt\"") < plan.index("./binder/postBuild")


@pytest.mark.network
def test_binder_requirements_resolve_with_pip(tmp_path):
    """pip resolves the pinned requirements (metadata only, nothing installed): Binder's pip will too."""
    import json

    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                           "--report", str(report), "-r", str(ROOT / "binder" / "requirements.txt")],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and ("NewConnectionError" in done.stderr or ("No matching distribution" in done.stderr
                                 and "from versions: none" in done.stderr)):
        pytest.skip(f"pip cannot reach the package index here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr[-3000:]
    planned = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    for name, spec in binder_requirements().items():
        if spec.startswith("=="):
            assert planned[name] == spec[2:], (name, planned.get(name))
    assert "torch" in planned and "jupyterquiz" in planned


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```(?:bash|sh)\n(.*?)\n```", readme, flags=re.S)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command.strip() in ci
    # ... with the browser test's extra and Chromium installed first, so that it runs rather than skips
    assert '".[browser,site]"' in ci and "apt-get install" in ci and "chromium" in ci
    assert ci.index('".[browser]"') < ci.index(test_command.strip())
    open_command = next(c for c in commands if "jupyter lab" in c)
    assert "notebooks/00_setup_and_domains.ipynb" in open_command


def test_checkpoint_ships_with_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "weights/*.pt" in project["tool"]["setuptools"]["package-data"]["datl_helpers"]
    assert (ROOT / "datl_helpers" / "weights" / "digitnet_syn.pt").stat().st_size < 5_000_000


def test_gpu_checks_script_refuses_clearly_without_a_gpu(tmp_path):
    script = ROOT / ".ci" / "gpu-checks"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the script would run the checks")
    run = subprocess.run(["bash", str(script), str(tmp_path / "out"), "bench"], capture_output=True, text=True,
                         env={**os.environ, "PYTHON": sys.executable})
    assert run.returncode != 0 and "no CUDA GPU" in run.stderr
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode != 0 and "usage: bash .ci/gpu-checks OUT" in usage.stderr
