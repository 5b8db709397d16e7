"""FaceSynthetics (Wood et al., ICCV 2021): rendered faces with 70 landmarks, for the red-circle study's keypoint
localisation and naming on faces and its marking-bias probe on faces.

Layout (github.com/microsoft/FaceSynthetics): one folder with ``{id}.png`` (the image), ``{id}_ldmks.txt``
(70 lines ``x y`` in pixels; the task's text calls the file ``{id}_ldmk.txt``, also read) and ``{id}_seg.png``
(not used). The landmarks are the 68 points of the iBUG 300-W scheme and the two pupil centres, named in
``face_landmarks.yaml``; the two pupils are named by the eye whose iBUG contour centre they are nearer to (the
dataset's README does not say which comes first; the count of faces where the file's order was the other way
is recorded). A face's box is its landmarks' bounding box (the PCK reference size, the circled "person").
"""

from __future__ import annotations

import math
import re
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from descbench.core.errors import DatasetError
from descbench.core.files import read_text_file
from descbench.core.marking.bias_probe import PersonDataset, PersonImage
from descbench.core.marking.points import KeypointDataset, KeypointInstance, check_point
from descbench.datasets.base import check_image_files, file_loader

LAYOUT = "<root>/NNNNNN.png with <root>/NNNNNN_ldmks.txt (70 lines 'x y'; NNNNNN_ldmk.txt also read)"
NUM_LANDMARKS = 70
CATEGORY = "face"
_IMAGE = re.compile(r"^(\d+)\.png$")
_RIGHT_EYE, _LEFT_EYE, _PUPILS = range(36, 42), range(42, 48), (68, 69)  # 0-based iBUG indices


@cache
def landmark_names() -> tuple[str, ...]:
    """The 70 landmark names in file order (``face_landmarks.yaml``)."""
    data = yaml.safe_load(resources.files("descbench.datasets").joinpath("face_landmarks.yaml").read_text())
    names = tuple(str(n) for n in data["names"])
    if len(names) != NUM_LANDMARKS or len(set(names)) != NUM_LANDMARKS:
        raise DatasetError(f"descbench/datasets/face_landmarks.yaml must name {NUM_LANDMARKS} distinct landmarks")
    return names


def _landmark_file(root: Path, stem: str) -> Path:
    for suffix in ("_ldmks.txt", "_ldmk.txt"):
        path = root / f"{stem}{suffix}"
        if path.is_file():
            return path
    raise DatasetError(f"FaceSynthetics: {root / (stem + '.png')} has no landmark file {stem}_ldmks.txt ({LAYOUT})")


def read_landmarks(path: Path) -> list[tuple[float, float]]:
    """The 70 points of a landmark file; a bad line is one error naming the file and line."""
    points = []
    for number, line in enumerate(read_text_file(path, "landmark file", DatasetError).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        where = f"{path}:{number}"
        try:
            xy = [float(v) for v in fields]
        except ValueError:
            raise DatasetError(f"{where}: {line.strip()!r} is not two numbers 'x y'") from None
        if len(xy) != 2:
            raise DatasetError(f"{where}: expected two numbers 'x y', got {len(xy)}")
        points.append(check_point(xy, where))
    if len(points) != NUM_LANDMARKS:
        raise DatasetError(
            f"{path}: {len(points)} landmarks, FaceSynthetics has {NUM_LANDMARKS} (68 iBUG points and 2 pupils)"
        )
    return points


def _centre(points, indices) -> tuple[float, float]:
    return (sum(points[i][0] for i in indices) / len(indices), sum(points[i][1] for i in indices) / len(indices))


def name_pupils(points: list[tuple[float, float]]) -> tuple[list[tuple[float, float]], bool]:
    """The points with the pupils in (right, left) order, each the one nearer to that eye's contour centre;
    ``True`` when the file had them the other way round."""
    right, left = _centre(points, _RIGHT_EYE), _centre(points, _LEFT_EYE)
    a, b = (points[i] for i in _PUPILS)
    as_given = math.dist(a, right) + math.dist(b, left)
    swapped = math.dist(b, right) + math.dist(a, left)
    if swapped < as_given:
        return [*points[:68], b, a], True
    return list(points), False


def _box(points) -> list[float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(max(xs) - min(xs), 1.0), max(max(ys) - min(ys), 1.0)]


def read_facesynthetics(root: str | Path) -> tuple[list[tuple[str, Path, list[tuple[float, float]]]], int]:
    """``([(image id, image file, 70 points with the pupils named)], faces whose pupils were swapped)``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"FaceSynthetics: folder not found: {root} (expected {LAYOUT})")
    stems = sorted(m.group(1) for p in root.iterdir() if (m := _IMAGE.match(p.name)))
    if not stems:
        raise DatasetError(f"FaceSynthetics: {root} holds no NNNNNN.png image (expected {LAYOUT})")
    faces, swapped = [], 0
    for stem in stems:
        points, was_swapped = name_pupils(read_landmarks(_landmark_file(root, stem)))
        swapped += was_swapped
        faces.append((stem, root / f"{stem}.png", points))
    return faces, swapped


def load_facesynthetics_keypoints(root: str | Path, name: str | None = None) -> KeypointDataset:
    """One ``face`` instance per image, its 70 named landmarks all visible (they are projections of 3D points:
    the dataset has no visibility), its box the landmarks' bounding box."""
    faces, swapped = read_facesynthetics(root)
    names = landmark_names()
    instances, paths = [], {}
    for stem, path, points in faces:
        paths[stem] = path
        keypoints = dict(zip(names, points))
        instances.append(KeypointInstance(stem, CATEGORY, _box(points), keypoints, "all", stem))
    check_image_files(paths, str(root))
    return KeypointDataset(
        name=name or "facesynthetics",
        instances=instances,
        parts=list(names),
        image_loader=file_loader(paths),
        describe_image=lambda image_id: str(paths.get(image_id, image_id)),
        stats={"pupils_swapped_to_the_nearer_eye": swapped},
    )


def load_facesynthetics_persons(root: str | Path, name: str | None = None) -> PersonDataset:
    """The marking-bias probe on faces: each image's face (its landmarks' bounding box) is the one to circle."""
    faces, _ = read_facesynthetics(root)
    paths = {stem: path for stem, path, _ in faces}
    check_image_files(paths, str(root))
    return PersonDataset(
        name=name or "facesynthetics_faces",
        images=[PersonImage(stem, [_box(points)], 0) for stem, _, points in faces],
        image_loader=file_loader(paths),
        describe_image=lambda image_id: str(paths.get(image_id, image_id)),
        stats={},
    )
