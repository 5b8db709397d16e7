"""Keypoints: point-box geometry, PCK and chance, naming, the four readers, the shapes world's keypoints."""

import json
import math
import re

import numpy as np
import pytest
import yaml
from PIL import Image

from descbench.core.errors import ConfigError, DatasetError
from descbench.core.marking.points import (
    KeypointDataset,
    KeypointInstance,
    check_box,
    check_point,
    confusion_table,
    localization_outcomes,
    localization_queries,
    mirror_pairs,
    naming_queries,
    point_box,
    summarize_localization,
    summarize_naming,
)
from descbench.core.marking.visual_prompts import apply_visual_prompt
from descbench.datasets.keypoint_sets import (
    load_coco_keypoints,
    load_cub_keypoints,
    load_keypoints_jsonl,
    load_spair_keypoints,
)

# ---------------------------------------------------------------------------- geometry


def test_point_box_input_pixels_follow_the_resize():
    # 200 x 100 image, model input 50: 5 px at input = 20 px across, 10 px down when squashed
    assert point_box((100, 50), 5, "input", image_size=(200, 100), input_size=50) == [80, 40, 40, 20]
    assert point_box((100, 50), 5, "input", image_size=(200, 100), input_size=50, resize="crop") == [
        90,
        40,
        20,
        20,
    ]
    assert point_box((100, 50), 5, "input", image_size=(200, 100), input_size=50, resize="pad") == [80, 30, 40, 40]


def test_point_box_fraction_of_the_instance_box():
    # max(30, 60) * 0.25 = 15 px on both axes
    box = point_box((100, 50), 0.25, "box", instance_box=[0, 0, 30, 60], image_size=(200, 100))
    assert box == [85, 35, 30, 30]


def test_point_box_on_and_past_the_edges_still_reaches_the_image():
    assert point_box((0, 50), 5, "input", image_size=(200, 100), input_size=50) == [0, 40, 20, 20]
    # a point just past the corner is clamped onto it: a quarter box remains inside
    assert point_box((205, -3), 5, "input", image_size=(200, 100), input_size=50) == [180, 0, 20, 10]
    image = Image.new("RGB", (200, 100), (128, 128, 128))
    marked = np.asarray(apply_visual_prompt("circle", image, point_box((200, 0), 20, "box", [0, 0, 1, 1], (200, 100))))
    red = (marked[..., 0] == 255) & (marked[..., 1] == 0)
    assert red[:25, 175:].sum() > 10  # the circle's arc is drawn in the corner


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (dict(radius=0), "task.radius must be a positive number, got 0"),
        (dict(radius=2, unit="cm"), "task.radius_unit='cm' is not one of input, box"),
        (dict(radius=2, unit="input", input_size=None), "radius unit 'input' needs the model's input size"),
        (
            dict(radius=2, unit="input", input_size=8, resize="zoom"),
            "task.image_processing='zoom' is not one of squash, pad, crop",
        ),
    ],
)
def test_point_box_errors(args, message):
    options = dict(point=(1, 1), radius=1, unit="input", image_size=(10, 10), input_size=8) | args
    with pytest.raises(ConfigError) as err:
        point_box(**options)
    assert str(err.value) == message


def test_point_and_box_checks_name_the_place():
    assert check_point(None, "f:1") is None
    assert check_point([1, 2.5], "f:1") == (1.0, 2.5)
    with pytest.raises(DatasetError, match=r"^f:3: keypoint \[1, nan\] is not two finite numbers \[x, y\]"):
        check_point([1, float("nan")], "f:3")
    with pytest.raises(DatasetError, match=r"^f:4: keypoint \['1', 2\] is not two finite numbers"):
        check_point(["1", 2], "f:4")
    with pytest.raises(DatasetError, match=r"^f:5: box \[1, 2, 3\] is not four finite numbers \[x, y, w, h\]$"):
        check_box([1, 2, 3], "f:5")
    with pytest.raises(DatasetError, match=r"^f:6: box \[1, 2, 0, 3\] has no area"):
        check_box([1, 2, 0, 3], "f:6")


