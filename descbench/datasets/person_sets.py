"""Images with person boxes for the marking-bias probe, and its phrase list.

- COCO instances JSON (:func:`load_coco_persons`, through pycocotools): the ``person`` boxes of each
  image; the target is the largest non-crowd box of at least ``min_area`` px²; crowd and small boxes
  still count as persons for the control circle's no-overlap rule. Images without a target are
  skipped and counted (``stats["no_target"]``).
- JSON lines (:func:`load_person_jsonl`): ``{file_name, boxes: [[x, y, w, h], ...]}`` per line
  (optional ``image_id`` and ``target``, the index of the box to circle; default the largest).
- The embedded default (:func:`load_astronaut_persons`): scikit-image's ``astronaut`` photograph with
  the person box of ``data/persons.yaml`` (annotated by hand, checked against the pixels; see there),
  in a few views (mirrored, padded with the photo's backdrop colour so that a control circle of the
  person's size fits), each with its box mapped.

The phrase list (:func:`load_bias_phrases`) is ``data/bias_phrases.yaml`` or a file of the same form.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageOps

from descbench.core.errors import DatasetError
from descbench.core.files import read_json_lines
from descbench.core.marking.bias_probe import BiasPhrase, PersonDataset, PersonImage
from descbench.core.marking.points import check_box
from descbench.datasets.base import check_image_files, file_loader
from descbench.datasets.keypoint_sets import load_coco
from descbench.datasets.photos import load_photo

PHRASE_KINDS = ("neutral", "negative")


def _data_file(name: str) -> str:
    return resources.files("descbench.datasets").joinpath(name).read_text()


def load_bias_phrases(path: str | Path | None = None) -> list[BiasPhrase]:
    """The probe's phrases ``{phrases: [{id, text, kind}]}`` (default: the shipped ``bias_phrases.yaml``)."""
    source = str(path) if path is not None else "descbench/datasets/bias_phrases.yaml"
    if path is not None and not Path(path).is_file():
        raise DatasetError(f"phrase file not found: {path} (YAML {{phrases: [{{id, text, kind}}, ...]}})")
    data = yaml.safe_load(Path(path).read_text() if path is not None else _data_file("bias_phrases.yaml")) or {}
    items = data.get("phrases") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise DatasetError(f"{source} must hold a non-empty list 'phrases' of {{id, text, kind}}")
    phrases = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item[k] for k in ("id", "text")):
            raise DatasetError(f"{source}: phrase {n} must have a non-empty 'id' and 'text'")
        if item.get("kind") not in PHRASE_KINDS:
            raise DatasetError(
                f"{source}: phrase {item['id']!r} has kind {item.get('kind')!r}: use neutral or negative"
            )
        if "." in item["id"] or item["id"] in PHRASE_KINDS:
            raise DatasetError(
                f"{source}: phrase id {item['id']!r} must not contain '.' nor be a kind (it is a result key segment)"
            )
        phrases.append(BiasPhrase(item["id"], item["text"], item["kind"]))
    ids = [p.id for p in phrases]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{source}: phrase ids must be unique, got {ids}")
    return phrases


def _largest(boxes: list[list[float]]) -> int:
    areas = [b[2] * b[3] for b in boxes]
    return areas.index(max(areas))


def _files(name: str, images: list[PersonImage], paths: dict[str, Path], source: str, stats: dict) -> PersonDataset:
    if not images:
        raise DatasetError(f"{source}: no image with a person box to circle was read")
    check_image_files(paths, source)
    return PersonDataset(
        name=name,
        images=images,
        image_loader=file_loader(paths),  # 16-bit, palette, alpha handled
        describe_image=lambda image_id: str(paths.get(image_id, image_id)),
        stats=stats,
    )


