"""The description sources by name: each is one function decorated with :func:`description_source`.

A source's signature is its config (``describe=<name>``: the shell derives the schema from it); the
controls name the source their descriptors come from by default (``base``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: name -> source function, filled as the source modules are imported
SOURCES: dict[str, Callable[..., Any]] = {}


def description_source(
    name: str, *, base: str | None = None, class_list: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Function decorator: the source is selectable as ``describe=<name>``; ``base``: a control's default base
    source (the source whose descriptors it re-deals), given to it as a partial; ``class_list``: the source can
    describe a plain list of class names (``describe.classes=names.txt`` for ``python -m descbench.describe``)
    instead of a data set's classes."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.source_name = name
        fn.default_base = base
        fn.class_list = class_list
        SOURCES[name] = fn
        return fn

    return register


def load_sources() -> dict[str, Callable[..., Any]]:
    """Every registered source (importing the modules that define them)."""
    import descbench.descriptions.controls  # noqa: F401
    import descbench.descriptions.llm.source  # noqa: F401
    import descbench.descriptions.sources  # noqa: F401

    return SOURCES
