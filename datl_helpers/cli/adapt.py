"""``adapt``: domain adaptation, DANN and its baselines, on image, text or tabular domains (notebooks 04, 07, 08)."""

from __future__ import annotations

import argparse
from pathlib import Path

from datl_helpers.cli.common import load_named, mean_and_std, run_seeds, save_runs
from datl_helpers.core.errors import BadDataError, DatlError, check_choice
from datl_helpers.core.provenance import config_dict


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``adapt`` command's arguments."""
    from datl_helpers.adaptation.dann import DannConfig
    from datl_helpers.adaptation.methods import ADAPTATION_METHODS
    from datl_helpers.beyond.tabular import TABULAR_METHODS

    p = sub.add_parser("adapt", help="unsupervised domain adaptation (DANN and its baselines)")
    p.add_argument("--source", required=True,
                   help="labelled source: domain name, npz:PATH, folder:PATH, text:PATH or tabular:PATH:VALUE")
    p.add_argument("--target", required=True,
                   help="unlabelled target: domain name, npz:PATH, folder:PATH, text:PATH or tabular:PATH:VALUE")
    p.add_argument("--method", choices=tuple(dict.fromkeys((*ADAPTATION_METHODS, *TABULAR_METHODS))), default="dann",
                   help="importance-weighting: tabular domains; label-shift: tabular and text domains; "
                        "adabn, coral, entropy: image domains")
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datl_helpers.adaptation import dann
    from datl_helpers.adaptation import methods as adaptation
    from datl_helpers.core import budget, train
    from datl_helpers.data import registry as data

    if args.source in data.TEXT_DOMAINS or args.target in data.TEXT_DOMAINS or args.source.startswith("text:") \
            or args.target.startswith("text:"):
        return _adapt_text(args)
    if args.source in data.TABULAR_DOMAINS or args.target in data.TABULAR_DOMAINS \
            or args.source.startswith("tabular:") or args.target.startswith("tabular:"):
        return _adapt_tabular(args)
    check_choice("method for image domains", args.method, adaptation.ADAPTATION_METHODS)
    scratch = args.init == "scratch"
    if args.target_labels < 0:
        raise DatlError(f"--target-labels must be 0 (unsupervised) or more labelled target images per class, "
                        f"got {args.target_labels}")
    if scratch and args.method not in dann.COMPARED_METHODS:
        raise DatlError(f"--init scratch runs the paper's protocol for {', '.join(dann.COMPARED_METHODS)}; "
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


def _adapt_text(args: argparse.Namespace) -> int:
    """``adapt`` between text domains (notebook 07): TF-IDF, a small MLP, the same reversal layer."""
    from datl_helpers.beyond import text
    from datl_helpers.core.budget import check_steps

    check_choice("method for text domains", args.method, text.TEXT_METHODS)
    source, target = load_named(args.source, args.data_dir), load_named(args.target, args.data_dir)
    if not (isinstance(source, text.TextDomain) and isinstance(target, text.TextDomain)):
        raise BadDataError(f"{args.source!r} and {args.target!r}: adapt needs two text, two tabular or two image domains")
    config = text.TextConfig()
    if args.steps is not None:
        config.steps = check_steps(args.steps)
    if args.lambda_max is not None:
        config.lambda_max = args.lambda_max
    vectorised = text.vectorize(source, target, config.max_features)
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


def _adapt_tabular(args: argparse.Namespace) -> int:
    """``adapt`` between tabular domains (notebook 08): the source's preprocessing, a small MLP, the same
    reversal layer, and the reweighting methods; also balanced accuracy, AUC and Brier score."""
    from datl_helpers.beyond import tabular
    from datl_helpers.core.budget import check_steps

    check_choice("method for tabular domains", args.method, tabular.TABULAR_METHODS)
    source, target = load_named(args.source, args.data_dir), load_named(args.target, args.data_dir)
    if not (isinstance(source, tabular.TabularDomain) and isinstance(target, tabular.TabularDomain)):
        raise BadDataError(f"{args.source!r} and {args.target!r}: adapt needs two tabular, two text or two "
                                "image domains")
    config = tabular.TabularConfig()
    if args.steps is not None:
        config.steps = check_steps(args.steps)
    if args.lambda_max is not None:
        config.lambda_max = args.lambda_max
    pair = tabular.prepare_pair(source, target)
    runs = run_seeds(args.seeds, lambda seed: tabular.run_tabular(pair, args.method, seed, config))
    keys = ("target_accuracy", "target_balanced_accuracy", "target_auc", "target_brier", "source_accuracy",
            "domain_accuracy", "seconds")
    mean, std = mean_and_std(runs, keys)
    print(
        f"\n{args.method} {args.source} -> {args.target} (tabular), {len(runs)} seed(s): target accuracy "
        f"{100 * mean['target_accuracy']:.1f} ± {100 * std['target_accuracy']:.1f} %, balanced accuracy "
        f"{100 * mean['target_balanced_accuracy']:.1f} %, AUC {mean['target_auc']:.3f}, Brier "
        f"{mean['target_brier']:.3f}, source {100 * mean['source_accuracy']:.1f} %, {mean['seconds']:.1f} s per run on cpu"
    )
    save_runs(args, {"source": args.source, "target": args.target, "method": args.method, "seeds": args.seeds,
                     "kind": "tabular", **config_dict(config)}, runs, mean, std, "cpu")
    return 0
