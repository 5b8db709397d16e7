"""Rendering of the shapes world: seeded canvases, objects with exact boxes, and markings.

Objects are drawn at twice the size and averaged down (cheap anti-aliasing); each
object's box ``[x, y, w, h]`` is the tight box of its non-zero pixels, so it is exact
by construction. Every function takes a ``numpy.random.Generator``; nothing reads
global random state. What is *said* about a canvas (noun phrases, captions, training
examples) lives in :mod:`descbench.world.captions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from descbench.world.lexicon import BACKGROUNDS, COLOURS, HPOS, PATTERNS, RGB, SECOND_COLOUR, SHAPES, VPOS

MARK_RGB = (230, 20, 20)
#: the named colours a training canvas's ellipse can take (``train --mark-colour``); red is the shipped recipe's
MARK_COLOURS = {"red": MARK_RGB, "green": (20, 200, 40), "blue": (30, 60, 230), "yellow": (235, 215, 20)}
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class MarkingStyle:
    """How the ellipse of a marked canvas is drawn: its colour and the ranges its width (px at a 64 px
    canvas, inclusive), scale (of the box's half-axes) and margin (px) are drawn from.

    The default is the shipped model's training recipe; the emergence study varies colour and width so that
    the marking seen in training and the one drawn at test can differ.
    """

    colour: tuple[int, int, int] = MARK_RGB
    widths: tuple[int, int] = (1, 2)
    scales: tuple[float, float] = (1.0, 1.45)
    margins: tuple[float, float] = (0.5, 3.0)

    def draw(self, rng: np.random.Generator) -> dict:
        """One ellipse's options for :func:`draw_marking` (width, scale, margin drawn in that order)."""
        return {
            "width": int(rng.integers(self.widths[0], self.widths[1] + 1)),
            "scale": float(rng.uniform(*self.scales)),
            "margin": float(rng.uniform(*self.margins)),
            "colour": tuple(self.colour),
        }

    def describe(self) -> str:
        """The style in words, as the model card states it ("red (230, 20, 20), 1-2 px, scale 1.0-1.45")."""
        name = next((n for n, rgb in MARK_COLOURS.items() if tuple(rgb) == tuple(self.colour)), "")
        lo, hi = self.widths
        width = f"{lo} px" if lo == hi else f"{lo}-{hi} px"
        return f"{name} {tuple(self.colour)}, {width}, scale {self.scales[0]}-{self.scales[1]} of the box".strip()


DEFAULT_MARKING = MarkingStyle()


@dataclass
class WorldObject:
    """One drawn object: its attributes and exact box ``(x, y, w, h)`` in pixels."""

    shape: str
    colour: str
    pattern: str
    size: str
    box: Box = (0, 0, 0, 0)

    def attributes(self, background: str, image_size: int | tuple[int, int] = 64) -> dict[str, str]:
        """All attribute values of the object on its canvas of ``image_size`` (side, or (w, h));
        position from its box centre."""
        width, height = (image_size, image_size) if isinstance(image_size, int) else image_size
        x, y, w, h = self.box
        cx, cy = (x + w / 2) / width, (y + h / 2) / height
        return {
            "shape": self.shape,
            "colour": self.colour,
            "pattern": self.pattern,
            "size": self.size,
            "hpos": HPOS[min(int(cx * 3), 2)],
            "vpos": VPOS[min(int(cy * 3), 2)],
            "background": background,
        }


@dataclass
class Scene:
    """A canvas, its objects and which one (if any) carries the red ellipse."""

    image: Image.Image
    objects: list[WorldObject]
    background: str
    marked: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """The canvas (width, height)."""
        return self.image.size

    def edges(self, index: int) -> list[str]:
        """The canvas edges that object ``index``'s box touches (``left``, ``right``, ``top``, ``bottom``)."""
        x, y, w, h = self.objects[index].box
        width, height = self.size
        touches = {"left": x <= 0, "right": x + w >= width, "top": y <= 0, "bottom": y + h >= height}
        return [edge for edge, hit in touches.items() if hit]


# --------------------------------------------------------------------------- shapes


def _regular(n: int, rotation: float) -> np.ndarray:
    t = rotation + 2 * math.pi * np.arange(n) / n
    return np.stack([np.cos(t), np.sin(t)], 1)


def _star() -> np.ndarray:
    t = -math.pi / 2 + math.pi * np.arange(10) / 5
    r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, 40, endpoint=False)
    return np.stack([16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))], 1)


