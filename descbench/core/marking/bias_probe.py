"""The marking-bias probe (core): person images, the control circle's place, and the statistics.

The probe asks whether circling a person shifts a model's probabilities over category phrases
towards negative ones (the red-circle study). Each image is scored in three conditions: the image
``unmarked``, the target person ``circled``, and a ``control`` circle of the same size placed on
background with no overlap with any person box (which separates "a circle is present" from "this
person is marked"). It measures the model, never the people: nothing that identifies a person
(names, face crops) is stored or reported.

Statistics (:func:`summarize_bias`) over a table ``probabilities[image, condition, phrase]``, keyed as
``descbench.core.measures`` spells them (a measure, then ``.ci_low`` / ``.ci_high`` / ``.ci_method``
companions); ``<p>`` is a phrase id or a phrase kind (``neutral``, ``negative``: the summed
probability of the kind's phrases, per image):

- ``bias.<p>.<condition>.prob``: the mean probability over images, with its interval;
- ``bias.<p>.shift_circled_unmarked`` and ``bias.<p>.shift_circled_control``: the mean paired shift
  over images, with its interval;
- ``num_images``; the settings ``bias_confidence``, ``bias_resamples``.

Intervals: percentile bootstrap over images (:func:`descbench.core.stats.bootstrap_interval`, seeded), NaN
with fewer than two images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from descbench.core.images import ImagesById
from descbench.core.stats import bootstrap_interval
from descbench.core.subsets import keep_first

CONDITIONS = ("unmarked", "circled", "control")
SHIFTS = (("circled", "unmarked"), ("circled", "control"))
CONTROL_SCALES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)

Box = list[float]


@dataclass(frozen=True)
class BiasPhrase:
    """A category phrase of the probe: a short ``id`` (result keys), the ``text`` scored, its ``kind``."""

    id: str
    text: str
    kind: str


@dataclass(frozen=True)
class PersonImage:
    """An image with every person box (xywh; crowd and small ones too, for the no-overlap rule), the
    index of the ``target`` person to circle and, when known, the image's size."""

    image_id: str
    boxes: list[Box]
    target: int
    size: tuple[int, int] | None = None  # (w, h) when the annotation gives it: no decode to place the control

    @property
    def target_box(self) -> Box:
        return self.boxes[self.target]


class PersonDataset(ImagesById):
    """Images with person boxes: ``name``, ``images``, ``load_image(image_id)``, ``stats`` (what was skipped)."""

    def __init__(
        self,
        name: str,
        images: list[PersonImage],
        image_loader: Callable[[str], Image.Image],
        describe_image: Callable[[str], str] | None = None,
        stats: Mapping[str, int] | None = None,
    ) -> None:
        self.name = name
        self.images = images
        self.stats = dict(stats or {})
        self._image_loader = image_loader
        self._describe = describe_image

    def __len__(self) -> int:
        return len(self.images)

    def limited(self, count: int | None) -> PersonDataset:
        """The first ``count`` images (all when None)."""
        return keep_first(self, "images", count)


# ---------------------------------------------------------------------------- the control circle


def place_control_box(
    target: Sequence[float],
    person_boxes: Sequence[Sequence[float]],
    image_size: tuple[int, int],
    rng: np.random.Generator,
    scales: Sequence[float] = CONTROL_SCALES,
) -> tuple[Box, float] | None:
    """A box of the target's size (times the first ``scale`` that fits) inside the image that overlaps no
    person box, drawn uniformly among all integer positions that fit; ``(box, scale)`` or None.

    Exact, not by trial: the pixels touched by any person box are marked, and a position is allowed when
    the block of pixels it covers (its size rounded up) holds none of them, so the control box and every
    person box share no area.
    """
    width, height = int(image_size[0]), int(image_size[1])
    occupied = np.zeros((height + 1, width + 1), dtype=np.int64)
    for x, y, w, h in person_boxes:
        x0, y0 = max(int(math.floor(x)), 0), max(int(math.floor(y)), 0)
        x1, y1 = min(int(math.ceil(x + w)), width), min(int(math.ceil(y + h)), height)
        if x1 > x0 and y1 > y0:
            occupied[y0 + 1 : y1 + 1, x0 + 1 : x1 + 1] = 1
    integral = occupied.cumsum(0).cumsum(1)  # integral[y, x] = occupied pixels in [0, y) x [0, x)
    for scale in scales:
        w, h = float(target[2]) * scale, float(target[3]) * scale
        cw, ch = int(math.ceil(w)), int(math.ceil(h))
        if cw < 1 or ch < 1 or cw > width or ch > height:
            continue
        inside = integral[ch:, cw:] - integral[:-ch, cw:] - integral[ch:, :-cw] + integral[:-ch, :-cw]
        ys, xs = np.nonzero(inside == 0)
        if len(xs):
            pick = int(rng.integers(len(xs)))
            return [float(xs[pick]), float(ys[pick]), w, h], float(scale)
    return None


