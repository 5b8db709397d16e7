"""REC image geometry: how a marked candidate image reaches the model's square input (SPEC §4).

Three modes (``task.image_processing``), each a resampling followed by a placement:

- ``squash`` (default): resize both sides to ``size`` x ``size``; the aspect ratio is not kept. This is
  what the public red-circle/REC implementations feed CLIP (ReCLIP's default ``square_size``
  ``Resize((r, r))``; FGVP's ``clip_processing='resize'``).
- ``pad``: resize the longest side to ``size`` (aspect kept), then letterbox: centre the image on a
  ``size`` x ``size`` canvas of colour ``fill``. The default fill is the OpenAI CLIP normalisation mean
  (``round(255 * mean)``), i.e. zero after normalisation, as FGVP's ``padding`` (which pads the
  normalised tensor with zeros, at the bottom/right instead of centred).
- ``crop``: resize the shortest side to ``size`` (aspect kept), then centre-crop: open_clip's default
  ``Resize(size) + CenterCrop(size)``, to the pixel. Whatever lies outside the central square,
  markings near the long-axis edges included, never reaches the model.

Resampling is bicubic (PIL, antialiased), as open_clip's transforms for PIL images.

**Where a marking is drawn.** The image is first resampled to the input resolution (the first step
of the mode); the marking is drawn on that resampled image with the candidate box mapped into it;
then the placement (nothing, letterbox, centre crop) makes the ``size`` x ``size`` input. So every
pixel size of a marking (an ellipse's ``thickness``, a blur's ``sigma``) is in pixels of what the
model sees, whatever the aspect ratio or the resolution of the photo: a 2 px ellipse is 2 px wide
along both axes under ``squash``, and the ``crop`` mode cuts away what lies outside the square,
markings included. This follows FGVP's order (resize the image to CLIP's scale, draw the prompt
with its thickness in those pixels, then resize/pad/crop) with one difference: FGVP's ``resize``
draws on the image resized by its shortest side and then squeezes the long axis (so its lines are
thinner along that axis); here ``squash`` resizes straight to ``size`` x ``size`` and draws there.

**Markings that cut** (``crop``, ``marked_crop``; :data:`CUT_MARKINGS`) take their window from the
original image at full resolution; the window then goes through the same geometry as a whole image
(``marked_crop`` draws its ellipse in the resampled window).

Boxes are ``[x, y, w, h]`` in pixel-edge coordinates (a box covers ``[x, x + w) x [y, y + h)``); PIL's
resampling maps these coordinates linearly, so :func:`box_to_input` is exact.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image

from descbench.core.choices import Choice
from descbench.core.errors import ConfigError
from descbench.core.marking import visual_prompts
from descbench.core.marking.visual_prompts import PromptSpec, crop_window, pixel_bounds


class GeometryMode(Choice):
    """How a marked image reaches the model's square input (``task.image_processing``; see the module doc)."""

    squash = "squash"
    pad = "pad"
    crop = "crop"


#: round(255 * OPENAI_DATASET_MEAN): a letterbox that is zero after CLIP's normalisation
PAD_FILL = (123, 117, 104)
RESAMPLE = Image.BICUBIC

Box = Sequence[float]


@dataclass(frozen=True)
class Geometry:
    """One geometry option: ``mode`` (squash, pad or crop) and the letterbox ``fill`` colour of ``pad``."""

    mode: GeometryMode = GeometryMode.squash
    fill: tuple[int, int, int] = PAD_FILL

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", GeometryMode.parse(self.mode, "task.image_processing"))
        fill = tuple(int(c) for c in self.fill)
        if len(fill) != 3 or not all(0 <= c <= 255 for c in fill):
            raise ConfigError(f"task.pad_fill={list(self.fill)} is not an RGB colour: give three integers 0..255")
        object.__setattr__(self, "fill", fill)

    @property
    def key(self) -> str:
        """A stable identity for results and cache keys: ``squash``, ``crop`` or ``pad(fill=r,g,b)``."""
        if self.mode == "pad":
            return "pad(fill={},{},{})".format(*self.fill)
        return str(self.mode)


@dataclass(frozen=True)
class Placement:
    """How an image of ``image_size`` (w, h) becomes a ``size`` x ``size`` input: resampled to ``resized``
    (w, h), then pasted with its top-left corner at ``offset`` (negative: cropped, positive: padded)."""

    image_size: tuple[int, int]
    size: int
    resized: tuple[int, int]
    offset: tuple[int, int] = field(default=(0, 0))

    @property
    def scale(self) -> tuple[float, float]:
        """Input pixels per image pixel along x and y."""
        return self.resized[0] / self.image_size[0], self.resized[1] / self.image_size[1]


