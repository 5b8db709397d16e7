"""The dataset wrapper every task iterates: (image tensor, label, index), with errors naming the file."""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from descbench.core.errors import DatasetError

log = logging.getLogger(__name__)

_WARNED_DUPLICATES: set[tuple[str, tuple[str, ...]]] = set()
#: The background alpha is composited on (recorded with every dataset as ``alpha``).
ALPHA_BACKGROUND = (255, 255, 255)


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB image, whatever the file's mode.

    16-bit and 32-bit integer greyscale (``I;16*``, ``I``) are scaled by 1/257 (0..65535 to
    0..255; PIL's own conversion clips them, so most 16-bit images come out white); float
    greyscale (``F``) is taken as 0..1 when its maximum is at most 1, else clipped to 0..255;
    transparency (``RGBA``, ``LA``, ``PA``, palette images with a transparent colour) is
    composited on white; palette, CMYK, YCbCr, ``L`` and ``1`` use PIL's conversion.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        array = np.asarray(image, dtype=np.float64)
        if mode == "F":
            array = array * 255.0 if array.size and np.nanmax(array) <= 1.0 else array
        else:
            array = array / 257.0
        grey = np.clip(np.nan_to_num(array), 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: str) -> Image.Image:
    """Open an image file and convert it with :func:`to_rgb` (the loader of every folder dataset)."""
    with open(path, "rb") as f:
        try:
            image = Image.open(f)
        except UnidentifiedImageError:  # its own message names the file object, not the file
            raise UnidentifiedImageError(f"cannot identify image file {str(path)!r}") from None
        image.load()
    return to_rgb(image)


def file_loader(paths: Mapping[str, Any]) -> Callable[[str], Image.Image]:
    """Image id -> :func:`load_image` of its file (modes handled): the loader of every file-backed image set."""
    return lambda image_id: load_image(str(paths[image_id]))


def check_image_files(paths: Mapping[str, Any], source: str, error: type[DatasetError] = DatasetError) -> None:
    """Every image file exists, else one line naming the first missing one and how many are missing."""
    missing = [p for p in paths.values() if not Path(p).is_file()]
    if missing:
        raise error(
            f"{source}: image file not found: {missing[0]} ({len(missing)} of {len(paths)} images missing): "
            "check the image directory"
        )


def plain_id(value: object, where: str, key: str, error: type[DatasetError] = DatasetError) -> str:
    """An identifier read from a file (an integer, or a non-empty one-line string) as a string; else one line."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    ok = ok or (isinstance(value, str) and bool(value.strip()) and value.isprintable())
    if not ok:
        raise error(f"{where}: {key} must be an integer or a one-line string, got {value!r}")
    return str(value)


def file_name(value: object, where: str, key: str = "file_name", error: type[DatasetError] = DatasetError) -> str:
    """A file name read from a file: a non-empty one-line string; else one line naming it."""
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise error(f"{where}: {key} must be a file name (a non-empty one-line string), got {value!r}")
    return value


def read_image_size(path: str | Path, error: type[DatasetError] = DatasetError) -> tuple[int, int]:
    """``(width, height)`` from an image file's header (no decode); an unreadable file is one line naming it."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise error(f"cannot read image {path} ({type(err).__name__}: {reason}): replace or remove the file") from None


def _warn_duplicate_names(name: str, classes: Sequence[str]) -> dict[str, list[int]]:
    """``{name: [class indices]}`` for names used by several classes; warned once per process and dataset."""
    counts = Counter(classes)
    shared = {c: [i for i, x in enumerate(classes) if x == c] for c, n in counts.items() if n > 1}
    key = (name, tuple(sorted(shared)))
    if shared and key not in _WARNED_DUPLICATES:
        _WARNED_DUPLICATES.add(key)
        log.warning(
            "dataset %s: %d class name(s) are shared by several classes (outputs are keyed by class index): %s",
            name,
            len(shared),
            "; ".join(f"{c!r} -> classes {idx}" for c, idx in shared.items()),
        )
    return shared


@dataclass
class EvalDataset(Dataset):
    """A labelled image set for classification.

    ``base[i]`` returns ``(PIL image, label)``; ``describe_sample(i)`` names the file for
    error messages; ``native`` optionally carries the dataset's own descriptors
    (``{"words": {class: [...]}, "sentences": {...}}``). ``class_ids`` are the dataset's own
    identifiers of the classes (ImageNet wnids, folder names, torchvision's raw names) that
    the descriptor-file alias table is tied to. ``provenance`` records how the classes and
    samples were chosen (class-name source, duplicate names, the ``limit`` subset) for
    results.json (``dataset.<key>``).
    """

    name: str
    classes: list[str]
    base: Any
    split: str = "test"
    transform: Callable | None = None
    native: Mapping[str, Mapping[str, Sequence[str]]] | None = None
    sample_ids: Callable[[], list[str]] | None = field(default=None, repr=False)
    class_ids: list[str] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.classes) < 2:
            raise DatasetError(
                f"dataset {self.name} has {len(self.classes)} class(es) {list(self.classes)}: classifying needs at "
                "least 2 (add class folders, or check the class-name file)"
            )
        if self.class_ids is not None and len(self.class_ids) != len(self.classes):
            raise DatasetError(f"dataset {self.name}: {len(self.class_ids)} class ids for {len(self.classes)} classes")
        shared = _warn_duplicate_names(self.name, self.classes)
        self.provenance.setdefault("duplicate_class_names", {c: idx for c, idx in shared.items()})

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

    def labels(self) -> list[int]:
        """The label of every sample, read from the base's index when it has one (no image decoded)."""
        for attr in ("targets", "_labels", "labels"):
            values = getattr(self.base, attr, None)
            if values is not None and len(values) == len(self.base):
                return [int(v) for v in values]
        samples = getattr(self.base, "samples", None) or getattr(self.base, "imgs", None)
        if samples is not None:
            return [int(lab) for _, lab in samples]
        return [int(self.base[i][1]) for i in range(len(self.base))]

    def limited(self, count: int | None, seed: int = 0) -> EvalDataset:
        """A seeded subset of ``count`` samples spread evenly over the classes (all when ``count`` is None).

        Classes take turns (each round in a seeded order), each giving one of its samples
        (seeded), until ``count`` are chosen: every class has ``count // C`` or one more
        sample while it has them. The subset keeps the dataset order; ``provenance`` records
        ``limit``, ``limit_seed``, the per-class counts and a fingerprint of the chosen indices.
        """
        if count is None:
            return self
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise DatasetError(f"dataset.limit must be null or an integer >= 1, got {count!r}")
        if count >= len(self):
            return self
        chosen = stratified_indices(self.labels(), count, seed)
        ids = self.identity()
        picked = [ids[i] for i in chosen]
        per_class = Counter(self.labels()[i] for i in chosen)
        provenance = {
            **self.provenance,
            "limit": count,
            "limit_seed": seed,
            "limit_rule": "stratified over classes, seeded",
            "limit_fingerprint": hashlib.sha256("\n".join(map(str, chosen)).encode()).hexdigest()[:16],
            "limit_per_class_min": min(per_class.get(c, 0) for c in range(len(self.classes))),
            "limit_per_class_max": max(per_class.values()),
        }
        return replace(self, base=_Subset(self.base, chosen), sample_ids=lambda: picked, provenance=provenance)

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


