"""One flat ``results.json`` per job, the per-sample predictions, and the end-of-run table."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


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


#: what makes the csv module quote a field (its default dialect: delimiter, quote character, line terminator)
_CSV_SPECIAL = (",", '"', "\r", "\n")


def csv_field_text(values: Sequence[str] | np.ndarray) -> np.ndarray:
    """Strings as the csv module writes them as fields: quoted, with quotes doubled, where they hold a comma,
    a quote or a line break; as they are otherwise."""
    text = np.asarray(values, dtype=np.str_)
    if text.size == 0:
        return text
    special = np.zeros(text.shape, dtype=bool)
    for char in _CSV_SPECIAL:
        special |= np.char.find(text, char) >= 0
    if not special.any():
        return text
    quoted = np.char.add(np.char.add('"', np.char.replace(text, '"', '""')), '"')
    return np.where(special, quoted, text)


def int_text(values: Any) -> np.ndarray:
    """Integers as ``str(int(v))`` writes them, for a whole array at once."""
    return np.asarray(values).astype(np.int64).astype(np.str_)


def fixed_text(values: Any, digits: int = 6) -> np.ndarray:
    """Numbers as ``f"{float(v):.{digits}f}"`` writes them (correctly rounded, ties to even, ``-0.000000`` for a
    negative value that rounds to zero), for a whole array at once.

    The digits come from ``rint(|v| * 10**digits)``; where that product could sit within rounding error of a
    tie (or the value is not finite, or too large for exact integers) the value is formatted by Python itself.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    scale = 10**digits
    magnitude = np.abs(v) * scale
    safe = np.isfinite(v) & (magnitude < 2.0**52)
    fraction = magnitude - np.floor(np.where(safe, magnitude, 0.0))
    safe &= np.abs(fraction - 0.5) > 1e-6
    units = np.rint(np.where(safe, magnitude, 0.0)).astype(np.int64)
    whole, part = np.divmod(units, scale)
    text = np.char.add(np.char.add(whole.astype(np.str_), "."), np.char.zfill(part.astype(np.str_), digits))
    text = np.where(np.signbit(v), np.char.add("-", text), text)
    if not safe.all():
        text = text.astype(object)
        for i in np.flatnonzero(~safe):
            text[i] = f"{float(v[i]):.{digits}f}"
        text = text.astype(np.str_)
    return text


def csv_columns_text(header: Sequence[str], columns: Sequence[np.ndarray]) -> str:
    """The text :func:`csv_text` writes for these rows, from columns of field texts (:func:`csv_field_text`,
    :func:`int_text`, :func:`fixed_text`) joined by ``str.join`` over ``zip`` of the columns: no Python bytecode
    per row (joining with NumPy's string functions instead copies every growing line once per column, ten
    times slower on 50,000 rows)."""
    head = csv_text(header, [])
    if not columns or len(columns[0]) == 0:
        return head
    texts = [np.asarray(column, dtype=np.str_).tolist() for column in columns]
    return head + "\r\n".join(map(",".join, zip(*texts))) + "\r\n"


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

    def add_csv_columns(self, name: str, header: Sequence[str], columns: Sequence[np.ndarray]) -> None:
        """A CSV file from columns of field texts (see :func:`csv_columns_text`)."""
        self.add(name, csv_columns_text(header, columns))

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
