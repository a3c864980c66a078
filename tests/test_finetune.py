from __future__ import annotations

import pytest
import torch

from datl_helpers import finetune, models, train

QUICK = {"epochs": 2, "steps_per_epoch": 3}


def _bn_running_means(model, stage):
    return [m.running_mean.clone() for m in getattr(model.stages, stage).modules()
            if isinstance(m, torch.nn.BatchNorm2d)]


@pytest.mark.parametrize("bn, moves", [("eval", False), ("train", True)])
def test_batchnorm_in_frozen_stages(domains, bn, moves):
    d = domains["mnistm"]
    config = finetune.FinetuneConfig(freeze=3, bn_frozen=bn, **QUICK)
    model = finetune.build(config, 10)
    before = _bn_running_means(model, "conv1")
    finetune.fit_config(model, config, d.x_train[:64], d.y_train[:64], device="cpu")
    after = _bn_running_means(model, "conv1")
    assert any(not torch.equal(a, b) for a, b in zip(before, after)) == moves
    assert torch.equal(models.load_pretrained().stages.conv1[0].weight, model.stages.conv1[0].weight.cpu())


def test_gradual_unfreezing_unfreezes_one_stage_every_k_epochs(domains):
    d = domains["digits"]
    config = finetune.FinetuneConfig(gradual_every=1, epochs=5, steps_per_epoch=2)
    model = finetune.build(config, 10)
    frozen_per_epoch = []
    finetune.fit_config(model, config, d.x_train[:64], d.y_train[:64], device="cpu",
                        on_epoch_end=lambda e, m, r: frozen_per_epoch.append(len(finetune.frozen_prefix(model))))
    assert frozen_per_epoch == [4, 3, 2, 1, 0]
    pretrained = models.load_pretrained()
    assert not torch.equal(pretrained.stages.conv1[0].weight, model.stages.conv1[0].weight.cpu())


def test_penalties():
    model = models.load_pretrained()
    l2sp = finetune.l2sp_penalty(model, 1.0)
    assert l2sp(model).item() == 0.0
    with torch.no_grad():
        model.stages.fc[1].weight.add_(0.1)
    assert l2sp(model).item() == pytest.approx(0.01 * model.stages.fc[1].weight.numel(), rel=1e-3)
    l1 = finetune.l1_penalty(0.5)(model)
    expected = 0.5 * sum(p.abs().sum() for p in model.parameters() if p.ndim > 1)
    assert l1.item() == pytest.approx(expected.item(), rel=1e-4)


def test_run_strategy_tracks_source_accuracy(domains):
    config = finetune.FinetuneConfig(lr=3e-3, lr_decay=0.3, **QUICK)
    row, history = finetune.run_strategy("layer-wise", domains["digits"], 3, seed=0, config=config,
                                         device="cpu", source=domains["syn"])
    assert {"accuracy", "macro_f1", "source_accuracy", "seconds"} <= set(row)
    # tracked every epoch, and well above chance (0.1) after 6 steps with a new head
    assert len(history["source_accuracy"]) == 2 and row["source_accuracy"] > 0.3
    with pytest.raises(ValueError, match="head only"):
        finetune.run_strategy("everything", domains["digits"], 3)


def test_validation_split_and_cross_validation(domains):
    y = torch.arange(50) % 10
    tr, va = finetune.validation_split(y, 0.2, seed=0)
    assert len(va) == 10 and torch.bincount(y[va]).tolist() == [1] * 10 and not set(tr.tolist()) & set(va.tolist())
    d = domains["digits"]
    x, y = d.x_train[:100], d.y_train[:100]
    rows = finetune.cross_validate(x, y, finetune.FinetuneConfig(freeze=4, lr=1e-2, **QUICK), folds=3, device="cpu")
    assert [r["fold"] for r in rows] == [0, 1, 2] and all(0 <= r["accuracy"] <= 1 for r in rows)


def test_strategies_are_all_defined():
    assert list(finetune.STRATEGIES) == [
        "head only", "last stage", "gradual unfreezing", "layer-wise LRs", "too-high LR",
    ]


def test_playground_config():
    config = finetune.playground_config(freeze=2, lr_ratio=0.01, weight_decay=1e-3, epochs=4, steps_per_epoch=5)
    assert config.freeze == 2 and config.lr_decay ** 4 == pytest.approx(0.01) and config.epochs == 4
    with pytest.raises(ValueError, match="lr_ratio"):
        finetune.playground_config(0, 2.0, 0.0, 1, 1)


def test_finetune_playground_trains_only_on_click():
    from datl_helpers import widgets

    configs = []

    def run(config):
        configs.append(config)
        h = train.History()
        h.records = [{"epoch": 1, "train_accuracy": 0.5, "val_accuracy": 0.4}]
        return h

    import matplotlib

    matplotlib.use("Agg")
    box = widgets.finetune_playground(run)
    assert configs == []
    box.children[2].click()
    assert len(configs) == 1 and configs[0].freeze == 0


def test_paired_gain_table_pairs_by_seed():
    rows = [
        {"recipe": "r", "regulariser": "none", "seed": 0, "accuracy": 0.80, "source_accuracy": 0.5},
        {"recipe": "r", "regulariser": "none", "seed": 1, "accuracy": 0.70, "source_accuracy": 0.5},
        {"recipe": "r", "regulariser": "L2-SP", "seed": 0, "accuracy": 0.82, "source_accuracy": 0.7},
        {"recipe": "r", "regulariser": "L2-SP", "seed": 1, "accuracy": 0.73},
    ]
    table = finetune.paired_gain_table(rows)
    # unpaired, the 10-point seed spread would swamp a 2.5-point gain; paired, it is +2.5 ± 0.7
    assert table.loc[("r", "L2-SP"), "gain"] == "2.5 ± 0.7"
    assert table.loc[("r", "none"), "gain"] == "0.0 ± 0.0"
    assert table.loc[("r", "L2-SP"), "accuracy"] == "77.5 ± 6.4"
    assert table.loc[("r", "L2-SP"), "source_accuracy"] == "70.0 ± 0.0"


def test_early_stopping_run_is_seeded_and_keeps_a_validated_epoch(domains):
    import dataclasses

    config = dataclasses.replace(finetune.STRATEGIES["layer-wise LRs"], epochs=4, steps_per_epoch=2)
    first = finetune.run_early_stopping(domains["digits"], 5, seed=1, config=config, patience=1, device="cpu")
    again = finetune.run_early_stopping(domains["digits"], 5, seed=1, config=config, patience=1, device="cpu")
    assert first["accuracy"] == again["accuracy"] and first["best_epoch"] == again["best_epoch"]
    assert 1 <= first["best_epoch"] <= 4 and first["strategy"] == "early stopping (val 20%)"
    assert first["labels_per_class"] == 5 and 0.1 < first["accuracy"] <= 1
