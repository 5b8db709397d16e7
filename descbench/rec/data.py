"""REC data sets: one :class:`RefExpression` per (referred box, sentence), images loaded on demand.

Layouts: the REFER layout (``refs(<splitBy>).p`` + ``instances.json`` + COCO train2014 images;
the pickle is untrusted and read with :class:`RestrictedUnpickler`) and the JSON-lines layout of
earlier zero-shot work. Proposals: the ground-truth boxes of the image (``"gt"``, default) or a
detector file ``{image_id: [[x, y, w, h], ...]}``; ``RecDataset.proposals`` records which.

Bad boxes are **clipped** to the image; candidate boxes with non-positive size after clipping are
**dropped** and counted (``stats["boxes_dropped"]``, one warning with the count); a gold box empty
after clipping, or an expression left with no candidate, is an error. An expression with a single
candidate is kept (trivially correct when it is the gold box) and counted (``stats["single_candidate"]``).
"""

from __future__ import annotations

import io
import json
import logging
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from descbench.errors import RecDataError

log = logging.getLogger("descbench")

SPLITS = ("val", "testA", "testB", "test")
COCO_FILE = "COCO_train2014_%012d.jpg"


@dataclass
class RefExpression:
    """One referring expression: its image, text, candidate boxes (xywh) and gold box."""

    image_id: str
    expression: str
    boxes: list[list[float]]
    gold_box: list[float]
    split: str
    ref_id: int | str | None = None
    ann_id: int | str | None = None


class RecDataset:
    """A REC evaluation set: ``expressions``, ``load_image(image_id)``, ``name``, ``proposals``.

    ``image_loader`` maps an image id to an RGB PIL image; ``describe_image`` names the file for
    error messages. Subclasses (the collages) may override :meth:`load_image` instead.
    """

    def __init__(
        self,
        name: str,
        expressions: list[RefExpression],
        image_loader: Callable[[str], Image.Image] | None = None,
        proposals: str = "gt",
        stats: Mapping[str, int] | None = None,
        describe_image: Callable[[str], str] | None = None,
    ) -> None:
        self.name = name
        self.expressions = expressions
        self.proposals = proposals
        self.stats = dict(stats or {})
        self._image_loader = image_loader
        self._describe = describe_image

    def __len__(self) -> int:
        return len(self.expressions)

    def load_image(self, image_id: str) -> Image.Image:
        """The RGB image ``image_id``; a missing or unreadable file is a :class:`RecDataError` naming it."""
        if self._image_loader is None:
            raise NotImplementedError(f"{type(self).__name__} has no image loader")
        try:
            return self._image_loader(image_id).convert("RGB")
        except FileNotFoundError as err:
            raise RecDataError(f"image file not found: {err.filename or self.describe_image(image_id)}") from err
        except OSError as err:
            raise RecDataError(f"cannot read image {self.describe_image(image_id)}: {err}") from err

    def describe_image(self, image_id: str) -> str:
        return self._describe(image_id) if self._describe else f"image {image_id}"

    @property
    def splits(self) -> list[str]:
        """The splits present, in first-seen order."""
        return list(dict.fromkeys(e.split for e in self.expressions))

    def limited(self, count: int | None) -> RecDataset:
        """The first ``count`` expressions (all when None)."""
        if count is None or count >= len(self):
            return self
        if count < 1:
            raise RecDataError(f"dataset.limit must be >= 1, got {count}")
        subset = self._copy()
        subset.expressions = self.expressions[:count]
        return subset

    def _copy(self) -> RecDataset:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone


# ---------------------------------------------------------------------------- validation


def check_expressions(
    raw: Iterable[RefExpression], image_size: Callable[[str], tuple[int, int]], source: str
) -> tuple[list[RefExpression], dict[str, int]]:
    """Clip boxes to the image, drop empty candidates, refuse empty texts/gold boxes/candidate lists."""
    out: list[RefExpression] = []
    stats = {"boxes_clipped": 0, "boxes_dropped": 0, "single_candidate": 0}
    for e in raw:
        ident = _ident(e)
        text = " ".join(str(e.expression).split())
        if not text:
            raise RecDataError(f"{source}: {ident} has an empty expression: remove it or fix its sentence")
        size = image_size(e.image_id)
        boxes = []
        for box in e.boxes:
            clipped = clip_box(box, size)
            if clipped is None:
                stats["boxes_dropped"] += 1
                continue
            stats["boxes_clipped"] += clipped != [float(v) for v in box]
            boxes.append(clipped)
        gold = clip_box(e.gold_box, size)
        if gold is None:
            raise RecDataError(
                f"{source}: {ident} has gold box {list(e.gold_box)} with no area inside its "
                f"{size[0]}x{size[1]} image: fix the box (x, y, w, h in pixels) or drop the expression"
            )
        if not boxes:
            raise RecDataError(
                f"{source}: {ident} has no candidate box ({len(e.boxes)} given, none inside the "
                f"{size[0]}x{size[1]} image): check the proposals"
            )
        stats["single_candidate"] += len(boxes) == 1
        out.append(replace(e, expression=text, boxes=boxes, gold_box=gold))
    if stats["boxes_dropped"] or stats["boxes_clipped"]:
        log.warning(
            "%s: %d candidate boxes clipped to their image, %d dropped (no area inside it)",
            source,
            stats["boxes_clipped"],
            stats["boxes_dropped"],
        )
    if stats["single_candidate"]:
        log.info("%s: %d expressions have a single candidate (kept)", source, stats["single_candidate"])
    return out, stats


def clip_box(box: Sequence[float], size: tuple[int, int]) -> list[float] | None:
    """``box`` (xywh) clipped to an image of ``size`` (w, h); None when no positive area is left."""
    if len(box) != 4:
        raise RecDataError(f"box {list(box)} is not [x, y, w, h]")
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(size[0])), min(y + h, float(size[1]))
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return [x0, y0, x1 - x0, y1 - y0]


def _ident(e: RefExpression) -> str:
    parts = [f"image {e.image_id}"]
    if e.ref_id is not None:
        parts.append(f"ref {e.ref_id}")
    if e.ann_id is not None:
        parts.append(f"ann {e.ann_id}")
    return "expression of " + ", ".join(parts)


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


def load_shapes_rec(
    num_canvases: int = 60, seed: int = 7, num_objects: Sequence[int] = (2, 4), image_size: int = 64
) -> RecDataset:
    """The shapes world's REC set (SPEC §8) as a :class:`RecDataset`."""
    from descbench.world.data import ShapesREC

    world = ShapesREC(num_canvases=num_canvases, seed=seed, num_objects=tuple(num_objects), image_size=image_size)
    return from_records(f"shapes_rec(seed={seed})", world.expressions, world.load_image)
