"""Every claim can fail: for each claim, some change of the evidence it rests on flips its verdict.

A claim that holds whatever the numbers say is no evidence of anything. The search below is generic,
the same for every claim of every notebook: it swaps the labels of two settings in a table of runs
(two methods, two pairs, two strategies, ...), moves one setting's numbers (shares by 25 points up or
down or mirrored as 1 - x, other numbers five-fold up or down or negated), flips a boolean, or moves one number of the reference's other
sections; it stops at the first change that turns the claim's verdict from "holds" to "does not".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from datl_helpers import claims
from datl_helpers.core.errors import DatlError
from datl_helpers.course.summary import REFERENCE_DIR, RESULT_FILES, SIDE_STUDIES

FILES = {**RESULT_FILES, **SIDE_STUDIES}  # each notebook's (or side study's) converged reference
NOT_CATEGORIES = {"seed", "seconds", "kept_step"}

Undo = Callable[[], None]


def _tables(node, path=()) -> Iterator[tuple[tuple, list[dict]]]:
    """Every list of dicts (a table of runs) anywhere in ``node``."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _tables(v, (*path, k))
    elif isinstance(node, list):
        if node and all(isinstance(r, dict) for r in node):
            yield path, node
        for i, v in enumerate(node):
            if isinstance(v, (dict, list)):
                yield from _tables(v, (*path, i))


def _leaves(row: dict, path=()) -> Iterator[tuple]:
    """Paths to the numbers and booleans of a row (into nested dicts, not into lists)."""
    for k, v in row.items():
        if isinstance(v, dict):
            yield from _leaves(v, (*path, k))
        elif isinstance(v, (bool, int, float)) and k not in ("seed",):
            yield (*path, k)


def _get(row, path):
    for k in path:
        row = row[k]
    return row


def _set(row, path, value) -> None:
    for k in path[:-1]:
        row = row[k]
    row[path[-1]] = value


def _moves(value):
    """The three changes tried on one number: a share (in [0, 1]) up or down by 25 points or mirrored
    (1 - x), any other number five-fold up or down or negated; a boolean negated."""
    if isinstance(value, bool):
        return [not value] * 3
    if 0 <= value <= 1:
        return [value + 0.25, value - 0.25, 1 - value]
    return [value * 5, value / 5, -value]


def _categories(table: list[dict]) -> dict[str, list]:
    """The fields that say which setting a row belongs to: 2 to 20 distinct plain values."""
    out = {}
    for k in dict.fromkeys(k for r in table for k in r):
        values = [r.get(k) for r in table]
        if k in NOT_CATEGORIES or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
            continue
        distinct = list(dict.fromkeys(values))
        if 2 <= len(distinct) <= 20:
            out[k] = distinct
    return out


def perturbations(payload: dict) -> Iterator[tuple[str, Callable[[], Undo]]]:
    """Changes of ``payload`` in place, each with the function that undoes it: swaps first, then moves."""
    tables = list(_tables(payload))
    for path, table in tables:
        for key, values in _categories(table).items():
            for i, a in enumerate(values):
                for b in values[i + 1:]:
                    def swap(table=table, key=key, a=a, b=b) -> Undo:
                        old = [r.get(key) for r in table]
                        for r in table:
                            if r.get(key) in (a, b):
                                r[key] = b if r[key] == a else a
                        return lambda: [r.__setitem__(key, v) for r, v in zip(table, old)]
                    yield f"{'/'.join(map(str, path))}: swap {key} {a!r} and {b!r}", swap
    for path, table in tables:
        cats = _categories(table)
        subsets = [("every row", table)] + [(f"{k}={v!r}", [r for r in table if r.get(k) == v])
                                            for k, vs in cats.items() for v in vs]
        for label, rows in subsets:
            leaves = [p for p in dict.fromkeys(p for r in rows for p in _leaves(r)) if p[0] not in cats]
            for leaf in leaves:
                for k in range(3):
                    def move(rows=rows, leaf=leaf, k=k) -> Undo:
                        old = [(r, _get(r, leaf)) for r in rows if _has(r, leaf)]
                        for r, v in old:
                            _set(r, leaf, _moves(v)[k])
                        return lambda: [_set(r, leaf, v) for r, v in old]
                    yield f"{'/'.join(map(str, path))} [{label}]: move {'.'.join(map(str, leaf))} ({k})", move
    for leaf in _section_leaves(payload):  # numbers outside the tables (a shift measure, a zero-shot score)
        for k in range(3):
            def move_one(leaf=leaf, k=k) -> Undo:
                old = _get(payload, leaf)
                _set(payload, leaf, _moves(old)[k])
                return lambda: _set(payload, leaf, old)
            yield f"move {'.'.join(map(str, leaf))} ({k})", move_one


