"""Keypoint data readers: CUB-200-2011 parts, SPair-71k, COCO person keypoints, JSON lines.

Each returns a :class:`descbench.core.marking.points.KeypointDataset` (images loaded on demand). Inputs are
checked strictly: a box is four finite numbers with positive size, a point two finite numbers (or
null/invisible); messages name the file and line (or key) and the expected layout.

- **CUB-200-2011** (:func:`load_cub_keypoints`): ``parts/parts.txt`` (``part_id name``),
  ``parts/part_locs.txt`` (``image_id part_id x y visible``; ``visible=0`` -> None), ``images.txt``,
  ``bounding_boxes.txt``, ``image_class_labels.txt``, ``classes.txt``, ``train_test_split.txt``
  (1 = train, 0 = test); images under ``images/``; ids are 1-based. Category: the class name
  cleaned (``001.Black_footed_Albatross`` -> ``Black footed Albatross``).
- **SPair-71k** (:func:`load_spair_keypoints`): the images of a split are those named by the pair
  files ``PairAnnotation/<split>/*.json`` (``src_imname``, ``trg_imname``, ``category``); each image's
  keypoints are read from its per-image file ``ImageAnnotation/<category>/<stem>.json`` (``bndbox``
  ``[x1, y1, x2, y2]``, ``kps`` ``{id: [x, y] or null}``, all ids of the category) when it exists,
  otherwise gathered from the pair files (``src_kps``/``trg_kps`` for ``kps_ids``, ``src_bndbox``/
  ``trg_bndbox``; counted in ``stats["images_from_pairs"]``). ``split=None`` reads every per-image
  file. Images: ``JPEGImages/<category>/<imname>``. SPair-71k ships no keypoint names: they are
  ``keypoint <id>`` unless a YAML file ``{category: {id: name}}`` is given (``part_names``).
- **COCO person keypoints** (:func:`load_coco_keypoints`) through ``pycocotools``: ``keypoints`` is
  ``[x, y, v] x K`` with the names in ``categories[i]["keypoints"]`` (underscores -> spaces);
  ``v = 0`` (not labelled) -> None, ``v = 1`` (labelled, occluded) and ``v = 2`` are kept.
- **JSON lines** (:func:`load_keypoints_jsonl`): one instance per line
  ``{file_name, category, box: [x, y, w, h], keypoints: {name: [x, y] or null}}`` (optional
  ``image_id``, ``split``).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from descbench.core.errors import DatasetError
from descbench.core.files import read_json_file, read_json_lines, read_text_file, read_yaml_file
from descbench.core.marking.points import KeypointDataset, KeypointInstance, check_box, check_point
from descbench.datasets.base import check_image_files, file_loader, read_image_size


def _dataset(name, instances, parts, paths, source, **kwargs) -> KeypointDataset:
    if not instances:
        outside = kwargs.get("stats", {}).get("keypoints_outside")
        lost = f" ({outside} keypoint(s) lie outside their image)" if outside else ""
        raise DatasetError(
            f"{source}: no instance with a visible keypoint was read{lost}: check the files and the split"
        )
    check_image_files(paths, source)
    return KeypointDataset(
        name=name,
        instances=instances,
        parts=parts,
        image_loader=file_loader(paths),  # 16-bit, palette, alpha handled
        describe_image=lambda image_id: str(paths.get(image_id, image_id)),
        **kwargs,
    )


# ---------------------------------------------------------------------------- CUB-200-2011

CUB_FILES = (
    "images.txt",
    "bounding_boxes.txt",
    "image_class_labels.txt",
    "classes.txt",
    "train_test_split.txt",
    "parts/parts.txt",
    "parts/part_locs.txt",
)
CUB_SPLITS = {"train": "1", "test": "0"}


def _rows(path: Path, columns: int, last_rest: bool = False) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of a whitespace-separated file (``last_rest``: the last field takes the rest)."""
    out = []
    for number, line in enumerate(read_text_file(path, "CUB file", DatasetError).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=columns - 1) if last_rest else line.split()
        if len(fields) != columns:
            raise DatasetError(f"{path}:{number}: expected {columns} fields, got {len(fields)}: {line.strip()!r}")
        out.append((number, fields))
    return out


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{where}: {text!r} is not a number") from None
    return value


