"""The data layer: the domain registry, image builders, text corpora, and pictures of the shift.

``data.NAME`` is :mod:`datl_helpers.data.registry`'s NAME, imported on first use; ``data.MODULE`` is one of
the modules below.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name.startswith("__") or name == "registry":  # registry itself is imported as a submodule
        raise AttributeError(name)
    from datl_helpers.data import registry

    try:
        return getattr(registry, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
