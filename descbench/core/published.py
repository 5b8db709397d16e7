"""Published numbers beside ours, like for like only: compare a run's results with ``descbench/core/published.yaml``.

An entry is **about** a run's measurement when its ``task``, ``dataset`` (one of its names, case-insensitive),
``split`` (of a per-split measure such as ``acc.val``, else the run's ``split``) and every key of its ``point``
(which number of a curve it is, e.g. ``describe.num_desc: 7``) equal the run's ``results.json``. Such an entry
is then **comparable** only when the run also has every setting the number depends on: ``backbone`` (an
open_clip name; a list is an ensemble and must equal the set of the run's backbones), ``pretrained`` (the
open_clip tag), pretrained weights on every backbone (never random), the whole split (no ``dataset.limit``
subset) and every key of the entry's ``setting``. A comparable entry gets ours and Δ; otherwise the run is shown
"not comparable: <setting> = <ours> vs <theirs>" and never a Δ. The writers and the report only show what
:func:`compare_published` returns.

Setting values: a scalar (strings case-insensitive, numbers by value), a list (in order, except the ensembles
``visual_prompt`` and ``backbone``, compared as sets), or ``{any_of: [...]}`` (one of them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from descbench.core.errors import ConfigError
from descbench.core.measures import PUBLISHED, PUBLISHED_DELTA, PUBLISHED_SOURCE, companion, resolve

PUBLISHED_FILE = "published.yaml"
_REQUIRED = ("source", "metric", "value")
_WEIGHTS_NOTE = re.compile(r"\s*\[([^\]]*)\]\s*$")  # "RN50x16 [pretrained]" in results `backbones`
#: ensembles: the order of their members does not change the summed scores
UNORDERED = ("visual_prompt", "backbone")
NOT_COMPARABLE = "not comparable"
_ABSENT = object()


def load_published(path: Path | str | None = None) -> list[dict[str, Any]]:
    """The entries of the shipped ``published.yaml`` (or of ``path``), checked for their required fields."""
    if path is None:
        text = resources.files("descbench.core").joinpath(PUBLISHED_FILE).read_text(encoding="utf-8")
        where = f"descbench/core/{PUBLISHED_FILE}"
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    entries = (yaml.safe_load(text) or {}).get("entries")
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: expected a top-level 'entries:' list")
    for number, entry in enumerate(entries):
        missing = [f for f in _REQUIRED if not isinstance(entry, Mapping) or f not in entry]
        if missing:
            raise ConfigError(f"{where}: entry #{number} lacks {', '.join(missing)} (every entry needs {_REQUIRED})")
        if resolve(str(entry["metric"])) is None:
            raise ConfigError(
                f"{where}: entry #{number} has metric {entry['metric']!r}, not a key of descbench.core.measures"
            )
        for field in ("point", "setting"):
            if not isinstance(entry.get(field) or {}, Mapping):
                raise ConfigError(f"{where}: entry #{number}: {field} must map results keys to values")
    return entries


@cache
def _shipped() -> tuple[dict[str, Any], ...]:
    return tuple(load_published())


def _text(value: Any) -> str:
    return str(value).strip().casefold()


def _same(expected: Any, actual: Any, key: str = "") -> bool:
    """One setting value: see the module docstring."""
    if isinstance(expected, Mapping) and "any_of" in expected:
        return any(_same(choice, actual, key) for choice in expected["any_of"])
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(expected) != len(actual):
            return False
        if key in UNORDERED:
            return sorted(map(_text, expected)) == sorted(map(_text, actual))
        return all(_same(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and expected is actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return float(expected) == float(actual)
    if expected is None or actual is None:
        return expected is actual
    return _text(expected) == _text(actual)


def shown(value: Any) -> str:
    """A setting value as a "not comparable" line writes it."""
    if value is _ABSENT:
        return "not recorded"
    if isinstance(value, Mapping) and "any_of" in value:
        return " or ".join(shown(v) for v in value["any_of"])
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "+".join(shown(v) for v in value)
    return str(value)


def _run_backbones(results: Mapping[str, Any]) -> list[str]:
    names = {str(results["backbone"])} if results.get("backbone") is not None else set()
    for item in results.get("backbones") or []:
        names.add(_WEIGHTS_NOTE.sub("", str(item)))
    return sorted(names)


def _run_weights(results: Mapping[str, Any]) -> list[str]:
    """The weights of every backbone of the run (``pretrained`` or ``random (seed 0)``)."""
    found = [str(results["weights"])] if results.get("weights") is not None else []
    for item in results.get("backbones") or []:
        match = _WEIGHTS_NOTE.search(str(item))
        if match:
            found.append(match.group(1))
    return list(dict.fromkeys(found))


def _metric_key(entry: Mapping[str, Any], results: Mapping[str, Any]) -> str | None:
    """The results key an entry's number compares with, or ``None`` when the split does not match."""
    metric, split = str(entry["metric"]), entry.get("split")
    if split is None:
        return metric if metric in results else None
    per_split = f"{metric}.{split}"
    if per_split in results:
        return per_split
    if metric in results and "split" in results and _same(split, results["split"]):
        return metric
    return None


