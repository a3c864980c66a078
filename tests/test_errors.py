"""One wording and one error class for every "unknown X; choose from ..." in the package."""

from __future__ import annotations

import pytest
import torch

from datl_helpers import dann, errors, finetune, train, transfer


def test_check_choice_returns_the_value_or_names_the_choices():
    assert errors.check_choice("method", "dann", ("dann", "source-only")) == "dann"
    with pytest.raises(errors.ChoiceError, match=r"^unknown method 'dnn'; choose from dann, source-only$"):
        errors.check_choice("method", "dnn", ("dann", "source-only"))
    assert issubclass(errors.ChoiceError, errors.DatlError) and issubclass(errors.ChoiceError, ValueError)


@pytest.mark.parametrize("call, what", [
    (lambda: transfer.check_method("fine-tune"), "method"),
    (lambda: finetune.run_strategy("head-only", None, 1), "strategy"),
    (lambda: train.make_optimizer([torch.zeros(1, requires_grad=True)], "adamx"), "optimizer"),
    (lambda: dann.train_dann(None, None, "dan"), "method"),
])
def test_call_sites_raise_choice_errors(call, what):
    with pytest.raises(errors.ChoiceError, match=f"unknown {what} .*; choose from "):
        call()
