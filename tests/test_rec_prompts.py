"""Geometry of the visual prompts on synthetic images."""

import numpy as np
import pytest
from PIL import Image

from descbench.core.marking.visual_prompts import (
    VISUAL_PROMPTS,
    VisualPromptError,
    apply_visual_prompt,
    parse_prompt_specs,
    pixel_bounds,
)


def noise(width=200, height=120, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 200, size=(height, width, 3), dtype=np.uint8))  # no pure red


def red_pixels(image):
    a = np.asarray(image)
    ys, xs = np.nonzero((a[..., 0] == 255) & (a[..., 1] == 0) & (a[..., 2] == 0))
    return xs, ys


def ellipse_points(box, size, n=20000):
    x0, y0, x1, y1 = pixel_bounds(box, size)
    cx, cy, a, b = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + a * np.cos(t), cy + b * np.sin(t)], 1)


def distances_to_curve(xs, ys, curve):
    points = np.stack([xs, ys], 1).astype(float)
    return np.sqrt(((points[:, None, :] - curve[None]) ** 2).sum(-1)).min(1)


@pytest.mark.parametrize("box", [[30, 20, 101, 61], [10.4, 5.6, 60.2, 90.0], [150, 30, 40, 40]])
def test_circle_pixels_lie_on_the_inscribed_ellipse(box):
    image = noise()
    out = apply_visual_prompt("circle", image, box, thickness=1)
    xs, ys = red_pixels(out)
    assert len(xs) > 50
    curve = ellipse_points(box, image.size)
    assert distances_to_curve(xs, ys, curve).max() <= 1.0
    # and the whole ellipse is drawn: every point of it has a red pixel within 1 px
    assert distances_to_curve(curve[::50, 0], curve[::50, 1], np.stack([xs, ys], 1).astype(float)).max() <= 1.0
    # nothing else changed
    changed = np.any(np.asarray(out) != np.asarray(image), axis=2)
    assert changed.sum() == len(xs)


