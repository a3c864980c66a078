"""The shipped reference results still come out of the code: one row of each re-run (seed 0, its own
budget and thread count, through the command line), and the provenance that ties a reference to the
code that made it."""

from __future__ import annotations

import copy
import functools
import json

import pytest

from datl_helpers import provenance, reproduce

REFERENCES = sorted(p.name for p in reproduce.REFERENCE.glob("*.json"))


@functools.cache
def _all() -> dict[str, dict]:
    """Every slice, run once per test session, two at a time (each on one thread, as the references were)."""
    return {r["slice"]: r for r in reproduce.check_all(workers=2)}


def _run(name: str) -> dict:
    result = _all()[name]
    if "error" in result:
        raise reproduce.NotReproducedError(result["error"])
    return result


def test_every_reference_file_has_a_slice():
    assert sorted({s.reference for s in reproduce.SLICES}) == REFERENCES


@pytest.mark.slow
@pytest.mark.parametrize("name", [s.name for s in reproduce.SLICES], ids=[s.reference for s in reproduce.SLICES])
def test_the_reference_reproduces(name):
    result = _run(name)  # raises NotReproducedError, with the command that regenerates it
    assert all(abs(v) <= result["tolerance_points"] for v in result["moved_points"].values())


@pytest.mark.slow
def test_a_stale_reference_fails_with_the_command_that_regenerates_it(monkeypatch):
    """A reference whose row the code no longer gives (here: one whose row was moved by 3 points)."""
    s = next(s for s in reproduce.SLICES if s.reference == "budget_curves.json")
    now = _run(s.name)["now"]["target_accuracy"]
    stale = json.loads((reproduce.REFERENCE / s.reference).read_text())
    rows = stale["families"]["transfer-scratch-10"]["curves"][0]["rows"]
    row = next(r for r in rows if r["steps"] == 100 and r["seed"] == 0)
    row["target_accuracy"] = now + 0.03
    monkeypatch.setattr(reproduce, "run_slice", lambda *a, **k: {"target_accuracy": now})
    with pytest.raises(reproduce.NotReproducedError, match=r"-3\.0 points.*`python data_scripts/converged_reference\.py "
                                                          r"budgets`"):
        reproduce.check(s, load=lambda _: stale)
    # within the tolerance it passes
    row["target_accuracy"] = now + 0.005
    assert reproduce.check(s, load=lambda _: stale)["moved_points"]["target_accuracy"] == pytest.approx(-0.5)


def test_no_reference_is_stale():
    """Every reference was verified (reproduced by its slice) with the code it depends on now."""
    stale = reproduce.stale()
    assert not stale, (
        "the code these references depend on changed since they were last reproduced: "
        + "; ".join(f"{name}: {', '.join(mods)}" for name, mods in stale.items())
        + ". Run `python -m datl_helpers reproduce --record` (it re-runs one row of each and records the code)")


def test_a_changed_module_makes_a_reference_stale():
    ref = json.loads((reproduce.REFERENCE / "07_beyond_images_text.json").read_text())
    changed = copy.deepcopy(ref)
    record = changed.get("verified") or changed
    record["code"]["files"]["beyond.text"] = "0" * 64
    assert reproduce.stale(load=lambda name: changed if name == "07_beyond_images_text.json" else
                           json.loads((reproduce.REFERENCE / name).read_text())) == {
        "07_beyond_images_text.json": ["beyond.text"]}


@pytest.mark.parametrize("name", REFERENCES)
def test_every_reference_names_its_code_command_and_threads(name):
    ref = json.loads((reproduce.REFERENCE / name).read_text())
    assert "torch_threads_per_run" in ref and "versions" in ref
    verified = ref.get("verified") or {}
    code = verified.get("code") or ref.get("code")
    assert code and set(code["files"]) == set(provenance.code_hashes(reproduce.modules_of(name))["files"])
    assert len(verified.get("commit") or ref.get("commit") or "") == 40
    assert ref.get("command") or all(s["command"].startswith(("python", "data_scripts/"))
                                     for s in verified.get("slices", [])), "no command recorded"
    assert verified.get("slices") or ref.get("command")


def test_dependencies_follow_imports_to_the_end():
    deps = provenance.dependencies(["text"])  # a short name, or the module's place: beyond.text
    assert deps == provenance.dependencies(["beyond.text"])
    assert {"beyond.text", "adaptation.dann", "data.text_domains", "core.errors", "core.train", "core.models"} <= set(deps)
    assert "robustness.robust" not in deps and "course.claims" not in deps
    with pytest.raises(ValueError, match=r"no module datl_helpers\.nope"):
        provenance.dependencies(["nope"])


def test_code_hashes_and_changed_modules():
    hashes = provenance.code_hashes(["errors"])
    assert list(hashes["files"]) == ["core.errors"] and len(hashes["sha256"]) == 64
    assert provenance.changed_modules(hashes) == []
    assert provenance.changed_modules({"files": {"core.errors": "0" * 64, "gone": "1" * 64}}) == ["core.errors", "gone"]


def test_git_commit_and_command_line():
    info = provenance.git_commit()
    assert set(info) == {"commit", "clean"}
    assert info["commit"] is None or len(info["commit"]) == 40
    assert provenance.command_line(["/x/datl_helpers/__main__.py", "adapt", "--source", "a b"]) == (
        "python -m datl_helpers adapt --source 'a b'")
    assert provenance.command_line([str(provenance.ROOT / "data_scripts" / "text_reference.py"), "--seeds", "0"]) == (
        "python data_scripts/text_reference.py --seeds 0")


def test_one_config_dict_serves_every_configuration():
    """provenance.config_dict writes any configuration dataclass; a field can say how it is written."""
    from datl_helpers import dann, robust, text, transfer

    assert provenance.config_dict(dann.DannConfig(steps=7))["steps"] == 7
    assert provenance.config_dict(transfer.TransferConfig())["batch_size"] == transfer.TransferConfig().batch_size
    assert set(provenance.config_dict(text.TextConfig())) == set(text.TextConfig.__dataclass_fields__)
    assert provenance.config_dict(robust.RobustConfig())["eps"] == ["0/255", "2/255", "4/255", "8/255"]
