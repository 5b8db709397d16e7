"""Feature caches: image features of an evaluation set, REC marked-candidate features, text features.

Every file is a safetensors file written atomically (:func:`descbench.core.files.write_atomic`) whose
metadata holds its key and a sha256 of its tensors; a reader checks both, so a file damaged on disk,
cut short or written for another key is a miss (warned, recomputed and replaced), never served.
Two jobs that start together both compute, and the second rename wins with identical content.
A cache directory that cannot be written degrades to no cache with one warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from filelock import FileLock
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from descbench.core.choices import Choice
from descbench.core.files import write_atomic

log = logging.getLogger("descbench")
CACHE_VERSION = 2
#: cache dirs found not writable in this process: each is warned about once, whatever the kind of cache
_UNWRITABLE: set[Path] = set()


def digest(parts: dict) -> str:
    """A stable hash of the key parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the named tensors' dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}:{t.dtype}:{list(t.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class Verify(Choice):
    """What ties cached features to the image files (``cache.verify``): their size and modification time
    (``stat``), or a sha256 of their bytes (``content``: slower, immune to a file rewritten with the same stat)."""

    stat = "stat"
    content = "content"


def files_fingerprint(paths: Sequence[str | os.PathLike[str]], verify: Verify = Verify.stat) -> str:
    """A hash of the files' sizes and modification times (``verify=content``: of their bytes too).

    Part of the image-feature key, so that images replaced in place are never served from the cache.
    """
    h = hashlib.sha256()
    if Verify.parse(verify, "cache.verify") == Verify.stat:
        h.update("".join(map(_stat_line, paths)).encode())  # one update of the joined lines: the same digest
        return h.hexdigest()
    for path in paths:
        h.update(_stat_line(path).encode())
        with open(path, "rb") as handle:
            h.update(hashlib.sha256(handle.read()).digest())
    return h.hexdigest()


def _stat_line(path: str | os.PathLike[str]) -> str:
    stat = os.stat(path)
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns};"


class FeatureStore:
    """Checked safetensors files under ``root/kind``, one per key."""

    def __init__(self, root: str | Path, kind: str) -> None:
        self.cache_dir = Path(root)
        self.root = self.cache_dir / kind
        self.kind = kind.replace("_", " ")
        self.writable = True

    def path(self, key: dict) -> Path:
        return self.root / f"{digest(key)}.safetensors"

    def read(self, key: dict, path: Path | None = None) -> dict[str, torch.Tensor] | None:
        """The tensors stored for ``key``; None when absent, unreadable, for another key or damaged."""
        path = path or self.path(key)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except Exception as err:  # safetensors raises several types for a cut or garbled file
            log.warning("%s cache %s unreadable (%s): recomputing", self.kind, path, str(err).splitlines()[0][:200])
            return None
        if meta.get("key") != _key_text(key):
            log.warning("%s cache %s belongs to another key: recomputing", self.kind, path)
            return None
        if meta.get("sha256") != tensors_sha256(tensors):
            log.warning("%s cache %s is damaged (checksum mismatch): recomputing", self.kind, path)
            return None
        return tensors

    def write(self, key: dict, tensors: dict[str, torch.Tensor], extra: dict[str, str] | None = None) -> Path | None:
        """Store ``tensors`` for ``key``; returns the path, or None (one warning) when the dir is not writable."""
        path = self.path(key)
        plain = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        meta = {"key": _key_text(key), "sha256": tensors_sha256(plain), **(extra or {})}
        try:
            write_atomic(path, lambda tmp: save_file(plain, str(tmp), metadata=meta))
        except (OSError, SafetensorError) as err:  # safetensors reports a full disk as its own error
            self._unwritable(err)
            return None
        return path

    def _unwritable(self, err: OSError | SafetensorError) -> None:
        if self.writable and self.cache_dir not in _UNWRITABLE:
            _UNWRITABLE.add(self.cache_dir)
            log.warning(
                "cache dir %s cannot be written (%s): continuing without caching (set DESCBENCH_CACHE_DIR or "
                "paths.cache_dir to a writable dir, or cache.features=false cache.text=false)",
                self.cache_dir,
                getattr(err, "strerror", None) or str(err).splitlines()[0][:200],
            )
        self.writable = False