@pytest.mark.parametrize("size,input_size,expected", [(224, 224, 2), (448, 224, 4), (896, 224, 8), (112, 224, 1)])
def test_thickness_is_at_model_input_resolution(size, input_size, expected):
    image = Image.new("RGB", (size, size), (0, 0, 0))
    box = [size // 4, size // 4, size // 2, size // 2]
    out = apply_visual_prompt("circle", image, box, thickness=2, input_size=input_size)
    row = np.asarray(out)[size // 2, :, 0] == 255  # through the centre: the stroke at the left extreme
    run = np.argmax(~row[size // 4 :])
    assert row[size // 4] and run == expected
    rect = np.asarray(apply_visual_prompt("rectangle", image, box, thickness=2, input_size=input_size))
    assert (rect[size // 2, size // 4 : size // 4 + expected, 0] == 255).all()
    assert rect[size // 2, size // 4 + expected, 0] == 0


def test_rectangle_outlines_the_box():
    image = noise()
    out = apply_visual_prompt("rectangle", image, [30, 20, 50, 40], thickness=1)
    xs, ys = red_pixels(out)
    on_border = (xs == 30) | (xs == 79) | (ys == 20) | (ys == 59)
    assert on_border.all() and len(xs) == 2 * 50 + 2 * 40 - 4


def test_colour_is_configurable():
    out = apply_visual_prompt("circle", Image.new("RGB", (50, 50)), [5, 5, 40, 40], colour=[0, 255, 0])
    a = np.asarray(out)
    assert ((a[..., 1] == 255) & (a[..., 0] == 0)).sum() > 0 and (a[..., 0] == 255).sum() == 0


@pytest.mark.parametrize("name", ["blur_outside", "grayscale_outside"])
def test_inside_of_the_box_is_unchanged(name):
    image = noise()
    box = [40, 30, 70, 50]
    out = np.asarray(apply_visual_prompt(name, image, box, region="box"))
    src = np.asarray(image)
    assert np.array_equal(out[30:80, 40:110], src[30:80, 40:110])
    outside = np.ones(src.shape[:2], bool)
    outside[30:80, 40:110] = False
    assert np.any(out[outside] != src[outside], axis=1).mean() > 0.9
    if name == "grayscale_outside":
        assert (out[outside][:, 0] == out[outside][:, 1]).all()


@pytest.mark.parametrize("name", ["blur_outside", "grayscale_outside"])
def test_ellipse_region(name):
    image = noise()
    out = np.asarray(apply_visual_prompt(name, image, [40, 30, 71, 51], region="ellipse"))
    src = np.asarray(image)
    assert np.array_equal(out[50:61, 65:86], src[50:61, 65:86])  # around the centre: inside the ellipse
    assert np.any(out[31, 41] != src[31, 41]) or np.any(out[30, 40] != src[30, 40])  # box corner: outside it


def test_blur_sigma_scales_and_matters():
    image = noise(100, 100)
    weak = np.asarray(apply_visual_prompt("blur_outside", image, [0, 0, 10, 10], sigma=1)).astype(float)
    strong = np.asarray(apply_visual_prompt("blur_outside", image, [0, 0, 10, 10], sigma=4)).astype(float)
    assert strong[50:, 50:].std() < weak[50:, 50:].std()
    scaled = apply_visual_prompt("blur_outside", image, [0, 0, 10, 10], sigma=2, input_size=50)  # 100/50 -> 4 px
    assert np.array_equal(np.asarray(scaled), strong)


@pytest.mark.parametrize("box", [[30, 20, 101, 61], [0, 0, 40, 100], [150, 100, 50, 20]])
def test_crop_keeps_the_box_aspect(box):
    out = apply_visual_prompt("crop", noise(), box)
    assert out.size == (box[2], box[3])
    x, y, w, h = box
    assert np.array_equal(np.asarray(out), np.asarray(noise())[y : y + h, x : x + w])


def test_marked_crop_has_margin_and_ellipse():
    image = noise(400, 300)
    box = [100, 100, 80, 40]
    out = apply_visual_prompt("marked_crop", image, box, margin=0.5, thickness=1)
    assert out.size == (160, 80)  # the box's aspect with half its size each side
    xs, ys = red_pixels(out)
    curve = ellipse_points([40, 20, 80, 40], out.size)
    assert len(xs) > 50 and distances_to_curve(xs, ys, curve).max() <= 1.0
    clipped = apply_visual_prompt("marked_crop", image, [0, 0, 80, 40], margin=0.5)
    assert clipped.size == (120, 60)  # clipped at the image border


def test_none_and_registry():
    image = noise()
    assert np.array_equal(np.asarray(apply_visual_prompt("none", image, [1, 1, 5, 5])), np.asarray(image))
    assert set(VISUAL_PROMPTS) == {
        "circle",
        "rectangle",
        "crop",
        "marked_crop",
        "blur_outside",
        "grayscale_outside",
        "none",
    }


def test_unknown_prompt_lists_the_known_ones():
    with pytest.raises(VisualPromptError, match="unknown visual prompt 'halo': known ones are circle, rectangle, crop"):
        apply_visual_prompt("halo", noise(), [0, 0, 5, 5])
    with pytest.raises(VisualPromptError, match="unknown visual prompt 'halo'"):
        parse_prompt_specs(["circle", {"name": "halo"}])
    with pytest.raises(VisualPromptError, match="visual prompt 'crop' has no option sigma: its options are none"):
        apply_visual_prompt("crop", noise(), [0, 0, 5, 5], sigma=3)
    with pytest.raises(VisualPromptError, match="visual_prompt.blur_outside.region='disc' is not one of box, ellipse"):
        apply_visual_prompt("blur_outside", noise(), [0, 0, 5, 5], region="disc")
    # options are checked where the specs are parsed, not in a DataLoader worker
    with pytest.raises(VisualPromptError, match=r"visual_prompt.circle.thickness=0 must be a number > 0"):
        parse_prompt_specs([{"name": "circle", "thickness": 0}])
    with pytest.raises(VisualPromptError, match=r"visual_prompt.circle.colour=\[300, 0, 0\] must be three integers"):
        parse_prompt_specs([{"name": "circle", "colour": [300, 0, 0]}])


def test_specs_from_config_data():
    specs = parse_prompt_specs(
        [{"name": "circle", "thickness": 3}, "crop", {"name": "blur_outside", "options": {"sigma": 2}}]
    )
    assert [s.key for s in specs] == ["circle(thickness=3)", "crop", "blur_outside(sigma=2)"]
    assert parse_prompt_specs("none")[0].name == "none"
