"""Turning a class name and a descriptor into the text that CLIP encodes (SPEC §2)."""

from __future__ import annotations

from typing import Literal

Rule = Literal["corrected", "faithful"]

# The published convention: "{class}, which (is/has) {descriptor}".
_VERB_FREE = ("has", "often", "typically", "may", "can")
DEFAULT_TEMPLATE = "{classname}, {descriptor}"


def which_clause(descriptor: str, rule: Rule = "corrected") -> str:
    """The "which is/has ..." clause for ``descriptor``.

    ``faithful`` reproduces the reference code, which tests raw string prefixes and so
    also turns "antennae" into "which is antennae"; ``corrected`` tests the first word.
    """
    if rule == "faithful":
        if descriptor.startswith("a") or descriptor.startswith("an"):
            return f"which is {descriptor}"
        if descriptor.startswith(_VERB_FREE):
            return f"which {descriptor}"
        if descriptor.startswith("used"):
            return f"which is {descriptor}"
        return f"which has {descriptor}"
    if rule != "corrected":
        raise ValueError(f"unknown formatting rule {rule!r}: use 'corrected' or 'faithful' (describe.rule)")
    first = descriptor.split(maxsplit=1)[0].lower() if descriptor.strip() else ""
    if first in ("a", "an", "used"):
        return f"which is {descriptor}"
    if first in _VERB_FREE:
        return f"which {descriptor}"
    return f"which has {descriptor}"


def format_description(
    classname: str, descriptor: str, *, rule: Rule = "corrected", template: str = DEFAULT_TEMPLATE
) -> str:
    """``template`` filled with the class name and the descriptor's which-clause."""
    return template.format(classname=classname, descriptor=which_clause(descriptor, rule))
