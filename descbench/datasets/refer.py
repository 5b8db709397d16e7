"""REC data readers: one :class:`RefExpression` per (referred box, sentence), images loaded on demand.

Layouts: the REFER layout (``refs(<splitBy>).p`` + ``instances.json`` + COCO train2014 images;
the pickle is untrusted and read with :class:`RestrictedUnpickler`) and the JSON-lines layout of
earlier zero-shot work; plus :func:`from_records` for generated sets. Proposals: the ground-truth
boxes of the image (``"gt"``, default) or a detector file in either of ReCLIP's layouts
(:func:`load_detections`); ``RecDataset.proposals`` records which (``gt`` | ``detector``) and
``RecDataset.proposal_info`` the file, its sha256 and its layout. Every reader applies :func:`descbench.core.marking.expressions.check_expressions`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from descbench.core.errors import RecDataError
from descbench.core.files import read_json_file, read_json_lines
from descbench.core.marking.expressions import RecDataset, RefExpression, check_expressions, parse_box
from descbench.datasets.base import check_image_files, file_loader, file_name, plain_id, read_image_size

log = logging.getLogger("descbench")
COCO_FILE = "COCO_train2014_%012d.jpg"


def _select_split(items: list[dict], split: str | None, source: Path, key: str = "split") -> list[dict]:
    if not items:
        raise RecDataError(f"{source} holds no record: one referred box per record is expected")
    if split is None:
        return items
    present = list(dict.fromkeys(str(item.get(key)) for item in items))
    chosen = [item for item in items if str(item.get(key)) == split]
    if not chosen:
        raise RecDataError(
            f"split {split!r} is not in {source}: it holds the splits {', '.join(present) or 'none'}; "
            "pick one of them (dataset.builder.split=...)"
        )
    return chosen


DETECTIONS_LAYOUTS = ("{image_id: [[x, y, w, h, ...], ...]}", '[{"image_id": ..., "box": [x, y, w, h, ...]}, ...]')


@dataclass(frozen=True)
class Detections:
    """A detector's proposals as ReCLIP's ``main.py`` reads them: per image, boxes ``[x, y, w, h]`` (the first
    four numbers of each entry) and what follows them (a score, a category: ``extras``, kept, not used).

    ``layout`` is ``dict`` (``{image_id: [[x, y, w, h, ...], ...]}``, ReCLIP's ``*_dets_dict.json``) or ``list``
    (``[{"image_id", "box"}, ...]``); ``sha256`` identifies the file in the results.
    """

    path: str
    sha256: str
    layout: str
    boxes: dict[str, list[list[float]]]
    extras: dict[str, list[list[Any]]]

    def get(self, image_id: str) -> list[list[float]]:
        """The boxes of an image (none when the detector gave it none: the reader falls back to the whole image)."""
        return self.boxes.get(_image_key(image_id), [])

    def provenance(self) -> dict[str, Any]:
        """What the results record: ``proposals.<key>``."""
        widths = {len(e) for per_image in self.extras.values() for e in per_image}
        return {
            "file": self.path,
            "sha256": self.sha256,
            "layout": self.layout,
            "images": len(self.boxes),
            "boxes": sum(len(b) for b in self.boxes.values()),
            "extra_numbers_per_box": sorted(widths),
        }


def _image_key(image_id: Any) -> str:
    """An image id as a lookup key: integer ids (``101``, ``"101"``) as ReCLIP's ``int(image_id)``, others as text."""
    text = str(image_id).strip()
    return str(int(text)) if text.lstrip("-").isdigit() else text


def _detection(value: Any, where: str) -> tuple[list[float], list[Any]]:
    """One detection entry: ``[x, y, w, h]`` followed by any further numbers (or labels), which are kept."""
    if not isinstance(value, (list, tuple)) or len(value) < 4:
        raise RecDataError(
            f"{where}: box {value!r} is not [x, y, w, h, ...] (four finite numbers in pixels, then optional "
            "numbers such as a score)"
        )
    extras = list(value[4:])
    if not all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in extras):
        raise RecDataError(f"{where}: box {value!r}: what follows x, y, w, h must be numbers or labels")
    return parse_box(list(value[:4]), where), extras


