"""Notebook 01: feature extraction. Freeze a pretrained backbone, replace its head, train the head.

Two ways to train the head on frozen features:

* :func:`train_linear_head` - a torch ``nn.Linear`` head trained with :func:`datl_helpers.core.train.fit`
  while every stage is frozen and kept in eval mode (its BatchNorm statistics stay pretrained);
* :func:`fit_logistic_probe` - scikit-learn's ``LogisticRegression`` on features extracted once with
  :func:`extract_features` (cheap: the backbone runs once per image, not once per step).

Plus the experiments of the notebook: which stage's features transfer best (:func:`stage_probe`),
what a preprocessing mismatch costs (:func:`preprocessing_mismatch`) and the same recipe on your own
photos with an ImageNet backbone (:func:`photo_probe`); the label-efficiency grid is
:func:`datl_helpers.transfer.experiments.label_efficiency`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from datl_helpers.core import metrics, models, train
from datl_helpers.core.domain import Domain, few_label_indices, to_float
from datl_helpers.core.errors import TooFewSamplesError


@torch.no_grad()
def extract_features(
    model: models.StagedNet,
    x: torch.Tensor,
    stage: str | None = None,
    batch_size: int = 256,
    device: str | torch.device = "auto",
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Features of uint8 images ``x`` after ``stage`` (default: the last), in eval mode, on the CPU.

    ``preprocess`` replaces the usual ``uint8 / 255`` conversion (used to show what a mismatch does).
    """
    dev = train.resolve_device(device)
    model.to(dev)
    was_training = model.training
    model.eval()
    convert = preprocess or to_float
    out = [
        model.features(convert(x[i : i + batch_size].to(dev)), stage=stage).float().cpu()
        for i in range(0, len(x), batch_size)
    ]
    model.train(was_training)
    return torch.cat(out)