def load_coco_persons(
    annotation_file: str | Path,
    image_dir: str | Path,
    min_area: float = 0.0,
    include_crowd: bool = False,
    category: str = "person",
    name: str | None = None,
) -> PersonDataset:
    """COCO instances (``instances_<split>.json``) through pycocotools: one probe image per image with a
    ``category`` box (crowd excluded as a target unless ``include_crowd``; target area >= ``min_area``)."""
    annotation_file = Path(annotation_file)
    coco = load_coco(annotation_file, "COCO instances file", "instances_val2017.json")
    cat_ids = coco.getCatIds(catNms=[category])
    if not cat_ids:
        raise DatasetError(f"{annotation_file}: no category named {category!r}")
    image_dir = Path(image_dir)
    images, paths = [], {}
    stats = {"no_target": 0}
    for image_id in sorted(coco.getImgIds(catIds=cat_ids)):
        boxes, eligible = [], []
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=cat_ids, iscrowd=None)):
            box = check_box(ann.get("bbox"), f"{annotation_file}: annotation {ann.get('id')}: bbox")
            if (include_crowd or not ann.get("iscrowd", 0)) and box[2] * box[3] >= min_area:
                eligible.append(len(boxes))
            boxes.append(box)
        if not eligible:
            stats["no_target"] += 1
            continue
        target = max(eligible, key=lambda i: boxes[i][2] * boxes[i][3])
        key = str(image_id)
        info = coco.imgs[image_id]
        paths[key] = image_dir / info["file_name"]
        size = (int(info["width"]), int(info["height"])) if "width" in info and "height" in info else None
        images.append(PersonImage(key, boxes, target, size))
    return _files(name or f"coco_persons({annotation_file.stem})", images, paths, str(annotation_file), stats)


def load_person_jsonl(path: str | Path, image_root: str | Path, name: str | None = None) -> PersonDataset:
    """One image per line ``{file_name, boxes: [[x, y, w, h], ...]}`` (optional ``image_id``, ``target``)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"person JSON-lines file not found: {path} (one {{file_name, boxes}} per line)")
    image_root = Path(image_root)
    images, paths = [], {}
    for number, item in read_json_lines(path, "person JSON-lines file", DatasetError):
        where = f"{path}:{number}"
        if not isinstance(item, dict) or "file_name" not in item or "boxes" not in item:
            raise DatasetError(f"{where} must be an object with 'file_name' and 'boxes' ([[x, y, w, h], ...])")
        if not isinstance(item["boxes"], list) or not item["boxes"]:
            raise DatasetError(f"{where}: boxes must be a non-empty list of [x, y, w, h]")
        boxes = [check_box(b, f"{where}: boxes[{k}]") for k, b in enumerate(item["boxes"])]
        target = item.get("target", _largest(boxes))
        if not isinstance(target, int) or isinstance(target, bool) or not 0 <= target < len(boxes):
            raise DatasetError(f"{where}: target {target!r} is not an index into its {len(boxes)} boxes")
        image_id = str(item.get("image_id", item["file_name"]))
        paths[image_id] = image_root / str(item["file_name"])
        images.append(PersonImage(image_id, boxes, target))
    return _files(name or path.stem, images, paths, str(path), {})


# ---------------------------------------------------------------------------- the embedded default


@cache
def _person_table() -> dict:
    return yaml.safe_load(_data_file("persons.yaml"))


def astronaut_view(view: dict) -> tuple[Image.Image, list[float]]:
    """One view of the astronaut photograph (``{mirror, pad_left, pad_right}``) and its mapped person box."""
    photo = load_photo("astronaut")
    x, y, w, h = (float(v) for v in _person_table()["astronaut"]["box"])
    if view.get("mirror"):
        photo = ImageOps.mirror(photo)
        x = photo.size[0] - x - w
    left, right = int(view.get("pad_left", 0)), int(view.get("pad_right", 0))
    if left or right:
        backdrop = tuple(int(v) for v in np.median(np.asarray(photo)[0], axis=0))
        canvas = Image.new("RGB", (photo.size[0] + left + right, photo.size[1]), backdrop)
        canvas.paste(photo, (left, 0))
        photo, x = canvas, x + left
    return photo, [x, y, w, h]


def load_astronaut_persons() -> PersonDataset:
    """The embedded default of ``task=marking_bias``: the astronaut photograph's views (``data/persons.yaml``)."""
    views = _person_table()["astronaut"]["views"]
    images = []
    for k, view in enumerate(views):
        _, box = astronaut_view(view)
        images.append(PersonImage(f"astronaut:{k}", [box], 0))

    def load(image_id: str) -> Image.Image:
        return astronaut_view(views[int(image_id.split(":")[1])])[0]

    return PersonDataset(
        name="astronaut_persons",
        images=images,
        image_loader=load,
        describe_image=lambda image_id: f"scikit-image astronaut photograph, view {image_id.split(':')[1]}",
        stats={"views": len(views)},
    )
