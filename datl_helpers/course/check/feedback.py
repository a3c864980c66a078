"""What every check shares: the ``Feedback`` a learner sees, and the decorator that turns a wrong
answer (or an error in it) into one friendly line instead of a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

STUB_MESSAGE = (
    "not answered yet: replace `raise NotImplementedError` with your code, "
    "run that cell, then run this check again"
)


@dataclass
class Feedback:
    """The verdict of one check: shown as one line in a notebook, truthy when the answer passed."""

    exercise: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        mark = "✅ Correct" if self.passed else "❌ Not yet"
        return f"{mark} ({self.exercise}): {self.message}"

    def _repr_markdown_(self) -> str:
        mark = "✅ **Correct**" if self.passed else "❌ **Not yet**"
        return f"{mark} ({self.exercise}): {self.message}"


class NotYet(Exception):
    """Raised inside a check when the answer is wrong; its text is the friendly explanation."""


def exercise(title: str) -> Callable:
    """Turn ``check(answer) -> praise`` (raising ``NotYet``) into ``check(answer) -> Feedback``.

    Whatever the answer raises becomes a one-line message, so a student sees what went wrong
    without a wall of traceback.
    """

    def wrap(check: Callable) -> Callable[..., Feedback]:
        @functools.wraps(check)
        def run(answer) -> Feedback:
            try:
                return Feedback(title, True, check(answer))
            except NotYet as wrong:
                return Feedback(title, False, str(wrong))
            except NotImplementedError:
                return Feedback(title, False, STUB_MESSAGE)
            except Exception as err:  # the student's code failed: name the error, no traceback
                return Feedback(title, False, f"your code raised {type(err).__name__}: {err}")

        return run

    return wrap


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=tol, rtol=tol)


def fresh_model(seed: int = 0):
    from datl_helpers.core import models

    torch.manual_seed(seed)
    return models.DigitNet()