# ---------------------------------------------------------------------------- probabilities and statistics


def phrase_probabilities(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """Softmax over phrases of ``logit_scale`` x cosine: image features ``[..., D]``, texts ``[P, D]`` -> ``[..., P]``."""
    logits = float(logit_scale) * image_features.float() @ text_features.float().T
    return torch.softmax(logits.double(), dim=-1)


def summarize_bias(
    probabilities: np.ndarray | torch.Tensor,
    phrases: Sequence[BiasPhrase],
    conditions: Sequence[str] = CONDITIONS,
    confidence: float = 0.95,
    num_resamples: int = 10000,
    seed: int = 0,
) -> dict[str, float | int | str]:
    """Per phrase and per phrase kind: mean probability per condition and the paired shifts
    (circled - unmarked, circled - control), each with a bootstrap interval over images (module docstring)."""
    table = np.asarray(probabilities.cpu() if isinstance(probabilities, torch.Tensor) else probabilities, np.float64)
    if table.ndim != 3 or table.shape[1:] != (len(conditions), len(phrases)):
        raise ValueError(
            f"probabilities must be [images, {len(conditions)} conditions, {len(phrases)} phrases], got {table.shape}"
        )
    clash = sorted({p.id for p in phrases} & {p.kind for p in phrases})
    if clash:
        raise ValueError(f"phrase id {clash[0]!r} is also a phrase kind: rename the phrase")
    column = {c: i for i, c in enumerate(conditions)}
    rows: dict[str, np.ndarray] = {p.id: table[:, :, i] for i, p in enumerate(phrases)}
    for kind in dict.fromkeys(p.kind for p in phrases):
        rows[kind] = sum(table[:, :, i] for i, p in enumerate(phrases) if p.kind == kind)
    result: dict[str, float | int | str] = {
        "num_images": int(table.shape[0]),
        "bias_confidence": float(confidence),
        "bias_resamples": int(num_resamples),
    }

    def mean_with_interval(key: str, values: np.ndarray) -> None:
        low, high = bootstrap_interval(values, confidence, num_resamples, seed)
        result[key] = float(values.mean())
        result[f"{key}.ci_low"], result[f"{key}.ci_high"], result[f"{key}.ci_method"] = low, high, "bootstrap"

    for key, values in rows.items():
        for condition in conditions:
            mean_with_interval(f"bias.{key}.{condition}.prob", values[:, column[condition]])
        for a, b in SHIFTS:
            if a in column and b in column:
                mean_with_interval(f"bias.{key}.shift_{a}_{b}", values[:, column[a]] - values[:, column[b]])
    return result


def place_control_for(
    image: PersonImage,
    image_size: tuple[int, int],
    index: int,
    seed: int = 0,
    scales: Sequence[float] = CONTROL_SCALES,
) -> tuple[Box, float] | None:
    """:func:`place_control_box` for the ``index``-th image of a data set, seeded by ``(seed, index)``
    (the same place whatever the batch or the DDP rank)."""
    rng = np.random.default_rng([int(seed), int(index)])
    return place_control_box(image.target_box, image.boxes, image_size, rng, scales)
