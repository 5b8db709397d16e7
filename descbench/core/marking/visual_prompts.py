"""Visual prompts: pure functions ``(PIL image, box [x, y, w, h], **options) -> PIL image``.

Pixel sizes (``thickness``, ``sigma``) are given at the model's input resolution
(``input_size``, the side the preprocessing resizes the shortest image side to) and drawn
scaled by ``original shortest side / input_size``, so a "2 px" circle is 2 px wide as the
model sees it whatever the photo's size. Without ``input_size`` they are taken as image pixels.
Boxes are clipped to the image; a box is the pixel block ``[x, x + w) x [y, y + h)``.

A visual prompt is one function decorated with :func:`visual_prompt`: its keyword options, their types,
defaults and ranges (``Annotated[float, Positive]``) are its config (``visual_prompt=<name>``: the shell
derives the schema from the signature) and its checks; nothing else lists them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from PIL import Image, ImageDraw, ImageFilter

from descbench.core.choices import Choice, NonNegative, Positive, check_arguments
from descbench.core.errors import ConfigError, VisualPromptError

Box = Sequence[float]
RED = (255, 0, 0)
#: name -> drawing function, filled by :func:`visual_prompt`
VISUAL_PROMPTS: dict[str, Callable[..., Image.Image]] = {}
#: the arguments every drawing function takes that are not options of the prompt
NOT_OPTIONS = ("image", "box", "input_size")


def visual_prompt(fn: Callable[..., Image.Image]) -> Callable[..., Image.Image]:
    """Function decorator: ``fn`` is the visual prompt named after it (``visual_prompt=<name>``)."""
    VISUAL_PROMPTS[fn.__name__] = fn
    return fn


class ColourCheck:
    """Annotation metadata of a colour option: three integers 0..255 or a PIL colour name."""

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str):
            return None
        if (
            isinstance(value, (list, tuple))
            and len(value) == 3
            and all(isinstance(c, int) and 0 <= c <= 255 for c in value)
        ):
            return None
        return "must be three integers in 0..255, e.g. [255, 0, 0], or a colour name"


class Region(Choice):
    """Where a marking that treats the outside of a candidate leaves the image untouched."""

    box = "box"
    ellipse = "ellipse"


Colour = Annotated[Any, ColourCheck()]
#: a pixel size at the model's input resolution
Pixels = Annotated[float, Positive]


def pixel_bounds(box: Box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Inclusive pixel bounds ``(x0, y0, x1, y1)`` of ``box`` clipped to an image of ``size`` (w, h)."""
    x, y, w, h = (float(v) for v in box)
    width, height = size
    x0 = min(max(int(math.floor(x + 0.5)), 0), width - 1)
    y0 = min(max(int(math.floor(y + 0.5)), 0), height - 1)
    x1 = min(max(int(math.floor(x + w + 0.5)) - 1, x0), width - 1)
    y1 = min(max(int(math.floor(y + h + 0.5)) - 1, y0), height - 1)
    return x0, y0, x1, y1


def scaled_pixels(value: float, image: Image.Image, input_size: int | None) -> float:
    """``value`` pixels at the model's input resolution, in pixels of ``image``."""
    if not input_size:
        return float(value)
    return float(value) * min(image.size) / float(input_size)


def _colour(colour: Any) -> tuple[int, int, int] | str:
    return tuple(int(c) for c in colour) if isinstance(colour, (list, tuple)) else colour


def _stroke(thickness: float, image: Image.Image, input_size: int | None) -> int:
    return max(1, int(round(scaled_pixels(thickness, image, input_size))))


def _outline(shape: str, image: Image.Image, box: Box, colour: Any, thickness: float, input_size: int | None):
    """``image`` with the ``shape`` ("ellipse" or "rectangle") of ``box`` drawn, inwards."""
    out = image.convert("RGB")
    draw = getattr(ImageDraw.Draw(out), shape)
    draw(pixel_bounds(box, out.size), outline=_colour(colour), width=_stroke(thickness, out, input_size))
    return out


