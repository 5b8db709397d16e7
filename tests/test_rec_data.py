"""REC data: REFER layout (restricted unpickler), JSON lines, detector proposals, bad inputs."""

import json
import os
import pickle

import pytest
from PIL import Image

from descbench.core.errors import RecDataError
from descbench.datasets.collages import load_collages
from descbench.datasets.refer import from_records, load_jsonl, load_refer, load_restricted_pickle

IMAGES = {1: (64, 48), 2: (80, 60)}  # image id -> (width, height)


def write_images(folder, ids=IMAGES):
    folder.mkdir(parents=True, exist_ok=True)
    for image_id, size in ids.items():
        Image.new("RGB", size, (image_id * 40, 0, 0)).save(folder / ("COCO_train2014_%012d.jpg" % image_id))
    return folder


def sentence(text, sent_id):
    return {"raw": text, "sent": text.lower(), "tokens": text.lower().split(), "sent_id": sent_id}


def write_refer(root, refs=None, annotations=None, split_by="unc"):
    root.mkdir(parents=True, exist_ok=True)
    refs = refs or [
        {
            "ref_id": 0,
            "ann_id": 10,
            "image_id": 1,
            "split": "val",
            "sentences": [sentence("man on the left", 0), sentence("left guy", 1)],
            "category_id": 1,
            "file_name": "COCO_train2014_000000000001_0.jpg",
        },
        {
            "ref_id": 1,
            "ann_id": 21,
            "image_id": 2,
            "split": "testA",
            "sentences": [sentence("the dog", 2)],
            "category_id": 18,
            "file_name": "COCO_train2014_000000000002_1.jpg",
        },
        {
            "ref_id": 2,
            "ann_id": 11,
            "image_id": 1,
            "split": "val",
            "sentences": [sentence("right person", 3)],
            "category_id": 1,
            "file_name": "COCO_train2014_000000000001_2.jpg",
        },
    ]
    annotations = annotations or [
        {"id": 10, "image_id": 1, "bbox": [2.0, 4.0, 20.0, 30.0], "category_id": 1},
        {"id": 11, "image_id": 1, "bbox": [30.0, 4.0, 25.0, 40.0], "category_id": 1},
        {"id": 20, "image_id": 2, "bbox": [0.0, 0.0, 40.0, 30.0], "category_id": 1},
        {"id": 21, "image_id": 2, "bbox": [40.0, 20.0, 30.0, 30.0], "category_id": 18},
    ]
    instances = {
        "images": [
            {"id": i, "file_name": "COCO_train2014_%012d.jpg" % i, "width": w, "height": h}
            for i, (w, h) in IMAGES.items()
        ],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
    }
    with open(root / f"refs({split_by}).p", "wb") as handle:
        pickle.dump(refs, handle, protocol=2)  # the protocol of the published files
    (root / "instances.json").write_text(json.dumps(instances))
    return root


@pytest.fixture
def refer(tmp_path):
    return write_refer(tmp_path / "refcoco"), write_images(tmp_path / "train2014")


def test_refer_layout_loads(refer):
    root, images = refer
    data = load_refer(root, images, split="val")
    assert data.proposals == "gt" and data.name == "refcoco(unc)"
    assert [e.expression for e in data.expressions] == ["man on the left", "left guy", "right person"]
    first = data.expressions[0]
    assert first.image_id == "1" and first.ref_id == 0 and first.ann_id == 10 and first.split == "val"
    assert first.boxes == [[2.0, 4.0, 20.0, 30.0], [30.0, 4.0, 25.0, 40.0]]
    assert first.gold_box == [2.0, 4.0, 20.0, 30.0] and data.expressions[2].gold_box == [30.0, 4.0, 25.0, 40.0]
    assert data.load_image("1").size == (64, 48)
    test_a = load_refer(root, images, split="testA")
    assert [e.expression for e in test_a.expressions] == ["the dog"] and test_a.splits == ["testA"]


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    root = tmp_path / "refcoco"
    root.mkdir()
    path = root / "refs(unc).p"
    path.write_bytes(pickle.dumps([{"ref_id": 0, "payload": Evil(marker)}], protocol=2))
    with pytest.raises(
        RecDataError, match=r"refusing to load .*refs\(unc\)\.p: the pickle wants to build (posix|os|nt)\.system"
    ):
        load_restricted_pickle(path)
    (root / "instances.json").write_text("{}")
    with pytest.raises(RecDataError, match="refusing to load"):
        load_refer(root, tmp_path, split="val")
    assert not marker.exists()
    # a class, not a function: refused too
    path.write_bytes(pickle.dumps([{1, 2}], protocol=2))
    with pytest.raises(RecDataError, match=r"wants to build (__builtin__|builtins)\.set"):
        load_restricted_pickle(path)


