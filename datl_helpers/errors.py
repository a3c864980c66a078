"""Errors a user can cause and fix. The command line prints them as one line, without a traceback."""

from __future__ import annotations


class DatlError(Exception):
    """Base class of every error that is the user's to fix; its message says how."""


class UnknownDomainError(DatlError, KeyError):
    """A domain name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DataUnavailableError(DatlError):
    """Data that is not on disk and cannot be fetched (for example an online domain while offline)."""


class BadDataError(DatlError, ValueError):
    """User data (npz or folder) that does not have the expected layout."""


class TooFewSamplesError(DatlError, ValueError):
    """More labelled samples asked for than a class has."""


class CheckpointError(DatlError):
    """A checkpoint that is missing, tampered with or does not fit the model."""


class DeviceError(DatlError, RuntimeError):
    """A device that this machine does not have."""


class BudgetError(DatlError, ValueError):
    """A training budget that makes no sense (zero or negative steps), or one that was never measured."""


class ClaimError(DatlError, KeyError):
    """A claim asked about results that do not contain what it needs."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ChoiceError(DatlError, ValueError):
    """A name that is not one of the choices offered (a method, a strategy, a preset, ...)."""


def check_choice(what: str, value, choices) -> object:
    """``value`` when it is one of ``choices``; otherwise a :class:`ChoiceError` (also a ValueError)
    with the usual wording: "unknown WHAT 'x'; choose from a, b, c"."""
    choices = list(choices)
    if value not in choices:
        raise ChoiceError(f"unknown {what} {value!r}; choose from {', '.join(map(str, choices))}")
    return value
