"""Published descriptor files: reading them and matching their keys to a dataset's classes (SPEC §2).

A descriptor file maps class names to lists of strings (Menon & Vondrick's GPT-3 descriptors,
CuPL's sentences), possibly nested under a key (``{"imagenet1k": {...}}``). Its keys are
matched to the dataset's classes by name, never by order: exactly, then after normalising
(case, ``_``/``-``/spaces, punctuation), then through the shipped alias table
(``data/key_aliases.tsv``), whose rows are tied to class ids. Every non-exact match is reported.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from descbench.core.errors import DescriptionError
from descbench.core.files import read_json_file

log = logging.getLogger(__name__)

MatchKind = Literal["exact", "normalised", "alias"]
ALIAS_FILE = "key_aliases.tsv"


def normalise_key(text: str) -> str:
    """Case-folded, with every run of characters other than letters and digits (``_`` included) one space."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", folded).split())


@lru_cache(maxsize=1)
def load_key_aliases() -> dict[str, tuple[str, ...]]:
    """``{class id: (published key, ...)}`` from the shipped alias table."""
    text = resources.files("descbench.descriptions").joinpath(ALIAS_FILE).read_text(encoding="utf-8")
    table: dict[str, list[str]] = defaultdict(list)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 4:
            raise DescriptionError(f"{ALIAS_FILE}:{number}: expected dataset, class id, name, key, source")
        table[parts[1]].append(parts[3])
    return {k: tuple(v) for k, v in table.items()}


def _short(items: Sequence[object], n: int = 10) -> str:
    shown = ", ".join(repr(x) for x in items[:n])
    return f"[{shown}{f', ... ({len(items) - n} more)' if len(items) > n else ''}]"


def read_descriptor_file(path: str | Path, key: str | None = None) -> dict[str, list[str]]:
    """``{class name: [descriptor, ...]}`` from a JSON file, from under ``key`` when the file nests it.

    Every problem is a one-line :class:`DescriptionError` naming the file; the file's bytes
    are never part of a message.
    """
    path = Path(path)
    if not path.is_file():
        raise DescriptionError(f"description file not found: {path} (describe.path)")
    data = read_json_file(path, "description file", DescriptionError)
    if not isinstance(data, dict):
        raise DescriptionError(
            f'description file {path} must hold a JSON object {{"class name": ["descriptor", ...]}}, '
            f"got a {type(data).__name__}"
        )
    if key is not None:
        if key not in data:
            raise DescriptionError(
                f"description file {path} has no top-level key {key!r} (describe.key); its keys: {_short(list(data))}"
            )
        data = data[key]
        if not isinstance(data, dict):
            raise DescriptionError(
                f"description file {path}: {key!r} holds a {type(data).__name__}, not a {{class: [...]}} object"
            )
    elif data and all(isinstance(v, dict) for v in data.values()):
        raise DescriptionError(
            f"description file {path} nests its classes under top-level keys {_short(list(data))}: "
            "set describe.key to one of them"
        )
    for name, items in data.items():
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            where = f"{path}[{key!r}]" if key is not None else str(path)
            raise DescriptionError(
                f"description file {where}: the entry {name!r} is a {type(items).__name__}, not a list of strings "
                f'(each class maps to a list: {{"cat": ["whiskers", ...]}})'
            )
    return data


@dataclass(frozen=True)
class KeyMatch:
    """The file key matched to class ``index`` and how (exact, normalised, alias)."""

    index: int
    name: str
    key: str
    how: MatchKind


def match_keys(
    classes: Sequence[str],
    keys: Sequence[str],
    *,
    class_ids: Sequence[str] | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    where: str = "description file",
) -> list[KeyMatch]:
    """One key per class: exact, then normalised, then an alias tied to the class id.

    A class whose name it shares with another class (ImageNet's two "missile") first tries
    its id's aliases, since its name alone cannot tell it apart. Classes that share one
    name and find no alias share the key (warned and returned with the others; the caller
    reports them). Raises one :class:`DescriptionError` listing every class without a key,
    every class that matches several keys at its level, and every key that several
    differently named classes match.
    """
    if class_ids is not None and len(class_ids) != len(classes):
        raise DescriptionError("class_ids must have one entry per class")
    aliases = load_key_aliases() if aliases is None else aliases
    keyset = set(keys)
    by_norm: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        by_norm[normalise_key(k)].append(k)
    name_count = Counter(classes)

    def alias_hits(i: int) -> list[str]:
        if class_ids is None:
            return []
        hits: list[str] = []
        for alias in aliases.get(class_ids[i], ()):
            for k in [alias] if alias in keyset else by_norm.get(normalise_key(alias), []):
                if k not in hits:
                    hits.append(k)
        return hits

    matches: list[KeyMatch] = []
    unmatched: list[str] = []
    several: list[str] = []
    for i, name in enumerate(classes):
        levels: list[tuple[MatchKind, list[str]]] = []
        if name_count[name] > 1:
            levels.append(("alias", alias_hits(i)))
        levels += [
            ("exact", [name] if name in keyset else []),
            ("normalised", by_norm.get(normalise_key(name), [])),
            ("alias", alias_hits(i)),
        ]
        for how, hits in levels:
            if len(hits) > 1:
                several.append(f"{name!r} matches keys {hits} ({how})")
                break
            if hits:
                matches.append(KeyMatch(i, name, hits[0], how))
                break
        else:
            unmatched.append(name)
    claims: dict[str, list[KeyMatch]] = defaultdict(list)
    for m in matches:
        claims[m.key].append(m)
    clashes = [
        f"key {k!r} matches classes {[m.name for m in ms]}" for k, ms in claims.items() if len({m.name for m in ms}) > 1
    ]
    problems = []
    if unmatched:
        problems.append(
            f"no key for {len(unmatched)} class(es) of the dataset: {_short(unmatched)} (tried the exact name, "
            f"the name normalised for case/_/-/spaces/punctuation, and the alias table {ALIAS_FILE})"
        )
    if several:
        problems.append("; ".join(several[:5]))
    if clashes:
        problems.append("; ".join(clashes[:5]))
    if problems:
        raise DescriptionError(f"{where}: " + "; ".join(problems) + " - fix the file's keys or the class names")
    shared = {k: [m.index for m in ms] for k, ms in claims.items() if len(ms) > 1}
    if shared:
        log.warning(
            "%s: classes sharing one name get the same descriptors: %s",
            where,
            "; ".join(f"{k!r} -> classes {v}" for k, v in shared.items()),
        )
    return matches


def summarise_matches(matches: Sequence[KeyMatch]) -> str:
    """``"3 exact, 1 normalised, 0 alias"``."""
    count = Counter(m.how for m in matches)
    return ", ".join(f"{count[h]} {h}" for h in ("exact", "normalised", "alias"))
