"""The budget policy (converged budgets) and the claims checked against the converged reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datl_helpers import adaptation, budget, claims, dann, results, robust, transfer
from datl_helpers.cli.main import main
from datl_helpers.core.errors import BudgetError, ClaimError
from datl_helpers.course.summary import REFERENCE_DIR


def _reference(name: str) -> dict:
    return json.loads((REFERENCE_DIR / name).read_text())


def test_check_steps_refuses_budgets_that_train_nothing():
    assert budget.check_steps(5) == 5
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(BudgetError, match="at least 1"):
            budget.check_steps(bad)


def test_converged_budget_is_the_first_whose_doubling_moves_less_than_a_point():
    means = {100: 0.60, 200: 0.70, 400: 0.705, 800: 0.71}
    assert budget.converged_budget(means) == 200
    assert budget.next_budget(means) is None
    rising = {100: 0.60, 200: 0.70}
    assert budget.converged_budget(rising) is None and budget.next_budget(rising) == 400
    assert budget.converged_budget({100: 0.80, 200: 0.78}) is None  # a drop of 2 points is no convergence either
    assert budget.converged_budget({100: 0.80, 200: 0.77}, tolerance=5) == 100
    curves = [{"means": means}, {"means": {100: 0.5, 200: 0.505}}]
    assert budget.family_budget(curves) == 200
    assert budget.family_budget([{"means": means}, {"means": rising}]) is None
    assert budget.curve_means([{"steps": 100, "target_accuracy": 0.5}, {"steps": 100, "target_accuracy": 0.7}]) == {
        100: pytest.approx(0.6)}


def test_measure_curves_doubles_each_curve_until_it_converges():
    import math

    gains = {"fast": 100, "slow": 800}  # accuracy approaches 90 % with these time constants (steps)
    calls = []

    def run(jobs):
        calls.append(sorted({j["steps"] for j in jobs}))
        return [{**j, "target_accuracy": 0.9 - 0.4 * math.exp(-j["steps"] / gains[j["curve"]]) + 0.001 * j["seed"]}
                for j in jobs]

    curves = [{"name": "fast"}, {"name": "slow"}]
    budget.measure_curves(curves, 100, lambda c, steps: [{"curve": c["name"], "steps": steps, "seed": s} for s in (0, 1)],
                          run, largest=6400, keep=lambda row: {k: row[k] for k in ("steps", "seed", "target_accuracy")})
    fast, slow = curves
    assert budget.converged_budget(fast["means"]) == 400 and max(fast["means"]) == 800
    assert budget.converged_budget(slow["means"]) == 3200 and max(slow["means"]) == 6400
    assert calls == [[100, 200], [400], [800], [1600], [3200], [6400]]  # one run call per round, both curves in it
    assert len(slow["rows"]) == 2 * len(slow["means"]) and set(slow["rows"][0]) == {"steps", "seed", "target_accuracy"}
    # a curve that has not converged by `largest` stops there, unconverged
    late = [{"name": "slow"}]
    budget.measure_curves(late, 100, lambda c, steps: [{"curve": "slow", "steps": steps, "seed": 0}], run, largest=800)
    assert max(late[0]["means"]) == 800 and budget.converged_budget(late[0]["means"]) is None


def test_shipped_budget_curves_justify_the_converged_budget():
    payload = budget.load_curves()
    assert set(payload["families"]) == {f"transfer-{m}-{k}{t}" for m in ("scratch", "finetune") for k in (10, 50, "all")
                                        for t in ("", "-mnist")} | {"finetune-strategies-10", "finetune-strategies-all"} | {
                                            f"adapt-{m}" for m in adaptation.ADAPTATION_METHODS} | {
                                            budget.robust_family(m, b, a) for m, b, a in robust.MODELS.values()
                                            if m == "finetune"} | {
                                            "adapt-semi-dann", "adapt-scratch-source-only", "adapt-scratch-dann"}
    assert payload["versions"]["torch"]
    for name, family in payload["families"].items():
        if family["budget"] is not None or not name.startswith("adapt-"):  # a rising adaptation curve: see below
            _check_family(family, budget.converged_steps(name))
    with pytest.raises(BudgetError, match="no budget curve"):
        budget.converged_steps("nonsense")
    assert budget.transfer_steps("scratch", 10, augmented=False, target="mnist") == budget.converged_steps(
        "transfer-scratch-10-mnist")
    # a label count without its own curve gets the budget of the next larger measured label count
    assert budget.transfer_steps("scratch", 5) == budget.transfer_steps("scratch", 10)
    assert budget.transfer_steps("finetune", 20) == budget.transfer_steps("finetune", 50)
    assert budget.transfer_steps("scratch", 100) == budget.transfer_steps("scratch", None) == budget.converged_steps(
        "transfer-scratch-all")
    for m in ("scratch", "finetune"):  # training without augmentation converges no later than with it
        assert budget.transfer_steps(m, 10, augmented=False) <= budget.transfer_steps(m, 10)
    assert budget.finetune_steps(10) == budget.converged_steps("finetune-strategies-10")
    assert budget.finetune_steps(None) == budget.finetune_steps("all") == budget.converged_steps("finetune-strategies-all")
    for method in ("source-only", "dann"):  # a family's budget covers every pair's
        steps, converged = budget.adapt_budget(method)
        pairs = [budget.adapt_budget(method, p) for p in ("mnist -> mnistm", "syn -> mnist", "syn -> digits")]
        assert steps == max(s for s, _ in pairs) and converged == all(c for _, c in pairs)
    with pytest.raises(BudgetError, match="no budget curve of 'dann' on 'mnist -> usps'"):
        budget.adapt_budget("dann", "mnist -> usps")
    with pytest.raises(BudgetError, match="no budget curve for method"):
        budget.transfer_steps("linear-probe", 10)
    with pytest.raises(BudgetError, match="no budget curve"):
        budget.transfer_steps("scratch", 10, target="digits")


def _check_family(family: dict, steps: int) -> None:
    assert steps == family["budget"]
    for curve in family["curves"]:
        means = budget.curve_means(curve["rows"], curve.get("value", "target_accuracy"))  # from the runs, not 'means'
        assert len({r["seed"] for r in curve["rows"]}) >= 3, curve["name"]
        own = budget.converged_budget(means)
        assert own is not None and own <= steps, curve["name"]
        # at the family's budget every configuration has converged: doubling moves it < 1 point
        assert 2 * steps in means or own < steps, curve["name"]
        if 2 * steps in means:
            assert abs(100 * (means[2 * steps] - means[steps])) < budget.TOLERANCE_POINTS, curve["name"]
    table = budget.curve_table(family)
    assert list(table["converged at"]) == [budget.converged_budget(c["means"]) for c in family["curves"]]


def test_unreadable_budget_curves_say_how_to_rebuild(tmp_path):
    broken = tmp_path / "curves.json"
    broken.write_text("{ not json")
    with pytest.raises(BudgetError, match=r"converged_reference\.py budgets"):
        budget.load_curves(broken)


def test_trained_runs_refuse_a_zero_budget(domains):
    with pytest.raises(BudgetError):
        transfer.run_transfer(domains["digits"], "finetune", 1, config=transfer.TransferConfig(steps=0), device="cpu")
    with pytest.raises(BudgetError):
        dann.fit(domains["mnist"], domains["mnistm"], "dann", dann.DannConfig(steps=-1), device="cpu")


@pytest.mark.parametrize("command", [
    ["transfer", "--target", "digits", "--steps", "0"],
    ["adapt", "--source", "mnist", "--target", "mnistm", "--steps", "-5"],
])
def test_cli_refuses_a_zero_budget_in_one_line(command, capsys):
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "at least 1" in err and len(err.strip().splitlines()) == 1


def test_notebook_03_reference_runs_at_the_converged_budgets():
    reference = _reference("03_augmentation.json")
    assert reference["reference"] is True
    for m in ("scratch", "finetune"):  # every run at its converged budget
        for k in (10, 50, "all"):
            assert reference["budget"]["steps"][f"{m}-{k}"] == budget.transfer_steps(m, k)
            runs = results.select(reference["grid"] + reference["over_augmentation"], method=m, labels_per_class=k)
            assert runs and {r["steps"] for r in runs} == {budget.transfer_steps(m, k)}


# the references of the notebooks with claims, and how many claims each has at least
REFERENCES = {"01": ("01_feature_extraction.json", 5), "02": ("02_fine_tuning.json", 6),
              "03": ("03_augmentation.json", 4), "04": ("04_domain_adversarial.json", 5),
              "04-semi": ("04_semi_supervised.json", 5), "04-paper": ("04_paper_protocol.json", 4),
              "06": ("06_adversarial_robustness.json", 8), "07": ("07_beyond_images_text.json", 6),
              "08": ("08_hospitals.json", 12)}


def test_every_notebook_with_claims_has_a_reference():
    assert set(REFERENCES) == set(claims.CLAIMS)


@pytest.mark.parametrize("notebook", sorted(REFERENCES))
def test_every_claim_holds_on_the_converged_reference(notebook):
    name, at_least = REFERENCES[notebook]
    reference = _reference(name)
    assert reference["reference"] is True and len(reference["seeds"]) >= 3
    verdicts = claims.verdicts(notebook, reference)
    assert len(verdicts) >= at_least
    for verdict in verdicts:
        assert verdict.holds, str(verdict)
        assert "{" not in verdict.text and verdict.label != "not supported"


def test_a_contradicted_claim_is_reported_not_reworded():
    reference = _reference("03_augmentation.json")
    # swap scratch and fine-tuning: every claim that scratch gains more must now fail
    swapped = {"scratch": "finetune", "finetune": "scratch"}
    flipped = dict(reference, grid=[dict(r, method=swapped.get(r["method"], r["method"])) for r in reference["grid"]])
    failed = [v for v in claims.verdicts("03", flipped) if not v.holds]
    assert failed and all(str(v).startswith("**Not supported by these numbers**") and v.label == "not supported"
                          for v in failed)
    with pytest.raises(ClaimError, match="no result rows"):
        results.mean([], method="scratch")
    with pytest.raises(ClaimError, match="no claims for notebook"):
        claims.verdicts("99", reference)


def test_lookups_over_rows():
    rows = [{"method": "a", "labels_per_class": 10, "seed": s, "augment": aug, "target_accuracy": acc}
            for s, (x, y) in enumerate([(0.5, 0.6), (0.6, 0.8)]) for aug, acc in (("none", x), ("heavy", y))]
    assert results.mean(rows, method="a", augment="none", labels_per_class="10") == pytest.approx(55.0)
    gain, spread = results.paired_gain(rows, {"augment": "heavy"}, {"augment": "none"}, method="a")
    assert gain == pytest.approx(15.0) and spread == pytest.approx(7.0710678)
    assert results.best_of(rows, "augment", method="a") == ("heavy", pytest.approx(70.0))


def test_transfer_command_defaults_to_the_converged_budget(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["transfer", "--target", "digits", "--labels-per-class", "10", "--method", "linear-probe",
                 "--seeds", "0", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["config"]["steps"] == budget.transfer_steps("finetune", 10, augmented=False)


def test_notebook_01_reference_runs_at_the_converged_budgets():
    reference = _reference("01_feature_extraction.json")
    assert reference["reference"] is True
    for row in reference["label_efficiency"]:  # every trained run at its converged budget
        if row["method"] != "linear-probe":
            assert row["steps"] == budget.transfer_steps(row["method"], row["labels_per_class"], augmented=False,
                                                         target=row["target"]), row
    counts = {str(r["labels_per_class"]) for r in reference["label_efficiency"]}
    assert counts == {"1", "5", "10", "50", "all"} and len(reference["seeds"]) >= 3


def test_notebook_02_reference_runs_at_the_converged_budgets():
    reference = _reference("02_fine_tuning.json")
    assert reference["reference"] is True and len(reference["seeds"]) >= 3
    for row in reference["runs"]:  # every run at its label count's converged budget, 10 epochs
        assert row["steps"] == budget.finetune_steps(row["labels_per_class"]), row
    assert {r["strategy"] for r in reference["cv_choice"]} == {"head only", "layer-wise LRs", "too-high LR"}


def test_notebook_04_reference_runs_at_the_converged_budgets():
    reference = _reference("04_domain_adversarial.json")
    assert reference["reference"] is True and len(reference["seeds"]) >= 3
    for method in adaptation.ADAPTATION_METHODS:  # every run at its pair's budget: converged, or named as still rising
        for pair in {r["pair"] for r in reference["runs"]}:
            steps, converged = budget.adapt_budget(method, pair)
            assert {r["steps"] for r in reference["runs"] if (r["method"], r["pair"]) == (method, pair)} == {steps}
            assert converged == (f"{method}: {pair}" not in reference["not_converged_curves"])
        assert budget.adapt_budget(method)[1] == (method not in reference["not_converged"])
    pair = reference["protocol_steps"][0]["pair"]
    assert {r["steps"] for r in reference["protocol_steps"]} == {budget.adapt_budget("source-only", pair)[0]}
    for pair in {r["pair"] for r in reference["runs"]}:  # every method, every seed, on every pair
        assert {(r["method"], r["seed"]) for r in reference["runs"] if r["pair"] == pair} == {
            (m, s) for m in adaptation.ADAPTATION_METHODS for s in reference["seeds"]}
    assert set(reference["zero_shot"]) == {r["pair"] for r in reference["runs"]}


def test_a_contradicted_claim_of_notebook_04_fails():
    reference = _reference("04_domain_adversarial.json")
    swapped = {"dann": "source-only", "source-only": "dann"}  # DANN and source-only trade places
    flipped = dict(reference, runs=[dict(r, method=swapped.get(r["method"], r["method"])) for r in reference["runs"]])
    assert not {v.claim.name: v for v in claims.verdicts("04", flipped)}["dann_beats_source_only"].holds


def test_adapt_budget_names_a_rising_curve(tmp_path):
    def curve(pair, means):
        source, target = pair.split(" -> ")
        return {"source": source, "target": target, "means": {str(k): v for k, v in means.items()}}

    path = tmp_path / "curves.json"
    path.write_text(json.dumps({"families": {"adapt-dann": {"budget": None, "curves": [
        curve("a -> b", {300: 0.90, 600: 0.905}),  # converged at 300
        curve("c -> d", {300: 0.80, 600: 0.83, 1200: 0.85}),  # still rising at 1200
    ]}}}))
    assert budget.adapt_budget("dann", "a -> b", path) == (300, True)
    assert budget.adapt_budget("dann", "c -> d", path) == (1200, False)
    assert budget.adapt_budget("dann", path=path) == (1200, False)
    assert budget.adapt_steps("dann", "a -> b", path) == 300
    with pytest.raises(BudgetError, match="has not converged by 1200 steps"):
        budget.adapt_steps("dann", path=path)
    with pytest.raises(BudgetError, match="no budget curve for 'adapt-coral'"):
        budget.adapt_budget("coral", path=path)


def test_notebook_06_reference_runs_at_the_converged_budgets():
    reference = _reference("06_adversarial_robustness.json")
    assert reference["reference"] is True and len(reference["seeds"]) >= 3
    for name, (method, backbone, adversarial) in robust.MODELS.items():  # every model, every seed, its budget
        rows = [r for r in reference["runs"] if r["name"] == name]
        assert {r["seed"] for r in rows} == set(reference["seeds"]), name
        assert {r["steps"] for r in rows} == {budget.robust_steps(method, backbone, adversarial)}, name
        assert all(set(r["robust_accuracy"]) == {"fgsm", "pgd"} for r in rows), name


def test_a_contradicted_claim_of_notebook_06_fails():
    reference = _reference("06_adversarial_robustness.json")
    swapped = {"finetune": "finetune + PGD training", "finetune + PGD training": "finetune"}
    flipped = dict(reference, runs=[dict(r, name=swapped.get(r["name"], r["name"])) for r in reference["runs"]])
    assert not {v.claim.name: v for v in claims.verdicts("06", flipped)}["adversarial_training_helps"].holds


def _reference_script():
    """data_scripts/converged_reference.py as a module (it is a script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("converged_reference",
                                                  REFERENCE_DIR.parents[1] / "data_scripts" / "converged_reference.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_shipped_runs_reused_by_from_shipped_agree_with_each_other():
    """``converged_reference.py adaptation|paper|semi --from-shipped`` reuses the shipped runs by job key:
    rows of one key must be one run (a semi-supervised row once took a plain DANN run's key)."""
    script = _reference_script()
    seen: dict[str, float] = {}
    for row in script.shipped_adaptation_runs():
        key = script.job_key(row)
        assert seen.setdefault(key, row["target_accuracy"]) == pytest.approx(row["target_accuracy"]), key
    assert len(seen) > 100


def test_contradicted_claims_of_the_semi_supervised_study_fail():
    """Fine-tuning's runs swapped with DANN's: the claims about who wins must fail, not be reworded."""
    reference = _reference("04_semi_supervised.json")
    swap = {"dann": claims.FINETUNE_FEW, claims.FINETUNE_FEW: "dann"}
    runs = [dict(r, method=swap[r["method"]]) for r in reference["finetune"]]
    flipped = dict(reference, runs=runs, finetune=[dict(r, method=swap[r["method"]]) for r in reference["runs"]])
    verdicts = {c.name: c.check(flipped) for c in claims.CLAIMS["04-semi"]}
    assert not verdicts["semi_dann_beats_fine_tuning_with_one_label"].holds
    assert not verdicts["dann_advantage_shrinks_with_labels"].holds


def test_reused_thread_counts_read_every_shape_a_reference_records():
    threads = _reference_script().reused_threads
    assert threads(1, {"torch_threads_per_run": 1}) == 1
    assert threads(1, {"torch_threads_per_run": 2}) == {"new runs": 1, "reused runs": [2]}
    assert threads(1, {"torch_threads_per_run": {"new runs": 1, "reused runs": [1, 2]}}) == \
        {"new runs": 1, "reused runs": [1, 2]}
    assert threads(2, {"torch_threads_per_run": {"new runs": 1, "runs reused from the reference of x": {"a": 2}}}) \
        == {"new runs": 2, "reused runs": [1, 2]}


@pytest.mark.parametrize("notebook", ["01", "02", "03", "04", "06", "07", "08"])
def test_each_finding_is_shown_once_in_its_notebook(notebook):
    """A finding sits beside its figure once; the appendix-style list shows only the rest (Findings.rest)."""
    import re

    import nbformat

    path = next(Path(__file__).resolve().parents[1].glob(f"notebooks/{notebook}_*.ipynb"))
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    names = [c.name for c in claims.CLAIMS[notebook]]
    quoted = {n: len(re.findall(rf"[\"']{n}[\"']", code)) for n in names}
    assert all(k <= 1 for k in quoted.values()), {n: k for n, k in quoted.items() if k > 1}
    full = code.count(f'claims.render("{notebook}",')
    rest = code.count("verdicts.rest()")
    if all(quoted.values()):  # every finding beside its figure
        assert full == 0 and rest <= 1
    elif any(quoted.values()):  # some one by one: the list of the others must skip them
        assert full == 0 and rest == 1
    else:  # none one by one: one list of them all
        assert full + rest == 1


def test_side_by_side_shows_the_spread_only_where_there_is_one():
    live = [{"method": "dann", "seed": 0, "target_accuracy": 0.80}]
    reference = [{"method": "dann", "seed": s, "target_accuracy": a} for s, a in enumerate((0.82, 0.84, 0.86))]
    reference.append({"method": "oracle", "seed": 0, "target_accuracy": 0.99})
    table = budget.side_by_side(live, reference, ["method"], "live", "reference")
    assert list(table.index) == ["dann"]  # only what the live run measured
    assert table.loc["dann", "live"] == "80.0 (1 seed)"
    assert table.loc["dann", "reference"] == "84.0 ± 2.0 (3 seeds)"
    assert table.loc["dann", "live − reference (points)"] == -4.0
    missing = budget.side_by_side([{"method": "new", "target_accuracy": 0.5}], reference, ["method"], "live", "reference")
    assert missing.loc["new", "reference"] == "not measured"
