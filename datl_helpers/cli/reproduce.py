"""Do the shipped reference results still come out of the code? One cheap row of each, re-run.

Every reference file in ``reference_results/`` was written by a script in ``data_scripts/``. A
:class:`Slice` names one representative row of it (seed 0, at the row's own budget and thread
count) and the command that runs that row again through the same code path as the command line
(``python -m datl_helpers transfer|adapt|robust ...``, with the command's defaults wherever the
reference row was measured at them, so the defaults are checked too; notebook 02's strategies,
which have no command, through the reference script's own job runner). :func:`check` runs it and compares: the
row reproduces when every compared value moved by at most the slice's tolerance (percentage
points). The tolerance is at least a point and above what another thread count, or torch's
non-vectorised kernels, moved that row (measured, seeds 0-2: ``docs/reproducibility.md``); on the
machine and thread count that made the reference, runs reproduce to the last digit.

A reference that no longer reproduces fails with the command that regenerates it. ``python -m
datl_helpers reproduce --record`` runs every slice and, when all reproduce, records in each reference
the code they ran (:func:`datl_helpers.core.provenance.code_hashes`): a later change of that code
without a new ``--record`` is reported by the test suite (:func:`stale`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datl_helpers.cli.common import format_table
from datl_helpers.core.errors import DatlError, NotReproducedError
from datl_helpers.core.provenance import changed_modules, code_hashes, versions, write_json

REFERENCE = Path(__file__).resolve().parents[1] / "reference_results"
REGENERATE = "python data_scripts/converged_reference.py"


@dataclass(frozen=True)
class Slice:
    """One row of a reference file and the command that runs it again."""

    name: str
    reference: str  # the reference file this row stands for
    row: Callable[[Callable[[str], dict], int], dict]  # (load(file), seed) -> the reference row
    argv: Callable[[dict], list[str]] | None  # the row -> `python -m datl_helpers` arguments, or
    script_job: Callable[[dict], dict] | None  # ... the row -> a job of data_scripts/converged_reference.py
    values: tuple[str, ...]  # compared keys of the row (fractions in [0, 1]) and of the new run
    tolerance_points: float  # the family's: what another torch thread count moved it (measured)
    threads: int  # torch threads of the reference run
    regenerate: str  # the command that writes the reference file again
    modules: tuple[str, ...] = field(default=())  # what the runs depend on (for the provenance)


def only(rows: list[dict], **where) -> dict:
    """The one row of ``rows`` matching every ``key=value`` of ``where``."""
    found = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    if len(found) != 1:
        raise DatlError(f"expected one reference row with {where}, found {len(found)}")
    return found[0]


def curve_row(load: Callable[[str], dict], family: str, steps: int, seed: int = 0) -> dict:
    """Seed ``seed``'s row at ``steps`` of the first curve of a budget-curve family."""
    curve = load("budget_curves.json")["families"][family]["curves"][0]
    return {**only(curve["rows"], steps=steps, seed=seed), "curve": curve["name"]}


def _get(row: dict, key: str) -> float:
    """A value of a row; ``a.b.c`` reaches into nested dicts (a robust run's ``robust_accuracy``)."""
    value = row
    for part in key.split("."):
        value = value[part]
    return float(value)


