"""One flat ``results.json`` per job, the per-sample predictions, and the end-of-run table."""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def flatten(options: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"describe": {"source": "world"}}`` -> ``{"describe.source": "world"}``."""
    flat: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, (list, tuple)):
            flat[f"{prefix}{key}"] = [_plain(v) for v in value]
        else:
            flat[f"{prefix}{key}"] = _plain(value)
    return flat


def write_results(run_dir: Path, results: Mapping[str, Any]) -> Path:
    """``results.json``: metrics first, then every option, flat."""
    path = Path(run_dir) / "results.json"
    atomic_write_text(
        path, json.dumps({k: _plain(v) if not isinstance(v, dict) else v for k, v in results.items()}, indent=2)
    )
    return path


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def format_table(rows: Sequence[tuple[str, str]]) -> str:
    """A two-column plain-text table."""
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 2 + max(len(v) for _, v in rows))
    return "\n".join([line] + [f"{k.ljust(width)}  {v}" for k, v in rows] + [line])