def _has(row, path) -> bool:
    try:
        _get(row, path)
        return True
    except (KeyError, TypeError):
        return False


def _section_leaves(node, path=()) -> Iterator[tuple]:
    """Numbers in nested dicts of the payload, outside any table."""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from _section_leaves(v, (*path, k))
            elif isinstance(v, (int, float)) and not isinstance(v, bool) and path:
                yield (*path, k)


def falsifier(claim: claims.Claim, payload: dict) -> str | None:
    """The first perturbation of ``payload`` under which ``claim`` no longer holds (None: none does)."""
    for label, apply in perturbations(payload):
        undo = apply()
        try:
            holds = claim.check(payload).holds
        except (DatlError, KeyError, ZeroDivisionError, ValueError, IndexError, TypeError):
            holds = True  # evidence the claim cannot even read is no verdict
        finally:
            undo()
        if not holds:
            return label
    return None


CASES = [(nb, c.name) for nb in FILES for c in claims.CLAIMS[nb]]


def test_every_claim_is_in_the_search():
    assert {nb for nb, _ in CASES} == set(claims.CLAIMS)


@pytest.mark.parametrize("notebook,name", CASES, ids=[f"{nb}-{n}" for nb, n in CASES])
def test_the_claim_can_fail(notebook, name):
    payload = json.loads((REFERENCE_DIR / FILES[notebook]).read_text())
    claim = next(c for c in claims.CLAIMS[notebook] if c.name == name)
    assert claim.check(payload).holds, "the claim must hold on its reference first"
    before = json.dumps(payload, sort_keys=True)
    assert falsifier(claim, payload) is not None, f"no change of its evidence makes {notebook}/{name} fail"
    assert json.dumps(payload, sort_keys=True) == before, "every perturbation is undone"


def test_the_search_finds_a_swap_and_a_move():
    """The machinery itself: a toy claim that A beats B is falsified by swapping them; one that A is
    above 50 % by moving A's numbers."""
    rows = [{"method": m, "seed": s, "target_accuracy": acc} for s in range(3) for m, acc in (("A", 0.8), ("B", 0.6))]
    beats = claims.Claim("a_beats_b", "toy", "", lambda p: {"gain": sum(
        r["target_accuracy"] * (1 if r["method"] == "A" else -1) for r in p["runs"])}, lambda n: n["gain"] > 0)
    assert falsifier(beats, {"runs": rows}) == "runs: swap method 'A' and 'B'"
    above = claims.Claim("a_above_half", "toy", "", lambda p: {"a": min(
        r["target_accuracy"] for r in p["runs"] if r["method"] == "A")}, lambda n: n["a"] > 0.5)
    assert "move target_accuracy" in falsifier(above, {"runs": rows})
    vacuous = claims.Claim("always", "toy", "", lambda p: {}, lambda n: True)
    assert falsifier(vacuous, {"runs": rows}) is None


def _without_seed(payload: dict, seed: int) -> dict:
    """``payload`` with every run of ``seed`` left out of every table of runs."""
    out = json.loads(json.dumps(payload))
    for _, table in list(_tables(out)):
        if table and all("seed" in r for r in table):
            table[:] = [r for r in table if r["seed"] != seed]
    return out


@pytest.mark.parametrize("notebook", list(FILES))
def test_every_claim_holds_whichever_seed_is_left_out(notebook):
    """A claim sized to its seeds' spread holds on the mean of all of them and still holds when any
    one seed is left out: a claim that one seed decides says more than its numbers."""
    payload = json.loads((REFERENCE_DIR / FILES[notebook]).read_text())
    fragile = []
    for seed in payload["seeds"]:
        fewer = _without_seed(payload, seed)
        fragile += [f"{v.claim.name} without seed {seed}: {v.text}" for v in claims.verdicts(notebook, fewer)
                    if not v.holds]
    assert not fragile, fragile


@pytest.mark.parametrize("notebook", list(FILES))
def test_every_claim_says_what_it_rests_on(notebook):
    payload = json.loads((REFERENCE_DIR / FILES[notebook]).read_text())
    for v in claims.verdicts(notebook, payload):
        assert v.text.endswith("]") and (v.basis == f"{len(payload['seeds'])} seeds" or v.claim.rests_on), v.text
