"""live: which runs notebook 04 trains live, for how many steps."""

from __future__ import annotations

import pytest

from datl_helpers import budget, dann, live
from datl_helpers.core.errors import BudgetError

PAIRS = ["mnist -> mnistm", "syn -> mnist"]
METHODS = ["source-only", "dann"]


def test_the_plan_trains_each_run_for_its_converged_budget():
    plan = live.adaptation_plan(METHODS, PAIRS, [0, 1])
    for method in METHODS:
        for pair in PAIRS:
            assert plan.steps[(method, pair)] == plan.converged[(method, pair)] == budget.adapt_budget(method, pair)[0]
            assert plan.is_live(method, pair)
    assert plan.at_converged_budget
    assert plan.label == "live (seeds 0, 1; each run at its pair's converged budget)"
    config = plan.config(dann.DannConfig(lambda_max=0.3), "dann", PAIRS[1], gamma=5.0)
    assert (config.steps, config.lambda_max, config.gamma) == (plan.steps[("dann", PAIRS[1])], 0.3, 5.0)
    assert config.log_every == max(1, config.steps // 40)
    assert [r["live"] for r in plan.rows()] == [True] * 4


def test_runs_over_the_live_limit_come_from_the_reference_and_the_plan_says_so():
    converged = live.adaptation_plan(METHODS, PAIRS, [0]).converged
    limit = min(converged.values())
    plan = live.adaptation_plan(METHODS, PAIRS, [0], max_live_steps=limit)
    assert set(plan.live) == {k for k, n in converged.items() if n <= limit}
    left_out = [k for k in converged if k not in plan.live]
    if left_out:  # the shipped curves differ by pair, so some run is over the shortest budget
        assert "from the converged reference only" in plan.describe()
        assert not plan.is_live(*left_out[0])


def test_a_short_budget_is_labelled_as_not_converged():
    plan = live.adaptation_plan(METHODS, PAIRS[:1], [0], steps=40, batch_size=32)
    assert set(plan.steps.values()) == {40}
    assert not plan.at_converged_budget
    assert plan.label == "live (seed 0; 40 steps of batch 32: NOT the converged budgets)"
    with pytest.raises(BudgetError, match="at least 1"):
        live.adaptation_plan(METHODS, PAIRS[:1], [0], steps=0)