def _cub_id(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DatasetError(f"{where}: id {text!r} is not an integer (CUB ids are 1-based integers)") from None


def load_cub_keypoints(root: str | Path, split: str | None = "test", name: str | None = None) -> KeypointDataset:
    """CUB-200-2011 part locations (15 named parts with visibility), one bird per image.

    ``split``: ``test`` (default), ``train`` or None (both).
    """
    root = Path(root)
    missing = [f for f in (*CUB_FILES, "images") if not (root / f).exists()]
    if missing:
        raise DatasetError(
            f"CUB-200-2011 keypoints: {root} lacks {', '.join(missing)} (expected the CUB_200_2011 archive layout: "
            + ", ".join(CUB_FILES)
            + ", images/)"
        )
    if split is not None and split not in CUB_SPLITS:
        raise DatasetError(f"CUB-200-2011 has the splits train and test (or null for both), got {split!r}")
    part_rows = _rows(root / "parts/parts.txt", 2, last_rest=True)
    part_names = {_cub_id(f[0], f"{root / 'parts/parts.txt'}:{n}"): f[1].strip() for n, f in part_rows}
    parts = [part_names[k] for k in sorted(part_names)]
    classes = {}
    for _, (cid, raw) in _rows(root / "classes.txt", 2, last_rest=True):
        classes[cid] = raw.split(".", 1)[-1].replace("_", " ").strip()
    images = {f[0]: f[1] for _, f in _rows(root / "images.txt", 2, last_rest=True)}
    labels = {f[0]: f[1] for _, f in _rows(root / "image_class_labels.txt", 2)}
    is_train = {f[0]: f[1] for _, f in _rows(root / "train_test_split.txt", 2)}
    boxes = {}
    box_file = root / "bounding_boxes.txt"
    for n, f in _rows(box_file, 5):
        boxes[f[0]] = check_box([_number(v, f"{box_file}:{n}") for v in f[1:]], f"{box_file}:{n}")
    points: dict[str, dict[str, tuple[float, float] | None]] = {}
    locs = root / "parts/part_locs.txt"
    for n, f in _rows(locs, 5):
        where = f"{locs}:{n}"
        part_id = _cub_id(f[1], where)
        if part_id not in part_names:
            raise DatasetError(f"{where}: part id {part_id} is not in {root / 'parts/parts.txt'}")
        visible = f[4]
        if visible not in ("0", "1"):
            raise DatasetError(f"{where}: visible must be 0 or 1, got {visible!r}")
        xy = check_point([_number(f[2], where), _number(f[3], where)], where) if visible == "1" else None
        points.setdefault(f[0], {})[part_names[part_id]] = xy
    instances, paths = [], {}
    tables = {"image_class_labels.txt": labels, "train_test_split.txt": is_train, "bounding_boxes.txt": boxes}
    for image_id in sorted(images, key=lambda k: _cub_id(k, str(root / "images.txt"))):
        for file, table in tables.items():
            if image_id not in table:
                raise DatasetError(f"{root / file}: no line for image {image_id} (every image of images.txt needs one)")
        if split is not None and is_train[image_id] != CUB_SPLITS[split]:
            continue
        if labels[image_id] not in classes:
            raise DatasetError(
                f"{root / 'image_class_labels.txt'}: image {image_id} has class {labels[image_id]}, "
                f"absent from {root / 'classes.txt'}"
            )
        found = points.get(image_id, {})
        keypoints = {p: found.get(p) for p in parts}
        paths[image_id] = root / "images" / images[image_id]
        instances.append(
            KeypointInstance(
                image_id=image_id,
                category=classes[labels[image_id]],
                box=boxes[image_id],
                keypoints=keypoints,
                split="train" if is_train[image_id] == "1" else "test",
                instance_id=image_id,
            )
        )
    dropped = sum(1 for i in instances if not i.visible_parts())
    instances = [i for i in instances if i.visible_parts()]
    return _dataset(name or "cub_keypoints", instances, parts, paths, str(root), stats={"no_visible_part": dropped})


# ---------------------------------------------------------------------------- SPair-71k


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"file not found: {path}")
    data = read_json_file(path, "SPair-71k annotation", DatasetError)
    if not isinstance(data, dict):
        raise DatasetError(f"{path} must hold a JSON object")
    return data


