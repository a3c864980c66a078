"""Notebooks 01-03: feature extraction, fine-tuning and augmentation, and the few-label recipe behind
``python -m datl_helpers transfer``.

``transfer.NAME`` is :mod:`datl_helpers.transfer.recipe`'s NAME, imported on first use; ``transfer.MODULE`` is one of
the modules below.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name.startswith("__") or name == "recipe":  # recipe itself is imported as a submodule
        raise AttributeError(name)
    from datl_helpers.transfer import recipe

    try:
        return getattr(recipe, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
