"""Multi-seed grids of transfer runs: the bookkeeping notebooks 01 and 03 hand off.

Each function loops :func:`datl_helpers.transfer.recipe.run_transfer` over targets, label counts, methods,
augmentations and seeds, and returns one row (a dict) per run, ready for a table or a claim.
The mechanisms themselves live in their own modules (:mod:`~datl_helpers.transfer.features`,
:mod:`~datl_helpers.transfer.augment`, :mod:`~datl_helpers.transfer.recipe`) and in the notebooks' cells.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import torch
from tqdm.auto import tqdm

from datl_helpers.core import train
from datl_helpers.core.domain import Domain
from datl_helpers.transfer import augment
from datl_helpers.transfer.recipe import TransferConfig, run_transfer


def label_efficiency(
    targets: dict[str, Domain],
    label_counts: Sequence[int | None],
    seeds: Sequence[int],
    methods: Sequence[str],
    config=None,
    device: str | torch.device = "auto",
    progress: bool | None = None,
    steps: Callable[[str, int | None, str], int] | None = None,
) -> list[dict]:
    """One :func:`datl_helpers.transfer.recipe.run_transfer` row per target, label count, method and seed.

    ``steps(method, labels_per_class, target)``, when given, sets the budget of each trained run
    (for example its converged budget, :func:`datl_helpers.core.budget.transfer_steps`); otherwise
    every run trains for ``config.steps``."""
    config = config or TransferConfig()
    jobs = [(t, k, m, s) for t in targets for k in label_counts for m in methods for s in seeds]
    show = (not train.quiet()) if progress is None else progress
    rows = []
    for t, k, m, s in tqdm(jobs, desc="runs", disable=not show):
        run_config = config
        if steps is not None and m != "linear-probe":  # the probe is fitted to convergence: no steps
            run_config = dataclasses.replace(config, steps=steps(m, k, t))
        row = run_transfer(targets[t], m, k, seed=s, config=run_config, device=device)
        rows.append({"target": t, "labels_per_class": "all" if k is None else k, "method": m,
                     "steps": run_config.steps if m != "linear-probe" else 0, **row})
    return rows


def augmentation_runs(  # noqa: PLR0913 (the grid's axes and the run's settings)
    target,
    methods: Sequence[str],
    strengths: Mapping[str, float],
    label_counts: Sequence[int | None],
    seeds: Sequence[int],
    kinds: Sequence[str] = augment.KINDS,
    config=None,
    device: str | torch.device = "auto",
    progress: bool | None = None,
    steps: Mapping[str, int] | None = None,
) -> list[dict]:
    """One :func:`datl_helpers.transfer.recipe.run_transfer` row per method, label count, named strength
    (``{"none": 0.0, "light": 0.25, ...}``) and seed, each augmented with a :class:`BatchAugment`
    seeded with the run's seed. Test images are never augmented. ``steps`` (method -> steps, for
    example each method's converged budget) replaces ``config.steps`` for the methods it names."""
    kinds = augment.check_kinds(kinds)
    config = config or TransferConfig()
    configs = {m: dataclasses.replace(config, steps=(steps or {}).get(m, config.steps)) for m in methods}
    jobs = [(m, k, name, seed) for k in label_counts for m in methods for name in strengths for seed in seeds]
    show = (not train.quiet()) if progress is None else progress
    rows = []
    for m, k, name, seed in tqdm(jobs, desc="runs", disable=not show):
        s = augment.check_strength(strengths[name])
        aug = augment.BatchAugment(s, kinds, seed=seed) if s > 0 else None
        row = run_transfer(target, m, k, seed=seed, config=configs[m], device=device, transform=aug)
        rows.append({"method": m, "labels_per_class": "all" if k is None else k, "augment": name,
                     "strength": s, "kinds": "+".join(kinds) if s > 0 else "none", **row})
    return rows