# ---------------------------------------------------------------------------- PCK and chance


def dataset_of(*instances, parts=("a", "b", "c", "d")):
    return KeypointDataset("hand", list(instances), list(parts), image_loader=lambda i: Image.new("RGB", (4, 4)))


def test_pck_and_chance_on_a_hand_made_instance():
    # box 100 x 50: threshold 0.1 * 100 = 10 px; a and b are 5 px apart, c is far; d is not visible
    first = KeypointInstance("1", "thing", [0, 0, 100, 50], {"a": (10, 10), "b": (15, 10), "c": (50, 40), "d": None})
    second = KeypointInstance("2", "thing", [0, 0, 10, 10], {"a": None, "b": (3, 3), "c": None, "d": None})
    data = dataset_of(first, second)
    queries = localization_queries(data)
    assert [(q.instance, q.part, q.candidates) for q in queries] == [
        (0, "a", ("a", "b", "c")),
        (0, "b", ("a", "b", "c")),
        (0, "c", ("a", "b", "c")),
        (1, "b", ("b",)),
    ]
    # a -> b (5 px: correct), b -> c (46.1 px: wrong), c -> c, and the single candidate
    outcomes = localization_outcomes(data, queries, [1, 2, 2, 0])
    assert [o.correct for o in outcomes] == [True, False, True, True]
    assert [o.chance for o in outcomes] == pytest.approx([2 / 3, 2 / 3, 1 / 3, 1.0])
    assert outcomes[1].distance == pytest.approx(math.hypot(35, 30))
    summary = summarize_localization(outcomes)
    assert summary["pck"] == 0.75
    assert summary["chance_pck"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1) / 4)
    assert (summary["pck.a"], summary["pck.b"], summary["pck.c"]) == (1.0, 0.5, 1.0)
    assert summary["chance_pck.b"] == pytest.approx((2 / 3 + 1) / 2)
    assert (summary["pck_alpha"], summary["pck_reference"]) == (0.1, "max(box w, h)")
    assert (summary["num_keypoints"], summary["data.single_candidate"]) == (4, 1)


def test_pck_threshold_is_inclusive_and_scales_with_alpha():
    inst = KeypointInstance("1", "thing", [0, 0, 40, 100], {"a": (0, 0), "b": (10, 0)})
    data = dataset_of(inst, parts=("a", "b"))
    queries = localization_queries(data)
    # threshold 0.1 * 100 = 10: exactly 10 px away counts; at alpha 0.05 it does not
    assert [o.correct for o in localization_outcomes(data, queries, [1, 0])] == [True, True]
    assert [o.correct for o in localization_outcomes(data, queries, [1, 0], alpha=0.05)] == [False, False]
    assert [o.chance for o in localization_outcomes(data, queries, [1, 0], alpha=0.05)] == [0.5, 0.5]


# ---------------------------------------------------------------------------- naming


def test_mirror_pairs_by_rule_and_declared():
    parts = [
        "left eye",
        "right eye",
        "nose",
        "left_wing",
        "right_wing",
        "leftover",
        "Left Ear",
        "Right Ear",
        "left leg",
    ]
    assert mirror_pairs(parts) == {
        "left eye": "right eye",
        "right eye": "left eye",
        "left_wing": "right_wing",
        "right_wing": "left_wing",
        "Left Ear": "Right Ear",
        "Right Ear": "Left Ear",
    }
    assert mirror_pairs(["port", "starboard"], {"port": "starboard"}) == {"port": "starboard", "starboard": "port"}
    with pytest.raises(DatasetError, match=r"^mirror pair 'port' <-> 'aft': 'aft' is not a part name \(port, bow\)$"):
        mirror_pairs(["port", "bow"], {"port": "aft"})