def _outline_prompt(name: str, shape: str, doc: str) -> Callable[..., Image.Image]:
    """The visual prompt ``name`` that outlines the ``shape`` of a box (one signature for both outlines)."""

    def outline(
        image: Image.Image, box: Box, *, colour: Colour = RED, thickness: Pixels = 2.0, input_size: int | None = None
    ) -> Image.Image:
        return _outline(shape, image, box, colour, thickness, input_size)

    outline.__name__ = outline.__qualname__ = name
    outline.__doc__ = doc
    return visual_prompt(outline)


circle = _outline_prompt(
    "circle",
    "ellipse",
    "A ``colour`` ellipse inscribed in ``box``, ``thickness`` px wide at input resolution (inwards).",
)
rectangle = _outline_prompt(
    "rectangle",
    "rectangle",
    "The outline of ``box`` in ``colour``, ``thickness`` px wide at input resolution (inwards).",
)


@visual_prompt
def crop(image: Image.Image, box: Box, *, input_size: int | None = None) -> Image.Image:
    """The box region alone, its aspect kept (the preprocessing then resizes it)."""
    x0, y0, x1, y1 = pixel_bounds(box, image.size)
    return image.convert("RGB").crop((x0, y0, x1 + 1, y1 + 1))


def crop_window(box: Box, image_size: tuple[int, int], margin: float = 0.0) -> tuple[int, int, int, int]:
    """The window ``(left, top, right, bottom)`` (PIL crop box) of ``box`` widened by ``margin`` x its size
    on each side and clipped to the image, in whole pixels (the window of ``crop`` and ``marked_crop``)."""
    x0, y0, x1, y1 = pixel_bounds(box, image_size)
    w, h = x1 - x0 + 1, y1 - y0 + 1
    dx, dy = int(round(margin * w)), int(round(margin * h))
    return max(0, x0 - dx), max(0, y0 - dy), min(image_size[0], x1 + 1 + dx), min(image_size[1], y1 + 1 + dy)


@visual_prompt
def marked_crop(
    image: Image.Image,
    box: Box,
    *,
    margin: Annotated[float, NonNegative] = 0.5,
    colour: Colour = RED,
    thickness: Pixels = 2.0,
    input_size: int | None = None,
) -> Image.Image:
    """A crop around the box with ``margin`` x its size added each side (clipped), the ellipse drawn in it."""
    x0, y0, x1, y1 = pixel_bounds(box, image.size)
    w, h = x1 - x0 + 1, y1 - y0 + 1
    left, top, right, bottom = crop_window(box, image.size, margin)
    region = image.convert("RGB").crop((left, top, right, bottom))
    # the thickness is relative to the crop: it is the crop that the model sees at input_size
    return circle(region, [x0 - left, y0 - top, w, h], colour=colour, thickness=thickness, input_size=input_size)


def region_mask(size: tuple[int, int], box: Box, region: Region = Region.box) -> Image.Image:
    """An ``L`` mask, 255 inside ``box`` (``region="box"``) or inside its inscribed ellipse (``"ellipse"``)."""
    mask = Image.new("L", size, 0)
    bounds = pixel_bounds(box, size)
    draw = ImageDraw.Draw(mask)
    shape = draw.rectangle if Region.parse(region, "region") == Region.box else draw.ellipse
    shape(bounds, fill=255)
    return mask


@visual_prompt
def blur_outside(
    image: Image.Image,
    box: Box,
    *,
    sigma: Annotated[float, NonNegative] = 3.0,
    region: Region = Region.box,
    input_size: int | None = None,
) -> Image.Image:
    """Gaussian blur (std ``sigma`` px at input resolution) everywhere outside the box or its ellipse."""
    out = image.convert("RGB")
    blurred = out.filter(ImageFilter.GaussianBlur(radius=scaled_pixels(sigma, out, input_size)))
    return Image.composite(out, blurred, region_mask(out.size, box, region))