def _corners_to_xywh(value: object, where: str) -> list[float]:
    """A SPair-71k ``bndbox`` ``[x1, y1, x2, y2]`` as ``[x, y, w, h]``."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise DatasetError(f"{where}: bndbox {value!r} is not four numbers [x1, y1, x2, y2]")
    x1, y1, x2, y2 = value
    try:
        return check_box([x1, y1, x2 - x1, y2 - y1], where)
    except TypeError:
        raise DatasetError(f"{where}: bndbox {value!r} is not four numbers [x1, y1, x2, y2]") from None


def _spair_names(path: str | Path | None) -> dict[str, dict[str, str]]:
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"SPair-71k part names file not found: {path} (YAML {{category: {{id: name}}}})")
    data = read_yaml_file(path, "SPair-71k part names file", DatasetError) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DatasetError(f"{path} must map each category to {{keypoint id: name}}")
    return {str(c): {str(k): str(v) for k, v in names.items()} for c, names in data.items()}


def load_spair_keypoints(
    root: str | Path,
    split: str | None = "test",
    categories: Sequence[str] | None = None,
    part_names: str | Path | None = None,
    name: str | None = None,
) -> KeypointDataset:
    """SPair-71k keypoints, one instance per image of ``split`` (``trn``, ``val``, ``test``; None: all).

    ``categories`` keeps only those; ``part_names``: YAML ``{category: {id: name}}`` (default ``keypoint <id>``).
    """
    root = Path(root)
    image_dir, pair_dir = root / "ImageAnnotation", root / "PairAnnotation"
    if not image_dir.is_dir() and not pair_dir.is_dir():
        raise DatasetError(
            f"SPair-71k: {root} has neither ImageAnnotation/ nor PairAnnotation/ (expected the SPair-71k layout: "
            "ImageAnnotation/<category>/<image>.json, PairAnnotation/<split>/*.json, JPEGImages/<category>/)"
        )
    names = _spair_names(part_names)
    wanted = set(categories) if categories is not None else None
    # (category, stem) -> {kps: {id: xy}, box, imname}; gathered from the pair files as a fallback
    from_pairs: dict[tuple[str, str], dict] = {}
    order: list[tuple[str, str]] = []
    if split is not None:
        split_dir = pair_dir / split
        if not split_dir.is_dir():
            present = sorted(p.name for p in pair_dir.iterdir() if p.is_dir()) if pair_dir.is_dir() else []
            raise DatasetError(
                f"SPair-71k: no pair folder {split_dir} (splits present: {', '.join(present) or 'none'}): "
                "pick one (dataset.builder.split=trn|val|test) or split=null for every per-image file"
            )
        for pair_file in sorted(split_dir.glob("*.json")):
            pair = _read_json(pair_file)
            for key in ("category", "src_imname", "trg_imname", "src_bndbox", "trg_bndbox", "src_kps", "trg_kps"):
                if key not in pair:
                    raise DatasetError(f"{pair_file} has no {key!r} (a SPair-71k pair annotation)")
            category = str(pair["category"])
            if wanted is not None and category not in wanted:
                continue
            ids = [str(k) for k in pair.get("kps_ids", range(len(pair["src_kps"])))]
            for side in ("src", "trg"):
                imname = str(pair[f"{side}_imname"])
                key = (category, Path(imname).stem)
                if key not in from_pairs:
                    order.append(key)
                    from_pairs[key] = {"imname": imname, "kps": {}, "box": None, "file": pair_file}
                entry = from_pairs[key]
                kps = pair[f"{side}_kps"]
                if not isinstance(kps, list) or len(kps) != len(ids):
                    raise DatasetError(f"{pair_file}: {side}_kps must list one [x, y] per kps_ids entry")
                for kp_id, xy in zip(ids, kps):
                    entry["kps"][kp_id] = check_point(xy, f"{pair_file}: {side}_kps id {kp_id}")
                entry["box"] = entry["box"] or _corners_to_xywh(pair[f"{side}_bndbox"], f"{pair_file}: {side}_bndbox")
    else:
        if not image_dir.is_dir():
            raise DatasetError(f"SPair-71k: split=null reads every per-image file, but {image_dir} does not exist")
        for path in sorted(image_dir.glob("*/*.json")):
            if wanted is None or path.parent.name in wanted:
                order.append((path.parent.name, path.stem))
    instances, paths = [], {}
    parts_of: dict[str, dict[str, tuple[int, str]]] = {}
    stats = {"images_from_pairs": 0, "no_visible_part": 0}
    for category, stem in order:
        per_image = image_dir / category / f"{stem}.json"
        if per_image.is_file():
            data = _read_json(per_image)
            for key in ("bndbox", "kps"):
                if key not in data:
                    raise DatasetError(f"{per_image} has no {key!r} (a SPair-71k image annotation)")
            if not isinstance(data["kps"], dict):
                raise DatasetError(f"{per_image}: kps must map keypoint ids to [x, y] or null")
            kps = {str(k): check_point(v, f"{per_image}: kps id {k}") for k, v in data["kps"].items()}
            box = _corners_to_xywh(data["bndbox"], f"{per_image}: bndbox")
            imname = str(data.get("filename") or from_pairs.get((category, stem), {}).get("imname") or f"{stem}.jpg")
        else:
            entry = from_pairs[(category, stem)]
            kps, box, imname = entry["kps"], entry["box"], entry["imname"]
            stats["images_from_pairs"] += 1
        label = names.get(category, {})
        keypoints = {label.get(k, f"keypoint {k}"): kps[k] for k in sorted(kps, key=_id_order)}
        known = parts_of.setdefault(category, {})
        known.update({label.get(k, f"keypoint {k}"): _id_order(k) for k in kps})
        image_id = f"{category}/{imname}"
        instance = KeypointInstance(image_id, category, box, keypoints, split or "all", image_id)
        if not instance.visible_parts():
            stats["no_visible_part"] += 1
            continue
        paths[image_id] = root / "JPEGImages" / category / imname
        instances.append(instance)
    # each category's parts in keypoint-id order, as the files number them
    category_parts = {c: sorted(known, key=known.__getitem__) for c, known in parts_of.items()}
    parts = list(dict.fromkeys(p for known in category_parts.values() for p in known))
    return _dataset(
        name or f"spair71k({split or 'all'})",
        instances,
        parts,
        paths,
        str(root),
        category_parts=category_parts,
        stats=stats,
    )


def _id_order(kp_id: str) -> tuple[int, str]:
    return (int(kp_id) if kp_id.isdigit() else 1 << 30, kp_id)


# ---------------------------------------------------------------------------- COCO person keypoints


def load_coco(annotation_file: Path, what: str, example: str):
    """A COCO annotation file read through pycocotools (its progress prints silenced); one line when it
    is missing, not JSON, or not in COCO's layout."""
    from pycocotools.coco import COCO

    if not annotation_file.is_file():
        raise DatasetError(f"{what} not found: {annotation_file} (e.g. {example})")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            return COCO(str(annotation_file))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{annotation_file} is not valid JSON: {err}") from err
    except (KeyError, TypeError, AssertionError) as err:
        raise DatasetError(f"{annotation_file} is not a COCO annotation file: {type(err).__name__}: {err}") from err