def load_detections(path: str | Path) -> Detections:
    """A detector proposals file in either of ReCLIP's layouts (:data:`DETECTIONS_LAYOUTS`); a bad entry is one
    line naming the file and the image."""
    path = Path(path)
    expected = f"expected JSON {DETECTIONS_LAYOUTS[0]} or {DETECTIONS_LAYOUTS[1]}"
    if not path.is_file():
        raise RecDataError(f"proposals file not found: {path} ({expected})")
    data = read_json_file(path, "proposals file", RecDataError)
    boxes: dict[str, list[list[float]]] = {}
    extras: dict[str, list[list[Any]]] = {}

    def add(image_id: Any, entry: Any, where: str) -> None:
        box, rest = _detection(entry, where)
        key = _image_key(image_id)
        boxes.setdefault(key, []).append(box)
        extras.setdefault(key, []).append(rest)

    if isinstance(data, dict):
        layout = "dict"
        for image_id, entries in data.items():
            if not isinstance(entries, list):
                raise RecDataError(
                    f"proposals file {path}: image {image_id} must map to a list of [x, y, w, h, ...] boxes"
                )
            boxes.setdefault(_image_key(image_id), [])
            extras.setdefault(_image_key(image_id), [])
            for entry in entries:
                add(image_id, entry, f"proposals file {path}, image {image_id}")
    elif isinstance(data, list):
        layout = "list"
        for number, item in enumerate(data):
            if not isinstance(item, dict) or "image_id" not in item or "box" not in item:
                raise RecDataError(
                    f"proposals file {path}: item {number} is not an object with 'image_id' and 'box' ({expected})"
                )
            add(item["image_id"], item["box"], f"proposals file {path}, item {number} (image {item['image_id']})")
    else:
        raise RecDataError(f"proposals file {path} holds neither layout ({expected})")
    if not any(boxes.values()):
        raise RecDataError(f"proposals file {path} holds no detection at all: is it the detector's output?")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Detections(str(path), digest, layout, boxes, extras)


def _proposals(
    proposals: str | None, gt: Mapping[str, list[list[float]]]
) -> tuple[str, Callable[[str], list[list[float]]], dict[str, Any]]:
    """(what the results record, image id -> candidate boxes, the file's provenance). An image the detector
    file gives no box gets none here; :func:`check_expressions` then falls back to the whole-image box (as
    ReCLIP), counted."""
    if proposals in (None, "gt"):
        return "gt", lambda image_id: gt[image_id], {}
    detections = load_detections(proposals)
    return "detector", detections.get, detections.provenance()


def _sentence_text(sentence: Any, where: str) -> str:
    """The text of a sentence entry (``{raw: ...}`` or ``{sent: ...}``); anything else is an error."""
    if isinstance(sentence, dict) and ("raw" in sentence or "sent" in sentence):
        text = sentence.get("raw") or sentence.get("sent") or ""
        if isinstance(text, str):
            return text
    raise RecDataError(
        f"{where}: a sentence must be an object with a 'raw' (or 'sent') text, got {repr(sentence)[:80]}"
    )


def _note_no_sentences(count: int, what: str, source: Path) -> None:
    if count:
        log.warning(
            "%s: %d %s have an empty sentence list and give no expression (counted in the results)", source, count, what
        )


def _declared_size(item: Mapping[str, Any], where: str) -> tuple[int, int]:
    """An image's ``(width, height)`` as its record declares them: two positive integers, else an error."""
    width, height = item.get("width"), item.get("height")
    ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height))
    if not ok:
        raise RecDataError(
            f"{where}: width {width!r} and height {height!r} must both be positive integers (pixels), or both absent"
        )
    return int(width), int(height)


def _size_reader(paths: Mapping[str, Path], sizes: dict[str, tuple[int, int]]) -> Callable[[str], tuple[int, int]]:
    """``image id -> (width, height)``: the declared size, else read from the file's header (an unreadable file
    is a :class:`RecDataError` naming it)."""

    def image_size(image_id: str) -> tuple[int, int]:
        if image_id not in sizes:
            sizes[image_id] = read_image_size(paths[image_id], RecDataError)
        return sizes[image_id]

    return image_size


def _image_file(root: Path, file_name: str) -> Path:
    """``root / file_name``; ReCLIP's JSON lines name COCO images with an annotation suffix
    (``COCO_train2014_000000123456_7.jpg``): when that file is absent, the file without the suffix."""
    path = root / file_name
    if not path.is_file() and "coco" in file_name.lower() and file_name.count("_") >= 3:
        stripped = root / ("_".join(file_name.split("_")[:-1]) + Path(file_name).suffix)
        if stripped.is_file():
            return stripped
    return path


# ---------------------------------------------------------------------------- REFER


