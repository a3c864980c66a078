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


@pytest.mark.parametrize("path", ["environment.yml", "binder/environment.yml"])
def test_environment_file_parses(path):
    env = yaml.safe_load((ROOT / path).read_text())
    assert isinstance(env, dict) and env.get("name") and env.get("channels")
    assert isinstance(env.get("dependencies"), list) and env["dependencies"]


def test_environment_files_list_the_same_packages_as_pyproject():
    expected = pyproject_names()
    assert conda_names(ROOT / "environment.yml") == expected
    assert conda_names(ROOT / "binder" / "environment.yml") == expected


def test_binder_environment_is_pinned_and_cpu_only():
    env = yaml.safe_load((ROOT / "binder" / "environment.yml").read_text())
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    assert all("=" in d for d in deps if _name(d) not in NOT_PACKAGES), "pin every package"
    assert any(d.startswith("pytorch-cpu=") for d in deps)
    assert "conda-forge" in env["channels"]


def test_torch_is_a_range_not_a_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_specs = [s for s in project["dependencies"] if _name(s) in ("torch", "torchvision")]
    assert len(torch_specs) == 2 and all(">=" in s and "==" not in s for s in torch_specs)


def test_postbuild_is_executable_and_stops_on_error():
    post = ROOT / "binder" / "postBuild"
    assert os.access(post, os.X_OK)
    text = post.read_text()
    assert text.startswith("#!") and "set -e" in text and "prepare" in text
    # the environment brings the dependencies; postBuild must install datl itself
    assert re.search(r"^\s*python -m pip install (--no-deps )?(-e )?\.\s*$", text, flags=re.M), text


def test_binder_python_satisfies_requires_python():
    from packaging.specifiers import SpecifierSet

    env = yaml.safe_load((ROOT / "binder" / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and _name(d) == "python")
    version = python.split("=", 1)[1].strip("=")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert version in SpecifierSet(requires), f"binder pins python {version}, pyproject needs {requires}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```(?:bash|sh)\n(.*?)\n```", readme, flags=re.S)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command.strip() in ci
    # ... with the browser test's extra and Chromium installed first, so that it runs rather than skips
    assert '".[browser]"' in ci and "apt-get install" in ci and "chromium" in ci
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
