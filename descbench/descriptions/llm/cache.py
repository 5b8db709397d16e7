"""Content-addressed cache of generated descriptions (SPEC §3).

One JSON file per key, ``<cache_dir>/<key>.json``, where the key is the sha256 of the
backend identity (backend, model, sampling parameters) and the exact prompt. Files are
written atomically (:func:`descbench.core.files.write_atomic`: a temporary file, then a rename), so a
killed process leaves either the complete file or none; a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from descbench.core.files import write_atomic

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def cache_key(identity: dict[str, Any], prompt: str) -> str:
    """sha256 of the canonical JSON of (backend identity, exact prompt)."""
    payload = json.dumps({"identity": identity, "prompt": prompt}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class DescriptionCache:
    """Generated answers under ``root``, one JSON file per (identity, prompt) key."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self.writable = True
        self._warn_lock = threading.Lock()  # answers arrive from several worker threads: warn once

    def __repr__(self) -> str:
        return f"DescriptionCache({str(self.root)!r})"

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The record stored under ``key``, or None (missing or unreadable: regenerated)."""
        path = self.path(key)
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("ignoring unreadable cache file %s: %s", path, e)
            return None
        if not isinstance(record, dict) or record.get("key") != key or "descriptors" not in record:
            log.warning("ignoring cache file %s: not a description record for this key", path)
            return None
        if not record["descriptors"]:  # written by older versions for answers without a bullet
            log.warning("ignoring cache file %s: an answer without descriptors is asked again", path)
            return None
        return record

    def put(
        self,
        key: str,
        *,
        classname: str,
        prompt: str,
        raw: str,
        descriptors: list[str],
        identity: dict[str, Any],
        cut: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """Store one class's answer atomically and return the record (never an answer without descriptors).

        ``cut``: the size of an answer that was cut to its bounds (:func:`~descbench.descriptions.llm.limits.bound_answer`),
        kept in the record so that a run reading it from the cache records the cut too.
        """
        if not descriptors:
            raise ValueError(f"refusing to cache an answer without descriptors for {classname!r}")
        record = {
            "version": CACHE_VERSION,
            "key": key,
            "class": classname,
            "prompt": prompt,
            "raw": raw,
            "descriptors": descriptors,
            "backend": identity,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if cut:
            record["cut"] = dict(cut)
        try:
            write_atomic(self.path(key), json.dumps(record, indent=2, ensure_ascii=False))
        except OSError as err:  # a read-only or full cache dir: keep the answer for this run, say so once
            with self._warn_lock:
                first, self.writable = self.writable, False
            if first:
                log.warning(
                    "description cache dir %s is not writable (%s): answers are kept for this run only "
                    "(set describe.cache_dir or DESCBENCH_CACHE_DIR to a writable dir)",
                    self.root,
                    err.strerror or err,
                )
        return record