SLICES: tuple[Slice, ...] = (
    Slice("few-label fine-tuning, mnistm, 10 labels/class", "01_feature_extraction.json",
          lambda load, seed: only(load("01_feature_extraction.json")["label_efficiency"], target="mnistm",
                            method="finetune", labels_per_class=10, seed=seed),
          lambda r: ["transfer", "--target", "mnistm", "--method", "finetune", "--labels-per-class", "10",
                     "--seeds", str(r["seed"])],
          None, ("target_accuracy",), 1.0, 1, f"{REGENERATE} labels", ("transfer", "data")),
    Slice("fine-tuning strategy 'layer-wise LRs', mnistm, 10 labels/class", "02_fine_tuning.json",
          lambda load, seed: only(load("02_fine_tuning.json")["runs"], strategy="layer-wise LRs", labels_per_class=10,
                            seed=seed, steps=80),
          None, lambda r: {"script": "finetune_job", "kind": "strategy", "strategy": r["strategy"], "labels": 10,
                           "steps_per_epoch": r["steps"] // 10, "seed": r["seed"]},
          ("accuracy", "source_accuracy"), 1.0, 1, f"{REGENERATE} finetuning", ("finetune", "data")),
    Slice("heavy augmentation from scratch, mnistm, 10 labels/class", "03_augmentation.json",
          lambda load, seed: only(load("03_augmentation.json")["grid"], method="scratch", labels_per_class=10,
                            augment="heavy", seed=seed),
          lambda r: ["transfer", "--target", "mnistm", "--method", "scratch", "--labels-per-class", "10",
                     "--augment", "heavy", "--seeds", str(r["seed"])],
          None, ("target_accuracy",), 2.0, 1, f"{REGENERATE} augmentation", ("transfer", "data")),
    Slice("DANN, mnist -> mnistm", "04_domain_adversarial.json",
          lambda load, seed: only(load("04_domain_adversarial.json")["runs"], pair="mnist -> mnistm", method="dann", seed=seed),
          lambda r: ["adapt", "--source", "mnist", "--target", "mnistm", "--method", "dann", "--seeds", str(r["seed"])],
          None, ("target_accuracy", "source_accuracy"), 1.0, 1, f"{REGENERATE} adaptation --workers 1",
          ("adaptation", "data")),
    Slice("the paper's protocol from random weights: source-only, 2,000 steps", "04_paper_protocol.json",
          lambda load, seed: curve_row(load, "adapt-scratch-source-only", 2000, seed),
          lambda r: ["adapt", "--source", "mnist", "--target", "mnistm", "--method", "source-only", "--init",
                     "scratch", "--steps", str(r["steps"]), "--seeds", str(r["seed"])],
          None, ("target_accuracy", "source_accuracy"), 1.0, 1, f"{REGENERATE} paper --start 2000 --largest 64000",
          ("adaptation", "data")),
    Slice("DANN + 1 labelled target image per class, mnist -> mnistm", "04_semi_supervised.json",
          lambda load, seed: only(load("04_semi_supervised.json")["runs"], pair="mnist -> mnistm", target_labels=1, seed=seed),
          lambda r: ["adapt", "--source", "mnist", "--target", "mnistm", "--method", "dann", "--target-labels", "1",
                     "--steps", str(r["steps"]), "--seeds", str(r["seed"])],
          None, ("target_accuracy",), 1.0, 1, f"{REGENERATE} semi --workers 1", ("adaptation", "data")),
    Slice("fine-tuning under FGSM and PGD-10, mnistm, 10 labels/class", "06_adversarial_robustness.json",
          lambda load, seed: only(load("06_adversarial_robustness.json")["runs"], name="finetune", seed=seed),
          lambda r: ["robust", "--target", "mnistm", "--method", "finetune", "--labels-per-class", "10",
                     "--seeds", str(r["seed"])],
          None, ("clean_accuracy", "robust_accuracy.pgd.8/255", "robust_accuracy.fgsm.8/255"), 1.0, 1,
          f"{REGENERATE} robustness --workers 1", ("robust", "data")),
    Slice("text DANN, movies -> food, the default budget", "07_beyond_images_text.json",
          lambda load, seed: only(load("07_beyond_images_text.json")["runs"], pair="movies->food", method="dann", seed=seed),
          lambda r: ["adapt", "--source", "movies", "--target", "food", "--method", "dann", "--seeds", str(r["seed"])],
          None, ("target_accuracy", "target_auc"), 4.0, 1, "python data_scripts/text_reference.py", ("text", "data")),
    Slice("importance weighting, heart_va -> heart_cleveland, the default budget", "08_hospitals.json",
          lambda load, seed: only(load("08_hospitals.json")["runs"], pair="heart_va->heart_cleveland",
                                  method="importance-weighting", seed=seed),
          lambda r: ["adapt", "--source", "heart_va", "--target", "heart_cleveland", "--method", "importance-weighting",
                     "--seeds", str(r["seed"])],
          None, ("target_accuracy", "target_balanced_accuracy", "target_auc"), 1.0, 1,
          "python data_scripts/tabular_reference.py", ("tabular", "data")),
    Slice("budget curve: scratch, mnistm, 10 labels/class, 100 steps", "budget_curves.json",
          lambda load, seed: curve_row(load, "transfer-scratch-10", 100, seed),
          lambda r: ["transfer", "--target", "mnistm", "--method", "scratch", "--labels-per-class", "10",
                     "--steps", str(r["steps"]), "--seeds", str(r["seed"])],
          None, ("target_accuracy",), 1.5, 1, f"{REGENERATE} budgets", ("transfer", "data")),
)


def _load(name: str) -> dict:
    return json.loads((REFERENCE / name).read_text())


def run_slice(s: Slice, row: dict, threads: int | None = None) -> dict:
    """Run ``s``'s row again (through the command line, or the reference script's job runner) with
    ``threads`` torch threads (default: the reference's), quietly; returns the new run."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads or s.threads)
    try:
        if s.argv is not None:
            from datl_helpers.cli.main import main

            with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
                out = Path(tmp) / "run.json"
                code = main([*s.argv(row), "--json", str(out)])
                if code != 0:
                    raise DatlError(f"`python -m datl_helpers {' '.join(s.argv(row))}` exited with status {code}")
                payload = json.loads(out.read_text())
                return {**payload["runs"][0], "config_steps": payload["config"].get("steps")}
        return _script_run(s.script_job(row))
    finally:
        torch.set_num_threads(before)


def _script_run(spec: dict) -> dict:
    """A job of data_scripts/converged_reference.py, built by its own job maker and run by its runner."""
    import importlib.util

    path = REFERENCE.parents[1] / "data_scripts" / "converged_reference.py"
    if not path.exists():
        raise DatlError(f"this slice runs {path.name} of the repository's data_scripts/: run it from a checkout")
    spec_ = importlib.util.spec_from_file_location("converged_reference", path)
    script = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(script)
    job = script.finetune_job(spec["kind"], spec["strategy"], spec["labels"], spec["steps_per_epoch"], spec["seed"])
    with contextlib.redirect_stdout(io.StringIO()):
        return script.run_job(job)


def check(s: Slice, threads: int | None = None, seed: int = 0, load: Callable[[str], dict] = _load) -> dict:
    """Run slice ``s`` and compare it with its reference row; raises :class:`NotReproducedError`
    (naming the command that regenerates the reference) when a value moved past the tolerance."""
    row = s.row(load, seed)
    start = time.perf_counter()
    new = run_slice(s, row, threads)
    if new.get("config_steps") not in (None, row["steps"]):  # a command run with its defaults
        raise NotReproducedError(
            f"`python -m datl_helpers {' '.join(s.argv(row))}` now trains {new['config_steps']} steps by default, "
            f"the reference {row['steps']}: the converged budget the command reads no longer matches "
            f"{s.reference}; regenerate it with `{s.regenerate}`")
    moved = {k: round(100 * (_get(new, k) - _get(row, k)), 2) for k in s.values}
    how = (f"python -m datl_helpers {' '.join(s.argv(row))}" if s.argv else
           f"data_scripts/converged_reference.py's run_job({s.script_job(row)})")
    result = {"slice": s.name, "reference": s.reference, "command": how, "seed": seed, "threads": threads or s.threads,
              "reference_values": {k: _get(row, k) for k in s.values}, "now": {k: _get(new, k) for k in s.values},
              "moved_points": moved, "tolerance_points": s.tolerance_points,
              "seconds": round(time.perf_counter() - start, 1)}
    worst = max(moved, key=lambda k: abs(moved[k]))
    if abs(moved[worst]) > s.tolerance_points:
        raise NotReproducedError(
            f"{s.reference} no longer reproduces: {s.name} (seed {seed}) gave {worst} {100 * _get(row, worst):.1f} % when "
            f"the reference was made and {100 * _get(new, worst):.1f} % now ({moved[worst]:+.1f} points, tolerance "
            f"{s.tolerance_points:g}). If the change of results is intended, regenerate the reference with "
            f"`{s.regenerate}` (and run `python -m datl_helpers reproduce --record`)")
    return result


def _check_by_name(name: str, threads: int | None, seed: int) -> dict:
    """:func:`check` of the slice called ``name``, returning the error instead of raising it (for a pool)."""
    import os

    os.environ["DATL_QUIET"] = "1"
    s = next(s for s in SLICES if s.name == name)
    try:
        return check(s, threads=threads, seed=seed)
    except NotReproducedError as err:
        return {"slice": s.name, "reference": s.reference, "error": str(err)}


def check_all(slices: tuple[Slice, ...] = SLICES, workers: int = 2, threads: int | None = None,
              seed: int = 0) -> list[dict]:
    """:func:`check` every slice, ``workers`` at a time in fresh processes (each with the slice's own
    thread count); a slice that does not reproduce gives a row with its ``error`` instead of raising."""
    if workers <= 1:
        return [_check_by_name(s.name, threads, seed) for s in slices]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_check_by_name, [s.name for s in slices], [threads] * len(slices),
                             [seed] * len(slices)))


def modules_of(reference: str) -> tuple[str, ...]:
    """The modules the runs of ``reference`` depend on (every slice of it, followed through imports)."""
    return tuple(sorted({m for s in SLICES if s.reference == reference for m in s.modules}))


def stale(load: Callable[[str], dict] = _load) -> dict[str, list[str]]:
    """Per reference file: the modules its runs depend on that changed since it was last verified
    (its ``verified`` record, written by ``reproduce --record``; else its own ``code``). A
    reference with neither record lists every module it depends on."""
    out = {}
    for name in dict.fromkeys(s.reference for s in SLICES):
        ref = load(name)
        recorded = (ref.get("verified") or {}).get("code") or ref.get("code")
        changed = changed_modules(recorded) if recorded else list(code_hashes(modules_of(name))["files"])
        if changed:
            out[name] = changed
    return out


def record(results: list[dict]) -> None:
    """After every slice of a reference reproduced: write the code they ran into its ``verified``."""
    from datl_helpers.core import provenance

    tree = provenance.git_commit()  # as the rows ran: before the first reference is rewritten
    for name in dict.fromkeys(r["reference"] for r in results):
        payload = _load(name)
        info = provenance.record(modules_of(name), threads=sorted({r["threads"] for r in results
                                                                   if r["reference"] == name}))
        payload["verified"] = {"by": "python -m datl_helpers reproduce --record", **tree,
                               **{k: info[k] for k in ("date", "versions", "code")},
                               "slices": [r for r in results if r["reference"] == name]}
        provenance.write_json(REFERENCE / name, payload)


# The command line: ``python -m datl_helpers reproduce``

def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``reproduce`` command's arguments."""
    p = sub.add_parser("reproduce", help="re-run one cheap row of every shipped reference result and compare")
    p.add_argument("--only", nargs="+", metavar="FILE", help="these references only, e.g. 07_beyond_images_text")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the reference's own)")
    p.add_argument("--workers", type=int, default=2, help="rows re-run side by side, each in its own process")
    p.add_argument("--record", action="store_true",
                   help="when every row reproduces, record in each reference the code that reproduced it")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write every comparison as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    slices = [s for s in SLICES if not args.only or s.reference in args.only
              or s.reference.removesuffix(".json") in args.only]
    if not slices:
        raise DatlError(f"no reference named {args.only}; the references: "
                        f"{', '.join(dict.fromkeys(s.reference for s in SLICES))}")
    print(f"re-running {len(slices)} reference row(s), {args.workers} at a time ...", flush=True)
    checked = check_all(tuple(slices), workers=args.workers, threads=args.threads)
    results, failed = [r for r in checked if "error" not in r], [r["error"] for r in checked if "error" in r]
    for err in failed:
        print(f"  {err}", flush=True)
    print(format_table([{"reference": r["reference"], "threads": r["threads"],
                         "moved (points)": ", ".join(f"{k} {v:+.1f}" for k, v in r["moved_points"].items()),
                         "tolerance": r["tolerance_points"], "seconds": r["seconds"]} for r in results]))
    if args.json:
        write_json(args.json, {"command": "reproduce", "results": results, "failed": failed, "versions": versions()})
    if failed:
        print(f"\n{len(failed)} of {len(slices)} references no longer reproduce", file=sys.stderr)
        return 1
    if args.record:
        record(results)
        print(f"recorded the code that reproduced {len({r['reference'] for r in results})} reference(s)")
    return 0