def test_naming_accuracy_merged_accuracy_chance_and_confusion():
    labels = ("left eye", "right eye", "nose")
    gold = ["left eye", "right eye", "nose", "left eye"]
    predicted = ["right eye", "right eye", "left eye", "left eye"]
    mirror = mirror_pairs(labels)
    summary = summarize_naming(gold, predicted, [labels] * 4, mirror)
    assert summary["acc"] == 0.5
    assert summary["acc_lr_merged"] == 0.75  # the mirrored eye counts; nose -> left eye does not
    assert summary["chance_acc"] == pytest.approx(1 / 3)
    assert summary["chance_acc_lr_merged"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 2 / 3) / 4)
    assert (summary["acc.left eye"], summary["acc.right eye"], summary["acc.nose"]) == (0.5, 1.0, 0.0)
    table = confusion_table(gold, predicted, labels)
    assert table.counts == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert table.as_dict()["nose"] == {"left eye": 1, "right eye": 0, "nose": 0}


@pytest.mark.parametrize(
    "parts, message",
    [
        (["nose", "wing.tip"], "part name 'wing.tip' holds a '.': part names are result key segments"),
        (["nose", " "], "part name ' ' is empty: part names"),
        (["ci_low", "ci_high"], "part name 'ci_low' is a reserved result-key word (published, ci_low, ci_high, "),
        (["nose", "std"], "part name 'std' is a reserved result-key word"),
        (["nose", "eye", "nose"], "the parts name the part 'nose' twice: each part once"),
    ],
)
def test_part_names_are_key_segments(parts, message):
    with pytest.raises(DatasetError, match=r"^data set d: " + re.escape(message)):
        KeypointDataset("d", [], parts, lambda i: None)


def test_a_category_naming_a_part_twice_is_refused():
    with pytest.raises(DatasetError, match=r"^data set d: category 'face' name the part 'eye' twice"):
        KeypointDataset("d", [], ["x"], lambda i: None, category_parts={"face": ["eye", "nose", "eye"]})


def test_naming_queries_use_the_category_parts():
    inst = KeypointInstance("1", "face", [0, 0, 9, 9], {"left eye": (1, 1), "nose": None, "right eye": (7, 1)})
    data = KeypointDataset(
        "hand", [inst], ["x"], lambda i: None, category_parts={"face": ["left eye", "right eye", "nose"]}
    )
    queries = naming_queries(data)
    assert [(q.part, q.labels, q.gold) for q in queries] == [
        ("left eye", ("left eye", "right eye", "nose"), 0),
        ("right eye", ("left eye", "right eye", "nose"), 1),
    ]
    assert data.mirror == {"left eye": "right eye", "right eye": "left eye"}


# ---------------------------------------------------------------------------- readers


def write_image(path, size=(60, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 20, 30)).save(path)