class RestrictedUnpickler(pickle.Unpickler):
    """Builds only what pickle opcodes build by themselves: dicts, lists, tuples, strings, numbers.

    Any global (a class or function, ``os.system`` included) is refused: REFER refs files hold
    nothing else, and a pickle is code.
    """

    def __init__(self, file, source: str = "<pickle>") -> None:
        super().__init__(file, encoding="utf-8")
        self.source = source

    def find_class(self, module: str, name: str):
        raise RecDataError(
            f"refusing to load {self.source}: the pickle wants to build {module}.{name}; a REFER refs file "
            "holds only dicts, lists, strings and numbers (is the file from an untrusted source?)"
        )


def load_restricted_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise RecDataError(f"refs file not found: {path}") from err
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=str(path)).load()
    except RecDataError:
        raise
    except Exception as err:
        raise RecDataError(f"cannot read the pickle {path}: {type(err).__name__}: {err}") from err


def _files_dataset(
    name: str, raw, image_size, source: Path, paths: dict, proposals: str, provenance: Mapping[str, Any]
) -> RecDataset:
    """A checked data set whose images are files (``paths``: image id -> file)."""
    expressions, stats = check_expressions(raw, image_size, str(source), whole_image_fallback=proposals != "gt")
    if proposals != "gt" and stats["whole_image_fallback"] == len(expressions):
        raise RecDataError(
            f"proposals file {provenance.get('file')} gives no box for any image of {source}: is it the detection "
            "file of this data set (ReCLIP's <dataset>_dets_dict.json)?"
        )
    return RecDataset(
        name=name,
        expressions=expressions,
        image_loader=file_loader(paths),  # 16-bit, palette, alpha handled
        proposals=proposals,
        stats=stats,
        describe_image=lambda image_id: str(paths.get(image_id, image_id)),
        paths=paths,
        proposal_info={"source": proposals, **provenance},
    )


def load_refer(
    root: str | Path,
    image_dir: str | Path,
    split: str = "val",
    split_by: str = "unc",
    name: str | None = None,
    proposals: str | None = "gt",
) -> RecDataset:
    """RefCOCO/+/g in the REFER layout: ``root/refs(<split_by>).p`` and ``root/instances.json``;
    images ``image_dir/COCO_train2014_%012d.jpg`` (or the ``file_name`` of ``instances.json``)."""
    root = Path(root)
    refs_path = root / f"refs({split_by}).p"
    instances_path = root / "instances.json"
    if not refs_path.is_file():
        found = sorted(p.name for p in root.glob("refs(*).p")) if root.is_dir() else []
        raise RecDataError(
            f"refs file not found: {refs_path} (REFER layout: {root}/refs(<splitBy>).p + instances.json"
            f"{'; found ' + ', '.join(found) if found else ''})"
        )
    if not instances_path.is_file():
        raise RecDataError(f"instances file not found: {instances_path} (REFER layout: next to {refs_path.name})")
    refs = load_restricted_pickle(refs_path)
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise RecDataError(f"{refs_path} is not a REFER refs file: expected a list of dicts")
    for number, ref in enumerate(refs):
        for key in ("ref_id", "ann_id", "image_id", "split", "sentences"):
            if key not in ref:
                raise RecDataError(f"{refs_path} is not a REFER refs file: its ref #{number} has no {key!r}")
        for key in ("ref_id", "ann_id", "image_id"):
            plain_id(ref[key], f"{refs_path}: ref #{number}", key, RecDataError)
        if not isinstance(ref["sentences"], list):
            raise RecDataError(f"{refs_path}: ref {ref['ref_id']}: 'sentences' must be a list of {{raw: text}}")
    refs = _select_split(refs, split, refs_path)
    instances = read_json_file(instances_path, "instances file", RecDataError)
    if not isinstance(instances, dict) or not all(
        isinstance(instances.get(k, []), list) and all(isinstance(x, dict) for x in instances.get(k, []))
        for k in ("images", "annotations")
    ):
        raise RecDataError(
            f"{instances_path} is not a COCO instances file: expected {{'images': [{{id, file_name, ...}}], "
            "'annotations': [{id, image_id, bbox}]}"
        )
    images: dict[str, dict] = {}
    for im in instances.get("images", []):
        if "id" not in im:
            raise RecDataError(f"{instances_path}: an image entry lacks 'id': {repr(im)[:120]}")
        image_id = plain_id(im["id"], f"{instances_path}: an image entry", "id", RecDataError)
        if "file_name" in im:
            file_name(im["file_name"], f"{instances_path}, image {image_id}", error=RecDataError)
        images[image_id] = im
    anns: dict[str, list[dict]] = {}
    ann_box: dict[str, list[float]] = {}
    for ann in instances.get("annotations", []):
        if "bbox" not in ann or "id" not in ann or "image_id" not in ann:
            raise RecDataError(f"{instances_path}: an annotation lacks 'bbox', 'id' or 'image_id': {repr(ann)[:120]}")
        ann_id = plain_id(ann["id"], f"{instances_path}: an annotation", "id", RecDataError)
        anns.setdefault(
            plain_id(ann["image_id"], f"{instances_path}, annotation {ann_id}", "image_id", RecDataError), []
        ).append(ann)
        ann_box[ann_id] = parse_box(ann["bbox"], f"{instances_path}, annotation {ann_id}")
    image_dir = Path(image_dir)
    paths: dict[str, Path] = {}
    raw = []
    gt = {k: [ann_box[str(a["id"])] for a in value] for k, value in anns.items()}
    source = f"{refs_path} with {instances_path}"  # the refs name the images and boxes instances.json holds
    no_sentences = 0
    kind, candidates, provenance = _proposals(proposals, gt)
    for ref in refs:
        image_id = str(ref["image_id"])
        if image_id not in images:
            raise RecDataError(f"{refs_path}: ref {ref['ref_id']} names image {image_id}, absent from {instances_path}")
        if str(ref["ann_id"]) not in ann_box:
            raise RecDataError(
                f"{refs_path}: ref {ref['ref_id']} names annotation {ref['ann_id']}, absent from {instances_path}"
            )
        name_of = images[image_id].get("file_name")
        if name_of is None and not image_id.isdigit():
            raise RecDataError(
                f"{instances_path}: image {image_id} has no file_name and an id that is not a COCO number"
            )
        paths[image_id] = image_dir / (name_of or COCO_FILE % int(image_id))
        no_sentences += not ref["sentences"]
        for sentence in ref["sentences"]:
            text = _sentence_text(sentence, f"{refs_path}: ref {ref['ref_id']}")
            raw.append(
                RefExpression(
                    image_id=image_id,
                    expression=text,
                    boxes=candidates(image_id),
                    gold_box=ann_box[str(ref["ann_id"])],
                    split=str(ref["split"]),
                    ref_id=ref["ref_id"],
                    ann_id=ref["ann_id"],
                )
            )
    check_image_files(paths, source, RecDataError)
    sizes = {
        k: _declared_size(images[k], f"{instances_path}, image {k}")
        for k in paths
        if "width" in images[k] or "height" in images[k]
    }
    image_size = _size_reader(paths, sizes)

    _note_no_sentences(no_sentences, "refs", refs_path)
    data = _files_dataset(name or f"{root.name}({split_by})", raw, image_size, source, paths, kind, provenance)
    data.stats["refs_without_sentences"] = no_sentences
    return data