def _is_about(entry: Mapping[str, Any], results: Mapping[str, Any]) -> bool:
    """Whether ``entry`` reports the same measurement as the run (task, data set, point of a curve)."""
    if "task" in entry and not _same(entry["task"], results.get("task")):
        return False
    if "dataset" in entry:
        names = entry["dataset"] if isinstance(entry["dataset"], list) else [entry["dataset"]]
        if not any(_same(name, results.get("dataset")) for name in names):
            return False
    point = entry.get("point") or {}
    return all(key in results and _same(value, results[key], key) for key, value in point.items())


def differences(entry: Mapping[str, Any], results: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(setting, ours, theirs)`` for every setting of ``entry`` that the run does not share (empty: comparable)."""
    found: list[tuple[str, Any, Any]] = []
    if "backbone" in entry:
        wanted = entry["backbone"] if isinstance(entry["backbone"], list) else [entry["backbone"]]
        ours = _run_backbones(results)
        if not _same(wanted, ours, "backbone"):
            found.append(("backbone", ours, wanted))
    if "pretrained" in entry and not _same(entry["pretrained"], results.get("pretrained")):
        found.append(("pretrained", results.get("pretrained"), entry["pretrained"]))
    random = [w for w in _run_weights(results) if w != "pretrained"]
    if random:
        found.append(("weights", random, "pretrained"))
    limit = results.get("dataset.limit")
    if limit is not None:
        found.append(("dataset.limit", limit, "the whole split"))
    for key, value in (entry.get("setting") or {}).items():
        actual = results.get(key, _ABSENT)
        if actual is _ABSENT or not _same(value, actual, key):
            found.append((key, actual, value))
    return found


def not_comparable(found: Sequence[tuple[str, Any, Any]]) -> str:
    """``not comparable: proposals = gt vs detector; weights = random (seed 0) vs pretrained``."""
    return f"{NOT_COMPARABLE}: " + "; ".join(f"{key} = {shown(ours)} vs {shown(theirs)}" for key, ours, theirs in found)


def compare_published(
    results: Mapping[str, Any], entries: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The published numbers about this run's measurements, each either comparable (with Δ) or not (with why).

    Per results key: every comparable entry, in the file's order; when none is, the entry about it that differs
    in the fewest settings (the first of those), marked not comparable. Each returned dict is the entry plus
    ``key`` (the results key, e.g. ``acc.val``), ``ours`` (in percent), ``comparable``, ``differences``,
    ``delta`` (ours - published, in points; ``None`` when not comparable) and ``verdict`` (``Δ +1.40`` or
    ``not comparable: ...``): the text every writer shows.
    """
    by_key: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for position, entry in enumerate(_shipped() if entries is None else entries):
        key = _metric_key(entry, results)
        value = results.get(key) if key is not None else None
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not _is_about(entry, results):
            continue
        scale = 100.0 if resolve(key).measure.percent else 1.0
        ours = float(value) * scale
        found = differences(entry, results)
        delta = ours - float(entry["value"]) if not found else None
        verdict = f"Δ {delta:+.2f}" if delta is not None else not_comparable(found)
        by_key.setdefault(key, []).append(
            (
                position,
                {
                    **entry,
                    "key": key,
                    "ours": ours,
                    "comparable": not found,
                    "differences": [(k, shown(o), shown(t)) for k, o, t in found],
                    "delta": delta,
                    "verdict": verdict,
                },
            )
        )
    chosen = []
    for candidates in by_key.values():
        comparable = [c for c in candidates if c[1]["comparable"]]
        chosen += comparable or [min(candidates, key=lambda c: (len(c[1]["differences"]), c[0]))]
    return [c for _, c in sorted(chosen, key=lambda c: c[0])]


def match_published(
    results: Mapping[str, Any], entries: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The comparable entries of :func:`compare_published` (those with a Δ)."""
    return [c for c in compare_published(results, entries) if c["comparable"]]


def published_fields(results: Mapping[str, Any], entries: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """``{<key>.published, <key>.published.delta, <key>.published.source}`` for results.json.

    One number per results key: the first comparable entry of the file (a paper before a reproduction of it);
    when none is comparable, ``.published.delta`` holds the "not comparable: ..." text instead of a number.
    The report lists every comparison.
    """
    fields: dict[str, Any] = {}
    for match in compare_published(results, entries):
        key = match["key"]
        if companion(key, PUBLISHED) in fields:
            continue
        fields[companion(key, PUBLISHED)] = float(match["value"])
        fields[companion(key, PUBLISHED_DELTA)] = match["delta"] if match["comparable"] else match["verdict"]
        fields[companion(key, PUBLISHED_SOURCE)] = str(match["source"])
    return fields


def published_lines(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The printed table's rows: ``(published <key>, "49.80 % (Δ +1.40; source)")`` or the not-comparable text."""
    rows = []
    for key, value in results.items():
        if not key.endswith(f".{PUBLISHED}") or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        metric = key.removesuffix(f".{PUBLISHED}")
        delta = results.get(companion(metric, PUBLISHED_DELTA))
        verdict = f"Δ {delta:+.2f}" if isinstance(delta, (int, float)) else str(delta)
        unit = " %" if resolve(metric) is not None and resolve(metric).measure.percent else ""
        source = results.get(companion(metric, PUBLISHED_SOURCE), "")
        rows.append((f"published {metric}", f"{float(value):g}{unit} ({verdict}; {source})"))
    return rows