def load_coco_keypoints(
    annotation_file: str | Path,
    image_dir: str | Path,
    split: str | None = None,
    min_keypoints: int = 1,
    include_crowd: bool = False,
    name: str | None = None,
) -> KeypointDataset:
    """COCO keypoints (``person_keypoints_<split>.json``) read through pycocotools; one instance per
    annotation with at least ``min_keypoints`` labelled keypoints (crowd annotations skipped unless
    ``include_crowd``). ``split`` names the split in results (default: the file's stem)."""
    annotation_file = Path(annotation_file)
    coco = load_coco(annotation_file, "COCO keypoints file", "person_keypoints_val2017.json")
    categories = {c["id"]: c for c in coco.loadCats(coco.getCatIds()) if c.get("keypoints")}
    if not categories:
        raise DatasetError(f"{annotation_file}: no category lists 'keypoints' names (is it a person_keypoints file?)")
    names = {cid: [str(n).replace("_", " ") for n in c["keypoints"]] for cid, c in categories.items()}
    split = split or annotation_file.stem
    image_dir = Path(image_dir)
    instances, paths, sizes = [], {}, {}
    stats = {"crowd": 0, "too_few_keypoints": 0}
    for ann in coco.loadAnns(coco.getAnnIds(catIds=list(categories))):
        where = f"{annotation_file}: annotation {ann.get('id')}"
        if ann.get("iscrowd", 0) and not include_crowd:
            stats["crowd"] += 1
            continue
        labels = names[ann["category_id"]]
        flat = ann.get("keypoints")
        if not isinstance(flat, list) or len(flat) != 3 * len(labels):
            raise DatasetError(f"{where}: keypoints must be [x, y, v] x {len(labels)} (got {len(flat or [])} numbers)")
        keypoints = {}
        for k, label in enumerate(labels):
            x, y, v = flat[3 * k : 3 * k + 3]
            keypoints[label] = None if v == 0 else check_point([x, y], f"{where}: keypoint {label!r}")
        if sum(p is not None for p in keypoints.values()) < max(1, min_keypoints):
            stats["too_few_keypoints"] += 1
            continue
        image = coco.imgs.get(ann["image_id"])
        if image is None:
            raise DatasetError(f"{where}: image {ann['image_id']} is not in 'images'")
        image_id = str(ann["image_id"])
        paths[image_id] = image_dir / image["file_name"]
        if all(isinstance(image.get(k), int) and image[k] > 0 for k in ("width", "height")):
            sizes[image_id] = (image["width"], image["height"])  # the annotation's: no header read
        instances.append(
            KeypointInstance(
                image_id=image_id,
                category=str(categories[ann["category_id"]]["name"]),
                box=check_box(ann.get("bbox"), f"{where}: bbox"),
                keypoints=keypoints,
                split=split,
                instance_id=str(ann.get("id")),
            )
        )
    check_image_files(paths, str(annotation_file))

    instances, stats["keypoints_outside"] = drop_outside_points(
        instances, lambda image_id: sizes.get(image_id) or read_image_size(paths[image_id])
    )
    stats["no_visible_part"] = sum(1 for i in instances if not i.visible_parts())
    instances = [i for i in instances if i.visible_parts()]
    parts = list(dict.fromkeys(p for labels in names.values() for p in labels))
    category_parts = {str(c["name"]): names[cid] for cid, c in categories.items()}
    return _dataset(
        name or f"coco_keypoints({split})",
        instances,
        parts,
        paths,
        str(annotation_file),
        category_parts=category_parts,
        stats=stats,
    )


