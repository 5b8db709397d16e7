"""The description sources by name: each is one function decorated with :func:`description_source`.

A source's signature is its config (``describe=<name>``: the shell derives the schema from it); the
controls name the source their descriptors come from by default (``base``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: name -> source function, filled as the source modules are imported
SOURCES: dict[str, Callable[..., Any]] = {}


def description_source(name: str, *, base: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Function decorator: the source is selectable as ``describe=<name>``; ``base``: a control's default base
    source (the source whose descriptors it re-deals), given to it as a partial."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.source_name = name
        fn.default_base = base
        SOURCES[name] = fn
        return fn

    return register


def load_sources() -> dict[str, Callable[..., Any]]:
    """Every registered source (importing the modules that define them)."""
    import descbench.descriptions.controls  # noqa: F401
    import descbench.descriptions.llm.source  # noqa: F401
    import descbench.descriptions.sources  # noqa: F401

    return SOURCES
