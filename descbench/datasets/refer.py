"""REC data readers: one :class:`RefExpression` per (referred box, sentence), images loaded on demand.

Layouts: the REFER layout (``refs(<splitBy>).p`` + ``instances.json`` + COCO train2014 images;
the pickle is untrusted and read with :class:`RestrictedUnpickler`) and the JSON-lines layout of
earlier zero-shot work; plus :func:`from_records` for generated sets. Proposals: the ground-truth
boxes of the image (``"gt"``, default) or a detector file ``{image_id: [[x, y, w, h], ...]}``;
``RecDataset.proposals`` records which. Every reader applies :func:`descbench.rec.types.check_expressions`.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from descbench.errors import RecDataError
from descbench.rec.types import RecDataset, RefExpression, check_expressions

COCO_FILE = "COCO_train2014_%012d.jpg"


def _check_images(paths: Mapping[str, Path], source: str) -> None:
    missing = [p for p in paths.values() if not p.is_file()]
    if missing:
        raise RecDataError(
            f"{source}: image file not found: {missing[0]} ({len(missing)} of {len(paths)} images missing): "
            "check the image directory"
        )


def _select_split(items: list[dict], split: str | None, source: Path, key: str = "split") -> list[dict]:
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


def load_detections(path: str | Path) -> dict[str, list[list[float]]]:
    """A detector proposals file ``{image_id: [[x, y, w, h], ...]}`` (JSON); keys as strings."""
    path = Path(path)
    if not path.is_file():
        raise RecDataError(f"proposals file not found: {path} (expected JSON {{image_id: [[x, y, w, h], ...]}})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RecDataError(f"proposals file {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise RecDataError(f"proposals file {path} must hold an object {{image_id: [[x, y, w, h], ...]}}")
    out = {}
    for image_id, boxes in data.items():
        if not isinstance(boxes, list) or any(not isinstance(b, list) or len(b) != 4 for b in boxes):
            raise RecDataError(f"proposals file {path}: image {image_id} must map to a list of [x, y, w, h] boxes")
        out[str(image_id)] = [[float(v) for v in b] for b in boxes]
    return out


def _proposals(
    proposals: str | None, gt: Mapping[str, list[list[float]]]
) -> tuple[str, Callable[[str], list[list[float]]]]:
    if proposals in (None, "gt"):
        return "gt", lambda image_id: gt[image_id]
    detections = load_detections(proposals)

    def lookup(image_id: str) -> list[list[float]]:
        if image_id not in detections:
            raise RecDataError(
                f"proposals file {proposals} has no boxes for image {image_id}: every evaluated image needs an entry"
            )
        return detections[image_id]

    return str(proposals), lookup


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


def _files_dataset(name: str, raw, image_size, source: Path, paths: dict, proposals: str) -> RecDataset:
    """A checked data set whose images are files (``paths``: image id -> file)."""
    expressions, stats = check_expressions(raw, image_size, str(source))
    return RecDataset(
        name=name,
        expressions=expressions,
        image_loader=lambda image_id: Image.open(paths[image_id]),
        proposals=proposals,
        stats=stats,
        describe_image=lambda image_id: str(paths.get(image_id, image_id)),
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
    for key in ("ref_id", "ann_id", "image_id", "split", "sentences"):
        if refs and key not in refs[0]:
            raise RecDataError(f"{refs_path} is not a REFER refs file: its refs have no {key!r}")
    refs = _select_split(refs, split, refs_path)
    try:
        instances = json.loads(instances_path.read_text())
    except json.JSONDecodeError as err:
        raise RecDataError(f"{instances_path} is not valid JSON: {err}") from err
    images = {str(im["id"]): im for im in instances.get("images", [])}
    anns: dict[str, list[dict]] = {}
    ann_box: dict[str, list[float]] = {}
    for ann in instances.get("annotations", []):
        anns.setdefault(str(ann["image_id"]), []).append(ann)
        ann_box[str(ann["id"])] = [float(v) for v in ann["bbox"]]
    image_dir = Path(image_dir)
    paths: dict[str, Path] = {}
    raw = []
    gt = {k: [[float(v) for v in a["bbox"]] for a in value] for k, value in anns.items()}
    kind, candidates = _proposals(proposals, gt)
    for ref in refs:
        image_id = str(ref["image_id"])
        if image_id not in images:
            raise RecDataError(f"{refs_path}: ref {ref['ref_id']} names image {image_id}, absent from {instances_path}")
        if str(ref["ann_id"]) not in ann_box:
            raise RecDataError(
                f"{refs_path}: ref {ref['ref_id']} names annotation {ref['ann_id']}, absent from {instances_path}"
            )
        file_name = images[image_id].get("file_name") or COCO_FILE % int(image_id)
        paths[image_id] = image_dir / file_name
        for sentence in ref["sentences"]:
            text = sentence.get("raw") or sentence.get("sent") or ""
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
    _check_images(paths, str(refs_path))
    sizes = {k: (int(images[k]["width"]), int(images[k]["height"])) for k in paths if "width" in images[k]}

    def image_size(image_id: str) -> tuple[int, int]:
        if image_id not in sizes:
            with Image.open(paths[image_id]) as im:
                sizes[image_id] = im.size
        return sizes[image_id]

    return _files_dataset(name or f"{root.name}({split_by})", raw, image_size, refs_path, paths, kind)


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
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise RecDataError(f"{path}:{number} is not valid JSON: {err}") from err
        for key in ("file_name", "image_id", "anns", "ann_id", "sentences"):
            if key not in item:
                raise RecDataError(
                    f"{path}:{number} has no {key!r} (expected file_name, image_id, anns, ann_id, sentences)"
                )
        lines.append(item)
    if any("split" in item for item in lines):
        lines = _select_split(lines, split, path)
    else:
        for item in lines:
            item["split"] = split or path.stem
    image_root = Path(image_root)
    paths: dict[str, Path] = {}
    sizes: dict[str, tuple[int, int]] = {}
    gt: dict[str, list[list[float]]] = {}
    for item in lines:
        image_id = str(item["image_id"])
        paths[image_id] = image_root / item["file_name"]
        boxes = item.get("boxes") or [a["bbox"] for a in item["anns"]]
        gt.setdefault(image_id, [[float(v) for v in b] for b in boxes])
        if "width" in item and "height" in item:
            sizes[image_id] = (int(item["width"]), int(item["height"]))
    kind, candidates = _proposals(proposals, gt)
    raw = []
    for item in lines:
        image_id = str(item["image_id"])
        gold = [a["bbox"] for a in item["anns"] if a.get("id") == item["ann_id"]]
        if not gold:
            raise RecDataError(f"{path}: the line for ann_id {item['ann_id']} has no ann with that id in 'anns'")
        for sentence in item["sentences"]:
            raw.append(
                RefExpression(
                    image_id=image_id,
                    expression=sentence.get("raw") or sentence.get("sent") or "",
                    boxes=candidates(image_id),
                    gold_box=[float(v) for v in gold[0]],
                    split=str(item["split"]),
                    ref_id=item.get("ref_id"),
                    ann_id=item["ann_id"],
                )
            )
    _check_images(paths, str(path))

    def image_size(image_id: str) -> tuple[int, int]:
        if image_id not in sizes:
            with Image.open(paths[image_id]) as im:
                sizes[image_id] = im.size
        return sizes[image_id]

    return _files_dataset(name or path.stem, raw, image_size, path, paths, kind)


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
