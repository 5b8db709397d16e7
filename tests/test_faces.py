"""The red-circle study's other data: FaceSynthetics (keypoints, the bias probe on faces) and ImageNetV2, read from
tiny folders in their released layouts."""

from __future__ import annotations

import pytest
from PIL import Image

from descbench.core.errors import DatasetError
from descbench.datasets.faces import (
    landmark_names,
    load_facesynthetics_keypoints,
    load_facesynthetics_persons,
)
from descbench.datasets.folders import imagenet_classes, load_imagenetv2

# The iBUG 68-point mirror pairs (1-based; the flip table of the 300-W markup), plus FaceSynthetics' pupils 69, 70.
IBUG_MIRROR = (
    [(k, 18 - k) for k in range(1, 9)]
    + [(18, 27), (19, 26), (20, 25), (21, 24), (22, 23), (32, 36), (33, 35)]
    + [(37, 46), (38, 45), (39, 44), (40, 43), (41, 48), (42, 47)]
    + [(49, 55), (50, 54), (51, 53), (56, 60), (57, 59), (61, 65), (62, 64), (66, 68), (69, 70)]
)
IBUG_CENTRE = (9, 28, 29, 30, 31, 34, 52, 58, 63, 67)  # on the face's vertical axis: no partner


def face_points(right_pupil_first: bool = True) -> list[tuple[float, float]]:
    """70 points of a frontal face in a 200 x 200 image: the right eye (iBUG 37-42) on the image's left."""
    points = [(50.0 + k, 100.0 + k) for k in range(36)]  # jaw, brows, nose: anywhere in the face box
    points += [(60.0 + k, 80.0) for k in range(6)]  # right eye around x = 62
    points += [(130.0 + k, 80.0) for k in range(6)]  # left eye around x = 132
    points += [(80.0 + k, 140.0) for k in range(20)]  # lips
    pupils = [(62.0, 80.0), (132.0, 80.0)]
    return points + (pupils if right_pupil_first else pupils[::-1])


def write_face(folder, stem: str, points, suffix: str = "_ldmks.txt") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (200, 200), (90, 60, 40)).save(folder / f"{stem}.png")
    (folder / f"{stem}{suffix}").write_text("\n".join(" ".join(f"{v:.3f}" for v in p) for p in points) + "\n")


def test_landmark_names_follow_the_ibug_scheme_and_its_mirror_pairs(tmp_path):
    names = landmark_names()
    assert len(names) == 70 and len(set(names)) == 70
    assert (names[8], names[30], names[36], names[45], names[68], names[69]) == (
        "chin",
        "tip of the nose",
        "right eye outer corner",
        "left eye outer corner",
        "right pupil",
        "left pupil",
    )
    write_face(tmp_path, "000000", face_points())
    data = load_facesynthetics_keypoints(tmp_path)
    for a, b in IBUG_MIRROR:  # the left/right rule of the naming task pairs exactly iBUG's mirror points
        assert data.mirror[names[a - 1]] == names[b - 1] and data.mirror[names[b - 1]] == names[a - 1]
    assert not any(names[k - 1] in data.mirror for k in IBUG_CENTRE)
    assert len(data.mirror) == 2 * len(IBUG_MIRROR)


def test_facesynthetics_in_its_released_layout(tmp_path):
    write_face(tmp_path, "000000", face_points())
    write_face(tmp_path, "000001", face_points(right_pupil_first=False), suffix="_ldmk.txt")  # the task's spelling
    Image.new("L", (200, 200)).save(tmp_path / "000000_seg.png")  # segmentation masks are not images to read
    data = load_facesynthetics_keypoints(tmp_path)
    assert [i.image_id for i in data.instances] == ["000000", "000001"] and data.parts == list(landmark_names())
    first, second = data.instances
    assert first.category == "face" and first.box == [
        50.0,
        80.0,
        85.0,
        60.0,
    ]  # the landmarks' bounding box: x 50..135, y 80..140
    assert first.keypoints["right pupil"] == (62.0, 80.0) and first.keypoints["left pupil"] == (132.0, 80.0)
    # the second file lists the left pupil first: each pupil is named by the nearer eye, and that is counted
    assert second.keypoints["right pupil"] == (62.0, 80.0) and data.stats["pupils_swapped_to_the_nearer_eye"] == 1
    assert data.load_image("000001").size == (200, 200)
    persons = load_facesynthetics_persons(tmp_path)
    assert [(p.image_id, p.boxes, p.target) for p in persons.images] == [
        ("000000", [[50.0, 80.0, 85.0, 60.0]], 0),
        ("000001", [[50.0, 80.0, 85.0, 60.0]], 0),
    ]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d.mkdir(), r"holds no NNNNNN\.png image"),
        (
            lambda d: Image.new("RGB", (8, 8)).save((d.mkdir(), d / "000003.png")[1]),
            r"000003\.png has no landmark file",
        ),
        (
            lambda d: write_face(d, "000004", face_points()[:68]),
            r"000004_ldmks\.txt: 68 landmarks, FaceSynthetics has 70",
        ),
        (lambda d: write_face(d, "000005", [(1.0, 2.0, 3.0)] * 70), r"000005_ldmks\.txt:1: expected two numbers"),
    ],
)
def test_a_bad_facesynthetics_folder_is_one_line(tmp_path, make, message):
    folder = tmp_path / "faces"
    make(folder)
    with pytest.raises(DatasetError, match=message):
        load_facesynthetics_keypoints(folder)


def test_imagenetv2_folders_are_class_indices_not_text(tmp_path):
    """Folder "10" is class 10 (brambling), not the third folder in text order ("0", "1", "10", "100", ...)."""
    top = tmp_path / "imagenetv2-matched-frequency-format-val"
    for c in range(1000):
        (top / str(c)).mkdir(parents=True)
    for c in (0, 10, 999):
        Image.new("RGB", (16, 16), (c % 256, 0, 0)).save(top / str(c) / "a.jpeg")
    data = load_imagenetv2(str(tmp_path))
    wnids, names = imagenet_classes()
    assert data.classes == names and data.class_ids == wnids and data.name == "imagenetv2"
    assert data.labels() == [0, 10, 999] and [data.classes[i] for i in data.labels()][:2] == ["tench", "brambling"]
    assert data.provenance["classes_without_images"] == 997 and data.split == "matched-frequency"
    (top / "999" / "a.jpeg").unlink()
    (top / "999").rmdir()
    with pytest.raises(DatasetError, match=r"holds 999 class folders, ImageNet has 1000"):
        load_imagenetv2(str(tmp_path))
    with pytest.raises(DatasetError, match=r"folder not found: .*imagenetv2-top-images-format-val"):
        load_imagenetv2(str(tmp_path), variant="top-images")
