"""torchvision datasets read from a local root; never downloaded unless asked."""

from __future__ import annotations

from pathlib import Path

import torchvision.datasets as tvd

from descbench.datasets.base import DatasetError, EvalDataset


def load_torchvision(name: str, root: str, split: str = "test", download: bool = False, transform=None) -> EvalDataset:
    """``Food101``, ``OxfordIIITPet``, ``DTD``, ``Flowers102``, ``EuroSAT``, ``CIFAR10``, ``CIFAR100``, ``Places365``."""
    if not hasattr(tvd, name):
        raise DatasetError(f"unknown torchvision dataset {name!r} (dataset.name)")
    cls = getattr(tvd, name)
    kwargs = {"root": root, "download": download}
    if name in ("CIFAR10", "CIFAR100"):
        kwargs["train"] = split == "train"
    elif name == "Places365":
        kwargs["split"] = "val" if split == "test" else split
        kwargs["small"] = True
    elif name != "EuroSAT":
        kwargs["split"] = split
    if not download and not Path(root).is_dir():
        raise DatasetError(
            f"dataset {name}: root folder not found: {root} (set dataset.root, or dataset.download=true)"
        )
    try:
        base = cls(**kwargs)
    except (RuntimeError, FileNotFoundError) as err:
        raise DatasetError(
            f"dataset {name}: {root} does not hold it in torchvision's layout ({err}); "
            "point dataset.root at the folder torchvision would download into, or set dataset.download=true"
        ) from err
    classes = getattr(base, "classes", None)
    if not classes:
        raise DatasetError(f"dataset {name} exposes no class names")
    names = [c.replace("_", " ").split("/")[-1] if name == "Places365" else c.replace("_", " ") for c in classes]
    samples = getattr(base, "_image_files", None)
    ds = EvalDataset(name=name.lower(), classes=names, base=base, split=split, transform=transform)
    if samples is not None:
        ds.sample_ids = lambda: [str(p) for p in samples]
    return ds