def plan(image_size: tuple[int, int], size: int, mode: GeometryMode = GeometryMode.squash) -> Placement:
    """The resampling and placement of ``mode`` for an image of ``image_size`` (w, h)."""
    width, height = (int(v) for v in image_size)
    mode = Geometry(mode).mode
    if mode == "squash":
        return Placement((width, height), size, (size, size))
    if mode == "crop":
        # torchvision's Resize(int): the shortest side becomes ``size``, the other is truncated
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(size * long / short)
        resized = (size, new_long) if width <= height else (new_long, size)
        # torchvision's CenterCrop: offsets rounded half to even
        offset = (-int(round((resized[0] - size) / 2.0)), -int(round((resized[1] - size) / 2.0)))
        return Placement((width, height), size, resized, offset)
    # pad: open_clip's ResizeKeepRatio(longest=1) then CenterCropOrPad
    ratio = max(width / size, height / size)
    resized = (round(width / ratio), round(height / ratio))
    return Placement((width, height), size, resized, ((size - resized[0]) // 2, (size - resized[1]) // 2))


def _place(image: Image.Image, placement: Placement, fill: tuple[int, int, int]) -> Image.Image:
    """Paste the resampled ``image`` into the ``size`` x ``size`` input at the placement's offset."""
    if placement.offset == (0, 0) and image.size == (placement.size, placement.size):
        return image
    canvas = Image.new("RGB", (placement.size, placement.size), fill)
    canvas.paste(image, placement.offset)
    return canvas


def to_model_input(
    image: Image.Image, size: int, mode: GeometryMode = GeometryMode.squash, fill: tuple[int, int, int] = PAD_FILL
) -> Image.Image:
    """``image`` as the model's ``size`` x ``size`` input under ``mode`` (RGB)."""
    placement = plan(image.size, size, mode)
    return _place(image.convert("RGB").resize(placement.resized, RESAMPLE), placement, fill)


def box_to_input(
    box: Box, image_size: tuple[int, int], size: int, mode: GeometryMode = GeometryMode.squash
) -> list[float]:
    """``box`` ``[x, y, w, h]`` of an image of ``image_size`` in the model input's pixels (not clipped:
    under ``crop`` a box near a long-axis edge may reach outside ``[0, size]``)."""
    placement = plan(image_size, size, mode)
    (sx, sy), (ox, oy) = placement.scale, placement.offset
    x, y, w, h = (float(v) for v in box)
    return [x * sx + ox, y * sy + oy, w * sx, h * sy]


def point_to_input(
    point: Sequence[float], image_size: tuple[int, int], size: int, mode: GeometryMode = GeometryMode.squash
) -> list[float]:
    """A point ``(x, y)`` (pixel-edge coordinates) of an image of ``image_size`` in the model input's pixels."""
    x, y, _, _ = box_to_input([point[0], point[1], 0.0, 0.0], image_size, size, mode)
    return [x, y]


# ---------------------------------------------------------------------------- markings under a geometry


@dataclass(frozen=True)
class CutRule:
    """A marking that cuts a window out of the image: the option holding its margin (None: the box
    alone), the marking drawn inside the window and the options passed on to it."""

    margin_option: str | None
    inner: str
    inner_options: tuple[str, ...] = ()


#: markings whose window (not the whole image) reaches the model; the others are drawn on the whole image
CUT_MARKINGS: dict[str, CutRule] = {
    "crop": CutRule(margin_option=None, inner="none"),
    "marked_crop": CutRule(margin_option="margin", inner="circle", inner_options=("colour", "thickness")),
}


def _option(spec: PromptSpec, name: str):
    if name in spec.options:
        return spec.options[name]
    return inspect.signature(visual_prompts.VISUAL_PROMPTS[spec.name]).parameters[name].default


def render_marked_input(
    image: Image.Image, box: Box, spec: PromptSpec, size: int, geometry: Geometry = Geometry()
) -> Image.Image:
    """The ``size`` x ``size`` model input of candidate ``box`` marked by ``spec`` under ``geometry``.

    The marking's pixel sizes are pixels of this input (see the module docstring); the backbone's
    own preprocessing then leaves the image's size unchanged (its resize and centre crop are no-ops
    on a ``size`` x ``size`` image) and only normalises it.
    """
    cut = CUT_MARKINGS.get(spec.name)
    if cut is not None:
        margin = float(_option(spec, cut.margin_option)) if cut.margin_option else 0.0
        left, top, right, bottom = crop_window(box, image.size, margin)
        x0, y0, x1, y1 = pixel_bounds(box, image.size)
        inner = PromptSpec(cut.inner, {k: spec.options[k] for k in cut.inner_options if k in spec.options})
        region = image.convert("RGB").crop((left, top, right, bottom))
        return render_marked_input(region, [x0 - left, y0 - top, x1 - x0 + 1, y1 - y0 + 1], inner, size, geometry)
    placement = plan(image.size, size, geometry.mode)
    resized = image.convert("RGB").resize(placement.resized, RESAMPLE)
    (sx, sy) = placement.scale
    x, y, w, h = (float(v) for v in box)
    # input_size=None: the resampled image is at input resolution, so pixel sizes are its own pixels
    marked = spec.apply(resized, [x * sx, y * sy, w * sx, h * sy], input_size=None)
    return _place(marked, placement, geometry.fill)
