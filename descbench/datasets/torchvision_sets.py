"""torchvision datasets read from a local root; never downloaded unless asked.

Class names are CLIP's curated names by default (``data/class_names/<dataset>.tsv``, keyed by
torchvision's own class strings, which become the dataset's ``class_ids``); Places365 names
are its full category paths (``/a/apartment_building/outdoor`` -> ``apartment building outdoor``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Literal

import torchvision.datasets as tvd

from descbench.datasets.base import ALPHA_BACKGROUND, DatasetError, EvalDataset, load_image, read_curated_names

#: torchvision class -> the curated-name table of ``data/class_names`` (Places365 names follow a rule).
CURATED_TABLES = {
    "EuroSAT": "eurosat",
    "OxfordIIITPet": "pets",
    "Flowers102": "flowers102",
    "DTD": "dtd",
    "Food101": "food101",
    "CIFAR10": "cifar10",
    "CIFAR100": "cifar100",
}


def places365_class_name(category: str) -> str:
    """``/a/apartment_building/outdoor`` -> ``apartment building outdoor`` (the letter folder dropped)."""
    parts = [p for p in category.split("/") if p]
    if len(parts) > 1 and len(parts[0]) == 1:
        parts = parts[1:]
    return " ".join(" ".join(parts).replace("_", " ").split())


def _class_ids(name: str, base) -> list[str]:
    if name == "Flowers102":  # labels are indices; older torchvision has no class names
        return [str(i) for i in range(len(read_curated_names("flowers102")))]
    classes = getattr(base, "classes", None)
    if not classes:
        raise DatasetError(f"dataset {name} exposes no class names")
    return [str(c) for c in classes]


def _class_names(name: str, ids: list[str], names: str) -> tuple[list[str], str]:
    if name == "Places365":
        return [
            places365_class_name(c) for c in ids
        ], "Places365 category paths (letter folder dropped, / and _ as spaces)"
    if names == "raw" or name not in CURATED_TABLES:
        return [c.replace("_", " ") for c in ids], "torchvision's class names, '_' as spaces"
    table = read_curated_names(CURATED_TABLES[name])
    unknown = [c for c in ids if c not in table]
    if unknown:
        raise DatasetError(
            f"dataset {name}: classes {unknown[:10]} are not in the curated table data/class_names/"
            f"{CURATED_TABLES[name]}.tsv (a different torchvision version?); set dataset.builder.names=raw"
        )
    return [table[c] for c in ids], f"CLIP's curated names (data/class_names/{CURATED_TABLES[name]}.tsv)"


def load_torchvision(
    name: str,
    root: str,
    split: str = "test",
    download: bool = False,
    names: Literal["curated", "raw"] = "curated",
    transform=None,
) -> EvalDataset:
    """``Food101``, ``OxfordIIITPet``, ``DTD``, ``Flowers102``, ``EuroSAT``, ``CIFAR10``, ``CIFAR100``, ``Places365``.

    ``names``: ``curated`` (CLIP's curated class names) or ``raw`` (torchvision's, ``_`` as spaces).
    Images are opened with :func:`~descbench.datasets.base.load_image` wherever torchvision
    takes a loader (16-bit, palette, alpha and CMYK files converted as it says).
    """
    if not hasattr(tvd, name):
        raise DatasetError(f"unknown torchvision dataset {name!r} (dataset.name)")
    if names not in ("curated", "raw"):
        raise DatasetError(f"dataset.builder.names must be curated or raw, got {names!r}")
    cls = getattr(tvd, name)
    kwargs = {"root": root, "download": download}
    if name in ("CIFAR10", "CIFAR100"):
        kwargs["train"] = split == "train"
    elif name == "Places365":
        kwargs["split"] = "val" if split == "test" else split
        kwargs["small"] = True
    elif name != "EuroSAT":
        kwargs["split"] = split
    if "loader" in inspect.signature(cls.__init__).parameters:
        kwargs["loader"] = load_image
    if not download and not Path(root).is_dir():
        raise DatasetError(
            f"dataset {name}: root folder not found: {root} (set dataset.builder.root, or dataset.builder.download=true)"
        )
    try:
        base = cls(**kwargs)
    except (RuntimeError, FileNotFoundError) as err:
        raise DatasetError(
            f"dataset {name}: {root} does not hold it in torchvision's layout ({err}); "
            "point dataset.builder.root at the folder torchvision would download into, or set "
            "dataset.builder.download=true"
        ) from err
    if len(base) == 0:
        raise DatasetError(f"dataset {name}: split {split!r} under {root} holds no image: check dataset.builder.split")
    ids = _class_ids(name, base)
    classes, origin = _class_names(name, ids, names)
    ds = EvalDataset(
        name=name.lower(),
        classes=classes,
        base=base,
        split=split,
        transform=transform,
        class_ids=ids,
        provenance={
            "class_names": origin,
            "image_loader": "descbench load_image" if "loader" in kwargs else f"torchvision {name}'s own",
            "alpha": f"composited on {ALPHA_BACKGROUND}" if "loader" in kwargs else "torchvision's convert('RGB')",
        },
    )
    samples = getattr(base, "_image_files", None)
    if samples is not None:
        ds.sample_ids = lambda: [str(p) for p in samples]
    return ds