def write_cub(root):
    (root / "parts").mkdir(parents=True)
    (root / "parts/parts.txt").write_text("1 back\n2 beak\n3 left eye\n4 right eye\n")
    (root / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    (root / "images.txt").write_text(
        "1 001.Black_footed_Albatross/a_0001.jpg\n2 002.Laysan_Albatross/b_0002.jpg\n"
        "3 002.Laysan_Albatross/b_0003.jpg\n"
    )
    (root / "image_class_labels.txt").write_text("1 1\n2 2\n3 2\n")
    (root / "train_test_split.txt").write_text("1 0\n2 1\n3 0\n")
    (root / "bounding_boxes.txt").write_text("1 5.0 6.0 40.0 30.0\n2 1 1 10 10\n3 2.0 3.0 20.0 25.0\n")
    (root / "parts/part_locs.txt").write_text(
        "1 1 20.0 15.0 1\n1 2 41.5 12.0 1\n1 3 0.0 0.0 0\n1 4 30.0 10.0 1\n"
        "2 1 3 3 1\n2 2 0 0 0\n2 3 0 0 0\n2 4 0 0 0\n"
        "3 1 0.0 0.0 0\n3 2 10.0 11.0 1\n3 3 0.0 0.0 0\n3 4 0.0 0.0 0\n"
    )
    for rel in (
        "001.Black_footed_Albatross/a_0001.jpg",
        "002.Laysan_Albatross/b_0002.jpg",
        "002.Laysan_Albatross/b_0003.jpg",
    ):
        write_image(root / "images" / rel)
    return root


def test_cub_parts_reader(tmp_path):
    data = load_cub_keypoints(write_cub(tmp_path / "CUB_200_2011"))
    assert data.parts == ["back", "beak", "left eye", "right eye"]
    assert [i.image_id for i in data.instances] == ["1", "3"]  # the test split
    first = data.instances[0]
    assert first.category == "Black footed Albatross"
    assert first.box == [5.0, 6.0, 40.0, 30.0]
    assert first.keypoints == {"back": (20.0, 15.0), "beak": (41.5, 12.0), "left eye": None, "right eye": (30.0, 10.0)}
    assert (first.split, data.instances[1].category) == ("test", "Laysan Albatross")
    assert data.mirror["left eye"] == "right eye"
    assert data.load_image("3").size == (60, 40)
    assert [i.image_id for i in load_cub_keypoints(tmp_path / "CUB_200_2011", split="train").instances] == ["2"]
    assert len(load_cub_keypoints(tmp_path / "CUB_200_2011", split=None)) == 3


def test_cub_reader_errors(tmp_path):
    root = write_cub(tmp_path / "cub")
    locs = root / "parts/part_locs.txt"
    text = locs.read_text()
    locs.write_text(text.replace("1 2 41.5 12.0 1", "1 2 41.5 12.0"))
    with pytest.raises(DatasetError, match=rf"^{locs}:2: expected 5 fields, got 4: '1 2 41.5 12.0'$"):
        load_cub_keypoints(root)
    locs.write_text(text.replace("1 2 41.5 12.0 1", "1 2 inf 12.0 1"))
    with pytest.raises(DatasetError, match=rf"^{locs}:2: keypoint \[inf, 12.0\] is not two finite numbers"):
        load_cub_keypoints(root)
    locs.write_text(text.replace("1 2 41.5 12.0 1", "1 9 41.5 12.0 1"))
    with pytest.raises(DatasetError, match=rf"^{locs}:2: part id 9 is not in {root}/parts/parts.txt$"):
        load_cub_keypoints(root)
    locs.unlink()
    with pytest.raises(DatasetError, match=r"lacks parts/part_locs.txt \(expected the CUB_200_2011 archive layout"):
        load_cub_keypoints(root)


def write_spair(root):
    per_image = {
        "filename": "2008_000001.jpg",
        "image_width": 60,
        "image_height": 40,
        "category": "aeroplane",
        "bndbox": [4, 5, 44, 35],
        "kps": {"0": [10, 12], "1": None, "2": [30.5, 20], "10": [40, 30]},
    }
    (root / "ImageAnnotation/aeroplane").mkdir(parents=True)
    (root / "ImageAnnotation/aeroplane/2008_000001.json").write_text(json.dumps(per_image))
    pair = {
        "pair_id": 1,
        "src_imname": "2008_000001.jpg",
        "trg_imname": "2008_000002.jpg",
        "category": "aeroplane",
        "src_bndbox": [4, 5, 44, 35],
        "trg_bndbox": [1, 2, 31, 22],
        "kps_ids": [0, 2],
        "src_kps": [[10, 12], [30.5, 20]],
        "trg_kps": [[5, 6], [25, 15]],
    }
    (root / "PairAnnotation/test").mkdir(parents=True)
    (root / "PairAnnotation/test/000001-2008_000001-2008_000002:aeroplane.json").write_text(json.dumps(pair))
    for name in ("2008_000001.jpg", "2008_000002.jpg"):
        write_image(root / "JPEGImages/aeroplane" / name)
    return root


def test_spair_reader_prefers_per_image_files(tmp_path):
    data = load_spair_keypoints(write_spair(tmp_path / "SPair-71k"))
    assert [i.image_id for i in data.instances] == ["aeroplane/2008_000001.jpg", "aeroplane/2008_000002.jpg"]
    first, second = data.instances
    assert first.box == [4.0, 5.0, 40.0, 30.0]  # bndbox [x1, y1, x2, y2]
    assert first.keypoints == {
        "keypoint 0": (10.0, 12.0),
        "keypoint 1": None,
        "keypoint 2": (30.5, 20.0),
        "keypoint 10": (40.0, 30.0),
    }
    # the second image has no per-image file: its keypoints come from the pair file
    assert second.keypoints == {"keypoint 0": (5.0, 6.0), "keypoint 2": (25.0, 15.0)}
    assert second.box == [1.0, 2.0, 30.0, 20.0]
    assert data.stats["images_from_pairs"] == 1
    assert data.parts_for("aeroplane") == ["keypoint 0", "keypoint 1", "keypoint 2", "keypoint 10"]
    assert data.load_image("aeroplane/2008_000002.jpg").size == (60, 40)


def test_spair_reader_part_names_and_errors(tmp_path):
    root = write_spair(tmp_path / "spair")
    names = tmp_path / "names.yaml"
    names.write_text(yaml.safe_dump({"aeroplane": {0: "nose", 1: "left wing tip", 2: "right wing tip", 10: "tail"}}))
    data = load_spair_keypoints(root, part_names=names, split=None)
    assert data.parts_for("aeroplane") == ["nose", "left wing tip", "right wing tip", "tail"]
    assert len(data) == 1  # split=None: the per-image files only
    assert data.mirror["left wing tip"] == "right wing tip"
    with pytest.raises(DatasetError, match=r"no pair folder .*PairAnnotation/trn \(splits present: test\)"):
        load_spair_keypoints(root, split="trn")
    (root / "ImageAnnotation/aeroplane/2008_000001.json").write_text(json.dumps({"bndbox": [4, 5, 2, 35], "kps": {}}))
    with pytest.raises(DatasetError, match=r"2008_000001.json: bndbox: box \[4, 5, -2, 30\] has no area"):
        load_spair_keypoints(root)


def write_coco_keypoints(path):
    names = ["nose", "left_eye", "right_eye"]
    data = {
        "images": [{"id": 7, "file_name": "000000000007.jpg", "width": 60, "height": 40}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [1, 2, 30, 20],
                "area": 600,
                "num_keypoints": 2,
                "keypoints": [10, 11, 2, 0, 0, 0, 20, 12, 1],
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 1,
                "iscrowd": 1,
                "bbox": [30, 2, 20, 20],
                "area": 400,
                "num_keypoints": 0,
                "keypoints": [0] * 9,
            },
            {
                "id": 3,
                "image_id": 7,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [40, 5, 10, 10],
                "area": 100,
                "num_keypoints": 0,
                "keypoints": [0] * 9,
            },
        ],
        "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": names, "skeleton": []}],
    }
    path.write_text(json.dumps(data))
    write_image(path.parent / "val2017/000000000007.jpg")
    return path


