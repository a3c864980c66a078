"""Headline claims as data: each one a predicate over results, rendered from the numbers.

A notebook's conclusion is written once, in that notebook's module below, as a :class:`Claim`: a function that pulls the
numbers it rests on out of a notebook's results (``evidence``), a test on those numbers
(``holds``), and a sentence with the numbers filled in (``statement``). The notebook prints the
verdicts (:func:`verdicts`, :func:`render`); the test suite checks every claim against the
converged reference results shipped in ``datl_helpers/reference_results/``, so a claim that the
converged numbers contradict fails a test instead of staying in the text.
"""

from __future__ import annotations

from datl_helpers.core.errors import ClaimError
from datl_helpers.course.claims import (
    augmentation,
    beyond_images,
    domain_adaptation,
    feature_extraction,
    fine_tuning,
    hospitals,
    robustness,
)
from datl_helpers.course.claims.claim import LABELS, Claim, Verdict
from datl_helpers.course.claims.domain_adaptation import FINETUNE_FEW

__all__ = ["CLAIMS", "FINETUNE_FEW", "LABELS", "Claim", "Findings", "Verdict", "render", "verdicts"]

# notebook -> its claims ("04-semi" and "04-paper": notebook 04's side studies, each with its own reference)
CLAIMS: dict[str, list[Claim]] = {
    "01": feature_extraction.CLAIMS, "02": fine_tuning.CLAIMS, "03": augmentation.CLAIMS,
    "04": domain_adaptation.CLAIMS, "04-semi": domain_adaptation.CLAIMS_04_SEMI,
    "04-paper": domain_adaptation.CLAIMS_04_PAPER, "06": robustness.CLAIMS, "07": beyond_images.CLAIMS,
    "08": hospitals.CLAIMS,
}


def verdicts(notebook: str, payload: dict) -> list[Verdict]:
    """Every claim of ``notebook`` checked against ``payload`` (that notebook's results)."""
    if notebook not in CLAIMS:
        raise ClaimError(f"no claims for notebook {notebook!r}; notebooks with claims: {', '.join(sorted(CLAIMS))}")
    return [c.check(payload) for c in CLAIMS[notebook]]


def render(notebook: str, payload: dict) -> str:
    """The claims of ``notebook`` as a Markdown list, each with its numbers and its verdict."""
    return "\n".join(f"- {v}" for v in verdicts(notebook, payload))


class Findings:
    """A notebook's verdicts by name, remembering which were shown, so that each is shown once:
    ``findings[name]`` beside its figure, ``findings.rest()`` for the ones no figure took."""

    def __init__(self, notebook: str, payload: dict):
        self.by_name = {v.claim.name: v for v in verdicts(notebook, payload)}
        self.shown: list[str] = []

    def __getitem__(self, name: str) -> Verdict:
        if name not in self.by_name:
            raise ClaimError(f"no claim {name!r}; this notebook's claims: {', '.join(self.by_name)}")
        if name not in self.shown:  # running a cell again shows it again, not as a new finding
            self.shown.append(name)
        return self.by_name[name]

    def rest(self) -> str:
        """The verdicts not shown yet, as a Markdown list (and marks them shown)."""
        names = [n for n in self.by_name if n not in self.shown]
        return "\n".join(f"- {self[n]}" for n in names) or "(every finding of this notebook is shown above)"


