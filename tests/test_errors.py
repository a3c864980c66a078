"""One wording and one error class for every "unknown X; choose from ..." in the package."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datl_helpers import (
    adaptation,
    augment,
    dann,
    errors,
    finetune,
    models,
    moons,
    runner,
    shift,
    train,
    transfer,
    widgets,
)


def test_check_choice_returns_the_value_or_names_the_choices():
    assert errors.check_choice("method", "dann", ("dann", "source-only")) == "dann"
    with pytest.raises(errors.ChoiceError, match=r"^unknown method 'dnn'; choose from dann, source-only$"):
        errors.check_choice("method", "dnn", ("dann", "source-only"))
    assert issubclass(errors.ChoiceError, errors.DatlError) and issubclass(errors.ChoiceError, ValueError)


@pytest.mark.parametrize("call, what", [
    (lambda: transfer.check_method("fine-tune"), "method"),
    (lambda: finetune.run_strategy("head-only", None, 1), "strategy"),
    (lambda: train.make_optimizer([torch.zeros(1, requires_grad=True)], "adamx"), "optimizer"),
    (lambda: dann.fit(None, None, "dan"), "method"),
    (lambda: adaptation.run_method(None, None, "mmd"), "method"),
    (lambda: models.DigitNet().features(torch.zeros(2, 3, 32, 32), stage="conv9"), "stage"),
    (lambda: models.torchvision_backbone("resnet18", weights="imagenet21k"), "weights"),
    (lambda: moons.fit(None, method="coral"), "method"),
    (lambda: shift.embed_2d(torch.zeros(4, 3), method="umap"), "method"),
    (lambda: train.fit(models.DigitNet(), torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.zeros(4, dtype=torch.long),
                       train.FitConfig(schedule="linear"), device="cpu"), "schedule"),
    (lambda: widgets.browse({"mnist": None}, "svhn"), "domain"),
    (lambda: runner.run_notebooks([], Path("/tmp/datl-never-written"), device="tpu"), "device"),
    (lambda: models.stage_param_groups(models.DigitNet(), lr=1e-3, stage_lrs={"conv9": 1e-4}), "stage"),
])
def test_call_sites_raise_choice_errors(call, what):
    with pytest.raises(errors.ChoiceError, match=f"unknown {what} .*; choose from "):
        call()


def test_augmentation_presets_use_the_same_wording_and_their_own_class():
    with pytest.raises(errors.AugmentationError, match=r"^unknown augmentation preset 'wild'; choose from none, "):
        augment.resolve_strength("wild")


def test_every_error_class_of_the_package_lives_in_errors():
    import importlib
    import inspect
    import pkgutil

    import datl_helpers

    for info in pkgutil.walk_packages(datl_helpers.__path__, "datl_helpers."):
        if info.name == "datl_helpers.__main__":
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, errors.DatlError):
                assert obj.__module__ == "datl_helpers.core.errors", f"{info.name}.{name} is defined outside errors.py"