def test_coco_keypoints_reader(tmp_path):
    data = load_coco_keypoints(write_coco_keypoints(tmp_path / "person_keypoints_val2017.json"), tmp_path / "val2017")
    assert data.parts == ["nose", "left eye", "right eye"]
    assert len(data) == 1
    inst = data.instances[0]
    assert (inst.image_id, inst.category, inst.box, inst.instance_id) == ("7", "person", [1.0, 2.0, 30.0, 20.0], "1")
    assert inst.keypoints == {
        "nose": (10.0, 11.0),
        "left eye": None,
        "right eye": (20.0, 12.0),
    }  # v=0 -> None, v=1 kept
    assert inst.split == "person_keypoints_val2017"
    assert data.stats == {"crowd": 1, "too_few_keypoints": 1, "keypoints_outside": 0, "no_visible_part": 0}
    assert data.mirror == {"left eye": "right eye", "right eye": "left eye"}


def test_coco_keypoints_reader_errors(tmp_path):
    path = write_coco_keypoints(tmp_path / "kp.json")
    data = json.loads(path.read_text())
    data["annotations"][0]["keypoints"] = [10, 11, 2]
    path.write_text(json.dumps(data))
    with pytest.raises(
        DatasetError, match=r"kp.json: annotation 1: keypoints must be \[x, y, v\] x 3 \(got 3 numbers\)$"
    ):
        load_coco_keypoints(path, tmp_path / "val2017")
    with pytest.raises(DatasetError, match=r"^COCO keypoints file not found: .*missing.json"):
        load_coco_keypoints(tmp_path / "missing.json", tmp_path)