_a = 1 / 3
_POLYGONS = {
    "triangle": np.array([[0.5, 0], [1, 1], [0, 1]]),
    "diamond": np.array([[0.5, 0], [1, 0.5], [0.5, 1], [0, 0.5]]),
    "cross": np.array(
        [
            [_a, 0],
            [1 - _a, 0],
            [1 - _a, _a],
            [1, _a],
            [1, 1 - _a],
            [1 - _a, 1 - _a],
            [1 - _a, 1],
            [_a, 1],
            [_a, 1 - _a],
            [0, 1 - _a],
            [0, _a],
            [_a, _a],
        ]
    ),
    "star": _star(),
    "hexagon": _regular(6, 0.0),
    "octagon": _regular(8, math.pi / 8),
    "heart": _heart(),
}
# normalise every polygon to span the unit square
_POLYGONS = {k: (v - v.min(0)) / (v.max(0) - v.min(0)) for k, v in _POLYGONS.items()}


def _shape_mask(shape: str, w2: int, h2: int) -> np.ndarray:
    """Binary mask (h2, w2) of a shape filling a w2 x h2 box."""
    img = Image.new("L", (w2, h2), 0)
    draw = ImageDraw.Draw(img)
    box = [0, 0, w2 - 1, h2 - 1]
    if shape in ("square", "rectangle"):
        draw.rectangle(box, fill=255)
    elif shape in ("circle", "ring", "crescent"):
        draw.ellipse(box, fill=255)
        if shape == "ring":
            iw, ih = 0.27 * w2, 0.27 * h2
            draw.ellipse([iw, ih, w2 - 1 - iw, h2 - 1 - ih], fill=0)
        elif shape == "crescent":
            dx = 0.38 * w2
            draw.ellipse([dx, -0.04 * h2, w2 - 1 + dx, 1.04 * (h2 - 1)], fill=0)
    else:
        pts = _POLYGONS[shape] * np.array([w2 - 1, h2 - 1])
        draw.polygon([tuple(p) for p in pts.tolist()], fill=255)
    return np.asarray(img) > 127


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    out = np.pad(mask, 1)  # outside the box counts as background
    for _ in range(steps):
        m = out.copy()
        m[1:] &= out[:-1]
        m[:-1] &= out[1:]
        m[:, 1:] &= out[:, :-1]
        m[:, :-1] &= out[:, 1:]
        out = m
    return out[1:-1, 1:-1]


