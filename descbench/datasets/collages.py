"""The embedded REC demo: seeded collages of scikit-image's real photographs with exact tile boxes.

Each canvas holds 2-4 different photographs pasted side by side without overlap (one tile per
cell of a 2x2 grid, random size and offset inside its cell); each tile is referred to by one or
more expressions ("a cat", "the rocket", ...). Canvases are assigned to the splits val, testA,
testB in turn. With random-weight models this is a pipeline check on real photos.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from descbench.core.marking.expressions import RecDataset, RefExpression, check_expressions
from descbench.datasets.photos import load_photo, photo_table

COLLAGE_SPLITS = ("val", "testA", "testB")


class Collages(RecDataset):
    """``num_canvases`` seeded collages of ``canvas_size`` px with ``tiles`` (min, max) tiles each."""

    def __init__(
        self,
        num_canvases: int = 12,
        seed: int = 0,
        canvas_size: int = 320,
        tiles: Sequence[int] = (2, 4),
        expressions_per_tile: Sequence[int] = (1, 2),
        photos: Sequence[str] | None = None,
    ) -> None:
        self.seed, self.canvas_size = seed, canvas_size
        table = photo_table()["collages"]
        self.photos = list(photos or table)
        unknown = [p for p in self.photos if p not in table]
        if unknown:
            raise ValueError(f"unknown collage photos {unknown}: choose from {', '.join(table)}")
        lo, hi = int(tiles[0]), int(tiles[1])
        if not 1 <= lo <= hi <= min(4, len(self.photos)):
            raise ValueError(f"tiles={list(tiles)}: need 1 <= min <= max <= {min(4, len(self.photos))}")
        self.layouts: dict[str, list[tuple[str, list[float]]]] = {}
        raw = []
        for k in range(num_canvases):
            rng = np.random.default_rng([seed, k])
            image_id = f"collage-{seed}-{k:04d}"
            chosen = [self.photos[i] for i in rng.permutation(len(self.photos))[: int(rng.integers(lo, hi + 1))]]
            cells = rng.permutation(4)[: len(chosen)]
            layout = [(photo, self._place(photo, int(cell), rng)) for photo, cell in zip(chosen, cells)]
            self.layouts[image_id] = layout
            boxes = [box for _, box in layout]
            split = COLLAGE_SPLITS[k % len(COLLAGE_SPLITS)]
            for t, (photo, box) in enumerate(layout):
                count = int(rng.integers(expressions_per_tile[0], expressions_per_tile[1] + 1))
                for text in rng.permutation(table[photo])[:count]:
                    raw.append(RefExpression(image_id, str(text), boxes, box, split, ann_id=f"{image_id}/{t}"))
        size = (canvas_size, canvas_size)
        expressions, stats = check_expressions(raw, lambda _: size, "collages")
        super().__init__(name="collages", expressions=expressions, proposals="gt", stats=stats)

    def _place(self, photo: str, cell: int, rng: np.random.Generator) -> list[float]:
        half = self.canvas_size // 2
        w, h = load_photo(photo).size
        scale = float(rng.uniform(0.6, 0.95)) * half / max(w, h)
        tw, th = max(8, int(round(w * scale))), max(8, int(round(h * scale)))
        x = (cell % 2) * half + int(rng.integers(0, half - tw + 1))
        y = (cell // 2) * half + int(rng.integers(0, half - th + 1))
        return [float(x), float(y), float(tw), float(th)]

    def load_image(self, image_id: str) -> Image.Image:
        """The canvas: a grey background with each photograph resized into its exact box."""
        canvas = Image.new("RGB", (self.canvas_size, self.canvas_size), (128, 128, 128))
        for photo, (x, y, w, h) in self.layouts[image_id]:
            canvas.paste(load_photo(photo).resize((int(w), int(h)), Image.BICUBIC), (int(x), int(y)))
        return canvas

    def describe_image(self, image_id: str) -> str:
        return f"collage {image_id}"


def load_collages(
    num_canvases: int = 12,
    seed: int = 0,
    canvas_size: int = 320,
    tiles: Sequence[int] = (2, 4),
    expressions_per_tile: Sequence[int] = (1, 2),
) -> Collages:
    """The embedded REC demo set (see :class:`Collages`)."""
    return Collages(num_canvases, seed, canvas_size, list(tiles), list(expressions_per_tile))