# ---------------------------------------------------------------------------- JSON lines


def load_jsonl(
    path: str | Path,
    image_root: str | Path,
    split: str | None = None,
    name: str | None = None,
    proposals: str | None = "gt",
) -> RecDataset:
    """The JSON-lines layout, one referred box per line:
    ``{file_name, image_id, anns: [{bbox: [x, y, w, h], id}], ann_id, sentences: [{raw}]}``.

    Candidates: the ``bbox`` of every ``anns`` entry (or a ``boxes`` list when the line has one);
    gold: the ann whose ``id`` is ``ann_id``. A ``split`` key selects lines; without it every line
    belongs to ``split`` (or to the file's stem).
    """
    path = Path(path)
    if not path.is_file():
        raise RecDataError(f"JSON-lines file not found: {path} (one object per referred box)")
    lines = []
    for number, item in read_json_lines(path, "JSON-lines file", RecDataError):
        if not isinstance(item, dict):
            raise RecDataError(f"{path}:{number} is not a JSON object")
        for key in ("file_name", "image_id", "anns", "ann_id", "sentences"):
            if key not in item:
                raise RecDataError(
                    f"{path}:{number} has no {key!r} (expected file_name, image_id, anns, ann_id, sentences)"
                )
        item["_line"] = number
        lines.append(item)
    if any("split" in item for item in lines):
        lines = _select_split(lines, split, path)
    else:
        for item in lines:
            item["split"] = split or path.stem
    lines = [(item.pop("_line"), item) for item in lines]
    image_root = Path(image_root)
    paths: dict[str, Path] = {}
    first_line: dict[str, int] = {}
    sizes: dict[str, tuple[int, int]] = {}
    gt: dict[str, list[list[float]]] = {}
    golds: list[list[list[float]]] = []
    for number, item in lines:
        where = f"{path}:{number}"
        image_id = plain_id(item["image_id"], where, "image_id", RecDataError)
        if item.get("ref_id") is not None:
            plain_id(item["ref_id"], where, "ref_id", RecDataError)
        file = _image_file(image_root, file_name(item["file_name"], where, error=RecDataError))
        if image_id in paths and paths[image_id] != file:
            raise RecDataError(
                f"{where}: image_id {image_id} has file_name {item['file_name']!r}, but line {first_line[image_id]} "
                f"gave it {paths[image_id].name!r}: one image id must name one file"
            )
        paths.setdefault(image_id, file)
        first_line.setdefault(image_id, number)
        if not isinstance(item["anns"], list) or not all(isinstance(a, dict) and "bbox" in a for a in item["anns"]):
            raise RecDataError(f"{where}: 'anns' must be a list of objects with 'bbox' and 'id'")
        ids = [plain_id(a.get("id"), f"{where}: an ann", "id", RecDataError) for a in item["anns"]]
        anns = [(ann_id, parse_box(a["bbox"], f"{where}, ann {ann_id}")) for ann_id, a in zip(ids, item["anns"])]
        if item.get("boxes") is not None and not isinstance(item["boxes"], list):
            raise RecDataError(f"{where}: 'boxes' must be a list of [x, y, w, h]")
        boxes = [parse_box(b, f"{where}, boxes") for b in item["boxes"]] if item.get("boxes") else [b for _, b in anns]
        gt.setdefault(image_id, boxes)
        if "width" in item or "height" in item:
            sizes[image_id] = _declared_size(item, where)
        listed = item["ann_id"] if isinstance(item["ann_id"], list) else [item["ann_id"]]
        wanted = [plain_id(a, where, "ann_id", RecDataError) for a in listed]
        gold = [b for ann_id, b in anns if ann_id in wanted]
        if not gold:
            raise RecDataError(
                f"{where}: ann_id {item['ann_id']!r} names no ann in 'anns' (their ids: {[a['id'] for a in item['anns']]})"
            )
        golds.append(gold)
    kind, candidates, provenance = _proposals(proposals, gt)
    raw = []
    no_sentences = 0
    for (number, item), gold in zip(lines, golds):
        image_id = str(item["image_id"])
        if not isinstance(item["sentences"], list):
            raise RecDataError(f"{path}:{number}: 'sentences' must be a list of {{raw: text}} objects")
        no_sentences += not item["sentences"]
        for sentence in item["sentences"]:
            raw.append(
                RefExpression(
                    image_id=image_id,
                    expression=_sentence_text(sentence, f"{path}:{number}"),
                    boxes=candidates(image_id),
                    gold_box=gold[0],
                    extra_gold=gold[1:],
                    split=str(item["split"]),
                    ref_id=item.get("ref_id"),
                    ann_id=item["ann_id"],
                )
            )
    _note_no_sentences(no_sentences, "lines", path)
    check_image_files(paths, str(path), RecDataError)
    image_size = _size_reader(paths, sizes)
    data = _files_dataset(name or path.stem, raw, image_size, path, paths, kind, provenance)
    data.stats["records_without_sentences"] = no_sentences
    return data


