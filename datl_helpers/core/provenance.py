"""Where a result came from: the code, the command, the machine settings, written with the result.

A reference result is evidence only while the code that made it still makes it. So every result
file the project writes records, beside its numbers:

* ``commit``: the git commit of the working tree, and whether the tree was clean;
* ``code``: a sha256 of each source file of ``datl_helpers`` that the runs depend on (the modules
  they import, followed through every import), and one sha256 over all of them;
* ``command``: the exact command line, ``torch_threads_per_run`` and the ``device``;
* ``versions`` of the libraries and the ``date``.

:func:`changed_modules` compares a recorded ``code`` with the files as they are now; the test
suite re-runs a slice of each reference (:mod:`datl_helpers.cli.reproduce`) and reports a reference
whose code changed without being re-verified.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import json
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from datl_helpers.core.cache import sha256_bytes

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parent


def module_file(module: str) -> Path:
    """The source file of a module named relative to the package (``core.errors``) or by its short
    name (``errors``); a subpackage's is its ``__init__.py``."""
    from datl_helpers import FACE

    dotted = FACE.get(module, module)
    path = PACKAGE.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise ValueError(f"no module datl_helpers.{module}")


def module_name(path: Path) -> str:
    """A source file's module, relative to the package: ``core.errors``; ``data`` for ``data/__init__.py``."""
    parts = path.resolve().relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The datl_helpers modules (as :func:`module_name` writes them) that one file imports, anywhere in
    it (function-level imports too). ``from datl_helpers import dann`` goes through the package's face."""
    from datl_helpers import FACE

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "datl_helpers":
            base = node.module.partition(".")[2]
            for alias in node.names:
                inner = f"{base}.{alias.name}" if base else FACE.get(alias.name, "")
                found.add(inner if _exists(inner) else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.partition(".")[2] for a in node.names if a.name.startswith("datl_helpers.")}
    return {m for m in found if m and _exists(m)}


def _exists(module: str) -> bool:
    path = PACKAGE.joinpath(*module.split(".")) if module else PACKAGE
    return bool(module) and (path.with_suffix(".py").is_file() or (path / "__init__.py").is_file())


def dependencies(modules: Iterable[str]) -> list[str]:
    """``modules`` and every datl_helpers module they import, followed to the end, sorted."""
    from datl_helpers import FACE

    seen: set[str] = set()
    todo = [FACE.get(m, m) for m in modules]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo += sorted(imports_of(module_file(m)) - seen)
    return sorted(seen)


def code_hashes(modules: Iterable[str]) -> dict:
    """The sha256 of every source file ``modules`` depend on, and one sha256 over all of them."""
    files = {m: sha256_bytes(module_file(m).read_bytes()) for m in dependencies(modules)}
    return {"sha256": sha256_bytes(json.dumps(files, sort_keys=True).encode()), "files": files}


def changed_modules(recorded: dict) -> list[str]:
    """The modules of a recorded :func:`code_hashes` whose source differs now (or is gone)."""
    now = {m: sha256_bytes(_source(m)) for m in recorded["files"]}
    return sorted(m for m, h in recorded["files"].items() if now.get(m) != h)


def _source(module: str) -> bytes:
    try:
        return module_file(module).read_bytes()
    except ValueError:  # gone, or a name from before the package had subpackages
        return b""


def git_commit(root: Path = ROOT) -> dict:
    """The commit checked out at ``root`` and whether the tree is clean (None where git cannot say)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "clean": None if status is None else status == ""}


def command_line(argv: list[str] | None = None) -> str:
    """This process's command line as one could type it again (``python`` for the interpreter)."""
    argv = sys.argv if argv is None else argv
    first = argv[0] if argv else ""
    if first.endswith("__main__.py"):
        first = "-m datl_helpers"
    else:
        with contextlib.suppress(ValueError):
            first = str(Path(first).resolve().relative_to(ROOT))
    return " ".join(["python", first, *map(shlex.quote, argv[1:])]).strip()


def versions() -> dict[str, str]:
    """The versions that change results: this package, torch, torchvision, scikit-learn, numpy, Python."""
    import numpy
    import sklearn
    import torch
    import torchvision

    from datl_helpers import __version__

    return {"datl_helpers": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "scikit-learn": sklearn.__version__, "numpy": numpy.__version__, "python": platform.python_version()}


def config_dict(config) -> dict:
    """A configuration dataclass as JSON-ready values, for result files and ``--json``: its fields, each
    through the ``as_json`` function of its field metadata when it has one (robust's radii become
    ``"8/255"``)."""
    from dataclasses import asdict, fields

    out = asdict(config)
    for f in fields(config):
        if "as_json" in f.metadata:
            out[f.name] = f.metadata["as_json"](getattr(config, f.name))
    return out


def record(modules: Iterable[str] | None, threads: int | dict | list, device: str = "cpu",
           script: str | None = None) -> dict:
    """The provenance fields of a result file whose runs depend on ``modules`` (None: no ``code``)."""
    return {"date": datetime.date.today().isoformat(), "device": device, "torch_threads_per_run": threads,
            "versions": versions(), **({"script": script} if script else {}), "command": command_line(),
            **git_commit(), **({"code": code_hashes(modules)} if modules is not None else {})}


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON, atomically (a crash leaves the old file or the new one)."""
    from datl_helpers.core.cache import atomic_write

    atomic_write(Path(path), lambda tmp: tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n"))
