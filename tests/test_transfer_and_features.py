from __future__ import annotations

import json

import pytest
import torch

from datl_helpers import experiments, features, models, results, transfer
from datl_helpers.cli.main import main

FAST = transfer.TransferConfig(steps=30)


@pytest.mark.parametrize("method", transfer.TRANSFER_METHODS)
def test_run_transfer_returns_one_row(domains, method):
    row = transfer.run_transfer(domains["digits"], method, 5, seed=0, config=FAST, device="cpu")
    assert set(row) == {"seed", "labels", "target_accuracy", "macro_f1", "seconds"}
    assert row["labels"] == 50 and 0.1 < row["target_accuracy"] <= 1 and 0 <= row["macro_f1"] <= 1


def test_run_transfer_is_reproducible(domains):
    a = transfer.run_transfer(domains["digits"], "finetune", 3, seed=1, config=FAST, device="cpu")
    b = transfer.run_transfer(domains["digits"], "finetune", 3, seed=1, config=FAST, device="cpu")
    assert a["target_accuracy"] == b["target_accuracy"] and a["macro_f1"] == b["macro_f1"]


def test_pretrained_beats_scratch_with_few_labels(domains):
    # 5 labels per class of mnistm: the pretrained backbone is far ahead of a random network
    scratch = transfer.run_transfer(domains["mnistm"], "scratch", 5, seed=0, config=FAST, device="cpu")
    probe = transfer.run_transfer(domains["mnistm"], "linear-probe", 5, seed=0, config=FAST, device="cpu")
    assert probe["target_accuracy"] > scratch["target_accuracy"] + 0.2


def test_unknown_method():
    with pytest.raises(ValueError, match="scratch, linear-probe, finetune"):
        transfer.new_model("zero-shot")


def test_linear_head_trains_only_the_head(domains):
    net = models.load_pretrained()
    before = {k: v.clone() for k, v in net.stages.state_dict().items()}
    x, y = domains["digits"].x_train[:100], domains["digits"].y_train[:100]
    history = features.train_linear_head(net, x, y, 10, steps=20, device="cpu")
    assert len(history) == 1
    after = net.stages.state_dict()
    # weights and BatchNorm running statistics of the frozen stages are untouched
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_extract_features_per_stage(domains):
    net = models.load_pretrained()
    x = domains["digits"].x_test[:7]
    assert features.extract_features(net, x, device="cpu", batch_size=3).shape == (7, 128)
    assert features.extract_features(net, x, stage="conv2", device="cpu").shape == (7, 48 * 8 * 8)


def test_stage_probe_and_preprocessing_mismatch(domains):
    net = models.load_pretrained()
    rows = features.stage_probe(net, domains["digits"], 5, seeds=[0], device="cpu")
    assert [r["stage"] for r in rows] == net.stage_names
    mismatch = {r["preprocessing"]: r["accuracy"] for r in features.preprocessing_mismatch(
        net, domains["mnistm"], 10, seeds=[0], device="cpu")}
    right = mismatch.pop("as pretrained (RGB, /255)")
    assert right > max(mismatch.values())  # every mismatch costs accuracy


def test_label_efficiency_and_summaries(domains):
    rows = experiments.label_efficiency({"digits": domains["digits"]}, [1, 3], [0, 1], ["linear-probe"], config=FAST,
                                     device="cpu")
    assert len(rows) == 4 and {r["labels_per_class"] for r in rows} == {1, 3}
    table = results.summarize(rows, ["labels_per_class"])
    assert list(table["count"]) == [2, 2]
    assert results.mean_std_table(rows, "labels_per_class", "method").shape == (2, 1)


def test_transfer_command_json(tmp_path, capsys):
    out = tmp_path / "t.json"
    code = main(["transfer", "--target", "digits", "--labels-per-class", "3", "--method", "linear-probe",
                 "--seeds", "0", "1", "--device", "cpu", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["command"] == "transfer" and result["config"]["method"] == "linear-probe"
    assert [r["seed"] for r in result["runs"]] == [0, 1]
    assert set(result["mean"]) == {"target_accuracy", "macro_f1", "seconds"} and result["device"] == "cpu"
    assert "accuracy" in capsys.readouterr().out


def test_transfer_command_bad_input(tmp_path, capsys):
    assert main(["transfer", "--target", "mnsit", "--method", "scratch"]) == 2
    assert "valid names" in capsys.readouterr().err
    assert main(["transfer", "--target", "digits", "--labels-per-class", "500", "--seeds", "0"]) == 2
    assert "labels_per_class=500" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["transfer", "--target", "digits", "--labels-per-class", "ten"])