def _pattern_field(pattern: str, w2: int, h2: int, rng: np.random.Generator) -> np.ndarray:
    """Where the second colour goes (True), at 2x resolution."""
    yy, xx = np.mgrid[0:h2, 0:w2]
    if pattern == "striped":
        period = int(rng.integers(7, 10))
        coord = (yy, xx, xx + yy, xx - yy + 1000)[int(rng.integers(4))]
        return (coord % period) < period // 2
    if pattern == "dotted":
        step = int(rng.integers(7, 9))
        oy, ox = rng.integers(0, step, 2)
        gy = (yy + oy) % step - step / 2
        gx = (xx + ox + ((yy + oy) // step % 2) * step // 2) % step - step / 2
        return gx * gx + gy * gy <= 4.5
    if pattern == "checkered":
        cell = int(rng.integers(5, 8))
        return ((xx // cell + yy // cell) % 2) == 1
    return np.zeros((h2, w2), bool)


def _render_object(
    shape: str, colour: str, pattern: str, w: int, h: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(alpha (h, w) float, rgb (h, w, 3) float) of an object drawn at 2x and averaged down."""
    w2, h2 = 2 * w, 2 * h
    mask = _shape_mask(shape, w2, h2)
    if pattern == "outlined":
        mask &= ~_erode(mask, 3)
    base = np.clip(np.array(RGB[colour], float) + rng.integers(-12, 13, 3), 0, 255)
    rgb = np.empty((h2, w2, 3))
    rgb[:] = base
    if pattern in ("striped", "dotted", "checkered"):
        rgb[_pattern_field(pattern, w2, h2, rng)] = RGB[SECOND_COLOUR[colour]]
    alpha2 = mask.astype(float)
    alpha = alpha2.reshape(h, 2, w, 2).mean((1, 3))
    pre = (rgb * alpha2[..., None]).reshape(h, 2, w, 2, 3).sum((1, 3))
    col = pre / np.maximum(alpha2.reshape(h, 2, w, 2).sum((1, 3)), 1e-6)[..., None]
    return alpha, col


def _background(tone: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    level = rng.uniform(150, 205) if tone == "light" else rng.uniform(45, 95)
    tint = rng.uniform(-12, 12, 3)
    canvas = np.empty((size[1], size[0], 3))
    canvas[:] = level + tint
    return canvas


def draw_marking(
    image: Image.Image,
    box: Box | list[float],
    width: int = 1,
    scale: float = 1.3,
    margin: float = 1.0,
    colour: tuple[int, int, int] = MARK_RGB,
) -> Image.Image:
    """A copy of ``image`` with a thin ellipse around ``box`` (scale 1.41 passes through its corners)."""
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2, y + h / 2
    a, b = w / 2 * scale + margin, h / 2 * scale + margin
    out = image.copy()
    ImageDraw.Draw(out).ellipse([cx - a, cy - b, cx + a, cy + b], outline=colour, width=width)
    return out


def _size_px(size: str, image_size: int, rng: np.random.Generator, multi: bool, exact: int | None = None) -> int:
    lo, hi = (10, 16) if size == "small" else (19, 26 if multi else 34)
    drawn = int(rng.integers(lo, hi + 1))
    return max(4, round((exact or drawn) * image_size / 64))


def _object_dims(shape: str, s: int, rng: np.random.Generator) -> tuple[int, int]:
    if shape == "rectangle":
        return s, max(3, round(s * rng.uniform(0.5, 0.62)))
    return s, s


def _pin(spec: dict, x: int, y: int, w: int, h: int, width: int, height: int) -> tuple[int, int]:
    """The position of an object whose spec pins it to a canvas edge (``edge``: flush with it)."""
    edge = spec.get("edge")
    if edge == "left":
        x = 0
    elif edge == "right":
        x = width - w
    elif edge == "top":
        y = 0
    elif edge == "bottom":
        y = height - h
    return x, y


def render_scene(
    specs: list[dict[str, str]],
    rng: np.random.Generator,
    *,
    background: str | None = None,
    layout: str = "auto",
    marked: int | None = None,
    mark_style: dict | None = None,
    marking: MarkingStyle = DEFAULT_MARKING,
    image_size: int = 64,
    noise: float = 3.0,
    canvas_size: tuple[int, int] | None = None,
) -> Scene:
    """Draw objects given as ``{shape, colour, pattern, size}`` dicts onto one canvas.

    ``layout``: ``single`` (one object anywhere), ``crop`` (one object filling the canvas,
    like a crop of a box resized), ``multi`` (non-overlapping objects) or ``auto``.
    ``marked``: index of the object to circle with a thin ellipse: ``mark_style`` (the options of
    :func:`draw_marking`) or, without it, one drawn from ``marking`` (red, 1-2 px by default).
    ``image_size`` sets the scale of objects (their sizes are drawn for a 64 px canvas and scaled);
    the canvas is ``image_size`` square unless ``canvas_size`` (w, h) is given. Optional spec keys:
    ``px`` (the object's side in px at scale 64, instead of a size drawn from its ``size`` class),
    ``edge`` (``left``/``right``/``top``/``bottom``: the object is placed touching that canvas edge),
    ``at`` ((x, y): the object's top-left corner, placed there without an overlap check; later objects
    avoid it), ``look`` (a seed for the object's proportions, colour jitter and pattern phase: objects of
    the same kind, size and look are drawn pixel for pixel alike).
    An object that finds no free place is dropped: ``Scene.objects`` may be shorter than ``specs``.
    """
    background = background or BACKGROUNDS[int(rng.integers(2))]
    if layout == "auto":
        layout = "single" if len(specs) == 1 else "multi"
    width, height = canvas_size or (image_size, image_size)
    canvas = _background(background, (width, height), rng)
    objects: list[WorldObject] = []
    placed: list[Box] = []
    for spec in specs:
        shape = spec["shape"]
        if layout == "crop":
            m = int(rng.integers(0, 5))
            w = h = image_size - 2 * m
            if shape == "rectangle":
                h = int(rng.integers(image_size // 2, w + 1))
            x, y = m, (image_size - h) // 2
            size = "unsized"
        else:
            size = spec["size"]
            for _attempt in range(60):
                s = _size_px(size, image_size, rng, layout == "multi", spec.get("px"))
                w, h = _object_dims(shape, s, np.random.default_rng(spec["look"]) if "look" in spec else rng)
                if "at" in spec:  # placed by the caller, who keeps it clear of the others
                    x, y = (int(v) for v in spec["at"])
                    break
                x = int(rng.integers(1, width - w))
                y = int(rng.integers(1, height - h))
                x, y = _pin(spec, x, y, w, h, width, height)
                gap = 3
                if all(
                    x + w + gap <= px or px + pw + gap <= x or y + h + gap <= py or py + ph + gap <= y
                    for px, py, pw, ph in placed
                ):
                    break
                if _attempt > 30 and size == "large":
                    size = "small"
            else:
                continue  # no room: drop the object
        # a spec's "look" seed fixes its proportions, colour jitter and pattern phase: objects sharing it are alike
        look = np.random.default_rng(spec["look"]) if "look" in spec else rng
        alpha, col = _render_object(shape, spec["colour"], spec["pattern"], w, h, look)
        region = canvas[y : y + h, x : x + w]
        region[:] = region * (1 - alpha[..., None]) + col * alpha[..., None]
        ys, xs = np.nonzero(alpha > 0)
        box = (x + int(xs.min()), y + int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        placed.append((x, y, w, h))
        objects.append(WorldObject(shape, spec["colour"], spec["pattern"], size, box))
    if noise:
        canvas += rng.normal(0, noise, canvas.shape)
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    if marked is not None and marked < len(objects):
        image = draw_marking(image, objects[marked].box, **(mark_style or marking.draw(rng)))
    else:
        marked = None
    return Scene(image, objects, background, marked)


def random_spec(rng: np.random.Generator) -> dict[str, str]:
    """Uniformly random object attributes."""
    return {
        "shape": SHAPES[int(rng.integers(len(SHAPES)))],
        "colour": COLOURS[int(rng.integers(len(COLOURS)))],
        "pattern": PATTERNS[int(rng.integers(len(PATTERNS)))],
        "size": ("small", "large")[int(rng.integers(2))],
    }


# --------------------------------------------------------------------------- painting at a given place


def paint_object(canvas: np.ndarray, shape: str, colour: str, pattern: str, box: Box, rng: np.random.Generator) -> Box:
    """Paint one object filling ``box`` ``(x, y, w, h)`` (integers) into ``canvas`` (float, H x W x 3, in place);
    returns its exact box (the tight box of its non-zero pixels), as :func:`render_scene` draws objects."""
    x, y, w, h = (int(v) for v in box)
    alpha, col = _render_object(shape, colour, pattern, w, h, rng)
    region = canvas[y : y + h, x : x + w]
    region[:] = region * (1 - alpha[..., None]) + col * alpha[..., None]
    ys, xs = np.nonzero(alpha > 0)
    return (x + int(xs.min()), y + int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


def shape_vertices(shape: str) -> np.ndarray | None:
    """The polygon vertices of ``shape`` in the unit square (x right, y down), None for round shapes."""
    if shape in ("square", "rectangle"):
        return np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    vertices = _POLYGONS.get(shape)
    return None if vertices is None else vertices.copy()
