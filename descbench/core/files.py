"""Atomic file writes: a reader (or a crash) never sees half a file.

Every writer of the project goes through :func:`write_atomic`: the data goes to a temporary file in
the target's directory, is flushed to disk, and is renamed over the target in one step. On any
failure the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

Writer = Callable[[Path], None]


def write_atomic(path: str | os.PathLike[str], data: str | bytes | Writer, *, fsync: bool = True) -> Path:
    """Write ``data`` (text, bytes, or a function that writes the file it is given) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data.encode("utf-8") if isinstance(data, str) else data)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_text_file(path: str | os.PathLike[str], what: str, error: type[Exception] = ValueError) -> str:
    """The UTF-8 text of ``path`` (a byte-order mark dropped); a file that is not UTF-8 raises ``error`` with one line
    naming ``what`` and the path, never the file's bytes."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise error(
            f"{what} {path} is not UTF-8 text (undecodable byte at offset {err.start}); save it as UTF-8"
        ) from None


def read_json_file(path: str | os.PathLike[str], what: str, error: type[Exception] = ValueError) -> object:
    """The JSON value of ``path`` (:func:`read_text_file`); invalid JSON raises ``error`` naming the line and column."""
    import json

    text = read_text_file(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{what} {path} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None


def read_json_lines(
    path: str | os.PathLike[str], what: str, error: type[Exception] = ValueError
) -> list[tuple[int, object]]:
    """``(line number, JSON value)`` of every non-blank line of ``path`` (:func:`read_text_file`); a line that is
    not JSON raises ``error`` naming the file and line."""
    import json

    path = Path(path)
    out = []
    for number, line in enumerate(read_text_file(path, what, error).splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as err:
            raise error(f"{path}:{number} is not valid JSON: {err}") from None
    return out


def read_yaml_file(path: str | os.PathLike[str], what: str, error: type[Exception] = ValueError) -> object:
    """The YAML value of ``path`` (:func:`read_text_file`, safe loader); invalid YAML raises ``error`` with one line
    naming the file, the line and the column."""
    import yaml

    text = read_text_file(path, what, error)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise error(f"{what} {path} is not valid YAML: {problem}{where}") from None


def write_error_reason(err: OSError) -> str:
    """Why a file could not be written, in words (a parent that is a file reads "File exists" otherwise)."""
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        return "a part of its path is a file, not a directory"
    return err.strerror or str(err)
