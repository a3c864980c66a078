"""Notebook 05's helpers: which results are used, the comparison table, the facts the answers cite."""

from __future__ import annotations

import json

import pytest

from datl_helpers import facts, summary


def _write(folder, name, payload):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(payload))


def _payloads(smoke: bool, acc: float) -> dict:
    seeds = [0] if smoke else [0, 1]
    return {
        "01_feature_extraction.json": {"smoke": smoke, "device": "cpu", "seeds": seeds, "label_efficiency": [
            {"target": "mnistm", "labels_per_class": lpc, "method": m, "seed": s, "target_accuracy": acc + d}
            for lpc in (10, None) for m, d in (("scratch", -0.3), ("linear-probe", 0.0), ("finetune", 0.05))
            for s in seeds]},
        "02_fine_tuning.json": {"smoke": smoke, "device": "cpu", "seeds": seeds, "target": "mnistm", "runs": [
            {"strategy": n, "labels_per_class": 10, "seed": s, "accuracy": acc + d, "source_accuracy": src}
            for n, d, src in (("layer-wise LRs", 0.05, 0.8), ("too-high LR", -0.1, 0.2)) for s in seeds] + [
            {"strategy": "L2-SP 0.1 (aggressive)", "recipe": "aggressive", "regulariser": "L2-SP 0.1",
             "labels_per_class": 10, "seed": s, "accuracy": acc + 0.02, "source_accuracy": 0.7} for s in seeds]},
        "04_domain_adversarial.json": {"smoke": smoke, "device": "cpu", "seeds": seeds, "runs": [
            {"pair": "mnist -> mnistm", "method": m, "seed": s, "target_accuracy": a, "domain_accuracy": da}
            for m, a, da in (("source-only", 0.6, 0.9), ("dann", 0.8, 0.6), ("target-oracle", 1.0, 0.9))
            for s in seeds],
            "proxy_a_distance": [{"features of": "source-only", "proxy A-distance": 1.9},
                                 {"features of": "dann", "proxy A-distance": 1.2}],
            "selection": [
                {"candidate": "source-only", "source_val_accuracy": 0.99, "target_entropy": 1.0, "dev_risk": 0.1,
                 "target_accuracy": 0.6},
                {"candidate": "dann", "source_val_accuracy": 0.98, "target_entropy": 0.5, "dev_risk": 0.2,
                 "target_accuracy": 0.8}]},
    }


def test_load_results_prefers_your_full_run_then_reference_then_smoke(tmp_path):
    own, ref = tmp_path / "results", tmp_path / "reference"
    for name, payload in _payloads(smoke=True, acc=0.5).items():
        _write(own, name, payload)
    for name, payload in _payloads(smoke=False, acc=0.7).items():
        if name.startswith("01"):
            _write(own, name, payload)  # a full run of your own beats the reference
        _write(ref, name, {**payload, "seeds": [0, 1, 2]})
    results = summary.load_results(own, ref)
    assert results["01"].origin == "your full run"
    assert results["02"].origin == "reference (full run)" and results["02"].payload["seeds"] == [0, 1, 2]
    assert "03" not in results  # nothing anywhere: notebook 05 recomputes it
    assert results["04"].label.startswith("04: reference (full run), cpu")
    (own / "02_fine_tuning.json").write_text("{ not json")
    (ref / "02_fine_tuning.json").unlink()
    with pytest.raises(summary.ResultsError, match="re-run its notebook"):
        summary.load_results(own, ref)


def test_comparison_rows_and_facts(tmp_path):
    for name, payload in _payloads(smoke=False, acc=0.7).items():
        _write(tmp_path, name, payload)
    results = summary.load_results(tmp_path, tmp_path / "none")
    rows = summary.comparison_rows(results)
    assert {r["family"][:2] for r in rows} == {"01", "02", "04"}
    probe = next(r for r in rows if r["method"] == "linear-probe" and r["labels"] == "10/class")
    assert probe["accuracy"] == pytest.approx(0.7) and probe["seeds"] == 2 and "your full run" in probe["from"]
    table = summary.comparison_table(rows)
    assert "70.0 ± 0.0" in set(table["accuracy (%)"])
    f = facts.collect(results)
    assert f["scratch"] == pytest.approx(40.0) and f["finetune_all"] == pytest.approx(75.0)
    assert f["source_toohigh"] == pytest.approx(20.0)
    assert f["l2sp_gain_aggressive"] == pytest.approx(12.0)  # paired with too-high LR's runs
    assert f["da_gap_closed"] == pytest.approx(50.0)
    assert f["select_entropy"] == "dann" and f["select_source_val"] == "source-only"
    assert f["pad_dann"] == 1.2
    assert f["da_verdict"].startswith("DANN helped on every pair") and "`mnist → mnistm`" in f["da_verdict"]
    assert f["da_below_zero_shot"] == ""  # no zero-shot accuracy in these results
    # notebook 04's side studies always come from their shipped references, claims included
    assert "labelled target image per class" in f["claim_semi_dann_beats_fine_tuning_with_one_label"]
    assert "paper" in f["claim_paper_dann_reaches_the_paper"]
    # facts the results do not contain read as 'n/a', in text and through pct()
    assert f"{f['aug_scratch_best_preset']}" == "n/a" and summary.pct(f["aug_scratch_none"]) == "n/a"
    assert summary.pct(87.456) == "87.5 %" and summary.points(-2.04) == "-2.0 points"


def test_recompute_fills_a_missing_notebook_with_real_runs(domains):
    result = summary.recompute("02", steps=2, device="cpu")
    assert result.payload["smoke"] is True and result.origin.startswith("recomputed")
    rows = summary.comparison_rows({"02": result})
    assert [r["method"] for r in rows] == ["head only", "layer-wise LRs", "too-high LR"]
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["seeds"] == 1 for r in rows)
    with pytest.raises(ValueError, match="unknown notebook"):
        summary.recompute("09")


def test_recompute_covers_the_hospitals_notebook():
    result = summary.recompute("08", steps=20, device="cpu")
    rows = summary.comparison_rows({"08": result})
    assert {r["method"] for r in rows} == {"source-only", "dann", "importance-weighting", "label-shift", "target-oracle"}
    assert all(r["family"].startswith("08") and 0.0 <= r["accuracy"] <= 1.0 for r in rows)


def test_recompute_covers_the_robustness_notebook(domains):
    result = summary.recompute("06", steps=2, device="cpu")
    rows = summary.robustness_rows({"06": result})
    assert [r["model"] for r in rows] == ["linear probe", "finetune"]
    assert all(0.0 <= r["pgd"] <= r["clean"] <= 1.0 for r in rows)
    assert "PGD-10 8/255 (%)" in summary.robustness_table(rows).columns
