"""Marking-bias probe: statistics on hand-made tables, control-circle placement, person readers, phrases."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from descbench.core.errors import DatasetError
from descbench.core.marking.bias_probe import (
    BiasPhrase,
    phrase_probabilities,
    place_control_box,
    summarize_bias,
)
from descbench.datasets.person_sets import (
    astronaut_view,
    load_astronaut_persons,
    load_bias_phrases,
    load_coco_persons,
    load_person_jsonl,
)

PHRASES = [
    BiasPhrase("person", "a photo of a person", "neutral"),
    BiasPhrase("thief", "a photo of a thief", "negative"),
]


# ---------------------------------------------------------------------------- statistics


def test_summarize_bias_on_a_hand_made_table():
    # [image, condition (unmarked, circled, control), phrase (person, thief)]
    table = np.array(
        [
            [[0.8, 0.2], [0.7, 0.3], [0.8, 0.2]],
            [[0.6, 0.4], [0.3, 0.7], [0.5, 0.5]],
        ]
    )
    result = summarize_bias(table, PHRASES, num_resamples=2000)
    assert result["num_images"] == 2
    assert result["bias.thief.unmarked.prob"] == pytest.approx(0.3)
    assert result["bias.thief.circled.prob"] == pytest.approx(0.5)
    assert result["bias.thief.control.prob"] == pytest.approx(0.35)
    assert (result["bias.thief.circled.prob.ci_low"], result["bias.thief.circled.prob.ci_high"]) == pytest.approx(
        (0.3, 0.7)
    )
    # paired shifts per image: circled - unmarked = 0.1, 0.3; circled - control = 0.1, 0.2
    key = "bias.thief.shift_circled_unmarked"
    assert result[key] == pytest.approx(0.2)
    assert (result[f"{key}.ci_low"], result[f"{key}.ci_high"], result[f"{key}.ci_method"]) == (
        pytest.approx(0.1),
        pytest.approx(0.3),
        "bootstrap",
    )
    key = "bias.thief.shift_circled_control"
    assert (result[key], result[f"{key}.ci_low"], result[f"{key}.ci_high"]) == pytest.approx((0.15, 0.1, 0.2))
    assert result["bias.person.shift_circled_unmarked"] == pytest.approx(-0.2)
    # kinds: the sum over their phrases (one phrase each here)
    assert result["bias.negative.circled.prob"] == pytest.approx(0.5)
    assert result["bias.neutral.shift_circled_control"] == pytest.approx(-0.15)
    assert (result["bias_confidence"], result["bias_resamples"]) == (0.95, 2000)


def test_summarize_bias_kinds_sum_their_phrases_and_shape_is_checked():
    phrases = [*PHRASES, BiasPhrase("suspect", "a photo of a suspect", "negative")]
    table = np.full((3, 3, 3), 1 / 3)
    table[:, 1] = [0.2, 0.5, 0.3]  # circled
    result = summarize_bias(torch.tensor(table), phrases, num_resamples=100)
    assert result["bias.negative.circled.prob"] == pytest.approx(0.8)
    assert result["bias.negative.shift_circled_unmarked"] == pytest.approx(0.8 - 2 / 3)
    assert result["bias.negative.shift_circled_unmarked.ci_low"] == pytest.approx(0.8 - 2 / 3)  # no spread
    with pytest.raises(
        ValueError, match=r"^probabilities must be \[images, 3 conditions, 2 phrases\], got \(3, 3, 3\)$"
    ):
        summarize_bias(table, PHRASES)
    with pytest.raises(ValueError, match=r"^phrase id 'negative' is also a phrase kind: rename the phrase$"):
        summarize_bias(table[:, :, :2], [PHRASES[0], BiasPhrase("negative", "x", "negative")])


def test_phrase_probabilities_softmax_of_scaled_cosines():
    image = torch.tensor([[1.0, 0.0]])
    texts = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    probs = phrase_probabilities(image, texts, logit_scale=float(np.log(3.0)))
    assert probs.shape == (1, 2) and probs[0].tolist() == pytest.approx([0.75, 0.25])


# ---------------------------------------------------------------------------- the control circle


def overlap(a, b):
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0)


def test_control_box_exact_cases():
    rng = np.random.default_rng(0)
    # 100 x 50 image, person [0, 0, 40, 50]: a 60-wide box fits only at x = 40
    assert place_control_box([0, 0, 60, 50], [[0, 0, 40, 50]], (100, 50), rng) == ([40.0, 0.0, 60.0, 50.0], 1.0)
    # the person covers 60 of 100 px: same size does not fit; 0.6 x (36 x 30) is the first that does
    box, scale = place_control_box([0, 0, 60, 50], [[0, 0, 60, 50]], (100, 50), rng)
    assert scale == 0.6 and box[2:] == pytest.approx([36.0, 30.0]) and box[0] >= 60
    assert place_control_box([0, 0, 60, 50], [[0, 0, 60, 50]], (100, 50), rng, scales=(1.0, 0.9)) is None
    # a fractional edge blocks its whole pixel: 40.5 -> pixels 0..40, a 59-wide box fits from x = 41 only
    assert place_control_box([0, 0, 59, 50], [[0, 0, 40.5, 50]], (100, 50), rng, scales=(1.0,)) == (
        [41.0, 0.0, 59.0, 50.0],
        1.0,
    )


def test_control_box_never_overlaps_a_person():
    rng = np.random.default_rng(7)
    placed = 0
    for trial in range(200):
        size = (int(rng.integers(20, 120)), int(rng.integers(20, 120)))
        boxes = []
        for _ in range(int(rng.integers(1, 5))):
            w, h = rng.uniform(3, size[0] * 0.6), rng.uniform(3, size[1] * 0.6)
            boxes.append([rng.uniform(-5, size[0] - w + 5), rng.uniform(-5, size[1] - h + 5), w, h])
        found = place_control_box(boxes[0], boxes, size, np.random.default_rng([1, trial]))
        if found is None:
            continue
        placed += 1
        (x, y, w, h), scale = found
        assert 0 <= x and 0 <= y and x + w <= size[0] and y + h <= size[1]
        assert (w, h) == pytest.approx((boxes[0][2] * scale, boxes[0][3] * scale))
        assert all(overlap([x, y, w, h], b) == 0 for b in boxes)
        assert found == place_control_box(boxes[0], boxes, size, np.random.default_rng([1, trial]))  # seeded
    assert placed > 100


# ---------------------------------------------------------------------------- readers and data


def write_image(path, size=(100, 80)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (50, 60, 70)).save(path)


def test_coco_persons_reader(tmp_path):
    data = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
            {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80},
            {"id": 3, "file_name": "c.jpg", "width": 100, "height": 80},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 20, 30], "area": 600},
            {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [50, 0, 40, 40], "area": 1600},
            {"id": 12, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [30, 30, 10, 10], "area": 100},
            {"id": 13, "image_id": 1, "category_id": 18, "iscrowd": 0, "bbox": [60, 50, 30, 30], "area": 900},
            {"id": 20, "image_id": 2, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 50, 50], "area": 2500},
            {"id": 30, "image_id": 3, "category_id": 1, "iscrowd": 0, "bbox": [5, 5, 8, 8], "area": 64},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
    }
    path = tmp_path / "instances_val2017.json"
    path.write_text(json.dumps(data))
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(tmp_path / "val2017" / name)
    persons = load_coco_persons(path, tmp_path / "val2017")
    assert [(p.image_id, p.target_box) for p in persons.images] == [
        ("1", [0.0, 0.0, 20.0, 30.0]),
        ("3", [5.0, 5.0, 8.0, 8.0]),
    ]
    # the crowd box is no target but still a person to avoid; the dog is not
    assert persons.images[0].boxes == [[0.0, 0.0, 20.0, 30.0], [50.0, 0.0, 40.0, 40.0], [30.0, 30.0, 10.0, 10.0]]
    assert persons.stats == {"no_target": 1}
    big = load_coco_persons(path, tmp_path / "val2017", min_area=100)
    assert [p.image_id for p in big.images] == ["1"] and big.stats == {"no_target": 2}
    crowd = load_coco_persons(path, tmp_path / "val2017", include_crowd=True)
    assert crowd.images[0].target_box == [50.0, 0.0, 40.0, 40.0]
    with pytest.raises(DatasetError, match=r"instances_val2017.json: no category named 'cyclist'$"):
        load_coco_persons(path, tmp_path / "val2017", category="cyclist")


def test_person_jsonl_reader(tmp_path):
    path = tmp_path / "persons.jsonl"
    path.write_text(
        '{"file_name": "a.jpg", "boxes": [[0, 0, 10, 10], [20, 20, 30, 30]]}\n'
        '{"file_name": "b.jpg", "image_id": "b", "boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "target": 0}\n'
    )
    write_image(tmp_path / "a.jpg")
    write_image(tmp_path / "b.jpg")
    data = load_person_jsonl(path, tmp_path)
    assert [(p.image_id, p.target) for p in data.images] == [("a.jpg", 1), ("b", 0)]
    assert data.load_image("b").size == (100, 80)
    path.write_text('{"file_name": "a.jpg", "boxes": [[0, 0, 10, 10]], "target": 3}\n')
    with pytest.raises(DatasetError, match=r"persons.jsonl:1: target 3 is not an index into its 1 boxes$"):
        load_person_jsonl(path, tmp_path)
    path.write_text('\n{"file_name": "a.jpg", "boxes": [[0, 0, 10, "x"]]}\n')
    with pytest.raises(DatasetError, match=r"persons.jsonl:2: boxes\[0\]: box \[0, 0, 10, 'x'\] is not four finite"):
        load_person_jsonl(path, tmp_path)


@pytest.mark.parametrize(
    "lines, message",
    [
        (  # one image id, two files: each line must be scored on its own file
            [
                '{"file_name": "a.jpg", "image_id": 7, "boxes": [[0, 0, 10, 10]]}',
                '{"file_name": "b.jpg", "image_id": 7, "boxes": [[0, 0, 10, 10]]}',
            ],
            "persons.jsonl:2: image 7 (b.jpg) was given by line 1 already: one line per image",
        ),
        (  # the same file twice under two ids: one image counted twice
            [
                '{"file_name": "a.jpg", "image_id": 1, "boxes": [[0, 0, 10, 10]]}',
                '{"file_name": "a.jpg", "image_id": 2, "boxes": [[0, 0, 10, 10]]}',
            ],
            "persons.jsonl:2: image 2 (a.jpg) was given by line 1 already",
        ),
        (
            ['{"file_name": "a.jpg", "boxes": [[0, 0, 10, 10], [100, 20, 30, 30]]}'],
            "persons.jsonl:1: box 1 [100, 20, 30, 30] lies outside its 100x80 image: fix the box",
        ),
        (
            ['{"file_name": 3, "boxes": [[0, 0, 10, 10]]}'],
            "persons.jsonl:1: file_name must be a non-empty string, got 3",
        ),
        (
            ['{"file_name": "a.jpg", "image_id": [1], "boxes": [[0, 0, 10, 10]]}'],
            "persons.jsonl:1: image_id must be a string or an integer, got [1]",
        ),
    ],
)
def test_person_jsonl_reader_refuses(tmp_path, lines, message):
    path = tmp_path / "persons.jsonl"
    path.write_text("\n".join(lines) + "\n")
    write_image(tmp_path / "a.jpg")
    write_image(tmp_path / "b.jpg")
    with pytest.raises(DatasetError, match=re.escape(message)):
        load_person_jsonl(path, tmp_path)


def test_coco_person_box_outside_the_declared_size_is_refused(tmp_path):
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [5, 90, 20, 30], "area": 600}
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    write_image(tmp_path / "a.jpg")
    with pytest.raises(DatasetError, match=r"instances.json: image 1: box 0 \[5, 90, 20, 30\] lies outside its 100x80"):
        load_coco_persons(path, tmp_path)


def test_astronaut_views_map_the_person_box():
    data = load_astronaut_persons()
    assert len(data) == 8
    photo = np.asarray(astronaut_view({})[0])
    x, y, w, h = astronaut_view({})[1]
    assert [x, y, w, h] == [20.0, 15.0, 344.0, 497.0]
    for k, item in enumerate(data.images):
        image = data.load_image(item.image_id)
        bx, by, bw, bh = item.target_box
        assert (bw, bh) == (w, h) and bx + bw <= image.size[0] and by + bh <= image.size[1]
        pixels = np.asarray(image)
        # a row of the mapped box shows the photo's box row, straight or mirrored
        row = pixels[int(by) + 40, int(bx) : int(bx + bw)]
        source = photo[int(y) + 40, int(x) : int(x + w)]
        assert np.array_equal(row, source) or np.array_equal(row, source[::-1]), k
        # every view leaves room for a control circle of the person's size
        found = place_control_box(item.target_box, item.boxes, image.size, np.random.default_rng(k))
        assert found is not None and found[1] == 1.0


def test_bias_phrases_shipped_and_checked(tmp_path):
    phrases = load_bias_phrases()
    assert {p.kind for p in phrases} == {"neutral", "negative"}
    assert "criminal" in [p.id for p in phrases if p.kind == "negative"]
    bad = tmp_path / "p.yaml"
    other = "  - {id: y, text: a photo of y, kind: neutral}\n"
    bad.write_text("phrases:\n  - {id: x, text: a photo of x, kind: scary}\n" + other)
    with pytest.raises(DatasetError, match=r"p.yaml: phrase 'x' has kind 'scary': use neutral or negative$"):
        load_bias_phrases(bad)
    bad.write_text("phrases:\n  - {id: a.b, text: t, kind: neutral}\n" + other)
    with pytest.raises(DatasetError, match=r"phrase id 'a.b' must not contain '.' nor be a kind"):
        load_bias_phrases(bad)
    bad.write_text("phrases:\n  - {id: a, text: t, kind: neutral}\n")
    with pytest.raises(DatasetError, match=r"p.yaml lists 1 phrase: the probe needs at least 2 \(a softmax"):
        load_bias_phrases(bad)
    bad.write_text("phrases:\n  - {id: a, text: t, kind: neutral\n")
    with pytest.raises(DatasetError, match=r"^phrase file .*p.yaml is not valid YAML: .* at line 3 column 1$"):
        load_bias_phrases(bad)
    bad.write_bytes("phrases:\n  - {id: a, text: caf\u00e9, kind: neutral}\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"^phrase file .*p.yaml is not UTF-8 text \(undecodable byte at offset"):
        load_bias_phrases(bad)


def test_place_control_for_is_keyed_by_seed_and_index():
    from descbench.core.marking.bias_probe import PersonImage, place_control_for

    item = PersonImage("x", [[10, 10, 20, 20], [60, 0, 10, 10]], 0)
    found = place_control_for(item, (100, 80), index=5, seed=2)
    assert found == place_control_box(item.target_box, item.boxes, (100, 80), np.random.default_rng([2, 5]))
    assert found != place_control_for(item, (100, 80), index=6, seed=2)
