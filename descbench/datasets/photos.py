"""The real photographs that ship inside scikit-image, as a small labelled set (random-weight pipeline check)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import numpy as np
import yaml
from PIL import Image, ImageOps

from descbench.datasets.base import EvalDataset


@cache
def photo_table() -> dict[str, dict]:
    """The shipped photo list (``data/photos.yaml``): ``classify`` {loader: class}, ``collages`` {loader: expressions}."""
    return yaml.safe_load(resources.files("descbench.datasets").joinpath("photos.yaml").read_text())


@cache
def load_photo(loader: str) -> Image.Image:
    """A scikit-image photograph as an RGB PIL image (shipped with the wheel, never downloaded)."""
    import skimage.data

    array = getattr(skimage.data, loader)()
    if isinstance(array, tuple):  # stereo_motorcycle: (left, right, disparity)
        array = array[0]
    if array.dtype == bool:
        array = np.where(array, 0, 255).astype(np.uint8)  # the horse is a black silhouette on white
    return Image.fromarray(array).convert("RGB")


class _Views:
    """``views`` deterministic crops/flips of each photo."""

    def __init__(self, views: int) -> None:
        self.views = views
        self.photos = [load_photo(loader) for loader in photo_table()["classify"]]

    def __len__(self) -> int:
        return len(self.photos) * self.views

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        label, view = divmod(index, self.views)
        image = self.photos[label]
        w, h = image.size
        scale = 1.0 - 0.08 * (view % 4)
        cw, ch = int(w * scale), int(h * scale)
        left = (w - cw) * ((view * 37) % 11) // 10
        top = (h - ch) * ((view * 53) % 7) // 6
        image = image.crop((left, top, left + cw, top + ch))
        if view % 2:
            image = ImageOps.mirror(image)
        return image, label


def load_photos(views: int = 6, transform=None) -> EvalDataset:
    """12 classes x ``views`` views of the scikit-image photographs; ships word descriptors."""
    notes = json.loads(resources.files("descbench.datasets").joinpath("photos_descriptors.json").read_text())
    return EvalDataset(
        name="photos",
        classes=list(photo_table()["classify"].values()),
        base=_Views(views),
        transform=transform,
        native={"words": notes["words"], "sentences": notes["sentences"]},
        sample_ids=lambda: [f"{loader}:{v}" for loader in photo_table()["classify"] for v in range(views)],
    )
