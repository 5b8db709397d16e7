"""One flat ``results.json`` per job, the per-sample predictions, and the end-of-run table."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"  # JSON has no infinity: ``Infinity`` is not JSON
    return value


def json_safe(value: Any) -> Any:
    """``value`` with every NaN (null) and infinity (``"inf"``/``"-inf"``) replaced at any depth, tensors and
    numpy scalars as plain numbers: what ``json.dumps(..., allow_nan=False)`` accepts."""
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return _plain(value)


def json_text(obj: Any) -> str:
    """Strict JSON of ``obj`` (:func:`json_safe`): never a bare ``NaN`` or ``Infinity``."""
    return json.dumps(json_safe(obj), indent=2, allow_nan=False)


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


def format_table(rows: Sequence[tuple[str, str]]) -> str:
    """A two-column plain-text table."""
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 2 + max(len(v) for _, v in rows))
    return "\n".join([line] + [f"{k.ljust(width)}  {v}" for k, v in rows] + [line])


def results_text(results: Mapping[str, Any]) -> str:
    """The JSON text of ``results.json``: metrics first, then every option, flat."""
    return json_text(dict(results))


def csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A CSV file's text (the csv module's quoting)."""
    import io

    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


class JobOutputs:
    """The files of one job, written together: each to a temp name and renamed, ``results.json`` last.

    A run dir therefore has a complete ``results.json`` or none; when a write fails (disk full, a
    read-only dir) the files this job wrote are removed and the error says which.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.files: list[tuple[str, str | bytes]] = []

    def add(self, name: str, data: str | bytes) -> None:
        self.files.append((name, data))

    def add_json(self, name: str, obj: Any) -> None:
        self.add(name, json_text(obj))

    def add_csv(self, name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.add(name, csv_text(header, rows))

    def add_png(self, name: str, image: Any) -> None:
        import io

        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        self.add(name, buffer.getvalue())

    def commit(self, results: Mapping[str, Any]) -> Path:
        """Write every file, then ``results.json``; returns its path."""
        from descbench.core.errors import UserError
        from descbench.core.files import write_atomic

        written: list[Path] = []
        name = RESULTS_FILE
        try:
            for name, data in [*self.files, (RESULTS_FILE, results_text(results))]:
                path = self.run_dir / name
                write_atomic(path, data)
                written.append(path)
        except OSError as err:
            for path in written:
                path.unlink(missing_ok=True)
            removed = ", ".join(p.name for p in written) or "none"
            raise UserError(
                f"could not write {name} in {self.run_dir} ({err.strerror or err}); removed the partial outputs "
                f"({removed}): free space or choose another run dir (hydra.run.dir=...)"
            ) from None
        return written[-1]


RESULTS_FILE = "results.json"
