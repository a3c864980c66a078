"""The command line: ``python -m datl_helpers COMMAND`` (or ``datl COMMAND``).

    domains  [--json PATH]                   the registry: names, sizes, cached or not, offline/online
    prepare  [--domains ...] [--download]    build and cache the offline domains and fetch the text domains
                                             (and online ones when named, with --download)
    transfer --target T --labels-per-class K --method scratch|linear-probe|finetune [--seeds ...]
             [--augment none|light|medium|heavy] [--augment-strength X]
    adapt    --source S --target T --method source-only|dann|target-oracle|adabn|coral|entropy [--init backbone|scratch] [--target-labels K] [--steps N] [--seeds ...]
    bench    [--device auto] [--batch-size 256] [--workers 0 4]   images/s of the DANN step, ours vs DataLoader
    robust   --target T --labels-per-class K --method scratch|linear-probe|finetune|dann|source-only [--backbone standard|robust]
             [--adversarial-training none|fgsm|pgd] [--eps 2/255 4/255 8/255] [--seeds ...]
             clean and robust (FGSM, PGD-10) accuracy of a transferred model
    run-notebooks --out DIR [--smoke] [--device auto|cpu|cuda|mps] [--notebooks NAME ...]
             execute every course notebook, export .ipynb and .html, report time and peak memory
    exercises --out notebooks/exercises [--check]   write (or check) the student versions
    study-time [--executed DIR] [--check]   measure each section's run time from full-mode runs, write
             every notebook's course map and study time per section
    reproduce [--only FILE ...] [--record]   re-run one cheap row of every reference result and compare
    site     --out DIR --executed DIR          the course website from executed notebooks (Jupyter Book, offline)

Every command prints a readable table; ``--json PATH`` also writes machine-readable results. A
mistake of the user's (an unknown domain, missing data while offline, ...) prints one line that
says what to do, and the command exits with status 2.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from datl_helpers.errors import DatlError
from datl_helpers.provenance import config_dict, versions, write_json


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows of dicts as an aligned plain-text table."""
    if not rows:
        return "(nothing)"
    columns = columns or list(rows[0])
    show = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    cells = [[show(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def cmd_domains(args: argparse.Namespace) -> int:
    from datl_helpers import data

    rows = data.domain_table(args.data_dir)
    print(format_table(rows, ["name", "train", "test", "status", "kind"]))
    print(f"\ndata directory: {data.data_dir(args.data_dir)}")
    if args.json:
        write_json(args.json, {"command": "domains", "domains": rows, "data_dir": str(data.data_dir(args.data_dir))})
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from datl_helpers import data

    names = tuple(args.domains or data.OFFLINE_DOMAINS + data.TEXT_DOMAINS)
    for name in names:
        if name.startswith(("npz:", "folder:", "text:")):
            raise data.BadDataError(f"prepare builds registered domains only, not {name!r}")
        data.check_domain_name(name)
    rows = []
    for name in names:
        if name in data.ONLINE_DOMAINS:
            domain = data.build_online(name, data.data_dir(args.data_dir), download=args.download)
            rows.append({"name": name, "train": len(domain.y_train), "test": len(domain.y_test), "was": "online"})
        elif name in data.TEXT_DOMAINS and not args.domains:
            try:  # by default a missing package client or network skips the text domains, with one line
                rows.extend(data.prepare((name,), args.data_dir))
            except DatlError as err:
                print(f"note: text domain {name!r} not prepared (notebook 07 needs it): {err}", flush=True)
                continue
        else:
            rows.extend(data.prepare((name,), args.data_dir))
        print(f"{name}: ready", flush=True)
    print()
    print(format_table(rows))
    print(f"\nready in {data.data_dir(args.data_dir)}")
    if args.json:
        write_json(args.json, {"command": "prepare", "domains": rows, "versions": versions()})
    return 0


def load_named(name: str, data_dir: Path | None):
    """The domain ``name`` from ``--data-dir`` (an unknown name is a clear error that lists the known ones)."""
    from datl_helpers import data

    return data.load_domain(data.check_domain_name(name), root=data_dir)


def run_seeds(seeds: list[int], run_one, show=None) -> list[dict]:
    """Call ``run_one(seed)`` for every seed, printing each result row as it arrives (``show(run)``:
    the row to print, default the whole run)."""
    runs = []
    for seed in seeds:
        runs.append(run_one(seed))
        table = format_table([show(runs[-1]) if show else runs[-1]])
        print(table if len(runs) == 1 else table.splitlines()[-1], flush=True)
    return runs


def save_runs(args: argparse.Namespace, config: dict, runs: list[dict], mean: dict, std: dict, device) -> None:
    """With ``--json PATH``: the command, its config, every run, their mean and std, and what else changes
    results: the device, the torch thread count, the versions, the command line and the commit."""
    if args.json:
        import torch

        from datl_helpers.provenance import git_commit

        write_json(args.json, {"command": args.command, "config": config, "runs": runs, "mean": mean, "std": std,
                               "device": str(device), "torch_threads": torch.get_num_threads(),
                               "versions": versions(), "command_line": "python -m datl_helpers " + " ".join(map(shlex.quote, getattr(args, "argv", []))),
                               **git_commit()})


def mean_and_std(runs: list[dict], keys: tuple[str, ...]) -> tuple[dict, dict]:
    """Mean and sample standard deviation of ``keys`` over runs (one per seed)."""
    from datl_helpers.metrics import mean_std

    stats = {k: mean_std(r[k] for r in runs) for k in keys}
    return {k: v[0] for k, v in stats.items()}, {k: v[1] for k, v in stats.items()}


def labels_per_class(text: str) -> int | None:
    """argparse type: a positive integer, or 'all' (None)."""
    if text.lower() == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")
    return int(text)


def unit_interval(text: str) -> float:
    """argparse type: an augmentation strength in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def eps_value(text: str) -> float:
    """argparse type: an attack radius such as 8/255 or 0.03."""
    from datl_helpers.robust import parse_eps

    try:
        return parse_eps(text)
    except DatlError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cmd_transfer(args: argparse.Namespace) -> int:
    from datl_helpers import augment, budget, train, transfer

    augment_strength = augment.resolve_strength(args.augment, args.augment_strength)  # AugmentationError: exit 2
    method = "scratch" if args.method == "scratch" else "finetune"  # the linear probe has no step budget
    if args.steps is None:  # the converged budget, of augmented training when augmenting
        steps = budget.transfer_steps(method, args.labels_per_class, augmented=augment_strength > 0)
    else:
        steps = budget.check_steps(args.steps)
    device = train.resolve_device(args.device)
    target = load_named(args.target, args.data_dir)
    config = transfer.TransferConfig(steps=steps, augment=args.augment, augment_strength=augment_strength)
    labels = args.labels_per_class
    runs = run_seeds(args.seeds, lambda seed: transfer.run_transfer(
        target, args.method, labels, seed=seed, config=config, device=device))
    mean, std = mean_and_std(runs, ("target_accuracy", "macro_f1", "seconds"))
    print(
        f"\n{args.method} on {args.target}, {labels or 'all'} labels/class, augment {args.augment} "
        f"(strength {augment_strength:g}), {len(runs)} seed(s): "
        f"accuracy {100 * mean['target_accuracy']:.1f} ± {100 * std['target_accuracy']:.1f} %, "
        f"macro F1 {mean['macro_f1']:.3f}, {mean['seconds']:.1f} s per run on {device}"
    )
    save_runs(args, {"target": args.target, "labels_per_class": labels, "method": args.method, "seeds": args.seeds,
                     **config_dict(config)}, runs, mean, std, device)
    return 0


def cmd_adapt(args: argparse.Namespace) -> int:
    from datl_helpers import adaptation, budget, dann, data, train

    if args.source in data.TEXT_DOMAINS or args.target in data.TEXT_DOMAINS or args.source.startswith("text:") \
            or args.target.startswith("text:"):
        return adapt_text(args)
    scratch = args.init == "scratch"
    if args.target_labels < 0:
        raise DatlError(f"--target-labels must be 0 (unsupervised) or more labelled target images per class, "
                        f"got {args.target_labels}")
    if scratch and args.method not in dann.METHODS:
        raise DatlError(f"--init scratch runs the paper's protocol for {', '.join(dann.METHODS)}; "
                        f"{args.method!r} needs the backbone (--init backbone)")
    if args.steps is None:  # the pair's own converged budget where it was measured, else the method's
        pair = f"{args.source} -> {args.target}"
        try:
            steps, converged = budget.adapt_budget(args.method, pair, init=args.init)
        except budget.BudgetError:
            steps, converged = budget.adapt_budget(args.method, init=args.init)
        if not converged:
            print(f"note: {args.method}'s budget curve has not converged by {steps} steps (the largest measured: its "
                  "last doubling moved the mean by a point or more); read its accuracy as provisional")
    else:
        steps = budget.check_steps(args.steps)
    device = train.resolve_device(args.device)
    source, target = load_named(args.source, args.data_dir), load_named(args.target, args.data_dir)
    fast = False if args.plain_path else None
    if scratch:  # the paper's network, optimizer and schedules; --head/--augment/--feature-lr-scale do not apply
        config = dann.paper_config(steps, fast=fast, **({} if args.lambda_max is None else
                                                        {"lambda_max": args.lambda_max}))
    else:
        lambda_max = dann.DannConfig.lambda_max if args.lambda_max is None else args.lambda_max
        config = dann.DannConfig(steps=steps, lambda_max=lambda_max, head=args.head,
                                 feature_lr_scale=args.feature_lr_scale, augment=args.augment, fast=fast)
    runs = run_seeds(args.seeds, lambda seed: adaptation.run_method(
        source, target, args.method, seed=seed, config=config, device=device, target_labels=args.target_labels))
    keys = ("target_accuracy", "source_accuracy", "domain_accuracy", "macro_f1", "seconds")
    mean, std = mean_and_std(runs, keys)
    print(
        f"\n{args.method}{f' + {args.target_labels} target labels/class' if args.target_labels else ''} "
        f"{args.source} -> {args.target}, {len(runs)} seed(s): target accuracy "
        f"{100 * mean['target_accuracy']:.1f} ± {100 * std['target_accuracy']:.1f} %, source "
        f"{100 * mean['source_accuracy']:.1f} %, domain accuracy {mean['domain_accuracy']:.2f}, "
        f"{mean['seconds']:.0f} s per run on {device}"
    )
    save_runs(args, {"source": args.source, "target": args.target, "method": args.method, "seeds": args.seeds,
                     "target_labels": args.target_labels, **config_dict(config)}, runs, mean, std, device)
    return 0


def adapt_text(args: argparse.Namespace) -> int:
    """``adapt`` between text domains (notebook 07): TF-IDF, a small MLP, the same reversal layer."""
    from datl_helpers import data, text
    from datl_helpers.budget import check_steps
    from datl_helpers.errors import check_choice

    check_choice("method for text domains", args.method, text.METHODS)
    source, target = load_named(args.source, args.data_dir), load_named(args.target, args.data_dir)
    if not (isinstance(source, text.TextDomain) and isinstance(target, text.TextDomain)):
        raise data.BadDataError(f"{args.source!r} and {args.target!r}: adapt needs two text or two image domains")
    config = text.TextConfig()
    if args.steps is not None:
        config.steps = check_steps(args.steps)
    if args.lambda_max is not None:
        config.lambda_max = args.lambda_max
    vectorised = text.vectorise(source, target, config.max_features)
    runs = run_seeds(args.seeds, lambda seed: text.run_text(vectorised, args.method, seed, config))
    keys = ("target_accuracy", "target_auc", "source_accuracy", "domain_accuracy", "seconds")
    mean, std = mean_and_std(runs, keys)
    print(
        f"\n{args.method} {args.source} -> {args.target} (text), {len(runs)} seed(s): target accuracy "
        f"{100 * mean['target_accuracy']:.1f} ± {100 * std['target_accuracy']:.1f} %, AUC {mean['target_auc']:.3f}, "
        f"source {100 * mean['source_accuracy']:.1f} %, domain accuracy {mean['domain_accuracy']:.2f}, "
        f"{mean['seconds']:.0f} s per run on cpu"
    )
    save_runs(args, {"source": args.source, "target": args.target, "method": args.method, "seeds": args.seeds,
                     "kind": "text", **config_dict(config)}, runs, mean, std, "cpu")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from datl_helpers import reproduce

    slices = [s for s in reproduce.SLICES if not args.only or s.reference in args.only
              or s.reference.removesuffix(".json") in args.only]
    if not slices:
        raise DatlError(f"no reference named {args.only}; the references: "
                        f"{', '.join(dict.fromkeys(s.reference for s in reproduce.SLICES))}")
    print(f"re-running {len(slices)} reference row(s), {args.workers} at a time ...", flush=True)
    checked = reproduce.check_all(tuple(slices), workers=args.workers, threads=args.threads)
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
        reproduce.record(results)
        print(f"recorded the code that reproduced {len({r['reference'] for r in results})} reference(s)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from datl_helpers import bench

    source, target = load_named(args.source, args.data_dir), load_named(args.target, args.data_dir)
    result = bench.run_bench(source, target, device=args.device, batch_size=args.batch_size, steps=args.steps,
                             repeats=args.repeats, workers=tuple(args.workers), adapt=not args.no_adapt)
    ratios = result["ratios"]
    rows = [{"pipeline": k, "images/s": f"{v:,.0f}", "ours is": f"{ratios[f'vs_{k}']:.2f}x" if k != "ours" else ""}
            for k, v in result["images_per_second"].items()]
    print(format_table(rows))
    print(f"DANN step, batch {args.batch_size} source + {args.batch_size} target images, on {result['device']} "
          f"({result['threads']} threads), median of {args.repeats} interleaved rounds of {args.steps} steps")
    if "adapt" in result:
        a = result["adapt"]
        print(f"adapt {a['source']} -> {a['target']} (default settings, seed 0): {a['seconds']:.0f} s, "
              f"target accuracy {100 * a['target_accuracy']:.1f} %")
    if args.growth:
        print("\nhow the DANN run's cost grows (training only; the other factors at their defaults):")
        result["growth"] = bench.cost_growth(source, target, device=args.device)
        print(format_table(result["growth"]))
    if args.json:
        write_json(args.json, {"command": "bench", **result, "versions": versions()})
    return 0


def cmd_robust(args: argparse.Namespace) -> int:
    from datl_helpers import budget, robust, train

    steps = None if args.steps is None else budget.check_steps(args.steps)  # None: the converged budget
    device = train.resolve_device(args.device)
    target = load_named(args.target, args.data_dir)
    adapting = args.method in ("dann", "source-only")
    source = load_named(args.source, args.data_dir) if adapting else None
    eps = tuple(dict.fromkeys((0.0, *args.eps)))
    config = robust.RobustConfig(steps=steps, adversarial=args.adversarial_training, eps=eps,
                                 n_test=args.test_images, pgd_steps=args.pgd_steps)
    runs = run_seeds(args.seeds, lambda seed: robust.run_robust(
        target, args.method, args.labels_per_class, backbone=args.backbone, config=config, seed=seed, device=device,
        source=source), show=lambda row: {
            "seed": row["seed"], "clean %": f"{100 * row['clean_accuracy']:.1f}",
            **{f"{a} {e} %": f"{100 * v:.1f}" for a, by_eps in row["robust_accuracy"].items()
               for e, v in by_eps.items() if e != "0/255"},
            "seconds": row["seconds"]})
    mean, std = robust.mean_and_std(runs)
    strongest = robust.eps_name(max(eps))
    print(f"\n{args.method} ({args.backbone} backbone, adversarial training {args.adversarial_training}) on "
          f"{args.target}, {args.labels_per_class or 'all'} labels/class, {len(runs)} seed(s): clean "
          f"{100 * mean['clean_accuracy']:.1f} ± {100 * std['clean_accuracy']:.1f} %"
          + (f", PGD-{args.pgd_steps} at {strongest} {100 * mean['robust_accuracy']['pgd'][strongest]:.1f} ± "
             f"{100 * std['robust_accuracy']['pgd'][strongest]:.1f} %" if max(eps) > 0 else "")
          + f", {mean['seconds']:.0f} s per run on {device}")
    save_runs(args, {"target": args.target, "source": args.source if adapting else None,
                     "labels_per_class": args.labels_per_class, "method": args.method, "backbone": args.backbone,
                     "seeds": args.seeds, **config_dict(config)}, runs, mean, std, device)
    return 0


def cmd_run_notebooks(args: argparse.Namespace) -> int:
    from datl_helpers import course

    notebooks = course.select_notebooks(course.find_notebooks(args.notebooks_dir), args.notebooks)
    mode = "smoke" if args.smoke else "full"
    print(f"running {len(notebooks)} notebook(s), {mode} mode, device {args.device}, into {args.out}\n", flush=True)
    name_width = max(len(p.stem) for p in notebooks)
    printed: list[dict] = []

    def show(row: dict) -> None:
        table = format_table([course.table_row(row, name_width)])
        print(table if not printed else table.splitlines()[-1], flush=True)
        printed.append(row)

    rows = course.run_notebooks(notebooks, args.out, smoke=args.smoke, device=args.device,
                                cell_timeout=args.cell_timeout, on_result=show)
    total = sum(r["seconds"] for r in rows)
    failed = [r["notebook"] for r in rows if r["status"] != "ok"]
    print(f"\ntotal: {len(rows)} notebook(s) in {total:.0f} s, peak memory up to "
          f"{max(r['peak_memory_mb'] for r in rows)} MB, {len(failed)} failed; executed .ipynb and .html in {args.out}")
    if args.json:
        write_json(args.json, {
            "command": "run-notebooks",
            "config": {"out": str(args.out), "smoke": args.smoke, "device": args.device,
                       "notebooks_dir": str(notebooks[0].parent), "notebooks": [p.stem for p in notebooks],
                       "cell_timeout": args.cell_timeout, "kernel": course.KERNEL},
            "notebooks": rows, "total_seconds": round(total, 1), "failed": failed, "versions": versions(),
        })
    if failed:
        print(f"failed: {', '.join(failed)} (the executed part of each is in {args.out})", file=sys.stderr)
        return 1
    return 0


def cmd_exercises(args: argparse.Namespace) -> int:
    from datl_helpers import course, exercises

    src = args.notebooks_dir or course.find_notebooks()[0].parent
    if args.check:
        stale = exercises.stale(src, args.out)
        if stale:
            print(f"missing or out of date in {args.out}: {', '.join(stale)}; regenerate with "
                  f"`python -m datl_helpers exercises --out {args.out}`", file=sys.stderr)
            return 1
        print(f"student versions in {args.out} are up to date")
        return 0
    for path in exercises.write_student_notebooks(src, args.out):
        print(f"wrote {path}")
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from datl_helpers import site

    start = time.perf_counter()
    info = site.build(args.executed, args.out, args.notebooks_dir)
    kind = "smoke runs (it says so on every page)" if info["smoke"] else "full-mode runs"
    print(f"built {len(info['pages'])} pages ({info['bytes'] / 2**20:.1f} MB) from {kind} of "
          f"{len(info['notebooks'])} notebooks in {time.perf_counter() - start:.0f} s: open {args.out / 'index.html'}")
    if args.json:
        write_json(args.json, {"command": "site", "out": str(args.out), "executed": str(args.executed), **info,
                               "versions": versions()})
    return 0


def cmd_study_time(args: argparse.Namespace) -> int:
    from datl_helpers import course, study

    src = args.notebooks_dir or course.find_notebooks()[0].parent
    if args.check:
        stale = study.stale(src)
        if stale:
            print(f"study time out of date in {', '.join(stale)}; rewrite with `python -m datl_helpers study-time`",
                  file=sys.stderr)
            return 1
        print("every notebook's study time is up to date")
        return 0
    if args.executed:
        print(f"wrote {study.measure(args.executed, src)}")
    for name in study.write_front_matter(src):
        print(f"wrote the study time of {name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m datl_helpers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="where domains are cached (default: $DATL_DATA_DIR or ~/.cache/datl)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("domains", help="list the domains: sizes, cached or not, offline or online")
    p.add_argument("--json", type=Path, help="also write the table as JSON here")
    p.set_defaults(func=cmd_domains)

    p = sub.add_parser("prepare", help="build and cache the offline domains, fetch the text domains")
    p.add_argument("--domains", nargs="+", help="which domains (default: the offline ones and the text ones)")
    p.add_argument("--download", action="store_true", help="download online domains (needs internet)")
    p.add_argument("--json", type=Path, help="also write build times as JSON here")
    p.set_defaults(func=cmd_prepare)

    from datl_helpers.augment import PRESETS
    from datl_helpers.transfer import METHODS

    p = sub.add_parser("transfer", help="few-label transfer to a target domain")
    p.add_argument("--target", required=True, help="domain name, npz:PATH or folder:PATH")
    p.add_argument("--labels-per-class", type=labels_per_class, default=10, help="labelled images per class, or 'all'")
    p.add_argument("--method", choices=METHODS, default="finetune")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=None,
                   help="training steps of scratch and finetune (default: the converged budget, see docs/results.md)")
    p.add_argument("--augment", choices=list(PRESETS), default="none",
                   help="augmentation of the labelled training images (never of the test images)")
    p.add_argument("--augment-strength", type=unit_interval, default=None,
                   help="strength in [0, 1] that replaces the preset's own ("
                   + ", ".join(f"{k} {v:g}" for k, v in PRESETS.items() if v) + ")")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, help="also write config, per-seed runs, mean and std here")
    p.set_defaults(func=cmd_transfer)

    from datl_helpers.adaptation import METHODS as ADAPT_METHODS
    from datl_helpers.dann import DannConfig

    p = sub.add_parser("adapt", help="unsupervised domain adaptation (DANN and its baselines)")
    p.add_argument("--source", required=True, help="labelled source: domain name, npz:PATH, folder:PATH or text:PATH")
    p.add_argument("--target", required=True, help="unlabelled target: domain name, npz:PATH, folder:PATH or text:PATH")
    p.add_argument("--method", choices=ADAPT_METHODS, default="dann")
    p.add_argument("--steps", type=int, default=None, help="default: the method's converged budget")
    p.add_argument("--target-labels", type=int, default=0, metavar="K",
                   help="semi-supervised: K labelled target images per class beside the unlabelled ones "
                        "(dann or source-only; default 0)")
    p.add_argument("--init", choices=("backbone", "scratch"), default="backbone",
                   help="backbone: start from the shipped backbone (the course's protocol); scratch: the DANN "
                        "paper's protocol from random weights (its MNIST network, SGD, lambda up to 1)")
    p.add_argument("--lambda-max", type=float, default=None,
                   help=f"default {DannConfig.lambda_max} (images from the backbone), 1.0 (--init scratch) or the "
                        "text protocol's (text domains)")
    p.add_argument("--head", choices=("own", "new"), default=DannConfig.head,
                   help="own: keep the backbone's 10-class head; new: a fresh head")
    p.add_argument("--feature-lr-scale", type=float, default=DannConfig.feature_lr_scale,
                   help="the feature extractor's learning rate as a share of the head's")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=DannConfig.augment,
                   help="the backbone's own colour augmentation on every batch")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, help="also write config, per-seed runs, mean and std here")
    p.add_argument("--plain-path", action="store_true", help="switch the fast training path off (for comparison)")
    p.set_defaults(func=cmd_adapt)

    p = sub.add_parser("bench", help="images/s of the DANN step: our pipeline vs DataLoader pipelines")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=256, help="images per domain per step")
    p.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 4], help="DataLoader worker counts to compare")
    p.add_argument("--source", default="mnist")
    p.add_argument("--target", default="mnistm")
    p.add_argument("--no-adapt", action="store_true", help="skip the timed default adapt run")
    p.add_argument("--growth", action="store_true",
                   help="also time DANN training against steps, batch size and training images")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.set_defaults(func=cmd_bench)

    from datl_helpers import robust
    from datl_helpers.course import CELL_TIMEOUT, DEVICES

    p = sub.add_parser("robust", help="robustness of a transferred model to adversarial examples (FGSM, PGD)")
    p.add_argument("--target", default="mnistm", help="domain name, npz:PATH or folder:PATH")
    p.add_argument("--labels-per-class", type=labels_per_class, default=10, help="labelled images per class, or 'all'")
    p.add_argument("--method", choices=robust.METHODS, default="finetune")
    p.add_argument("--source", default="mnist", help="dann and source-only: the labelled source domain")
    p.add_argument("--backbone", choices=list(robust.BACKBONES), default="standard")
    p.add_argument("--adversarial-training", choices=robust.ADVERSARIAL_TRAINING, default="none")
    p.add_argument("--eps", type=eps_value, nargs="+", default=list(robust.EPS_GRID[1:]),
                   help="attack radii in [0, 1] pixel units, e.g. 2/255 4/255 8/255")
    p.add_argument("--pgd-steps", type=int, default=10)
    p.add_argument("--test-images", type=int, default=500, help="test images attacked (a seeded random subset)")
    p.add_argument("--steps", type=int, default=None, help="default: the model's converged budget")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, help="also write config, per-seed runs, mean and std here")
    p.set_defaults(func=cmd_robust)

    p = sub.add_parser("reproduce", help="re-run one cheap row of every shipped reference result and compare")
    p.add_argument("--only", nargs="+", metavar="FILE", help="these references only, e.g. 07_beyond_images_text")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the reference's own)")
    p.add_argument("--workers", type=int, default=2, help="rows re-run side by side, each in its own process")
    p.add_argument("--record", action="store_true",
                   help="when every row reproduces, record in each reference the code that reproduced it")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write every comparison as JSON here")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("run-notebooks", help="execute every course notebook, export .ipynb and .html, time it")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the executed NAME.ipynb and NAME.html")
    p.add_argument("--smoke", action="store_true", help="the quick run the tests use (SMOKE=True); default: full")
    p.add_argument("--device", choices=DEVICES, default="auto", help="passed to the notebooks as DEVICE")
    p.add_argument("--notebooks", nargs="+", metavar="NAME", help="only these, e.g. 02_fine_tuning (default: all)")
    p.add_argument("--notebooks-dir", type=Path, default=None, metavar="DIR",
                   help="where the notebooks are (default: notebooks/ of the repository)")
    p.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT, metavar="SECONDS",
                   help="a cell that runs longer fails its notebook")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write config and per-notebook rows as JSON here")
    p.set_defaults(func=cmd_run_notebooks)

    p = sub.add_parser("exercises", help="write the student versions of the notebooks (solutions -> stubs)")
    p.add_argument("--out", type=Path, default=Path("notebooks/exercises"), metavar="DIR")
    p.add_argument("--check", action="store_true", help="only check that DIR is up to date (exit 1 if not)")
    p.add_argument("--notebooks-dir", type=Path, default=None, metavar="DIR",
                   help="where the course notebooks are (default: notebooks/ of the repository)")
    p.set_defaults(func=cmd_exercises)

    p = sub.add_parser("study-time", help="course map and study time per section in every notebook's first cell")
    p.add_argument("--executed", type=Path, default=None, metavar="DIR",
                   help="full-mode executed notebooks (run-notebooks --out DIR) to measure run time per section from")
    p.add_argument("--notebooks-dir", type=Path, default=None, help="the course notebooks (default: notebooks/)")
    p.add_argument("--check", action="store_true", help="only check that every notebook's study time is up to date")
    p.set_defaults(func=cmd_study_time)

    p = sub.add_parser("site", help="the course website from executed notebooks and the docs pages (Jupyter Book, offline)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the site (replaced when the build succeeds)")
    p.add_argument("--executed", type=Path, required=True, metavar="DIR",
                   help="executed notebooks: run-notebooks --out DIR (full mode for the course; --smoke says so on every page)")
    p.add_argument("--notebooks-dir", type=Path, default=None, help="the course notebooks (default: notebooks/)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write what was built as JSON")
    p.set_defaults(func=cmd_site)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded with the results (--json)
    try:
        return args.func(args)
    except DatlError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