def fit_logistic_probe(features: torch.Tensor, y: torch.Tensor, c: float = 1.0, seed: int = 0):
    """A standardised multinomial logistic regression on ``features`` (scikit-learn pipeline)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
    return clf.fit(features.numpy(), y.numpy())


def probe_accuracy(
    train_feats: torch.Tensor, y_train: torch.Tensor, test_feats: torch.Tensor, y_test: torch.Tensor,
    c: float = 1.0, seed: int = 0,
) -> dict[str, float]:
    """Accuracy and macro F1 of a logistic probe trained on one set of features, tested on another."""
    probe = fit_logistic_probe(train_feats, y_train, c=c, seed=seed)
    rep = metrics.report(y_test, probe.predict(test_feats.numpy()), num_classes=int(y_test.max()) + 1)
    return {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"]}


def train_linear_head(
    backbone: models.StagedNet,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    steps: int = 200,
    lr: float = 1e-2,
    seed: int = 0,
    device: str | torch.device = "auto",
) -> train.History:
    """Replace the head, freeze every stage (eval mode too) and train only the new linear head
    (taught in notebook 01 §1, written out as ``make_linear_probe`` and ``probe_step``)."""
    models.replace_head(backbone, num_classes)
    models.freeze_stages(backbone, len(backbone.stage_names))
    keep_frozen_stages_in_eval = lambda epoch, model: model.stages.eval()  # noqa: E731
    fit_config = train.FitConfig(epochs=1, steps_per_epoch=steps, lr=lr)
    return train.fit(backbone, x, y, fit_config, on_epoch_start=keep_frozen_stages_in_eval, seed=seed, device=device)


def probe_over_seeds(
    backbone: models.StagedNet,
    target: Domain,
    labels_per_class: int | None,
    seeds: Sequence[int],
    stage: str | None = None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: str | torch.device = "auto",
) -> list[dict]:
    """Logistic-probe scores (one dict per seed, each seed its own labelled subset) on the features
    after ``stage``. Only the labelled images and the test set go through the backbone."""
    subsets = {seed: few_label_indices(target.y_train, labels_per_class, seed) for seed in seeds}
    needed = torch.unique(torch.cat(list(subsets.values())))
    where = {int(i): n for n, i in enumerate(needed)}
    feats = extract_features(backbone, target.x_train[needed], stage=stage, device=device, preprocess=preprocess)
    test = extract_features(backbone, target.x_test, stage=stage, device=device, preprocess=preprocess)
    rows = []
    for seed, idx in subsets.items():
        rows_of_subset = torch.tensor([where[int(i)] for i in idx])
        scores = probe_accuracy(feats[rows_of_subset], target.y_train[idx], test, target.y_test, seed=seed)
        rows.append({"seed": seed, "dims": feats.shape[1], **scores})
    return rows


def photo_probe(model: models.StagedNet, dataset, test_fraction: float = 0.25, seed: int = 0, batch_size: int = 32,
                device: str | torch.device = "auto") -> dict:
    """Feature extraction on your own photos (notebook 01 §6): the frozen ``model``'s features of every
    image of ``dataset`` (a torchvision ``ImageFolder`` whose transform is the weights' own
    preprocessing, so images arrive as normalised float tensors), a stratified train/test split and
    a logistic probe. Returns the class names, split sizes, accuracy and macro F1 on the test split."""
    from sklearn.model_selection import train_test_split
    from torch.utils.data import DataLoader

    counts = torch.bincount(torch.tensor(dataset.targets), minlength=len(dataset.classes))
    if len(dataset.classes) < 2 or int(counts.min()) < 4:
        raise TooFewSamplesError(
            f"a photo probe needs at least 2 classes with 4 photos each; the folder has "
            f"{dict(zip(dataset.classes, counts.tolist()))}: add photos (one subfolder per class)")
    dev = train.resolve_device(device)
    model.to(dev).eval()
    feats, labels = [], []
    with torch.no_grad():
        for x, y in DataLoader(dataset, batch_size=batch_size):
            feats.append(model.features(x.to(dev)).float().cpu())
            labels.append(y)
    x_all, y_all = torch.cat(feats), torch.cat(labels)
    i_train, i_test = train_test_split(torch.arange(len(y_all)).numpy(), test_size=test_fraction,
                                       stratify=y_all.numpy(), random_state=seed)
    scores = probe_accuracy(x_all[i_train], y_all[i_train], x_all[i_test], y_all[i_test], seed=seed)
    return {"classes": list(dataset.classes), "train_images": len(i_train), "test_images": len(i_test), **scores}


def stage_probe(
    backbone: models.StagedNet,
    target: Domain,
    labels_per_class: int | None,
    seeds: Sequence[int],
    device: str | torch.device = "auto",
) -> list[dict]:
    """A logistic probe on the features of every stage: which layers transfer to ``target``?"""
    return [
        {"stage": stage, **row}
        for stage in backbone.stage_names
        for row in probe_over_seeds(backbone, target, labels_per_class, seeds, stage=stage, device=device)
    ]


def preprocessing_variants(mean: Sequence[float], std: Sequence[float]) -> dict[str, Callable]:
    """Input conversions to compare with the one used in pretraining (``x / 255`` then the model's
    own normalisation). Each maps uint8 N x 3 x H x W to what the model receives."""
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return {
        "as pretrained (RGB, /255)": to_float,
        "BGR channel order": lambda x: to_float(x.flip(1)),
        "0-255, not divided": lambda x: x.float(),
        # a pipeline that adds its own normalisation: the model then normalises a second time
        "normalised twice": lambda x: (to_float(x) - m.to(x.device)) / s.to(x.device),
    }


def preprocessing_mismatch(
    backbone: models.StagedNet,
    target: Domain,
    labels_per_class: int | None,
    seeds: Sequence[int],
    device: str | torch.device = "auto",
) -> list[dict]:
    """Linear-probe accuracy when the input is preprocessed as in pretraining, and when it is not.

    The probe is trained and tested with the same (mismatched) preprocessing, as happens when a
    pipeline is simply set up wrong; the frozen backbone is what suffers.
    """
    variants = preprocessing_variants(backbone.normalize.mean.flatten().tolist(), backbone.normalize.std.flatten().tolist())
    return [
        {"preprocessing": name, **row}
        for name, convert in variants.items()
        for row in probe_over_seeds(backbone, target, labels_per_class, seeds, preprocess=convert, device=device)
    ]
