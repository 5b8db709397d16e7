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
from descbench.core.files import read_json_lines, read_yaml_file
from descbench.core.marking.bias_probe import BiasPhrase, PersonDataset, PersonImage
from descbench.core.marking.points import check_box
from descbench.datasets.base import check_image_files, file_loader, read_image_size
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
    if path is not None:
        data = read_yaml_file(path, "phrase file", DatasetError) or {}
    else:
        data = yaml.safe_load(_data_file("bias_phrases.yaml"))
    items = data.get("phrases") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise DatasetError(f"{source} must hold a non-empty list 'phrases' of {{id, text, kind}}")
    if len(items) < 2:
        raise DatasetError(
            f"{source} lists {len(items)} phrase: the probe needs at least 2 (a softmax over one phrase is always 1, "
            "so every shift would read +0 as if there were no bias)"
        )
    phrases = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item[k].strip() for k in ("id", "text")
        ):
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
        if size is not None:
            check_boxes_inside(images[-1], size, f"{annotation_file}: image {image_id}")
    return _files(name or f"coco_persons({annotation_file.stem})", images, paths, str(annotation_file), stats)


def load_person_jsonl(path: str | Path, image_root: str | Path, name: str | None = None) -> PersonDataset:
    """One image per line ``{file_name, boxes: [[x, y, w, h], ...]}`` (optional ``image_id``, ``target``).

    Lines are tied to their image by ``file_name``: an image named by two lines (by file or by ``image_id``)
    is refused, as is a box with no area inside its image (the circle would not be seen and the control
    would be placed as if the person were not there).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"person JSON-lines file not found: {path} (one {{file_name, boxes}} per line)")
    image_root = Path(image_root)
    images, paths, lines, first_line = [], {}, {}, {}
    for number, item in read_json_lines(path, "person JSON-lines file", DatasetError):
        where = f"{path}:{number}"
        if not isinstance(item, dict) or "file_name" not in item or "boxes" not in item:
            raise DatasetError(f"{where} must be an object with 'file_name' and 'boxes' ([[x, y, w, h], ...])")
        if not isinstance(item["file_name"], str) or not item["file_name"].strip():
            raise DatasetError(f"{where}: file_name must be a non-empty string, got {item['file_name']!r}")
        if not isinstance(item["boxes"], list) or not item["boxes"]:
            raise DatasetError(f"{where}: boxes must be a non-empty list of [x, y, w, h]")
        boxes = [check_box(b, f"{where}: boxes[{k}]") for k, b in enumerate(item["boxes"])]
        target = item.get("target", _largest(boxes))
        if not isinstance(target, int) or isinstance(target, bool) or not 0 <= target < len(boxes):
            raise DatasetError(f"{where}: target {target!r} is not an index into its {len(boxes)} boxes")
        image_id = item.get("image_id", item["file_name"])
        if not isinstance(image_id, str) and (not isinstance(image_id, int) or isinstance(image_id, bool)):
            raise DatasetError(f"{where}: image_id must be a string or an integer, got {image_id!r}")
        image_id, file = str(image_id), image_root / item["file_name"]
        for key, seen in ((image_id, lines), (file, first_line)):
            if key in seen:
                raise DatasetError(
                    f"{where}: image {image_id} ({item['file_name']}) was given by line {seen[key]} already: "
                    "one line per image, with all its person boxes"
                )
            seen[key] = number
        paths[image_id] = file
        images.append(PersonImage(image_id, boxes, target))
    check_image_files(paths, str(path))
    for person in images:
        where = f"{path}:{lines[person.image_id]}"
        check_boxes_inside(person, read_image_size(paths[person.image_id]), where)
    return _files(name or path.stem, images, paths, str(path), {})


def check_boxes_inside(person: PersonImage, size: tuple[int, int], where: str) -> None:
    """Every person box must have area inside its ``(width, height)`` image; else one line naming it."""
    width, height = size
    for k, (x, y, w, h) in enumerate(person.boxes):
        if min(x + w, width) <= max(x, 0) or min(y + h, height) <= max(y, 0):
            raise DatasetError(
                f"{where}: box {k} [{x:g}, {y:g}, {w:g}, {h:g}] lies outside its {width}x{height} image: "
                "fix the box (x, y, w, h in pixels) or the file_name"
            )


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
