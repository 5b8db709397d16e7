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