# ---------------------------------------------------------------------------- records (the shapes world)


def from_records(
    name: str,
    records: Sequence[Mapping[str, Any]],
    load_image: Callable[[str], Image.Image],
    split: str | None = None,
) -> RecDataset:
    """A :class:`RecDataset` from dicts ``{image_id, expression, boxes, gold_index, split}``
    (the shapes world's ``ShapesREC.expressions``)."""
    items = [dict(r) for r in records]
    if split is not None:
        present = list(dict.fromkeys(str(r.get("split")) for r in items))
        items = [r for r in items if str(r.get("split")) == split]
        if not items:
            raise RecDataError(f"split {split!r} is not in data set {name}: it holds {', '.join(present)}")
    raw = [
        RefExpression(
            image_id=str(r["image_id"]),
            expression=str(r["expression"]),
            boxes=[[float(v) for v in b] for b in r["boxes"]],
            gold_box=[float(v) for v in r["boxes"][int(r["gold_index"])]],
            split=str(r.get("split", "val")),
            ann_id=r.get("ann_id", i),
        )
        for i, r in enumerate(items)
    ]
    sizes: dict[str, tuple[int, int]] = {}

    def image_size(image_id: str) -> tuple[int, int]:
        if image_id not in sizes:
            sizes[image_id] = load_image(image_id).size
        return sizes[image_id]

    expressions, stats = check_expressions(raw, image_size, name)
    return RecDataset(name=name, expressions=expressions, image_loader=load_image, stats=stats)
