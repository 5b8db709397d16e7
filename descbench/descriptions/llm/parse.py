"""Parsing a language model's answer into descriptors (SPEC §3)."""

from __future__ import annotations


def parse_descriptors(text: str, *, continues_bullet: bool = False) -> list[str]:
    """The ``- `` bullet lines of ``text``: stripped, de-duplicated (case-insensitive), non-empty.

    Parsing stops at the next ``Q:`` line (a model that goes on to invent the next
    question). ``continues_bullet`` is for completions of a prompt that ends with
    ``"- "``: the answer's first line is then the rest of an open bullet.
    """
    if continues_bullet:
        text = "- " + text
    seen: set[str] = set()
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Q:"):
            break
        if not line.startswith("- "):
            continue
        item = line[2:].strip()
        key = item.casefold()
        if item and key not in seen:
            seen.add(key)
            out.append(item)
    return out