def stratified_indices(labels: Sequence[int], count: int, seed: int) -> list[int]:
    """``count`` sample indices spread over the classes: seeded round-robin, returned sorted."""
    rng = random.Random(seed)
    pools: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        pools[label].append(i)
    for pool in pools.values():
        rng.shuffle(pool)
    chosen: list[int] = []
    order = sorted(pools)
    while len(chosen) < count:
        rng.shuffle(order)
        for label in order:
            if pools[label] and len(chosen) < count:
                chosen.append(pools[label].pop())
        order = [c for c in order if pools[c]]
        if not order:
            break
    return sorted(chosen)


class _Subset:
    """The samples ``indices`` of ``base``, in that order."""

    def __init__(self, base: Any, indices: list[int]) -> None:
        self.base, self.indices = base, indices
        samples = getattr(base, "samples", None) or getattr(base, "imgs", None)
        if samples is not None:
            self.samples = [samples[i] for i in indices]
        for attr in ("_image_files", "_images"):  # torchvision's per-sample file lists (Food101, DTD, Pets, ...)
            files = getattr(base, attr, None)
            if files is not None and len(files) == len(base):
                setattr(self, attr, [files[i] for i in indices])
        labels = None
        for attr in ("targets", "_labels", "labels"):
            values = getattr(base, attr, None)
            if values is not None and len(values) == len(base):
                labels = values
                break
        if labels is not None:
            self.targets = [labels[i] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.base[self.indices[index]]


def read_curated_names(dataset: str) -> dict[str, str]:
    """``{class id: curated name}`` from ``data/class_names/<dataset>.tsv`` (the one reader of those tables)."""
    from importlib import resources

    folder = resources.files("descbench.datasets.class_names")
    entry = folder.joinpath(f"{dataset}.tsv")
    if not entry.is_file():
        known = sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".tsv"))
        raise DatasetError(f"no curated class names for dataset {dataset!r} (known: {known}); use names=raw")
    table: dict[str, str] = {}
    for line in entry.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            class_id, name = line.split("\t")
            table[class_id] = name
    return table
