"""Published numbers beside ours: match a run's results against ``descbench/core/published.yaml``.

A run matches an entry when every setting field the entry states equals the run's ``results.json``:
``task``, ``dataset`` (one of the entry's names, case-insensitive), ``split`` (of a per-split measure
such as ``acc.val``, else the run's ``split``), ``backbone`` (an open_clip name; a list is an ensemble
and must equal the set of the run's backbones), ``pretrained`` (the open_clip tag) and every key of the
entry's ``setting`` (a list compared as a set). Fields an entry leaves out do not constrain it; its
``caveat`` says which the source does not state. The file's header says the same.
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
_WEIGHTS_NOTE = re.compile(r"\s*\[[^\]]*\]\s*$")  # "RN50x16 [pretrained]" in results `backbones`


def load_published(path: Path | str | None = None) -> list[dict[str, Any]]:
    """The entries of the shipped ``published.yaml`` (or of ``path``), checked for their required fields."""
    if path is None:
        text = resources.files("descbench.core").joinpath(PUBLISHED_FILE).read_text(encoding="utf-8")
        where = f"descbench/data/{PUBLISHED_FILE}"
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
    return entries


@cache
def _shipped() -> tuple[dict[str, Any], ...]:
    return tuple(load_published())


def _same(expected: Any, actual: Any) -> bool:
    """One setting value: lists as sets, strings case-insensitively, numbers by value."""
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)):
            return False
        return sorted(map(_text, expected)) == sorted(map(_text, actual))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and expected is actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return float(expected) == float(actual)
    return _text(expected) == _text(actual)


def _text(value: Any) -> str:
    return str(value).strip().casefold()


def _run_backbones(results: Mapping[str, Any]) -> list[str]:
    names = {str(results["backbone"])} if results.get("backbone") is not None else set()
    for item in results.get("backbones") or []:
        names.add(_WEIGHTS_NOTE.sub("", str(item)))
    return sorted(names)


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


def _matches(entry: Mapping[str, Any], results: Mapping[str, Any]) -> bool:
    if "task" in entry and not _same(entry["task"], results.get("task")):
        return False
    if "dataset" in entry:
        names = entry["dataset"] if isinstance(entry["dataset"], list) else [entry["dataset"]]
        if not any(_same(name, results.get("dataset")) for name in names):
            return False
    if "backbone" in entry:
        wanted = entry["backbone"] if isinstance(entry["backbone"], list) else [entry["backbone"]]
        if not _same(wanted, _run_backbones(results)):
            return False
    if "pretrained" in entry and not _same(entry["pretrained"], results.get("pretrained")):
        return False
    setting = entry.get("setting") or {}
    return all(key in results and _same(value, results[key]) for key, value in setting.items())


def match_published(
    results: Mapping[str, Any], entries: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The published entries whose setting this run's results match, each with ours and Δ.

    Each returned dict is the entry plus ``key`` (the results key compared, e.g. ``acc.val``),
    ``ours`` (that value in percent) and ``delta`` (ours - published, in points). Fields that must
    match: see the module docstring (and the header of ``published.yaml``).
    """
    found = []
    for entry in _shipped() if entries is None else entries:
        key = _metric_key(entry, results)
        value = results.get(key) if key is not None else None
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not _matches(entry, results):
            continue
        scale = 100.0 if resolve(key).measure.percent else 1.0
        ours = float(value) * scale
        found.append({**entry, "key": key, "ours": ours, "delta": ours - float(entry["value"])})
    return found


def published_fields(results: Mapping[str, Any], entries: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """``{<key>.published, <key>.published.delta, <key>.published.source}`` for results.json.

    One number per results key: the first matching entry of the file (a paper before a reproduction
    of it); the report lists every match.
    """
    fields: dict[str, Any] = {}
    for match in match_published(results, entries):
        key = match["key"]
        if companion(key, PUBLISHED) in fields:
            continue
        fields[companion(key, PUBLISHED)] = float(match["value"])
        fields[companion(key, PUBLISHED_DELTA)] = match["delta"]
        fields[companion(key, PUBLISHED_SOURCE)] = str(match["source"])
    return fields
