"""REC types shared by readers, the engine and the tasks: one referring expression, a data set of them,
and the checks every reader applies (boxes clipped to the image, empty candidates dropped and counted).

Bad boxes are **clipped** to the image; candidate boxes with non-positive size after clipping are
**dropped** and counted (``stats["boxes_dropped"]``, one warning with the count); a gold box empty
after clipping, or an expression left with no candidate, is an error. An expression with a single
candidate is kept (trivially correct when it is the gold box) and counted (``stats["single_candidate"]``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from descbench.core.errors import RecDataError
from descbench.core.images import ImagesById
from descbench.core.measures import name_segment_problem
from descbench.core.subsets import keep_first

log = logging.getLogger("descbench")

SPLITS = ("val", "testA", "testB", "test")


@dataclass
class RefExpression:
    """One referring expression: its image, text, candidate boxes (xywh) and gold box.

    ``extra_gold`` holds further gold boxes when the annotation names several (a JSON-lines record
    with a list of ``ann_id``): a pick is correct when its IoU with any gold box is above 0.5.
    """

    image_id: str
    expression: str
    boxes: list[list[float]]
    gold_box: list[float]
    split: str
    ref_id: int | str | None = None
    ann_id: int | str | list | None = None
    extra_gold: list[list[float]] = field(default_factory=list)

    @property
    def gold_boxes(self) -> list[list[float]]:
        return [self.gold_box, *self.extra_gold]


class RecDataset(ImagesById):
    """A REC evaluation set: ``expressions``, ``load_image(image_id)``, ``name``, ``proposals``.

    ``proposals`` is ``gt`` (the images' gold boxes) or ``detector``; ``proposal_info`` says more for the
    results (a detector file's path, sha256 and layout).

    ``image_loader`` maps an image id to an RGB PIL image; ``describe_image`` names the file for
    error messages. Subclasses (the collages) may override :meth:`load_image` instead.
    """

    image_error = RecDataError

    def __init__(
        self,
        name: str,
        expressions: list[RefExpression],
        image_loader: Callable[[str], Image.Image] | None = None,
        proposals: str = "gt",
        stats: Mapping[str, int] | None = None,
        describe_image: Callable[[str], str] | None = None,
        paths: Mapping[str, Path] | None = None,
        proposal_info: Mapping[str, object] | None = None,
    ) -> None:
        for split in dict.fromkeys(e.split for e in expressions):
            problem = name_segment_problem(split)
            if problem:
                raise RecDataError(
                    f"data set {name}: split name {split!r} {problem}: split names are result key segments "
                    "(acc.<split>); rename the split"
                )
        self.name = name
        self.expressions = expressions
        self.proposals = proposals
        self.stats = dict(stats or {})
        self._image_loader = image_loader
        self._describe = describe_image
        self.paths = dict(paths) if paths is not None else None
        self.proposal_info = dict(proposal_info or {"source": proposals})

    def __len__(self) -> int:
        return len(self.expressions)

    def image_paths(self, image_ids: Sequence[str]) -> list[str] | None:
        """The files of ``image_ids`` (None for generated data sets): they tie cached features to the files."""
        if self.paths is None:
            return None
        return [str(self.paths[i]) for i in image_ids]

    @property
    def splits(self) -> list[str]:
        """The splits present, in first-seen order."""
        return list(dict.fromkeys(e.split for e in self.expressions))

    def limited(self, count: int | None) -> RecDataset:
        """The first ``count`` expressions (all when None)."""
        return keep_first(self, "expressions", count)


# ---------------------------------------------------------------------------- validation


def check_expressions(
    raw: Iterable[RefExpression],
    image_size: Callable[[str], tuple[int, int]],
    source: str,
    whole_image_fallback: bool = False,
) -> tuple[list[RefExpression], dict[str, int]]:
    """Clip boxes to the image, drop empty candidates, refuse empty texts/gold boxes/candidate lists.

    ``whole_image_fallback`` (detector proposals): an expression whose image the detector gave no box
    gets the whole-image box as its one candidate, as ReCLIP does; counted in ``whole_image_fallback``.
    """
    out: list[RefExpression] = []
    stats = {"boxes_clipped": 0, "boxes_dropped": 0, "single_candidate": 0, "whole_image_fallback": 0}
    for e in raw:
        ident = _ident(e)
        text = " ".join(str(e.expression).split())
        if not text:
            raise RecDataError(f"{source}: {ident} has an empty expression: remove it or fix its sentence")
        size = image_size(e.image_id)
        if not e.boxes and whole_image_fallback:
            stats["whole_image_fallback"] += 1
            e = replace(e, boxes=[[0.0, 0.0, float(size[0]), float(size[1])]])
        boxes = []
        for box in e.boxes:
            clipped = clip_box(box, size)
            if clipped is None:
                stats["boxes_dropped"] += 1
                continue
            stats["boxes_clipped"] += clipped != [float(v) for v in box]
            boxes.append(clipped)
        gold = clip_box(e.gold_box, size)
        extra = [clip_box(b, size) for b in e.extra_gold]
        if gold is None or any(b is None for b in extra):
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
        out.append(replace(e, expression=text, boxes=boxes, gold_box=gold, extra_gold=extra))
    if not out:
        raise RecDataError(
            f"{source} gives no referring expression to evaluate (a record with an empty sentence list gives none, "
            "and so does an empty file): check the file and dataset.builder.split"
        )
    if stats["boxes_dropped"] or stats["boxes_clipped"]:
        log.warning(
            "%s: %d candidate boxes clipped to their image, %d dropped (no area inside it)",
            source,
            stats["boxes_clipped"],
            stats["boxes_dropped"],
        )
    if stats["whole_image_fallback"]:
        log.warning(
            "%s: %d expressions have no detector box for their image: the whole image is their one candidate",
            source,
            stats["whole_image_fallback"],
        )
    if stats["single_candidate"]:
        log.info("%s: %d expressions have a single candidate (kept)", source, stats["single_candidate"])
    return out, stats


def clip_box(box: Sequence[float], size: tuple[int, int], tol: float = 1e-6) -> list[float] | None:
    """``box`` (xywh) clipped to an image of ``size`` (w, h); None when no positive area is left.

    A box inside the image (up to ``tol`` pixels of float round-off) is returned unchanged, so that
    clipping is only counted for boxes that really leave their image.
    """
    x, y, w, h = parse_box(box)
    width, height = float(size[0]), float(size[1])
    if x >= -tol and y >= -tol and x + w <= width + tol and y + h <= height + tol and w > 0 and h > 0:
        return [x, y, w, h]
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, width), min(y + h, height)
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return [x0, y0, x1 - x0, y1 - y0]


def parse_box(value: object, where: str = "") -> list[float]:
    """``value`` as ``[x, y, w, h]``: exactly four finite numbers (a string such as ``'7030'`` is refused)."""
    ok = isinstance(value, (list, tuple)) and len(value) == 4
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if not ok:
        at = f"{where}: " if where else ""
        raise RecDataError(f"{at}box {value!r} is not [x, y, w, h] (four finite numbers in pixels)")
    return [float(v) for v in value]


def _ident(e: RefExpression) -> str:
    parts = [f"image {e.image_id}"]
    if e.ref_id is not None:
        parts.append(f"ref {e.ref_id}")
    if e.ann_id is not None:
        parts.append(f"ann {e.ann_id}")
    return "expression of " + ", ".join(parts)
