"""``transfer``: few-label transfer to a target domain, over seeds (notebooks 01-03)."""

from __future__ import annotations

import argparse
from pathlib import Path

from datl_helpers.cli.common import labels_per_class, load_named, mean_and_std, run_seeds, save_runs, unit_interval
from datl_helpers.core.provenance import config_dict


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``transfer`` command's arguments."""
    from datl_helpers.transfer.augment import PRESETS
    from datl_helpers.transfer.recipe import TRANSFER_METHODS

    p = sub.add_parser("transfer", help="few-label transfer to a target domain")
    p.add_argument("--target", required=True, help="domain name, npz:PATH or folder:PATH")
    p.add_argument("--labels-per-class", type=labels_per_class, default=10, help="labelled images per class, or 'all'")
    p.add_argument("--method", choices=TRANSFER_METHODS, default="finetune")
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datl_helpers.core import budget, train
    from datl_helpers.transfer import augment
    from datl_helpers.transfer import recipe as transfer

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
