"""``robust``: clean and robust (FGSM, PGD) accuracy of a transferred model (notebook 06)."""

from __future__ import annotations

import argparse
from pathlib import Path

from datl_helpers.cli.common import eps_value, labels_per_class, load_named, run_seeds, save_runs
from datl_helpers.core.provenance import config_dict


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``robust`` command's arguments."""
    from datl_helpers.robustness import robust

    p = sub.add_parser("robust", help="robustness of a transferred model to adversarial examples (FGSM, PGD)")
    p.add_argument("--target", default="mnistm", help="domain name, npz:PATH or folder:PATH")
    p.add_argument("--labels-per-class", type=labels_per_class, default=10, help="labelled images per class, or 'all'")
    p.add_argument("--method", choices=robust.TRAINING_METHODS, default="finetune")
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datl_helpers.core import budget, train
    from datl_helpers.robustness import robust

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
