"""Property-based fuzzing of every reader of a file the user supplies (Hypothesis, seeded).

Each reader gets a valid example, which Hypothesis mutates: a value replaced by another type, NaN, an
infinity, a huge or negative number, an empty or dotted string; a key deleted; an element or line
duplicated or dropped; the text cut short; undecodable bytes. The property: the reader returns a valid
data set (its boxes and points finite) or raises a :class:`UserError` whose message is one line naming
the file - never another exception.

Seeded (``derandomize``): the same examples on every run. ``DESCBENCH_FUZZ_EXAMPLES`` sets how many per
reader (default 150; e.g. 5000 for a long hunt).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from descbench.core.errors import UserError

EXAMPLES = int(os.environ.get("DESCBENCH_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: values a mutation puts in place of another: other types, non-finite and extreme numbers, odd strings
VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    7,
    2**70,
    -(2**70),
    0.5,
    -3.5,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    " ",
    "x",
    "a.b",
    "ci_low",
    "std",
    "line\nbreak",
    "Ünïcödé",
    "../../etc/passwd",
    [],
    {},
    [1, 2],
    [1, 2, 3, 4],
    [[0, 0, 5, 5]],
    {"a": 1},
]


# --------------------------------------------------------------------------- mutations


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (a tuple of keys and indices) into a JSON-like tree, the root included."""
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _get(node: Any, path: tuple) -> Any:
    for key in path:
        node = node[key]
    return node


