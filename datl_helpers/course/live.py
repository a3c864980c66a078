"""Which runs a notebook trains live, and for how many steps.

A notebook trains some runs itself ("live") and shows the others from the converged reference. A live
run trains for the budget that the reference's budget curves measured for it, unless the notebook
asks for fewer steps (smoke mode); runs whose budget is over what a notebook may spend come from the
reference only. :func:`adaptation_plan` works this out for notebook 04 in one call, and the
:class:`LivePlan` it returns says what it decided, so the notebook's cells stay about the method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from datl_helpers.adaptation.dann import DannConfig
from datl_helpers.core import budget

CONVERGED_BATCH = 64  # the batch size the budget curves were measured with


@dataclass(frozen=True)
class LivePlan:
    """The live runs of a notebook: each ``(method, pair)`` with its steps and converged budget."""

    steps: dict[tuple[str, str], int]  # the steps each live run trains for
    converged: dict[tuple[str, str], int]  # the converged budget (steps of batch 64)
    rising: tuple[str, ...]  # "method on pair" whose curve still rose at the largest budget measured
    live: tuple[tuple[str, str], ...]  # trained live; the others come from the reference only
    seeds: tuple[int, ...]
    batch_size: int

    @property
    def at_converged_budget(self) -> bool:
        """Every run trains for its converged budget with the batch it was measured with."""
        return self.steps == self.converged and self.batch_size == CONVERGED_BATCH

    @property
    def label(self) -> str:
        """How tables name the live runs, for example ``live (seed 0; each run at its pair's converged budget)``."""
        seeds = f"seed{'s' if len(self.seeds) > 1 else ''} {', '.join(map(str, self.seeds))}"
        if self.at_converged_budget:
            return f"live ({seeds}; each run at its pair's converged budget)"
        return f"live ({seeds}; {max(self.steps.values())} steps of batch {self.batch_size}: NOT the converged budgets)"

    def is_live(self, method: str, pair: str) -> bool:
        return (method, pair) in self.live

    def config(self, base: DannConfig, method: str, pair: str, **changes) -> DannConfig:
        """``base`` at the live budget of ``method`` on ``pair``, logging about 40 times per run."""
        steps = self.steps[(method, pair)]
        return dataclasses.replace(base, steps=steps, log_every=max(1, steps // 40), **changes)

    def rows(self) -> list[dict]:
        """One row per run: method, pair, steps, converged steps and whether it trains live (for the results file)."""
        return [{"method": m, "pair": p, "steps": s, "converged_steps": self.converged[(m, p)],
                 "live": (m, p) in self.live} for (m, p), s in self.steps.items()]

    def describe(self) -> str:
        """What the plan decided, in a few lines."""
        text = lambda keys: ", ".join(f"{m} on {p}: {self.steps[(m, p)]}" for m, p in keys)  # noqa: E731
        lines = [f"{self.label}; converged budgets (steps of batch {CONVERGED_BATCH}): "
                 + ", ".join(f"{m} on {p}: {s}" for (m, p), s in self.converged.items())]
        reference_only = [k for k in self.steps if k not in self.live]
        if reference_only:
            lines.append(f"from the converged reference only (too long to train here): {text(reference_only)}")
        if self.rising:
            lines.append("still rising at the largest budget measured (lower bounds, not converged): "
                         + ", ".join(self.rising))
        return "\n".join(lines)


def adaptation_plan(
    methods: Sequence[str], pairs: Sequence[str], seeds: Sequence[int], *, steps: int | None = None,
    max_live_steps: int | None = None, batch_size: int = CONVERGED_BATCH,
) -> LivePlan:
    """The live runs of notebook 04: every method on every pair (``"mnist -> mnistm"``), for its converged
    budget (or ``steps``, when given); runs whose budget is over ``max_live_steps`` are left to the reference."""
    budgets = {(m, p): budget.adapt_budget(m, p) for m in methods for p in pairs}  # (steps, converged?)
    converged = {key: n for key, (n, _) in budgets.items()}
    planned = {key: n if steps is None else budget.check_steps(steps) for key, n in converged.items()}
    live = tuple(key for key, n in planned.items() if max_live_steps is None or n <= max_live_steps)
    rising = tuple(f"{m} on {p}" for (m, p), (_, ok) in budgets.items() if not ok)
    return LivePlan(planned, converged, rising, live, tuple(seeds), batch_size)