@visual_prompt
def grayscale_outside(
    image: Image.Image, box: Box, *, region: Region = Region.box, input_size: int | None = None
) -> Image.Image:
    """Grey levels everywhere outside the box or its ellipse; colour inside."""
    out = image.convert("RGB")
    grey = out.convert("L").convert("RGB")
    return Image.composite(out, grey, region_mask(out.size, box, region))


@visual_prompt
def none(image: Image.Image, box: Box, *, input_size: int | None = None) -> Image.Image:
    """The image unmarked (a control: every candidate looks the same)."""
    return image.convert("RGB").copy()


def _lookup(name: str) -> Callable[..., Image.Image]:
    try:
        return VISUAL_PROMPTS[name]
    except KeyError:
        raise VisualPromptError(f"unknown visual prompt {name!r}: known ones are {', '.join(VISUAL_PROMPTS)}") from None


def prompt_options(name: str) -> dict[str, inspect.Parameter]:
    """The options of the visual prompt ``name`` (its keyword parameters but the image, box and input size)."""
    return {k: p for k, p in inspect.signature(_lookup(name)).parameters.items() if k not in NOT_OPTIONS}


def check_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse an unknown prompt, an option it does not take, or a value outside what its annotation declares
    (one line each); returns the options with choices as their members."""
    accepted = prompt_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise VisualPromptError(
            f"visual prompt {name!r} has no option {', '.join(unknown)}: its options are {', '.join(accepted) or 'none'}"
        )
    try:
        return check_arguments(_lookup(name), options, f"visual_prompt.{name}")
    except ConfigError as err:
        raise VisualPromptError(str(err)) from None


def apply_visual_prompt(name: str, image: Image.Image, box: Box, **options: Any) -> Image.Image:
    """Draw the visual prompt ``name`` for ``box`` on ``image`` (unknown names list the known ones)."""
    check_options(name, {k: v for k, v in options.items() if k != "input_size"})
    return _lookup(name)(image, box, **options)


@dataclass(frozen=True)
class PromptSpec:
    """One marking of an ensemble: a registered name and its options."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", check_options(self.name, self.options))

    @property
    def key(self) -> str:
        """A stable text identity (results, cache keys)."""
        if not self.options:
            return self.name
        return self.name + "(" + ",".join(f"{k}={self.options[k]}" for k in sorted(self.options)) + ")"

    def apply(self, image: Image.Image, box: Box, input_size: int | None = None) -> Image.Image:
        return apply_visual_prompt(self.name, image, box, input_size=input_size, **dict(self.options))


def parse_prompt_specs(specs: Any) -> list[PromptSpec]:
    """A list of specs from config data: ``"circle"``, ``{"name": "circle", "thickness": 3}``,
    ``{"name": ..., "options": {...}}`` or a list of these (an ensemble, scores summed)."""
    if isinstance(specs, (str, PromptSpec)) or isinstance(specs, Mapping):
        specs = [specs]
    parsed = []
    for spec in specs:
        if isinstance(spec, PromptSpec):
            parsed.append(spec)
        elif isinstance(spec, str):
            parsed.append(PromptSpec(spec))
        elif isinstance(spec, Mapping):
            data = dict(spec)
            if "name" not in data:
                raise VisualPromptError(f"visual prompt spec {data} has no 'name' (one of {', '.join(VISUAL_PROMPTS)})")
            name = data.pop("name")
            options = dict(data.pop("options", None) or {})
            options.update(data)
            parsed.append(PromptSpec(str(name), options))
        else:
            raise VisualPromptError(f"cannot read a visual prompt from {spec!r}: give a name or a mapping with 'name'")
    if not parsed:
        raise VisualPromptError("no visual prompt given: list at least one of " + ", ".join(VISUAL_PROMPTS))
    return parsed