def _set(root: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    _get(root, path[:-1])[path[-1]] = value
    return root


@st.composite
def mutated(draw: st.DrawFn, valid: Any, max_steps: int = 3) -> Any:
    """``valid`` (a JSON-like tree) after 1..``max_steps`` structural mutations."""
    doc = json.loads(json.dumps(valid))
    for _ in range(draw(st.integers(1, max_steps))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        node = _get(doc, path)
        op = draw(st.sampled_from(["replace", "replace", "delete", "duplicate", "wrap", "borrow"]))
        if op == "replace":
            doc = _set(doc, path, _copy(draw(st.sampled_from(VALUES))))
        elif op == "delete" and isinstance(node, (dict, list)) and node:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            del node[draw(st.sampled_from(keys))]
        elif op == "duplicate" and isinstance(node, list) and node:
            node.append(_copy(node[draw(st.integers(0, len(node) - 1))]))
        elif op == "wrap":
            doc = _set(doc, path, [node])
        elif op == "borrow":  # a value from elsewhere in the document (another field's type and range)
            doc = _set(doc, path, _copy(_get(doc, draw(st.sampled_from(paths)))))
    return doc


def _copy(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return value
    return pickle.loads(pickle.dumps(value))


@st.composite
def damaged_text(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` unchanged, cut short, or with undecodable/NUL bytes or a stray line put in."""
    op = draw(st.sampled_from(["none", "none", "cut", "bytes", "line"]))
    if op == "cut" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if op == "bytes":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from([b"\xff\xfe", b"\x00", b"\xc3", b"\r"])) + data[at:]
    if op == "line":
        lines = data.split(b"\n")
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, draw(st.sampled_from([b"{", b"[1, 2]", b"null", b"42", b'"x"', b"- - -", b"\t"])))
        return b"\n".join(lines)
    return data


def json_bytes(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # NaN and infinities as Python writes them: json.loads accepts them


def jsonl_bytes(lines: Any) -> bytes:
    if not isinstance(lines, list):
        return json_bytes(lines)
    return b"\n".join(json_bytes(line) for line in lines) + b"\n"


# --------------------------------------------------------------------------- the property


def check_outcome(path: Path, read: Callable[[], Any], valid: Callable[[Any], None]) -> None:
    """``read()`` returns something ``valid`` accepts, or raises a one-line UserError naming ``path``."""
    try:
        result = read()
    except UserError as err:
        message = str(err)
        assert "\n" not in message and "\r" not in message, message
        assert str(path) in message, message
        return
    valid(result)


def finite(*numbers: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers)


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="descbench-fuzz-") as folder:
        yield Path(folder)


def image(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        Image.new("RGB", size, (120, 80, 40)).save(path)
    return path


# --------------------------------------------------------------------------- REC: JSON lines, REFER, detections

REC_LINES = [
    {
        "file_name": "COCO_train2014_000000000001.jpg",
        "image_id": 1,
        "anns": [{"bbox": [2, 4, 20, 30], "id": 10}, {"bbox": [30, 4, 25, 40], "id": 11}],
        "ann_id": 10,
        "sentences": [{"raw": "the left one"}],
        "split": "val",
    },
    {
        "file_name": "COCO_train2014_000000000002.jpg",
        "image_id": 2,
        "anns": [{"bbox": [1, 1, 10, 10], "id": 20}, {"bbox": [20, 10, 20, 20], "id": 21}],
        "ann_id": 21,
        "sentences": [{"raw": "the right one"}, {"raw": "big box"}],
        "split": "val",
        "width": 64,
        "height": 48,
    },
]


def valid_rec(data: Any) -> None:
    assert len(data) > 0
    for e in data.expressions:
        assert e.expression.strip() and e.boxes
        assert all(finite(*b) and b[2] > 0 and b[3] > 0 for b in [*e.boxes, e.gold_box])


@FUZZ
@given(st.data())
def test_rec_jsonl_reader(workdir, data):
    from descbench.datasets.refer import load_jsonl

    for k in (1, 2):
        image(workdir / "rec" / "images" / f"COCO_train2014_{k:012d}.jpg")
    path = workdir / "rec" / "refs.jsonl"
    path.write_bytes(data.draw(damaged_text(jsonl_bytes(data.draw(mutated(REC_LINES))))))
    check_outcome(path, lambda: load_jsonl(path, workdir / "rec" / "images", split="val"), valid_rec)


DETECTIONS = {"1": [[2, 4, 20, 30, 0.9], [30, 4, 25, 40, 0.8]], "2": [[1, 1, 10, 10, 0.5]]}


@FUZZ
@given(st.data())
def test_detection_file_reader(workdir, data):
    from descbench.datasets.refer import load_detections, load_jsonl

    for k in (1, 2):
        image(workdir / "dets" / "images" / f"COCO_train2014_{k:012d}.jpg")
    lines = workdir / "dets" / "refs.jsonl"
    lines.write_bytes(jsonl_bytes(REC_LINES))
    path = workdir / "dets" / "dets.json"
    path.write_bytes(data.draw(damaged_text(json_bytes(data.draw(mutated(DETECTIONS))))))

    def read():
        detections = load_detections(path)
        assert all(finite(*b) for boxes in detections.boxes.values() for b in boxes)
        return load_jsonl(lines, workdir / "dets" / "images", split="val", proposals=str(path))

    check_outcome(path, read, valid_rec)


def _refer_files() -> tuple[list[dict], dict]:
    from tests.test_rec_data import write_refer

    with tempfile.TemporaryDirectory() as folder:
        root = write_refer(Path(folder) / "refcoco")
        refs = pickle.loads((root / "refs(unc).p").read_bytes())
        instances = json.loads((root / "instances.json").read_text())
    return refs, instances


@FUZZ
@given(st.data())
def test_refer_refs_and_instances_readers(workdir, data):
    from descbench.datasets.refer import load_refer
    from tests.test_rec_data import write_images

    refs, instances = _refer_files()
    root = workdir / "refer" / "refcoco"
    root.mkdir(parents=True, exist_ok=True)
    images = workdir / "refer" / "train2014"
    if not images.is_dir():
        write_images(images)
    which = data.draw(st.sampled_from(["refs", "instances"]))
    refs_path, instances_path = root / "refs(unc).p", root / "instances.json"
    if which == "refs":
        path = refs_path
        refs_path.write_bytes(data.draw(damaged_text(pickle.dumps(data.draw(mutated(refs)), protocol=2))))
        instances_path.write_bytes(json_bytes(instances))
    else:
        path = instances_path
        refs_path.write_bytes(pickle.dumps(refs, protocol=2))
        instances_path.write_bytes(data.draw(damaged_text(json_bytes(data.draw(mutated(instances))))))
    split = data.draw(st.sampled_from(["val", "testA"]))
    check_outcome(path, lambda: load_refer(root, images, split=split), valid_rec)


# --------------------------------------------------------------------------- keypoints and persons

KEYPOINT_LINES = [
    {
        "file_name": f"kp{k}.png",
        "category": "widget",
        "box": [2, 2, 60, 44],
        "keypoints": {"red dot": [12 + k, 12], "blue dot": [52, 12 + k], "green dot": None},
    }
    for k in range(3)
]


def valid_keypoints(data: Any) -> None:
    assert len(data.instances) > 0
    for instance in data.instances:
        assert finite(*instance.box) and instance.box[2] > 0 and instance.box[3] > 0
        assert instance.visible_parts()
        assert all(p is None or finite(*p) for p in instance.keypoints.values())


@FUZZ
@given(st.data())
def test_keypoint_jsonl_reader(workdir, data):
    from descbench.datasets.keypoint_sets import load_keypoints_jsonl

    for k in range(3):
        image(workdir / "kp" / "img" / f"kp{k}.png")
    path = workdir / "kp" / "kp.jsonl"
    path.write_bytes(data.draw(damaged_text(jsonl_bytes(data.draw(mutated(KEYPOINT_LINES))))))
    parts = data.draw(st.sampled_from([None, ["red dot", "blue dot", "green dot"]]))
    check_outcome(path, lambda: load_keypoints_jsonl(path, workdir / "kp" / "img", parts=parts), valid_keypoints)


PERSON_LINES = [
    {"file_name": "p0.png", "boxes": [[20, 20, 41, 91]]},
    {"file_name": "p1.png", "image_id": 7, "boxes": [[90, 10, 41, 91], [5, 5, 10, 10]], "target": 0},
]


def valid_persons(data: Any) -> None:
    assert len(data.images) > 0
    for person in data.images:
        assert all(finite(*b) and b[2] > 0 and b[3] > 0 for b in person.boxes)
        assert 0 <= person.target < len(person.boxes)


@FUZZ
@given(st.data())
def test_person_jsonl_reader(workdir, data):
    from descbench.datasets.person_sets import load_person_jsonl

    for k in range(2):
        image(workdir / "pb" / "img" / f"p{k}.png", (160, 120))
    path = workdir / "pb" / "persons.jsonl"
    path.write_bytes(data.draw(damaged_text(jsonl_bytes(data.draw(mutated(PERSON_LINES))))))
    check_outcome(path, lambda: load_person_jsonl(path, workdir / "pb" / "img"), valid_persons)


PHRASES = {
    "phrases": [
        {"id": "person", "text": "a photo of a person", "kind": "neutral"},
        {"id": "criminal", "text": "a photo of a criminal", "kind": "negative"},
        {"id": "doctor", "text": "a photo of a doctor", "kind": "neutral"},
    ]
}


@FUZZ
@given(st.data())
def test_phrase_file_reader(workdir, data):
    from descbench.datasets.person_sets import PHRASE_KINDS, load_bias_phrases

    path = workdir / "phrases.yaml"
    doc = data.draw(mutated(PHRASES))
    text = yaml.safe_dump(doc, allow_unicode=True).encode() if data.draw(st.booleans()) else json_bytes(doc)
    path.write_bytes(data.draw(damaged_text(text)))

    def valid(phrases: Any) -> None:
        assert len(phrases) >= 2 and len({p.id for p in phrases}) == len(phrases)
        assert all(p.kind in PHRASE_KINDS and p.text.strip() and "." not in p.id for p in phrases)

    check_outcome(path, lambda: load_bias_phrases(path), valid)


# --------------------------------------------------------------------------- descriptions, class names, compare.yaml

DESCRIPTORS = {
    "cat": ["whiskers", "pointed ears"],
    "coffee cup": ["a handle", "steam"],
    "rocket": ["fins", "a nose cone"],
}


@FUZZ
@given(st.data())
def test_descriptor_file_reader(workdir, data):
    from descbench.descriptions.descriptor_files import match_keys, read_descriptor_file

    path = workdir / "descriptors.json"
    nested = data.draw(st.booleans())
    doc = {"set": DESCRIPTORS} if nested else DESCRIPTORS
    path.write_bytes(data.draw(damaged_text(json_bytes(data.draw(mutated(doc))))))

    def read():
        table = read_descriptor_file(path, key="set" if nested else None)
        return table, match_keys(list(DESCRIPTORS), list(table), where=f"description file {path}")

    def valid(result: Any) -> None:
        table, matches = result
        assert all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in table.values())
        assert sorted(m.index for m in matches) == [0, 1, 2]

    check_outcome(path, read, valid)


CLASS_NAMES = b"red\tred thing\nblue\tblue thing\ngreen\tgreen thing\n"


@FUZZ
@given(st.data())
def test_class_name_file_reader(workdir, data):
    from descbench.datasets.folders import load_image_folder

    for colour in ("red", "blue", "green"):
        image(workdir / "folder" / "val" / colour / "0.png")
    path = workdir / "folder" / "names.tsv"
    lines = CLASS_NAMES.split(b"\n")
    if data.draw(st.booleans()):  # a line replaced by another line of the file, or by one of the mutation values
        at = data.draw(st.integers(0, len(lines) - 1))
        lines[at] = data.draw(st.sampled_from([*lines, *(str(v).encode() for v in VALUES)]))
    path.write_bytes(data.draw(damaged_text(b"\n".join(lines))))

    def valid(dataset: Any) -> None:
        assert len(dataset.classes) == 3 and all(isinstance(c, str) for c in dataset.classes)

    check_outcome(path, lambda: load_image_folder(str(workdir / "folder" / "val"), str(path)), valid)


COMPARE = {"compare": [["describe.detailed=false", "describe.detailed=true"], ["num_desc=1", "num_desc=2"]]}


@FUZZ
@given(st.data())
def test_compare_file_reader(workdir, data):
    from descbench.report.compare import load_compare_file

    path = workdir / "compare.yaml"
    doc = data.draw(mutated(COMPARE))
    text = yaml.safe_dump(doc, allow_unicode=True).encode() if data.draw(st.booleans()) else json_bytes(doc)
    path.write_bytes(data.draw(damaged_text(text)))

    def valid(pairs: Any) -> None:
        assert pairs and all(isinstance(a, str) and isinstance(b, str) for a, b in pairs)

    check_outcome(path, lambda: load_compare_file(path), valid)
