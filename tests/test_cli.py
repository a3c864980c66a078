from __future__ import annotations

import json
import subprocess
import sys

import pytest

from datl_helpers.cli.main import main


def test_domains_lists_offline_domains_with_sizes(tmp_path, capsys):
    out = tmp_path / "domains.json"
    assert main(["domains", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for name, size in (("syn", "40000"), ("mnist", "4000"), ("mnistm", "4000"), ("digits", "1437")):
        assert name in printed and size in printed
    rows = {r["name"]: r for r in json.loads(out.read_text())["domains"]}
    assert rows["digits"]["test"] == 360 and rows["svhn"]["kind"] == "online"


def test_prepare_builds_into_data_dir(tmp_path, capsys):
    out = tmp_path / "prep.json"
    assert main(["--data-dir", str(tmp_path / "d"), "prepare", "--domains", "digits", "--json", str(out)]) == 0
    assert (tmp_path / "d" / "digits.npz").exists()
    assert json.loads(out.read_text())["domains"][0]["train"] == 1437


def test_user_errors_are_one_line_without_traceback(tmp_path):
    for args in (["prepare", "--domains", "mnsit"], ["prepare", "--domains", "usps"]):
        run = subprocess.run(
            [sys.executable, "-m", "datl_helpers", "--data-dir", str(tmp_path), *args],
            capture_output=True, text=True, timeout=120,
        )
        assert run.returncode == 2, run.stderr
        assert "Traceback" not in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and run.stderr.startswith("error: ")
        assert "syn" in run.stderr  # the offline names are offered


def test_transfer_augment_is_recorded_in_json(tmp_path, capsys):
    out = tmp_path / "aug.json"
    code = main(["transfer", "--target", "digits", "--labels-per-class", "3", "--method", "scratch", "--steps", "5",
                 "--seeds", "0", "--augment", "light", "--device", "cpu", "--json", str(out)])
    assert code == 0
    config = json.loads(out.read_text())["config"]
    assert config["augment"] == "light" and config["augment_strength"] == 0.25
    assert "augment light (strength 0.25)" in capsys.readouterr().out
    code = main(["transfer", "--target", "digits", "--labels-per-class", "3", "--method", "linear-probe",
                 "--seeds", "0", "--augment", "heavy", "--augment-strength", "0.4", "--device", "cpu",
                 "--json", str(out)])
    assert code == 0
    config = json.loads(out.read_text())["config"]
    assert (config["augment"], config["augment_strength"], config["probe_copies"]) == ("heavy", 0.4, 4)


def test_transfer_augment_bad_input(capsys):
    # a strength without a preset to override is a one-line user error
    assert main(["transfer", "--target", "digits", "--augment-strength", "0.3", "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "light, medium, heavy" in err and len(err.strip().splitlines()) == 1
    for args in (["--augment", "strong"], ["--augment", "light", "--augment-strength", "1.5"]):
        with pytest.raises(SystemExit) as exit_:
            main(["transfer", "--target", "digits", *args])
        assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "none" in err and "heavy" in err and "[0, 1]" in err


def test_robust_writes_clean_and_robust_accuracy_in_the_shared_shape(tmp_path, capsys):
    out = tmp_path / "robust.json"
    code = main(["robust", "--target", "mnistm", "--labels-per-class", "2", "--method", "finetune", "--steps", "3",
                 "--eps", "4/255", "0.03", "--test-images", "20", "--pgd-steps", "2", "--seeds", "0", "1",
                 "--device", "cpu", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "pgd 4/255 %" in printed and "PGD-2 at 7.65/255" in printed  # 0.03 in grey levels
    payload = json.loads(out.read_text())
    assert payload["command"] == "robust" and len(payload["runs"]) == 2
    assert payload["config"]["backbone"] == "standard" and payload["config"]["eps"] == ["0/255", "4/255", "7.65/255"]
    for part in ("mean", "std"):
        assert set(payload[part]["robust_accuracy"]) == {"fgsm", "pgd"}
        assert set(payload[part]["robust_accuracy"]["pgd"]) == {"0/255", "4/255", "7.65/255"}
        assert 0 <= payload[part]["clean_accuracy"] <= 1


def test_robust_bad_input_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["robust", "--eps", "300/255"])
    assert exit_.value.code == 2 and "radius in [0, 1]" in capsys.readouterr().err
    assert main(["robust", "--method", "linear-probe", "--adversarial-training", "fgsm", "--seeds", "0",
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "adversarial training applies to scratch and finetune" in err
    assert main(["robust", "--steps", "0", "--seeds", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_adapt_on_tabular_domains_writes_the_clinical_scores(tmp_path, capsys):
    import csv

    import numpy as np

    rng = np.random.default_rng(0)
    path = tmp_path / "clinics.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "domain", "label"])
        for i in range(200):
            side, sick = ("A", "B")[i % 2], int(rng.random() < (0.3 if i % 2 == 0 else 0.7))
            w.writerow([f"{rng.normal(sick + (i % 2)):.3f}", f"{rng.normal(sick):.3f}", side, sick])
    out = tmp_path / "adapt.json"
    code = main(["adapt", "--source", f"tabular:{path}:A", "--target", f"tabular:{path}:B", "--method", "label-shift",
                 "--steps", "60", "--seeds", "0", "--json", str(out)])
    assert code == 0 and "(tabular)" in capsys.readouterr().out
    payload = json.loads(out.read_text())
    assert payload["config"]["kind"] == "tabular" and payload["config"]["steps"] == 60
    assert {"target_balanced_accuracy", "target_auc", "target_brier"} <= set(payload["mean"])
    assert 0.2 < payload["runs"][0]["estimated_positive_share"] < 1
    for method, needs in (("coral", "tabular domains"), ("importance-weighting", "image domains")):
        source = f"tabular:{path}:A" if method == "coral" else "digits"
        assert main(["adapt", "--source", source, "--target", source, "--method", method, "--seeds", "0"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and needs in err
