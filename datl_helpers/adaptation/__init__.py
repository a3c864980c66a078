"""Notebook 04: domain adaptation -- DANN, the simpler methods beside it, model selection without
target labels, BatchNorm statistics and the two-moons toy.

``adaptation.NAME`` is :mod:`datl_helpers.adaptation.methods`'s NAME, imported on first use; ``adaptation.MODULE`` is one of
the modules below.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name.startswith("__") or name == "methods":  # methods itself is imported as a submodule
        raise AttributeError(name)
    from datl_helpers.adaptation import methods

    try:
        return getattr(methods, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
