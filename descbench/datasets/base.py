"""The dataset wrapper every task iterates: (image tensor, label, index), with errors naming the file."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch.utils.data import Dataset

from descbench.errors import DatasetError


@dataclass
class EvalDataset(Dataset):
    """A labelled image set for classification.

    ``base[i]`` returns ``(PIL image, label)``; ``describe_sample(i)`` names the file for
    error messages; ``native`` optionally carries the dataset's own descriptors
    (``{"words": {class: [...]}, "sentences": {...}}``).
    """

    name: str
    classes: list[str]
    base: Any
    split: str = "test"
    transform: Callable | None = None
    native: Mapping[str, Mapping[str, Sequence[str]]] | None = None
    sample_ids: Callable[[], list[str]] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        try:
            image, label = self.base[index]
            if self.transform is not None:
                image = self.transform(image)
        except Exception as err:  # a corrupt file must be named, not crash anonymously
            raise DatasetError(
                f"cannot read sample {index} of dataset {self.name} ({self.describe_sample(index)}): "
                f"{type(err).__name__}: {err}"
            ) from err
        return image, int(label), index

    def limited(self, count: int | None) -> EvalDataset:
        """The first ``count`` samples (all when ``count`` is None)."""
        if count is None or count >= len(self):
            return self
        if count < 1:
            raise DatasetError(f"dataset.limit must be >= 1, got {count}")
        ids = self.identity()[:count]
        return replace(self, base=_FirstSamples(self.base, count), sample_ids=lambda: ids)

    def sample_paths(self) -> list[str] | None:
        """The image file of every sample, in order (None for generated or in-memory data sets)."""
        samples = getattr(self.base, "samples", None) or getattr(self.base, "imgs", None)
        if samples is not None:
            return [str(p) for p, _ in samples]
        for attribute in ("_image_files", "_images"):  # torchvision's Food101, DTD, Flowers102 / OxfordIIITPet
            files = getattr(self.base, attribute, None)
            if files is not None:
                return [str(p) for p in files][: len(self)]
        return None

    def describe_sample(self, index: int) -> str:
        samples = getattr(self.base, "samples", None) or getattr(self.base, "imgs", None)
        if samples is not None:
            return str(samples[index][0])
        return f"item {index}"

    def identity(self) -> list[str]:
        """Stable per-sample ids (file paths where there are files) for cache keys."""
        if self.sample_ids is not None:
            return self.sample_ids()
        samples = getattr(self.base, "samples", None) or getattr(self.base, "imgs", None)
        if samples is not None:
            return [f"{p}:{lab}" for p, lab in samples]
        return [str(i) for i in range(len(self.base))]


class _FirstSamples:
    def __init__(self, base: Any, count: int) -> None:
        self.base, self.count = base, count
        samples = getattr(base, "samples", None)
        if samples is not None:
            self.samples = samples[:count]

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        if index >= self.count:
            raise IndexError(index)
        return self.base[index]
