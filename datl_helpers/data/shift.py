"""Making domain shift visible: pixel statistics and 2-D embeddings of several domains at once.

Notebook 00 uses these to show *why* a model trained on one domain stumbles on another before any
model is trained: the domains differ in brightness, colour and texture, and raw pixels of the same
digit class cluster by domain rather than by class.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from datl_helpers.core.domain import Domain, to_float
from datl_helpers.core.errors import check_choice


def pixel_statistics(domain: Domain, max_images: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean and spread of the pixels of up to ``max_images`` test images, and how colourful they are.

    ``saturation`` is the mean of (max - min) over the three channels of each pixel: 0 for grey
    images. ``contrast`` is the mean per-image standard deviation of brightness.
    """
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(domain.x_test), generator=g)[:max_images]
    x = to_float(domain.x_test[idx])
    brightness = x.mean(dim=1)
    mean_rgb = x.mean(dim=(0, 2, 3))
    return {
        "images": len(idx),
        "mean_r": float(mean_rgb[0]),
        "mean_g": float(mean_rgb[1]),
        "mean_b": float(mean_rgb[2]),
        "brightness": float(brightness.mean()),
        "contrast": float(brightness.flatten(1).std(dim=1).mean()),
        "saturation": float((x.amax(dim=1) - x.amin(dim=1)).mean()),
    }


def brightness_samples(domain: Domain, n_pixels: int = 20000, seed: int = 0) -> np.ndarray:
    """A random sample of per-pixel brightness values in [0, 1] from the test images."""
    g = torch.Generator().manual_seed(seed)
    b = to_float(domain.x_test).mean(dim=1).flatten()
    return b[torch.randperm(len(b), generator=g)[:n_pixels]].numpy()


def stack_domains(
    domains: Mapping[str, Domain], per_domain: int, seed: int = 0
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """``per_domain`` random test images from each domain, with their labels and domain names."""
    g = torch.Generator().manual_seed(seed)
    xs, ys, names = [], [], []
    for name, d in domains.items():
        idx = torch.randperm(len(d.x_test), generator=g)[:per_domain]
        xs.append(d.x_test[idx])
        ys.append(d.y_test[idx].numpy())
        names += [name] * len(idx)
    return torch.cat(xs), np.concatenate(ys), np.asarray(names)


def embed_2d(vectors: np.ndarray, method: str = "tsne", seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D embedding of N x D vectors: ``"pca"`` or ``"tsne"`` (PCA to 50 dims first), scikit-learn."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    v = np.asarray(vectors, dtype=np.float32)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(v)
    check_choice("method", method, ("pca", "tsne"))
    if v.shape[1] > 50 and len(v) > 50:
        v = PCA(n_components=50, random_state=seed).fit_transform(v)
    perplexity = min(perplexity, max(2.0, (len(v) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(v)


def domain_separability(vectors: np.ndarray, domain_names: np.ndarray, seed: int = 0) -> float:
    """Cross-validated accuracy of a logistic regression telling the domains apart from ``vectors``.

    Chance is 1 / (number of domains); near 1.0 means the domains are trivially distinguishable.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    v = np.asarray(vectors, dtype=np.float32)
    dims = min(50, v.shape[1], len(v) // 2)
    # raw pixels of four domains need ~2,000 solver steps to converge; 5,000 leaves room
    clf = make_pipeline(StandardScaler(), PCA(dims, random_state=seed), LogisticRegression(max_iter=5000))
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, v, domain_names, cv=folds).mean())
