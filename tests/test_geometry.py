"""REC image geometry: squash / pad / crop to the model's square input, box mapping, markings at input scale."""

from __future__ import annotations

import numpy as np
import pytest
from open_clip.transform import image_transform
from PIL import Image

from descbench.core.errors import ConfigError
from descbench.core.marking.geometry import (
    PAD_FILL,
    Geometry,
    box_to_input,
    crop_window,
    plan,
    point_to_input,
    render_marked_input,
    to_model_input,
)
from descbench.core.marking.visual_prompts import PromptSpec, circle, marked_crop

RED = np.array([255, 0, 0])


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def red_pixels(image: Image.Image) -> int:
    return int((np.asarray(image.convert("RGB")).astype(int) == RED).all(-1).sum())


# ---------------------------------------------------------------------------- the three modes


@pytest.mark.parametrize(("mode", "open_clip_mode"), [("squash", "squash"), ("crop", "shortest"), ("pad", "longest")])
@pytest.mark.parametrize("size", [(640, 480), (480, 640), (333, 250), (100, 300)])
@pytest.mark.parametrize("side", [64, 224])
def test_modes_equal_open_clip_transforms(mode, open_clip_mode, size, side):
    """Each mode is open_clip's own transform to the pixel, and the backbone's preprocessing leaves its output as is."""
    image = noise_image(*size)
    reference = image_transform(side, is_train=False, resize_mode=open_clip_mode, fill_color=0)
    ours = to_model_input(image, side, mode, fill=(0, 0, 0))
    assert ours.size == (side, side)
    assert reference(image).equal(reference(ours))


def test_default_is_squash_and_unknown_mode_is_a_config_error():
    assert Geometry().mode == "squash" and Geometry().key == "squash"
    assert Geometry("pad").key == "pad(fill=123,117,104)" and Geometry("pad", (0, 0, 0)).key == "pad(fill=0,0,0)"
    with pytest.raises(ConfigError, match=r"task.image_processing='letterbox' is not one of squash, pad, crop"):
        Geometry("letterbox")
    with pytest.raises(ConfigError, match=r"task.pad_fill=\[0, 0\] is not an RGB colour"):
        Geometry("pad", (0, 0))


def test_pad_fills_with_the_colour_and_centres():
    out = np.asarray(to_model_input(Image.new("RGB", (640, 480), (255, 255, 255)), 224, "pad"))
    # 640x480 -> 224x168, 28 rows of fill above and below
    assert (out[:28] == PAD_FILL).all() and (out[196:] == PAD_FILL).all()
    assert (out[28:196] == 255).all()


# ---------------------------------------------------------------------------- box mapping (hand-computed)


def test_plans_by_hand():
    assert plan((640, 480), 224, "squash").resized == (224, 224)
    crop = plan((640, 480), 224, "crop")  # 224 * 640 / 480 = 298.67 -> 298; (298 - 224) / 2 = 37
    assert (crop.resized, crop.offset) == ((298, 224), (-37, 0))
    pad = plan((640, 480), 224, "pad")  # 480 / (640 / 224) = 168; (224 - 168) / 2 = 28
    assert (pad.resized, pad.offset) == ((224, 168), (0, 28))
    assert plan((480, 640), 224, "pad").offset == (28, 0)
    assert plan((480, 640), 224, "crop").offset == (0, -37)


@pytest.mark.parametrize(
    ("mode", "image_size", "box", "expected"),
    [
        ("squash", (640, 480), [0, 0, 640, 480], [0, 0, 224, 224]),
        ("squash", (640, 480), [320, 240, 64, 48], [112, 112, 22.4, 22.4]),
        ("squash", (480, 640), [240, 320, 48, 64], [112, 112, 22.4, 22.4]),
        ("crop", (640, 480), [320, 240, 64, 48], [320 * 298 / 640 - 37, 112, 64 * 298 / 640, 22.4]),
        ("crop", (640, 480), [0, 0, 100, 100], [-37, 0, 100 * 298 / 640, 100 * 224 / 480]),
        ("pad", (640, 480), [320, 240, 64, 48], [112, 112, 22.4, 16.8]),
        ("pad", (480, 640), [0, 0, 480, 640], [28, 0, 168, 224]),
        ("squash", (64, 64), [3, 5, 10, 12], [3, 5, 10, 12]),
    ],
)
def test_box_mapping_by_hand(mode, image_size, box, expected):
    assert box_to_input(box, image_size, 224 if image_size != (64, 64) else 64, mode) == pytest.approx(
        expected, abs=1e-9
    )


