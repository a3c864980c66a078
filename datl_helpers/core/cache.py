"""Files that are never half-written: the data directory, sha256 checksums and atomic writes.

Every cache of the package (image domains, text corpora, results, exercises) writes through
:func:`atomic_write` and checks what it reads with :func:`sha256_file`; a built domain is kept beside a
manifest (:func:`save_with_manifest`, :func:`manifest_status`) and read back or rebuilt by :func:`load_or_build`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data directory: ``path``, else ``$DATL_DATA_DIR``, else ``~/.cache/datl``."""
    if path is not None:
        return Path(path)
    if os.environ.get("DATL_DATA_DIR"):
        return Path(os.environ["DATL_DATA_DIR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "datl"


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``.

    A crash leaves either the old file or the new one, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# A built thing cached as one file (``blob``) beside a JSON manifest holding its sha256 and its card,
# whose ``builder_version`` says which builder made it: the image domains (.npz) and the text corpora
# (.json.gz) alike.


def save_with_manifest(blob: Path, manifest: Path, write: Callable[[Path], None], card: dict) -> None:
    """Write ``blob`` with ``write(tmp)``, then its manifest (sha256 and card), both atomically."""
    import json

    atomic_write(blob, write)
    info = {"sha256": sha256_file(blob), "card": card}
    atomic_write(manifest, lambda tmp: tmp.write_text(json.dumps(info, indent=1)))


def manifest_status(blob: Path, manifest: Path, builder_version: int | None) -> str:
    """'cached', 'missing', 'stale' (an older builder made it) or 'corrupt' (its sha256 does not match)."""
    import json

    if not blob.exists() or not manifest.exists():
        return "missing"
    try:
        info = json.loads(manifest.read_text())
        expected, version = info["sha256"], info["card"]["builder_version"]
    except (OSError, ValueError, KeyError, TypeError):
        return "corrupt"
    if sha256_file(blob) != expected:
        return "corrupt"
    return "cached" if version == builder_version else "stale"


def load_or_build(what: str, status: str, load: Callable[[], T], build: Callable[[], T], save: Callable[[T], None],
                  rebuild: bool = False) -> T:
    """The cached thing when ``status`` is 'cached' and it reads back, else built and saved; a corrupt or
    unreadable cache is rebuilt with a warning that names ``what``."""
    import warnings

    if status == "cached" and not rebuild:
        try:
            return load()
        except (OSError, ValueError, KeyError) as err:
            status = f"unreadable ({err})"
    if status == "corrupt" or status.startswith("unreadable"):
        warnings.warn(f"cached {what} is {status}; rebuilding it", stacklevel=3)
    built = build()
    save(built)
    return built
