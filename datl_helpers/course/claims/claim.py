"""A claim and its verdict: a predicate over a notebook's results, and what it says of one set of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    """One headline claim of a notebook, testable against any results of that notebook."""

    name: str
    notebook: str
    statement: str  # the sentence, with {fields} from the evidence (format specs allowed)
    evidence: Callable[[dict], dict]  # results payload -> the numbers the claim rests on
    holds: Callable[[dict], bool]  # those numbers -> is the claim true?
    rests_on: str = ""  # what the numbers come from when not every seed of the results: "seed 0", "the data alone"
    mixed: Callable[[dict], bool] | None = None  # holds, but not everywhere it was measured (say, on 2 pairs of 3)

    def check(self, payload: dict) -> Verdict:
        numbers = self.evidence(payload)
        seeds = payload.get("seeds") or sorted({r["seed"] for r in payload.get("runs", []) if "seed" in r})
        basis = self.rests_on or (f"{len(seeds)} seeds" if len(seeds) != 1 else f"seed {seeds[0]}")
        return Verdict(self, numbers, bool(self.holds(numbers)), basis)


@dataclass(frozen=True)
class Verdict:
    """A claim checked against one set of results."""

    claim: Claim
    numbers: dict
    holds: bool
    basis: str = ""  # how many seeds (or what) the numbers rest on

    @property
    def text(self) -> str:
        text = self.claim.statement.format(**self.numbers)
        return f"{text} [{self.basis}]" if self.basis else text

    @property
    def label(self) -> str:
        """What a learner reads: 'supported', 'mixed' (holds, but not everywhere) or 'not supported'."""
        if not self.holds:
            return "not supported"
        return "mixed" if self.claim.mixed is not None and self.claim.mixed(self.numbers) else "supported"

    def __str__(self) -> str:
        return f"**{LABELS[self.label]}**: {self.text}"


LABELS = {"supported": "Supported", "mixed": "Mixed", "not supported": "Not supported by these numbers"}