def test_point_mapping():
    assert point_to_input((640, 480), (640, 480), 224, "pad") == pytest.approx([224, 196])
    assert point_to_input((0, 0), (640, 480), 224, "crop") == pytest.approx([-37, 0])


# ---------------------------------------------------------------------------- markings at input scale

EDGE_BOXES = {  # a 120 x 100 box touching each edge
    (640, 480): {"left": [0, 190, 120, 100], "right": [520, 190, 120, 100], "top": [260, 0, 120, 100],
                 "bottom": [260, 380, 120, 100]},
    (480, 640): {"left": [0, 270, 120, 100], "right": [360, 270, 120, 100], "top": [180, 0, 120, 100],
                 "bottom": [180, 540, 120, 100]},
}  # fmt: skip


def full_ellipse_red(image_size, box, side, mode) -> int:
    """Red pixels of the whole ellipse of the mapped box, drawn on a canvas large enough to hold it."""
    x, y, w, h = box_to_input(box, image_size, side, mode)
    margin = side
    canvas = Image.new("RGB", (side + 2 * margin, side + 2 * margin), (128, 128, 128))
    return red_pixels(circle(canvas, [x + margin, y + margin, w, h], thickness=2))


@pytest.mark.parametrize("image_size", [(640, 480), (480, 640)])
@pytest.mark.parametrize("edge", ["left", "right", "top", "bottom"])
def test_edge_circle_reaches_the_model(image_size, edge):
    """>= 90 % of the ellipse's red pixels reach the input under squash and pad; crop cuts them at the long-axis edges."""
    image = Image.new("RGB", image_size, (128, 128, 128))
    box = EDGE_BOXES[image_size][edge]
    kept = {}
    for mode in ("squash", "pad", "crop"):
        marked = render_marked_input(image, box, PromptSpec("circle"), 224, Geometry(mode))
        kept[mode] = red_pixels(marked) / full_ellipse_red(image_size, box, 224, mode)
    assert kept["squash"] >= 0.9 and kept["pad"] >= 0.9, kept
    long_axis = ("left", "right") if image_size[0] > image_size[1] else ("top", "bottom")
    if edge in long_axis:
        assert kept["crop"] < 0.5, kept
    else:
        assert kept["crop"] >= 0.9, kept


@pytest.mark.parametrize("mode", ["squash", "pad", "crop"])
@pytest.mark.parametrize("image_size", [(640, 480), (480, 640), (1000, 300)])
def test_thickness_is_input_pixels_along_both_axes(mode, image_size):
    """A 2 px ellipse is 2 px wide in what the model sees, horizontally and vertically."""
    width, height = image_size
    box = [width * 0.45, height * 0.3, width * 0.1, height * 0.4]  # inside the central square
    out = np.asarray(render_marked_input(Image.new("RGB", image_size, (0, 0, 0)), box, PromptSpec("circle"), 224,
                                         Geometry(mode, (0, 0, 0))))  # fmt: skip
    red = (out == RED).all(-1)
    x, y, w, h = box_to_input(box, image_size, 224, mode)
    row, col = red[int(y + h / 2)], red[:, int(x + w / 2)]
    assert row[: int(x + w / 2)].sum() == 2 and col[: int(y + h / 2)].sum() == 2


def test_cut_markings_take_their_window_from_the_original():
    image = noise_image(640, 480, seed=3)
    box = [100, 50, 40, 300]
    window = crop_window(box, image.size)
    assert window == (100, 50, 140, 350)
    squashed = render_marked_input(image, box, PromptSpec("crop"), 64, Geometry("squash"))
    assert np.array_equal(np.asarray(squashed), np.asarray(to_model_input(image.crop(window), 64, "squash")))
    # a tall crop under "crop" keeps only the middle of its height (today's open_clip behaviour)
    cropped = render_marked_input(image, box, PromptSpec("crop"), 64, Geometry("crop"))
    assert np.array_equal(np.asarray(cropped), np.asarray(to_model_input(image.crop(window), 64, "crop")))
    # marked_crop: the same window as the marking itself, the ellipse drawn 2 px wide in the input
    for margin in (0.0, 0.5, 1.0):
        left, top, right, bottom = crop_window(box, image.size, margin)
        assert (right - left, bottom - top) == marked_crop(image, box, margin=margin).size
    marked = render_marked_input(image, box, PromptSpec("marked_crop", {"thickness": 2}), 64, Geometry("pad"))
    assert marked.size == (64, 64) and red_pixels(marked) > 0
