"""REC types shared by readers, the engine and the tasks: one referring expression, a data set of them,
and the checks every reader applies (boxes clipped to the image, empty candidates dropped and counted).

Bad boxes are **clipped** to the image; candidate boxes with non-positive size after clipping are
**dropped** and counted (``stats["boxes_dropped"]``, one warning with the count); a gold box empty
after clipping, or an expression left with no candidate, is an error. An expression with a single
candidate is kept (trivially correct when it is the gold box) and counted (``stats["single_candidate"]``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from PIL import Image

from descbench.errors import RecDataError

log = logging.getLogger("descbench")

SPLITS = ("val", "testA", "testB", "test")


@dataclass
class RefExpression:
    """One referring expression: its image, text, candidate boxes (xywh) and gold box."""

    image_id: str
    expression: str
    boxes: list[list[float]]
    gold_box: list[float]
    split: str
    ref_id: int | str | None = None
    ann_id: int | str | None = None


class RecDataset:
    """A REC evaluation set: ``expressions``, ``load_image(image_id)``, ``name``, ``proposals``.

    ``image_loader`` maps an image id to an RGB PIL image; ``describe_image`` names the file for
    error messages. Subclasses (the collages) may override :meth:`load_image` instead.
    """

    def __init__(
        self,
        name: str,
        expressions: list[RefExpression],
        image_loader: Callable[[str], Image.Image] | None = None,
        proposals: str = "gt",
        stats: Mapping[str, int] | None = None,
        describe_image: Callable[[str], str] | None = None,
    ) -> None:
        self.name = name
        self.expressions = expressions
        self.proposals = proposals
        self.stats = dict(stats or {})
        self._image_loader = image_loader
        self._describe = describe_image

    def __len__(self) -> int:
        return len(self.expressions)

    def load_image(self, image_id: str) -> Image.Image:
        """The RGB image ``image_id``; a missing or unreadable file is a :class:`RecDataError` naming it."""
        if self._image_loader is None:
            raise NotImplementedError(f"{type(self).__name__} has no image loader")
        try:
            return self._image_loader(image_id).convert("RGB")
        except FileNotFoundError as err:
            raise RecDataError(f"image file not found: {err.filename or self.describe_image(image_id)}") from err
        except OSError as err:
            raise RecDataError(f"cannot read image {self.describe_image(image_id)}: {err}") from err

    def describe_image(self, image_id: str) -> str:
        return self._describe(image_id) if self._describe else f"image {image_id}"

    @property
    def splits(self) -> list[str]:
        """The splits present, in first-seen order."""
        return list(dict.fromkeys(e.split for e in self.expressions))

    def limited(self, count: int | None) -> RecDataset:
        """The first ``count`` expressions (all when None)."""
        if count is None or count >= len(self):
            return self
        if count < 1:
            raise RecDataError(f"dataset.limit must be >= 1, got {count}")
        subset = self._copy()
        subset.expressions = self.expressions[:count]
        return subset

    def _copy(self) -> RecDataset:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone


# ---------------------------------------------------------------------------- validation


def check_expressions(
    raw: Iterable[RefExpression], image_size: Callable[[str], tuple[int, int]], source: str
) -> tuple[list[RefExpression], dict[str, int]]:
    """Clip boxes to the image, drop empty candidates, refuse empty texts/gold boxes/candidate lists."""
    out: list[RefExpression] = []
    stats = {"boxes_clipped": 0, "boxes_dropped": 0, "single_candidate": 0}
    for e in raw:
        ident = _ident(e)
        text = " ".join(str(e.expression).split())
        if not text:
            raise RecDataError(f"{source}: {ident} has an empty expression: remove it or fix its sentence")
        size = image_size(e.image_id)
        boxes = []
        for box in e.boxes:
            clipped = clip_box(box, size)
            if clipped is None:
                stats["boxes_dropped"] += 1
                continue
            stats["boxes_clipped"] += clipped != [float(v) for v in box]
            boxes.append(clipped)
        gold = clip_box(e.gold_box, size)
        if gold is None:
            raise RecDataError(
                f"{source}: {ident} has gold box {list(e.gold_box)} with no area inside its "
                f"{size[0]}x{size[1]} image: fix the box (x, y, w, h in pixels) or drop the expression"
            )
        if not boxes:
            raise RecDataError(
                f"{source}: {ident} has no candidate box ({len(e.boxes)} given, none inside the "
                f"{size[0]}x{size[1]} image): check the proposals"
            )
        stats["single_candidate"] += len(boxes) == 1
        out.append(replace(e, expression=text, boxes=boxes, gold_box=gold))
    if stats["boxes_dropped"] or stats["boxes_clipped"]:
        log.warning(
            "%s: %d candidate boxes clipped to their image, %d dropped (no area inside it)",
            source,
            stats["boxes_clipped"],
            stats["boxes_dropped"],
        )
    if stats["single_candidate"]:
        log.info("%s: %d expressions have a single candidate (kept)", source, stats["single_candidate"])
    return out, stats


def clip_box(box: Sequence[float], size: tuple[int, int]) -> list[float] | None:
    """``box`` (xywh) clipped to an image of ``size`` (w, h); None when no positive area is left."""
    if len(box) != 4:
        raise RecDataError(f"box {list(box)} is not [x, y, w, h]")
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(size[0])), min(y + h, float(size[1]))
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return [x0, y0, x1 - x0, y1 - y0]


def _ident(e: RefExpression) -> str:
    parts = [f"image {e.image_id}"]
    if e.ref_id is not None:
        parts.append(f"ref {e.ref_id}")
    if e.ann_id is not None:
        parts.append(f"ann {e.ann_id}")
    return "expression of " + ", ".join(parts)