def test_keypoints_jsonl_reader(tmp_path):
    lines = [
        {
            "file_name": "a.png",
            "category": "cat",
            "box": [1, 2, 30, 20],
            "keypoints": {"left ear": [5, 6], "nose": None},
        },
        {
            "file_name": "b.png",
            "category": "dog",
            "box": [0, 0, 10, 10],
            "keypoints": {"nose": [2, 2], "right ear": [1, 1]},
        },
    ]
    path = tmp_path / "kp.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    for name in ("a.png", "b.png"):
        write_image(tmp_path / "images" / name)
    data = load_keypoints_jsonl(path, tmp_path / "images")
    assert data.parts == ["left ear", "nose", "right ear"]
    assert data.instances[0].keypoints == {"left ear": (5.0, 6.0), "nose": None, "right ear": None}
    assert [i.split for i in data.instances] == ["kp", "kp"]
    assert data.mirror == {"left ear": "right ear", "right ear": "left ear"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"file_name": "a.png", "category": "c", "box": [1, 2, 3], "keypoints": {}}',
            r"kp.jsonl:2: box: box \[1, 2, 3\] is not four finite numbers \[x, y, w, h\]$",
        ),
        (
            '{"file_name": "a.png", "category": "c", "box": [1, 2, 3, 4], "keypoints": {"nose": [1, "x"]}}',
            r"kp.jsonl:2: keypoint 'nose': keypoint \[1, 'x'\] is not two finite numbers",
        ),
        (
            '{"file_name": "a.png", "box": [1, 2, 3, 4], "keypoints": {}}',
            r"kp.jsonl:2 has no 'category' \(expected file_name, category, box, keypoints\)$",
        ),
        ("{not json", r"kp.jsonl:2 is not valid JSON"),
    ],
)
def test_keypoints_jsonl_errors(tmp_path, line, message):
    good = '{"file_name": "a.png", "category": "c", "box": [1, 2, 3, 4], "keypoints": {"nose": [1, 1]}}'
    path = tmp_path / "kp.jsonl"
    path.write_text(good + "\n" + line + "\n")
    write_image(tmp_path / "a.png")
    with pytest.raises(DatasetError, match=message):
        load_keypoints_jsonl(path, tmp_path)


def test_missing_image_is_named(tmp_path):
    path = tmp_path / "kp.jsonl"
    path.write_text('{"file_name": "gone.png", "category": "c", "box": [1, 2, 3, 4], "keypoints": {"nose": [1, 1]}}\n')
    with pytest.raises(DatasetError, match=rf"image file not found: {tmp_path}/gone.png \(1 of 1 images missing\)"):
        load_keypoints_jsonl(path, tmp_path)


# ---------------------------------------------------------------------------- the shapes world


