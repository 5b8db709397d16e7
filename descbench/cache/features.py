"""Feature caches. Files are written atomically (temp file + rename), so a reader never sees half a file;
two jobs that start together both compute and the second rename wins with identical content."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from filelock import FileLock
from safetensors.torch import load_file, save_file

log = logging.getLogger("descbench")


def digest(parts: dict) -> str:
    """A stable hash of the key parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path, what: str) -> dict[str, torch.Tensor] | None:
    """The tensors of a cache file; None when it is absent or unreadable (a miss, recomputed and replaced)."""
    if not path.is_file():
        return None
    try:
        return load_file(str(path))
    except Exception as err:
        log.warning("%s cache %s unreadable (%s): recomputing", what, path, err)
        return None


class ImageFeatureCache:
    """Image features and labels of a whole evaluation set, one safetensors file per key."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root) / "image_features"

    @staticmethod
    def key(
        *, backbone: str, dataset: str, split: str, transform: str, sample_ids: Sequence[str], precision: str
    ) -> dict:
        ids = hashlib.sha256("\n".join(sample_ids).encode()).hexdigest()
        return {
            "backbone": backbone,
            "dataset": dataset,
            "split": split,
            "transform": transform,
            "samples": ids,
            "num_samples": len(sample_ids),
            "precision": precision,
            "version": 1,
        }

    def path(self, key: dict) -> Path:
        return self.root / f"{digest(key)}.safetensors"

    def load(self, key: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
        data = _read(self.path(key), "image feature")
        if data is None or data["features"].shape[0] != key["num_samples"]:
            return None
        return data["features"], data["labels"]

    def save(self, key: dict, features: torch.Tensor, labels: torch.Tensor) -> Path:
        path = self.path(key)
        _atomic_save(
            {"features": features.float(), "labels": labels.long()},
            path,
            {"key": json.dumps(key, sort_keys=True, default=str)},
        )
        return path


class TextFeatureCache:
    """Text embeddings per (backbone identity, exact string); each string is encoded once."""

    def __init__(self, root: str | Path, backbone_identity: str) -> None:
        self.path = Path(root) / "text_features" / f"{digest({'backbone': backbone_identity})}.safetensors"
        self.backbone_identity = backbone_identity
        self.encoded_last = 0

    def _read(self) -> dict[str, torch.Tensor]:
        data = _read(self.path, "text feature")
        if data is None:
            return {}
        with open(self.path, "rb") as handle:  # strings are kept in the metadata, in row order
            header_len = int.from_bytes(handle.read(8), "little")
            meta = json.loads(handle.read(header_len))["__metadata__"]
        texts = json.loads(meta["texts"])
        return dict(zip(texts, data["features"]))

    def encode(self, texts: Sequence[str], encoder: Callable[[list[str]], torch.Tensor]) -> torch.Tensor:
        """Embeddings of ``texts`` in order; only strings never seen by this backbone are encoded."""
        known = self._read()
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        self.encoded_last = len(missing)
        if missing:
            fresh = encoder(missing).float().cpu()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.path) + ".lock"):
                merged = {**self._read(), **known, **dict(zip(missing, fresh))}
                keys = list(merged)
                _atomic_save(
                    {"features": torch.stack([merged[k] for k in keys])},
                    self.path,
                    {"texts": json.dumps(keys), "backbone": self.backbone_identity},
                )
            known.update(zip(missing, fresh))
        if not texts:
            return torch.empty(0)
        return torch.stack([known[t] for t in texts])


class CandidateFeatureCache:
    """REC marked-candidate features for one (backbone, transform, visual prompt, data set, precision).

    One safetensors file per key: ``features`` [N, D], the rows of every candidate box of every image
    group in group order, and ``offsets`` [G + 1] (group ``g`` owns rows ``offsets[g]:offsets[g + 1]``).
    One file per visual prompt, so an ensemble reuses the files of the single-prompt jobs.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root) / "candidate_features"

    @staticmethod
    def key(
        *,
        backbone: str,
        transform: str,
        prompt: str,
        dataset: str,
        groups: Sequence[tuple[str, Sequence[Sequence[float]]]],
        precision: str,
    ) -> dict:
        """``groups``: each image group's ``(image id, candidate boxes)``, in group order."""
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
            "precision": precision,
            "version": 1,
        }

    def path(self, key: dict) -> Path:
        return self.root / f"{digest(key)}.safetensors"

    def load(self, key: dict) -> torch.Tensor | None:
        """The ``[N, D]`` features, or None on a miss (absent, unreadable or of the wrong size)."""
        data = _read(self.path(key), "candidate feature")
        if data is None:
            return None
        features = data.get("features")
        if features is None or features.ndim != 2 or features.shape[0] != key["num_candidates"]:
            return None
        return features

    def save(self, key: dict, features: torch.Tensor, offsets: torch.Tensor) -> Path:
        if features.shape[0] != key["num_candidates"] or offsets.numel() != key["num_groups"] + 1:
            raise ValueError(
                f"candidate features {tuple(features.shape)} with {offsets.numel()} offsets do not fit key "
                f"({key['num_candidates']} candidates, {key['num_groups']} groups)"
            )
        path = self.path(key)
        _atomic_save(
            {"features": features, "offsets": offsets.long()},
            path,
            {"key": json.dumps(key, sort_keys=True, default=str)},
        )
        return path