def _key_text(key: dict) -> str:
    return json.dumps(key, sort_keys=True, default=str)


class ImageFeatureCache:
    """Image features and labels of a whole evaluation set, one file per key."""

    def __init__(self, root: str | Path) -> None:
        self.store = FeatureStore(root, "image_features")

    @staticmethod
    def key(
        *,
        backbone: str,
        dataset: str,
        split: str,
        transform: str,
        sample_ids: Sequence[str],
        precision: str,
        files: str | None = None,
    ) -> dict:
        """``files``: :func:`files_fingerprint` of the sample files (None for generated data sets)."""
        ids = hashlib.sha256("\n".join(sample_ids).encode()).hexdigest()
        return {
            "backbone": backbone,
            "dataset": dataset,
            "split": split,
            "transform": transform,
            "samples": ids,
            "num_samples": len(sample_ids),
            "files": files,
            "precision": precision,
            "version": CACHE_VERSION,
        }

    def path(self, key: dict) -> Path:
        return self.store.path(key)

    def load(self, key: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
        data = self.store.read(key)
        if data is None or set(data) != {"features", "labels"} or data["features"].shape[0] != key["num_samples"]:
            return None
        return data["features"], data["labels"]

    def save(self, key: dict, features: torch.Tensor, labels: torch.Tensor) -> Path | None:
        return self.store.write(key, {"features": features.float(), "labels": labels.long()})


class CandidateFeatureCache:
    """REC marked-candidate features for one (backbone, transform, visual prompt, data set, precision).

    One file per key: ``features`` [N, D], the rows of every candidate box of every image group in
    group order, and ``offsets`` [G + 1] (group ``g`` owns rows ``offsets[g]:offsets[g + 1]``).
    One file per visual prompt, so an ensemble reuses the files of the single-prompt jobs.
    """

    def __init__(self, root: str | Path) -> None:
        self.store = FeatureStore(root, "candidate_features")

    @staticmethod
    def key(
        *,
        backbone: str,
        transform: str,
        prompt: str,
        dataset: str,
        groups: Sequence[tuple[str, Sequence[Sequence[float]]]],
        precision: str,
        files: str | None = None,
    ) -> dict:
        """``groups``: each image group's ``(image id, candidate boxes)``, in group order;
        ``files``: :func:`files_fingerprint` of the image files (None for generated data sets)."""
        layout = hashlib.sha256(
            json.dumps([[image_id, [[float(v) for v in b] for b in boxes]] for image_id, boxes in groups]).encode()
        ).hexdigest()
        return {
            "backbone": backbone,
            "transform": transform,
            "prompt": prompt,
            "dataset": dataset,
            "groups": layout,
            "num_groups": len(groups),
            "num_candidates": sum(len(boxes) for _, boxes in groups),
            "files": files,
            "precision": precision,
            "version": CACHE_VERSION,
        }

    def path(self, key: dict) -> Path:
        return self.store.path(key)

    def load(self, key: dict) -> torch.Tensor | None:
        """The ``[N, D]`` features, or None on a miss (absent, unreadable, damaged or of the wrong size)."""
        data = self.store.read(key)
        if data is None:
            return None
        features = data.get("features")
        if features is None or features.ndim != 2 or features.shape[0] != key["num_candidates"]:
            return None
        return features

    def save(self, key: dict, features: torch.Tensor, offsets: torch.Tensor) -> Path | None:
        if features.shape[0] != key["num_candidates"] or offsets.numel() != key["num_groups"] + 1:
            raise ValueError(
                f"candidate features {tuple(features.shape)} with {offsets.numel()} offsets do not fit key "
                f"({key['num_candidates']} candidates, {key['num_groups']} groups)"
            )
        return self.store.write(key, {"features": features, "offsets": offsets.long()})


class TextFeatureCache:
    """Text embeddings per (backbone identity, exact string); each string is encoded once.

    One file per backbone holds every string encoded so far. What a process read or wrote last is kept in
    memory with the file's identity (inode, size, modification time): the next job of a sweep that finds the
    file as it left it uses that copy instead of reading and checking the whole file again, whose size grows
    with every string ever cached (seconds per job with CuPL's ImageNet sentences on a large model).
    """

    #: path -> (file identity, {text: row}, features): what this process last read or wrote
    _memory: dict[Path, tuple[tuple[int, int, int], dict[str, int], torch.Tensor]] = {}

    def __init__(self, root: str | Path, backbone_identity: str) -> None:
        self.store = FeatureStore(root, "text_features")
        self.key = {"backbone": backbone_identity}
        self.path = self.store.path(self.key)
        self.backbone_identity = backbone_identity
        self.encoded_last = 0

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def _read(self) -> tuple[dict[str, int], torch.Tensor]:
        """``({text: row}, features)`` of the file (empty when absent, unreadable or damaged)."""
        identity = self._identity()
        if identity is None:
            return {}, torch.empty(0)
        remembered = self._memory.get(self.path)
        if remembered is not None and remembered[0] == identity:
            return remembered[1], remembered[2]
        data = self.store.read(self.key)
        if data is None:
            return {}, torch.empty(0)
        with safe_open(str(self.path), framework="pt") as handle:  # strings are kept in the metadata, in row order
            texts = json.loads((handle.metadata() or {}).get("texts", "[]"))
        features = data["features"]
        if len(texts) != len(features):
            return {}, torch.empty(0)
        rows = {text: row for row, text in enumerate(texts)}
        self._memory[self.path] = (identity, rows, features)
        return rows, features

    def encode(
        self, texts: Sequence[str], encoder: Callable[[list[str]], torch.Tensor], ahead: Sequence[str] = ()
    ) -> torch.Tensor:
        """Embeddings of ``texts`` in order; only strings never seen by this backbone are encoded.

        When some of ``texts`` must be encoded, the uncached strings of ``ahead`` (texts the sweep's other
        jobs will ask for: :attr:`DescriptionSet.ahead`) are encoded after them, in a call of their own (the
        job's own strings are encoded in the same batches as without them), and kept too.
        """
        rows, features = self._read()
        missing = list(dict.fromkeys(t for t in texts if t not in rows))
        own = set(missing)
        extra = [t for t in dict.fromkeys(ahead) if t not in rows and t not in own] if missing else []
        self.encoded_last = len(missing) + len(extra)
        if missing:
            ahead_note = f", {len(extra)} more for the other num_desc of this source" if extra else ""
            log.info(
                "text features: %d string(s) encoded%s, %d cached",
                len(missing),
                ahead_note,
                len(set(texts)) - len(missing),
            )
            fresh = encoder(missing).float().cpu()
            if extra:
                fresh = torch.cat([fresh, encoder(extra).float().cpu()])
            missing += extra
            rows = {**rows, **{text: len(rows) + i for i, text in enumerate(missing)}}
            features = torch.cat([features, fresh]) if len(features) else fresh
            if self.store.writable:
                self._merge_into_file(missing, fresh)
        if not texts:
            return torch.empty(0)
        return features[torch.tensor([rows[t] for t in texts], dtype=torch.long)]

    def _merge_into_file(self, texts: list[str], fresh: torch.Tensor) -> None:
        """Add ``texts`` to the file, keeping what other processes wrote there meanwhile."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.path) + ".lock"):
                rows, features = self._read()
                new = [i for i, text in enumerate(texts) if text not in rows]
                keys = [*rows, *(texts[i] for i in new)]
                merged = torch.cat([features, fresh[new]]) if len(features) else fresh[new]
                path = self.store.write(self.key, {"features": merged}, {"texts": json.dumps(keys)})
                identity = self._identity()
                if path is not None and identity is not None:
                    self._memory[self.path] = (identity, {text: row for row, text in enumerate(keys)}, merged)
        except OSError as err:
            self.store._unwritable(err)
