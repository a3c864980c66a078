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


class AugmentationError(DatlError, ValueError):
    """An augmentation setting a user chose that does not exist (a strength, kind or preset)."""


class NotebooksNotFoundError(DatlError):
    """No notebooks folder (for example: datl_helpers installed without the course repository)."""


class SiteError(DatlError):
    """The course website cannot be built (executed notebooks or the site extra missing, a failed build)."""


class UnknownNotebookError(DatlError, KeyError):
    """A notebook name that is not in the notebooks folder."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DivergenceError(DatlError, RuntimeError):
    """A run that diverged (non-finite loss) or collapsed (predicts one class for everything)."""


class ExerciseFormatError(DatlError, ValueError):
    """A solution cell whose markers are missing or unbalanced."""


class QuizFormatError(DatlError, ValueError):
    """A self-check question or interview card that is malformed (say, no correct option)."""


class ResultsError(DatlError, ValueError):
    """A results file that cannot be read (corrupted or from another version)."""


class NotReproducedError(DatlError, AssertionError):
    """A reference row that the code no longer gives, within its family's tolerance (``reproduce``)."""


class ChoiceError(DatlError, ValueError):
    """A name that is not one of the choices offered (a method, a strategy, a preset, ...)."""


def check_choice(what: str, value, choices, error: type[DatlError] = ChoiceError) -> object:
    """``value`` when it is one of ``choices``; otherwise ``error`` (a :class:`ChoiceError`, also a
    ValueError, unless a more specific one is given) with the usual wording:
    "unknown WHAT 'x'; choose from a, b, c"."""
    choices = list(choices)
    if value not in choices:
        raise error(f"unknown {what} {value!r}; choose from {', '.join(map(str, choices))}")
    return value