def test_split_absent_from_refs_file(refer):
    root, images = refer
    with pytest.raises(RecDataError, match=r"split 'testB' is not in .*refs\(unc\)\.p: it holds the splits val, testA"):
        load_refer(root, images, split="testB")
    with pytest.raises(RecDataError, match=r"refs file not found: .*refs\(google\)\.p .*found refs\(unc\)\.p"):
        load_refer(root, images, split="val", split_by="google")


def test_missing_image_is_named(refer):
    root, images = refer
    (images / "COCO_train2014_000000000002.jpg").unlink()
    with pytest.raises(RecDataError, match=r"image file not found: .*COCO_train2014_000000000002\.jpg \(1 of 1 images"):
        load_refer(root, images, split="testA")


def test_empty_expression_is_an_error(tmp_path):
    refs = [
        {"ref_id": 7, "ann_id": 10, "image_id": 1, "split": "val", "sentences": [{"raw": "  ", "sent": ""}]},
    ]
    root = write_refer(tmp_path / "r", refs=refs)
    with pytest.raises(RecDataError, match=r"expression of image 1, ref 7, ann 10 has an empty expression"):
        load_refer(root, write_images(tmp_path / "im"), split="val")


def test_boxes_are_clipped_and_empty_ones_dropped(tmp_path, caplog):
    annotations = [
        {"id": 10, "image_id": 1, "bbox": [-5.0, 4.0, 20.0, 30.0], "category_id": 1},  # clipped to x=0, w=15
        {"id": 11, "image_id": 1, "bbox": [70.0, 4.0, 25.0, 40.0], "category_id": 1},  # outside: dropped
        {"id": 12, "image_id": 1, "bbox": [30.0, 4.0, 0.0, 40.0], "category_id": 1},  # zero width: dropped
        {"id": 20, "image_id": 2, "bbox": [0.0, 0.0, 40.0, 30.0], "category_id": 1},
        {"id": 21, "image_id": 2, "bbox": [40.0, 20.0, 30.0, 30.0], "category_id": 18},
    ]
    root = write_refer(tmp_path / "r", annotations=annotations)
    images = write_images(tmp_path / "im")
    refs = pickle.loads((root / "refs(unc).p").read_bytes())[:2]
    (root / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    data = load_refer(root, images, split="val")
    assert data.expressions[0].boxes == [[0.0, 4.0, 15.0, 30.0]]
    assert data.expressions[0].gold_box == [0.0, 4.0, 15.0, 30.0]
    assert data.stats == {
        "boxes_clipped": 2,
        "boxes_dropped": 4,
        "single_candidate": 2,
        "whole_image_fallback": 0,
        "refs_without_sentences": 0,
    }
    assert "2 candidate boxes clipped to their image, 4 dropped" in caplog.text
    # a gold box outside its image cannot be evaluated
    refs[0]["ann_id"] = 11
    (root / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    with pytest.raises(
        RecDataError, match=r"ref 0, ann 11 has gold box \[70.0, 4.0, 25.0, 40.0\] with no area inside its 64x48 image"
    ):
        load_refer(root, images, split="val")


def test_detector_proposals(refer, tmp_path):
    root, images = refer
    detections = tmp_path / "dets.json"
    detections.write_text(json.dumps({"1": [[1, 3, 21, 31], [31, 5, 24, 39], [0, 0, 10, 10]], "2": [[0, 0, 5, 5]]}))
    data = load_refer(root, images, split="val", proposals=str(detections))
    assert data.proposals == "detector" and data.proposal_info["file"] == str(detections)
    assert data.expressions[0].boxes == [[1.0, 3.0, 21.0, 31.0], [31.0, 5.0, 24.0, 39.0], [0.0, 0.0, 10.0, 10.0]]
    assert data.expressions[0].gold_box == [2.0, 4.0, 20.0, 30.0]  # gold stays the annotation
    # an image the detector gives no box (absent or empty): the whole image is its one candidate, as ReCLIP
    for dets in ({"2": [[0, 0, 5, 5]]}, {"1": [], "2": [[0, 0, 5, 5]]}):
        detections.write_text(json.dumps(dets))
        data = load_refer(root, images, split=None, proposals=str(detections))
        width, height = Image.open(images / "COCO_train2014_000000000001.jpg").size
        assert data.expressions[0].boxes == [[0.0, 0.0, float(width), float(height)]]
        assert data.stats["whole_image_fallback"] == sum(e.image_id == "1" for e in data.expressions) > 0
    detections.write_text(json.dumps({"1": [[0, 0, "5", 5]]}))
    with pytest.raises(
        RecDataError, match=r"proposals file .*dets\.json, image 1: box \[0, 0, '5', 5\] is not \[x, y, w, h\]"
    ):
        load_refer(root, images, split="val", proposals=str(detections))
    with pytest.raises(RecDataError, match=r"proposals file not found: .*nope\.json"):
        load_refer(root, images, split="val", proposals=str(tmp_path / "nope.json"))


def jsonl_line(image_id, ann_id, anns, text, split=None):
    line = {
        "file_name": "COCO_train2014_%012d.jpg" % image_id,
        "image_id": image_id,
        "anns": [{"bbox": b, "id": i, "category_id": 1} for i, b in anns],
        "ann_id": ann_id,
        "sentences": [{"raw": text, "sent": text}],
    }
    if split:
        line["split"] = split
    return json.dumps(line)


def test_jsonl_layout(tmp_path):
    images = write_images(tmp_path / "im")
    anns1 = [(10, [2, 4, 20, 30]), (11, [30, 4, 25, 40])]
    path = tmp_path / "refcoco_val.jsonl"
    path.write_text(
        "\n".join(
            [
                jsonl_line(1, 10, anns1, "left man", "val"),
                jsonl_line(1, 11, anns1, "right man", "val"),
                jsonl_line(2, 20, [(20, [0, 0, 40, 30])], "a dog", "testB"),
            ]
        )
        + "\n"
    )
    data = load_jsonl(path, images, split="val")
    assert [e.expression for e in data.expressions] == ["left man", "right man"]
    assert data.expressions[1].boxes == [[2.0, 4.0, 20.0, 30.0], [30.0, 4.0, 25.0, 40.0]]
    assert data.expressions[1].gold_box == [30.0, 4.0, 25.0, 40.0] and data.expressions[1].ann_id == 11
    single = load_jsonl(path, images, split="testB")
    assert single.stats["single_candidate"] == 1 and len(single) == 1  # kept, counted
    with pytest.raises(
        RecDataError, match=r"split 'test' is not in .*refcoco_val\.jsonl: it holds the splits val, testB"
    ):
        load_jsonl(path, images, split="test")
    # lines without a split key belong to the requested split
    path.write_text(jsonl_line(1, 10, anns1, "left man") + "\n")
    assert load_jsonl(path, images, split="testA").splits == ["testA"]
    path.write_text(jsonl_line(1, 10, anns1, "left man").replace('"ann_id": 10', '"ann_id": 99') + "\n")
    with pytest.raises(
        RecDataError, match=r"refcoco_val\.jsonl:1: ann_id 99 names no ann in 'anns' \(their ids: \[10, 11\]\)"
    ):
        load_jsonl(path, images)
    path.write_text(jsonl_line(3, 10, anns1, "left man") + "\n")
    with pytest.raises(RecDataError, match=r"image file not found: .*COCO_train2014_000000000003\.jpg"):
        load_jsonl(path, images)


def test_world_records_are_compatible():
    from descbench.world.samples import ShapesREC

    world = ShapesREC(num_canvases=3, seed=1)
    data = from_records("shapes", world.expressions, world.load_image)
    assert len(data) == len(world.expressions)
    e, r = data.expressions[0], world.expressions[0]
    assert e.boxes == [[float(v) for v in b] for b in r["boxes"]] and e.gold_box == e.boxes[r["gold_index"]]


def test_collages_are_deterministic_with_exact_boxes():
    a, b = load_collages(num_canvases=5, seed=3), load_collages(num_canvases=5, seed=3)
    assert [(e.image_id, e.expression, e.boxes) for e in a.expressions] == [
        (e.image_id, e.expression, e.boxes) for e in b.expressions
    ]
    assert [e.boxes for e in load_collages(num_canvases=5, seed=4).expressions] != [e.boxes for e in a.expressions]
    for group_id in dict.fromkeys(e.image_id for e in a.expressions):
        boxes = next(e.boxes for e in a.expressions if e.image_id == group_id)
        assert 2 <= len(boxes) <= 4
        canvas = a.load_image(group_id)
        grey = (128, 128, 128)
        for x, y, w, h in boxes:  # the tile fills its box exactly: grey only outside
            assert canvas.getpixel((int(x) - 1, int(y) + 2)) == grey or x == 0
            tile = canvas.crop((int(x), int(y), int(x + w), int(y + h)))
            assert tile.getcolors(1 << 20) is None or len(tile.getcolors(1 << 20)) > 1
    assert a.splits == ["val", "testA", "testB"]


def test_jsonl_inputs_are_checked_strictly(tmp_path):
    images = write_images(tmp_path / "im")
    anns = [(10, [2, 4, 20, 30]), (11, [30, 4, 25, 40])]
    path = tmp_path / "refs.jsonl"

    def load(*lines):
        path.write_text("\n".join(lines) + "\n")
        return load_jsonl(path, images)

    # a box given as a string is refused with file and line, not read as [7, 0, 3, 0]
    bad = json.loads(jsonl_line(1, 10, anns, "left man"))
    bad["anns"][0]["bbox"] = "7030"
    with pytest.raises(RecDataError, match=r"refs\.jsonl:1, ann 10: box '7030' is not \[x, y, w, h\]"):
        load(json.dumps(bad))
    bad["anns"][0]["bbox"] = [1, 2, float("nan"), 4]
    with pytest.raises(RecDataError, match=r"refs\.jsonl:1, ann 10: box \[1, 2, nan, 4\] is not"):
        load(json.dumps(bad))
    # one image id with two file names is an error naming both lines
    other = json.loads(jsonl_line(1, 11, anns, "right man"))
    other["file_name"] = "COCO_train2014_%012d.jpg" % 2
    with pytest.raises(RecDataError, match=r"refs\.jsonl:2: image_id 1 has file_name .*but line 1 gave it"):
        load(jsonl_line(1, 10, anns, "left man"), json.dumps(other))
    # an empty sentence list gives no expression and is counted
    empty = json.loads(jsonl_line(1, 11, anns, "x"))
    empty["sentences"] = []
    data = load(jsonl_line(1, 10, anns, "left man"), json.dumps(empty))
    assert len(data) == 1 and data.stats["records_without_sentences"] == 1
    # several gold annotations (ReCLIP's list-valued ann_id): correct on either
    data = load(jsonl_line(1, [10, 11], anns, "a man"))
    assert data.expressions[0].gold_boxes == [[2.0, 4.0, 20.0, 30.0], [30.0, 4.0, 25.0, 40.0]]
    # ReCLIP's file names carry an annotation suffix: the image file without it is found
    suffixed = json.loads(jsonl_line(1, 10, anns, "left man"))
    suffixed["file_name"] = "COCO_train2014_%012d_10.jpg" % 1
    data = load(json.dumps(suffixed))
    assert data.paths["1"].name == "COCO_train2014_%012d.jpg" % 1


def test_a_pick_is_correct_on_any_gold_box_above_half_iou():
    from descbench.core.marking.engine import make_prediction
    from descbench.core.marking.expressions import RefExpression

    e = RefExpression("i", "a man", [[0, 0, 10, 10], [20, 0, 10, 10], [40, 0, 10, 10]], [0, 0, 10, 10], "val")
    e.extra_gold = [[20, 0, 10, 10]]
    assert make_prediction(0, e, 1, 0.3).correct and make_prediction(0, e, 0, 0.3).correct
    assert not make_prediction(0, e, 2, 0.3).correct
    # IoU exactly 0.5 is not above 0.5 (the references' rule): a box covering 2/3 of the gold's width
    half = RefExpression("i", "a man", [[0, 0, 30, 10]], [0, 0, 15, 10], "val")
    assert make_prediction(0, half, 0, 0.0).iou == 0.5 and not make_prediction(0, half, 0, 0.0).correct


# ---------------------------------------------------------------------------- ReCLIP's detection files


def test_detections_in_both_reclip_layouts_keep_the_numbers_after_the_box(refer, tmp_path):
    """ReCLIP's main.py reads {image_id: [[x, y, w, h, score...], ...]} or [{image_id, box}, ...]; both give the
    same candidates, the numbers after the box are kept, the file is identified by its sha256."""
    import hashlib

    root, images = refer
    boxes = {"1": [[1, 3, 21, 31, 0.9], [31, 5, 24, 39, 0.4, 7]], "2": [[0, 0, 5, 5, 0.8]]}
    as_dict, as_list = tmp_path / "dets_dict.json", tmp_path / "dets_list.json"
    as_dict.write_text(json.dumps(boxes))
    as_list.write_text(json.dumps([{"image_id": int(i), "box": b} for i, bs in boxes.items() for b in bs]))
    loaded = {}
    for layout, path in (("dict", as_dict), ("list", as_list)):
        data = load_refer(root, images, split=None, proposals=str(path))
        info = data.proposal_info
        assert info["source"] == "detector" and info["layout"] == layout and info["file"] == str(path)
        assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (info["images"], info["boxes"], info["extra_numbers_per_box"]) == (2, 3, [1, 2])
        loaded[layout] = [e.boxes for e in data.expressions]
    assert loaded["dict"] == loaded["list"]
    assert loaded["dict"][0] == [[1.0, 3.0, 21.0, 31.0], [31.0, 5.0, 24.0, 39.0]]
    from descbench.datasets.refer import load_detections

    assert load_detections(as_dict).extras == {"1": [[0.9], [0.4, 7]], "2": [[0.8]]}


@pytest.mark.parametrize(
    "content, message",
    [
        ([{"image": 1, "box": [0, 0, 5, 5]}], r"item 0 is not an object with 'image_id' and 'box'"),
        ({"1": [[0, 0, 5]]}, r"image 1: box \[0, 0, 5\] is not \[x, y, w, h, \.\.\.\]"),
        ({"1": [[0, 0, 5, 5, [1]]]}, r"what follows x, y, w, h must be numbers or labels"),
        ({"1": []}, r"holds no detection at all"),
        ("boxes", r"holds neither layout"),
        (
            {"99": [[0, 0, 5, 5]]},
            r"gives no box for any image of .*refs\(unc\)\.p with .*instances\.json: is it the detection file",
        ),
    ],
)
def test_a_bad_detection_file_is_one_line(refer, tmp_path, content, message):
    root, images = refer
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(content))
    with pytest.raises(RecDataError, match=message):
        load_refer(root, images, split=None, proposals=str(path))


def test_the_upper_bound_is_the_share_of_expressions_a_pick_can_get_right():
    """Hand-computed: IoU([0,0,10,10], [0,0,10,5]) = 0.5 is not above 0.5; [0,0,10,6] gives 0.6."""
    from descbench.core.marking.scoring import gold_reachable

    assert not gold_reachable([[0, 0, 10, 10]], [[0, 0, 10, 5]])
    assert gold_reachable([[50, 50, 5, 5], [0, 0, 10, 10]], [[0, 0, 10, 6]])
    assert gold_reachable([[0, 0, 10, 10]], [[40, 40, 5, 5], [0, 0, 10, 6]])  # any gold box counts
    assert not gold_reachable([], [[0, 0, 10, 6]])
