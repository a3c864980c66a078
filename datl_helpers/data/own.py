"""Your own images as a domain: ``npz:PATH`` (arrays ``x`` and ``y``) and ``folder:PATH`` (one folder per class)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from datl_helpers.core.domain import (  # the domain type and its sampling, also data.few_labels etc. for the notebooks
    Domain,
    examples_per_class,  # noqa: F401
    few_label_indices,  # noqa: F401
    few_labels,  # noqa: F401
    sample_test_set,  # noqa: F401
    to_float,  # noqa: F401
)
from datl_helpers.core.errors import (
    BadDataError,
)
from datl_helpers.data.images import IMAGE_SIZE, make_domain, to_common_format

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
        return make_domain(f"npz:{path}", x, y, card, test_fraction)
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
    return make_domain(f"folder:{path}", x, y, card, test_fraction)