def test_world_keypoints_are_deterministic_and_on_their_parts():
    from descbench.world.builders import load_shapes_keypoints
    from descbench.world.figures import keypoint_categories
    from descbench.world.lexicon import RGB

    data = load_shapes_keypoints("figures", num_instances=8, seed=3)
    again = load_shapes_keypoints("figures", num_instances=8, seed=3)
    assert [i.keypoints for i in data.instances] == [i.keypoints for i in again.instances]
    assert list(data.category_parts) == ["traffic light", "face", "car", "totem"]
    figures = keypoint_categories()["figures"]
    for inst in data.instances:
        pixels = np.asarray(data.load_image(inst.image_id)).astype(int)
        assert np.array_equal(pixels, np.asarray(again.load_image(inst.image_id)))
        x, y, w, h = inst.box
        for part, (px, py) in inst.keypoints.items():
            assert x <= px <= x + w and y <= py <= y + h
            colour = RGB[figures[inst.category]["parts"][part]["colour"]]
            assert np.abs(pixels[int(py), int(px)] - colour).max() <= 30, (inst.category, part)
    assert data.mirror["left blue eye"] == "right blue eye"


def test_world_unknown_design_names_the_choices():
    from descbench.world.builders import load_shapes_keypoints

    with pytest.raises(ConfigError, match=r"^unknown keypoint design 'edges' .*: use one of figures, corners$"):
        load_shapes_keypoints("edges")


def test_world_corner_keypoints_lie_on_the_drawn_shape():
    from descbench.world.builders import load_shapes_keypoints

    data = load_shapes_keypoints("corners", num_instances=10, seed=5)
    for inst in data.instances:
        pixels = np.asarray(data.load_image(inst.image_id)).astype(float)
        background = np.median(pixels[0], axis=0)  # shapes are placed from row 1 on: row 0 is background
        shape = np.abs(pixels - background).max(-1) > 40
        ys, xs = np.nonzero(shape)
        for part, (px, py) in inst.keypoints.items():
            nearest = np.hypot(xs + 0.5 - px, ys + 0.5 - py).min()
            assert nearest <= 1.5, (inst.category, part, nearest)


def test_known_answer_model_localises_the_traffic_lights_and_not_the_corners():
    """The shipped model finds the red, yellow and green light (their names carry their look) and is at
    chance on the corners design (geometric names it never learnt): the product's pieces, end to end."""
    import torch

    import descbench.world
    from descbench.core.backbone import build_backbone
    from descbench.core.marking.scoring import pick_candidates
    from descbench.world.builders import load_shapes_keypoints

    backbone = build_backbone("local-dir:" + str(descbench.world.BUNDLE_DIR))

    def run(data, keep):
        queries = [q for q in localization_queries(data) if data.instances[q.instance].category in keep]
        picks = []
        with torch.no_grad():
            for key, query in enumerate(queries):
                inst = data.instances[query.instance]
                image = data.load_image(inst.image_id)
                marked = [
                    apply_visual_prompt(
                        "circle",
                        image,
                        point_box(inst.keypoints[c], 0.25, "box", inst.box, image.size),
                        input_size=backbone.image_size,
                    )
                    for c in query.candidates
                ]
                features = backbone.encode_images(torch.stack([backbone.preprocess(m) for m in marked]))
                text = backbone.encode_texts([f"a photo of the {query.part} of a {inst.category}"])[0]
                picks.append(pick_candidates([features @ text], 0, keys=[key])[0])
        return summarize_localization(localization_outcomes(data, queries, picks))

    lights = run(load_shapes_keypoints("figures", num_instances=16), {"traffic light"})
    assert (lights["num_keypoints"], lights["pck"], lights["chance_pck"]) == (12, 1.0, pytest.approx(1 / 3))
    corners = run(load_shapes_keypoints("corners", num_instances=20), {"triangle", "diamond", "square", "star"})
    assert corners["pck"] <= corners["chance_pck"] + 0.15


def test_json_lines_readers_name_a_file_that_is_not_utf8(tmp_path):
    from descbench.datasets.keypoint_sets import load_keypoints_jsonl
    from descbench.datasets.person_sets import load_person_jsonl

    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes('{"file_name": "caf\xe9.png"}\n'.encode("latin-1"))
    for load in (load_keypoints_jsonl, load_person_jsonl):
        with pytest.raises(DatasetError, match=r"latin1\.jsonl is not UTF-8 text \(undecodable byte at offset 18\)"):
            load(bad, tmp_path)
