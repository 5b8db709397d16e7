"""Keypoints of the shapes world: objects with named points whose answer is known by construction.

Two designs, both read from ``keypoints.yaml``:

- ``figures``: objects made of parts ("traffic light": red, yellow and green light; "face": left eye,
  right eye, nose, mouth; "car"; "totem"); a keypoint is the centre of a part's exact drawn box.
  The part names say what the part looks like ("red light"), except for left/right pairs that look
  the same ("left wheel", "right wheel"), which only position tells apart.
- ``corners``: one shape filling the instance box; the keypoints are its corners/tips/ends
  ("the top of the triangle", "the left end of the bar"), at the exact polygon vertices.

Instance ``k`` is drawn from ``numpy.random.default_rng([seed, k])`` (any instance can be rebuilt
on its own: workers, DDP ranks); categories cycle in file order so each has the same count.

Measured with the shipped known-answer model (``python -m descbench.eval task=keypoints``: circle of
radius 0.25 x max(box w, h) around each candidate, "a photo of the {part} of a {category}", 96 instances,
seed 11, PCK@0.1): ``figures`` PCK 0.6955 vs chance 0.3077 (312 queries), naming (``task.mode=naming``)
0.6122, left/right-merged 0.7083 vs 0.3974; the traffic lights 1.00, the left/right pairs near a blind
pick between the two. ``corners``: PCK 0.270 vs chance 0.278 (the model never
learnt "top" or "tip" of a shape: at chance, as expected).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from descbench.core.errors import ConfigError
from descbench.core.marking.points import KeypointInstance
from descbench.world.lexicon import BACKGROUNDS, COLOURS
from descbench.world.rendering import paint_object, render_scene, shape_vertices

KEYPOINTS_FILE = Path(__file__).with_name("figures.yaml")
DESIGNS = ("figures", "corners")


@lru_cache(maxsize=1)
def keypoint_categories() -> dict[str, dict[str, dict]]:
    """The two designs of ``keypoints.yaml``: ``{design: {category: spec}}``."""
    return yaml.safe_load(KEYPOINTS_FILE.read_text())


def category_parts(design: str) -> dict[str, list[str]]:
    """Each category's part names in file order."""
    table = _design(design)
    key = "parts" if design == "figures" else "points"
    return {name: list(spec[key]) for name, spec in table.items()}


def _design(design: str) -> dict[str, dict]:
    if design not in DESIGNS:
        raise ConfigError(
            f"unknown keypoint design {design!r} of the shapes world (dataset.builder.design): "
            f"use one of {', '.join(DESIGNS)}"
        )
    return keypoint_categories()[design]


def _empty_canvas(rng: np.random.Generator, image_size: int) -> np.ndarray:
    """A float canvas of a random background tone, drawn as the world's scenes draw theirs."""
    tone = BACKGROUNDS[int(rng.integers(2))]
    scene = render_scene([], rng, background=tone, image_size=image_size, noise=0.0)
    return np.asarray(scene.image, dtype=np.float64).copy()


def _figure_size(aspect: float, longest: int) -> tuple[int, int]:
    if aspect >= 1:
        return longest, max(4, round(longest / aspect))
    return max(4, round(longest * aspect)), longest


def _union(boxes: list[tuple[int, int, int, int]]) -> list[float]:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def _place(size: tuple[int, int], image_size: int, rng: np.random.Generator) -> tuple[int, int]:
    w, h = size
    return int(rng.integers(1, max(2, image_size - w))), int(rng.integers(1, max(2, image_size - h)))


def draw_figure(
    category: str, rng: np.random.Generator, image_size: int = 64, noise: float = 3.0
) -> tuple[Image.Image, KeypointInstance]:
    """One figure of ``category`` on its own canvas: the image and the instance (part centres)."""
    spec = _design("figures")[category]
    canvas = _empty_canvas(rng, image_size)
    longest = round(int(rng.integers(42, 57)) * image_size / 64)
    fw, fh = _figure_size(float(spec.get("aspect", 1.0)), longest)
    fx, fy = _place((fw, fh), image_size, rng)
    drawn = []
    if spec.get("body"):
        body = spec["body"]
        box = _part_box(body, fx, fy, fw, fh)
        drawn.append(paint_object(canvas, body["shape"], body["colour"], body.get("pattern", "plain"), box, rng))
    points: dict[str, tuple[float, float]] = {}
    for name, part in spec["parts"].items():
        box = _part_box(part, fx, fy, fw, fh)
        x, y, w, h = paint_object(canvas, part["shape"], part["colour"], part.get("pattern", "plain"), box, rng)
        drawn.append((x, y, w, h))
        points[name] = (x + w / 2, y + h / 2)
    image = _finish(canvas, rng, noise)
    return image, KeypointInstance("", category, _union(drawn), points)


def _part_box(part: dict, fx: int, fy: int, fw: int, fh: int) -> tuple[int, int, int, int]:
    u, v, du, dv = (float(t) for t in part["box"])
    x, y = fx + round(u * fw), fy + round(v * fh)
    return x, y, max(3, round(du * fw)), max(3, round(dv * fh))


def draw_corners(
    category: str, rng: np.random.Generator, image_size: int = 64, noise: float = 3.0
) -> tuple[Image.Image, KeypointInstance]:
    """One shape of ``category`` on its own canvas with its named corners/tips/ends as keypoints."""
    spec = _design("corners")[category]
    shape = spec.get("shape", category)
    canvas = _empty_canvas(rng, image_size)
    colour = COLOURS[int(rng.integers(len(COLOURS)))]
    longest = round(int(rng.integers(40, 57)) * image_size / 64)
    w, h = _figure_size(float(spec.get("aspect", 1.0)), longest)
    x, y = _place((w, h), image_size, rng)
    box = paint_object(canvas, shape, colour, "plain", (x, y, w, h), rng)
    vertices = shape_vertices(shape)
    points: dict[str, tuple[float, float]] = {}
    for name, where in spec["points"].items():
        if "vertex" in where:
            u, v = (float(t) for t in vertices[int(where["vertex"])])
        else:
            u, v = (float(t) for t in where["at"])
        # the shape is drawn at 2x with its vertices on pixel centres, then averaged down
        points[name] = (x + (u * (2 * w - 1) + 0.5) / 2, y + (v * (2 * h - 1) + 0.5) / 2)
    image = _finish(canvas, rng, noise)
    return image, KeypointInstance("", category, [float(t) for t in box], points)


def _finish(canvas: np.ndarray, rng: np.random.Generator, noise: float) -> Image.Image:
    if noise:
        canvas += rng.normal(0, noise, canvas.shape)
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))


class ShapesKeypoints:
    """``num_instances`` seeded instances of one design; ``instances`` and ``load_image(image_id)``."""

    def __init__(self, design: str = "figures", num_instances: int = 96, seed: int = 11, image_size: int = 64) -> None:
        self.design, self.seed, self.image_size = design, seed, image_size
        self.parts = category_parts(design)
        categories = list(self.parts)
        draw = draw_figure if design == "figures" else draw_corners
        self._images: dict[str, Image.Image] = {}
        self.instances: list[KeypointInstance] = []
        for k in range(num_instances):
            image_id = f"shapes-kp-{design}-{seed}-{k:05d}"
            image, instance = draw(categories[k % len(categories)], np.random.default_rng([seed, k]), image_size)
            self._images[image_id] = image
            self.instances.append(
                KeypointInstance(image_id, instance.category, instance.box, instance.keypoints, "val", str(k))
            )

    def load_image(self, image_id: str) -> Image.Image:
        return self._images[image_id]