# ---------------------------------------------------------------------------- JSON lines


def load_keypoints_jsonl(
    path: str | Path,
    image_root: str | Path,
    parts: Sequence[str] | None = None,
    split: str | None = None,
    name: str | None = None,
) -> KeypointDataset:
    """One instance per line ``{file_name, category, box: [x, y, w, h], keypoints: {name: [x, y] or null}}``.

    ``parts`` fixes the part names and their order (default: first-seen order); a ``split`` key on the
    lines selects them by ``split``; without it every line belongs to ``split`` (or the file's stem).
    Lines are tied to their image by ``file_name``: an ``image_id`` shared by lines naming different files
    is refused. Keypoints outside their image are left out (as not visible) and counted
    (``stats["keypoints_outside"]``): marked there, they would be moved to the edge.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"keypoints JSON-lines file not found: {path} (one instance per line)")
    known = list(parts) if parts is not None else None
    if known is not None:
        if not all(isinstance(p, str) for p in known):
            raise DatasetError(f"{path}: the given parts (dataset.builder.parts) must be names, got {known!r}")
        twice = sorted({p for p in known if known.count(p) > 1})
        if twice:
            raise DatasetError(
                f"{path}: the given parts (dataset.builder.parts) name {twice[0]!r} twice: list each part once"
            )
    image_root = Path(image_root)
    rows = []
    for number, item in read_json_lines(path, "keypoints JSON-lines file", DatasetError):
        where = f"{path}:{number}"
        if not isinstance(item, dict):
            raise DatasetError(f"{where} must be a JSON object {{file_name, category, box, keypoints}}")
        for key in ("file_name", "category", "box", "keypoints"):
            if key not in item:
                raise DatasetError(f"{where} has no {key!r} (expected file_name, category, box, keypoints)")
        for key in ("file_name", "category"):
            if not isinstance(item[key], str) or not item[key].strip():
                raise DatasetError(f"{where}: {key} must be a non-empty string, got {item[key]!r}")
        for key in ("image_id", "id", "split"):
            if key in item and not _plain_id(item[key]):
                raise DatasetError(f"{where}: {key} must be a string or an integer, got {item[key]!r}")
        if not isinstance(item["keypoints"], dict):
            raise DatasetError(f"{where}: keypoints must map part names to [x, y] or null")
        if known is not None:
            unknown = [k for k in item["keypoints"] if k not in known]
            if unknown:
                raise DatasetError(f"{where}: part {unknown[0]!r} is not among the given parts ({', '.join(known)})")
        rows.append((where, item))
    if any("split" in item for _, item in rows):
        present = list(dict.fromkeys(str(item.get("split")) for _, item in rows))
        if split is not None:
            rows = [(w, item) for w, item in rows if str(item.get("split")) == split]
            if not rows:
                raise DatasetError(f"split {split!r} is not in {path}: it holds {', '.join(present)}")
    order = known if known is not None else list(dict.fromkeys(k for _, item in rows for k in item["keypoints"]))
    instances, paths, first_line = [], {}, {}
    for index, (where, item) in enumerate(rows):
        keypoints = {p: check_point(item["keypoints"].get(p), f"{where}: keypoint {p!r}") for p in order}
        image_id = str(item.get("image_id", item["file_name"]))
        file = image_root / item["file_name"]
        if image_id in paths and paths[image_id] != file:
            raise DatasetError(
                f"{where}: image_id {image_id} has file_name {item['file_name']!r}, but {first_line[image_id]} "
                f"gave it {paths[image_id].name!r}: one image id must name one file"
            )
        paths.setdefault(image_id, file)
        first_line.setdefault(image_id, where)
        instances.append(
            KeypointInstance(
                image_id=image_id,
                category=item["category"],
                box=check_box(item["box"], f"{where}: box"),
                keypoints=keypoints,
                split=str(item.get("split", split or path.stem)),
                instance_id=str(item.get("id", index)),
            )
        )
    check_image_files(paths, str(path))
    instances, outside = drop_outside_points(instances, lambda image_id: read_image_size(paths[image_id]))
    dropped = sum(1 for i in instances if not i.visible_parts())
    instances = [i for i in instances if i.visible_parts()]
    stats = {"no_visible_part": dropped, "keypoints_outside": outside}
    return _dataset(name or path.stem, instances, order, paths, str(path), stats=stats)


def _plain_id(value: object) -> bool:
    """An identifier read from a file: a string or an integer (not a bool, a float, a list or an object)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def drop_outside_points(
    instances: list[KeypointInstance], image_size: Callable[[str], tuple[int, int]]
) -> tuple[list[KeypointInstance], int]:
    """The instances with every keypoint outside its image (``x`` outside ``[0, w]``, ``y`` outside ``[0, h]``)
    set to not visible, and how many were. A marking there would be clamped to the edge, where it may land on
    another part's mark."""
    out, outside = [], 0
    for instance in instances:
        width, height = image_size(instance.image_id)
        inside = {
            part: xy if xy is None or (0 <= xy[0] <= width and 0 <= xy[1] <= height) else None
            for part, xy in instance.keypoints.items()
        }
        lost = sum(inside[p] is None and xy is not None for p, xy in instance.keypoints.items())
        outside += lost
        out.append(replace(instance, keypoints=inside) if lost else instance)
    return out, outside
