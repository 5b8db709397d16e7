"""Dataset readers: image modes, curated class names, Places365 names, class-name files, the seeded limit."""

from __future__ import annotations

import json
import logging
import os
from importlib import resources

import numpy as np
import pytest
from PIL import Image

from descbench.core.errors import DatasetError
from descbench.datasets import base as base_module
from descbench.datasets.base import EvalDataset, load_image, read_curated_names, stratified_indices
from descbench.datasets.folders import cub_class_name, load_image_folder
from descbench.datasets.torchvision_sets import load_torchvision, places365_class_name

# --------------------------------------------------------------------------- image modes


def saved(tmp_path, image: Image.Image, name: str) -> str:
    path = tmp_path / name
    image.save(path)
    return str(path)


def test_16_bit_png_is_scaled_not_white(tmp_path):
    array = np.array([[0, 257 * 64], [257 * 128, 65535]], dtype=np.uint16)
    path = saved(tmp_path, Image.fromarray(array), "grey16.png")
    assert Image.open(path).mode in ("I;16", "I")  # what Pillow makes of a 16-bit PNG
    out = np.asarray(load_image(path))
    assert out.shape == (2, 2, 3) and out[..., 0].tolist() == [[0, 64], [128, 255]]
    assert (out[..., 0] == out[..., 2]).all()
    # PIL's own conversion, which the loader replaces, clips these to white
    assert np.asarray(Image.open(path).convert("RGB"))[0, 1].tolist() == [255, 255, 255]


def test_32_bit_integer_mode(tmp_path):
    image = Image.fromarray(np.array([[0, 257 * 200]], dtype=np.int32), mode="I")
    assert np.asarray(load_image(saved(tmp_path, image, "grey32.tif")))[0, :, 0].tolist() == [0, 200]


def test_alpha_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (2, 1))
    rgba.putpixel((0, 0), (200, 0, 0, 0))  # fully transparent: white
    rgba.putpixel((1, 0), (200, 0, 0, 255))  # opaque: itself
    assert np.asarray(load_image(saved(tmp_path, rgba, "a.png"))).tolist() == [[[255, 255, 255], [200, 0, 0]]]
    half = Image.new("LA", (1, 1), (0, 128))  # black at half opacity -> mid grey
    assert np.asarray(load_image(saved(tmp_path, half, "la.png")))[0, 0].tolist() == [127, 127, 127]


def test_palette_with_and_without_transparency(tmp_path):
    pal = Image.new("P", (2, 1))
    pal.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    assert np.asarray(load_image(saved(tmp_path, pal, "p.png"))).tolist() == [[[10, 20, 30], [40, 50, 60]]]
    pal.info["transparency"] = 0
    path = tmp_path / "pt.png"
    pal.save(path, transparency=0)
    assert np.asarray(load_image(str(path))).tolist() == [[[255, 255, 255], [40, 50, 60]]]


def test_cmyk_greyscale_and_bilevel(tmp_path):
    cmyk = Image.new("CMYK", (1, 1), (0, 255, 255, 0))  # pure red
    assert np.asarray(load_image(saved(tmp_path, cmyk, "c.jpg")))[0, 0].tolist() == pytest.approx([255, 0, 0], abs=3)
    grey = Image.new("L", (1, 1), 77)
    assert np.asarray(load_image(saved(tmp_path, grey, "l.png")))[0, 0].tolist() == [77, 77, 77]
    bilevel = Image.new("1", (1, 1), 1)
    assert np.asarray(load_image(saved(tmp_path, bilevel, "b.png")))[0, 0].tolist() == [255, 255, 255]


# --------------------------------------------------------------------------- class names


def test_places365_names_from_the_real_categories_file(tmp_path, monkeypatch):
    import torchvision.datasets.places365 as tv_places

    # torchvision checks the md5 of the full file; a 20-line extract cannot match it
    monkeypatch.setattr(tv_places, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    # the first 20 lines of the real categories_places365.txt, in torchvision's layout
    first20 = [
        "/a/airfield 0", "/a/airplane_cabin 1", "/a/airport_terminal 2", "/a/alcove 3", "/a/alley 4",
        "/a/amphitheater 5", "/a/amusement_arcade 6", "/a/amusement_park 7", "/a/apartment_building/outdoor 8",
        "/a/aquarium 9", "/a/aqueduct 10", "/a/arcade 11", "/a/arch 12", "/a/archaelogical_excavation 13",
        "/a/archive 14", "/a/arena/hockey 15", "/a/arena/performance 16", "/a/arena/rodeo 17",
        "/a/army_base 18", "/a/art_gallery 19",
    ]  # fmt: skip
    (tmp_path / "categories_places365.txt").write_text("\n".join(first20) + "\n")
    (tmp_path / "places365_val.txt").write_text("Places365_val_00000001.jpg 8\n")
    (tmp_path / "val_256").mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "val_256" / "Places365_val_00000001.jpg")
    ds = load_torchvision("Places365", str(tmp_path))
    assert ds.classes == [
        "airfield", "airplane cabin", "airport terminal", "alcove", "alley", "amphitheater", "amusement arcade",
        "amusement park", "apartment building outdoor", "aquarium", "aqueduct", "arcade", "arch",
        "archaelogical excavation", "archive", "arena hockey", "arena performance", "arena rodeo", "army base",
        "art gallery",
    ]  # fmt: skip
    assert len(set(ds.classes)) == 20 and ds.class_ids[8] == "/a/apartment_building/outdoor"
    image, label, _ = ds[0]
    assert label == 8 and image.size == (8, 8)
    assert places365_class_name("/u/underwater/ocean_deep") == "underwater ocean deep"


def test_curated_tables_cover_every_torchvision_dataset():
    sizes = {
        n: len(read_curated_names(n))
        for n in ("eurosat", "pets", "flowers102", "dtd", "food101", "cifar10", "cifar100", "imagenet")
    }
    assert sizes == {
        "eurosat": 10, "pets": 37, "flowers102": 102, "dtd": 47, "food101": 101, "cifar10": 10, "cifar100": 100,
        "imagenet": 1000,
    }  # fmt: skip
    assert read_curated_names("eurosat")["HerbaceousVegetation"] == "brushland or shrubland"
    assert read_curated_names("pets")["German Shorthaired"] == "german shorthaired"
    assert read_curated_names("food101")["cheese_plate"] == "cheese plate"
    assert read_curated_names("cifar100")["aquarium_fish"] == "aquarium fish"
    with pytest.raises(DatasetError, match=r"no curated class names for dataset 'mnist'"):
        read_curated_names("mnist")


def test_curated_tables_equal_clip_benchmark_where_it_has_them():
    pytest.importorskip("clip_benchmark")
    shipped = json.loads(resources.files("clip_benchmark.datasets").joinpath("en_classnames.json").read_text())
    assert list(read_curated_names("eurosat").values()) == shipped["eurosat"]
    assert list(read_curated_names("flowers102").values()) == shipped["flowers"]
    assert list(read_curated_names("imagenet").values()) == shipped["imagenet1k"]
    # clip-benchmark title-cases CLIP's pet names; CLIP's own list keeps the dogs in lower case
    assert [n.casefold() for n in read_curated_names("pets").values()] == [n.casefold() for n in shipped["pets"]]


def test_cub_names_cleaned():
    assert cub_class_name("001.Black_footed_Albatross") == "Black footed Albatross"
    assert cub_class_name("124.Le_Conte_Sparrow") == "Le Conte Sparrow"


# --------------------------------------------------------------------------- folders


def tree(root, folders):
    for f in folders:
        (root / f).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(root / f / "0.png")


def test_class_name_file_with_a_class_without_folder_is_an_error(tmp_path):
    tree(tmp_path / "val", ["a_cat", "b_dog"])
    names = tmp_path / "names.tsv"
    names.write_text("a_cat\tcat\nb_dog\tdog\nc_cow\tcow\nd_owl\towl\n")
    with pytest.raises(DatasetError) as err:
        load_image_folder(str(tmp_path / "val"), class_names=str(names))
    assert str(err.value) == (
        f"class-name file {names} lists 2 class(es) with no image folder under {tmp_path / 'val'}: "
        "['c_cow', 'd_owl']; add the folders (with images) or remove the lines"
    )
    names.write_text("a_cat\tcat\nb_dog\tdog\n")
    ds = load_image_folder(str(tmp_path / "val"), class_names=str(names))
    assert ds.classes == ["cat", "dog"] and ds.class_ids == ["a_cat", "b_dog"]


def test_duplicate_names_warn_once_and_are_recorded(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(base_module, "_WARNED_DUPLICATES", set())
    with caplog.at_level(logging.WARNING):
        ds = EvalDataset(name="dups", classes=["missile", "cat", "missile"], base=[])
        EvalDataset(name="dups", classes=["missile", "cat", "missile"], base=[])
    assert caplog.text.count("class name(s) are shared by several classes") == 1
    assert "'missile' -> classes [0, 2]" in caplog.text
    assert ds.provenance["duplicate_class_names"] == {"missile": [0, 2]}


# --------------------------------------------------------------------------- limit


def test_stratified_indices_hand_case():
    labels = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2]
    chosen = stratified_indices(labels, 6, seed=0)
    assert len(chosen) == 6 and chosen == sorted(chosen)
    assert sorted(labels[i] for i in chosen) == [0, 0, 1, 1, 2, 2]
    assert stratified_indices(labels, 6, seed=0) == chosen
    # a class with fewer samples than its share gives what it has; the others fill up
    counts = np.bincount([labels[i] for i in stratified_indices(labels, 9, seed=3)], minlength=3).tolist()
    assert counts[1] == 2 and sum(counts) == 9 and abs(counts[0] - counts[2]) <= 1
    assert stratified_indices(labels, 12, seed=1) == list(range(12))


def test_limit_is_a_seeded_subset_spread_over_classes():
    class Base:
        targets = [i // 10 for i in range(50)]  # 5 classes x 10, in class order
        _image_files = [f"f{i}.png" for i in range(50)]  # torchvision's per-sample file list

        def __len__(self):
            return 50

        def __getitem__(self, i):
            return Image.new("RGB", (2, 2)), self.targets[i]

    ds = EvalDataset(name="toy", classes=list("abcde"), base=Base(), sample_ids=lambda: [f"s{i}" for i in range(50)])
    sub = ds.limited(10, seed=0)
    assert len(sub) == 10 and sorted(sub.labels()) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert [sub[i][1] for i in range(10)] == sub.labels()
    assert sub.identity() == [f"s{i}" for i in stratified_indices(Base.targets, 10, 0)]
    assert sub.base._image_files == [f"f{i}.png" for i in stratified_indices(Base.targets, 10, 0)]
    p = sub.provenance
    assert (p["limit"], p["limit_seed"], p["limit_per_class_min"], p["limit_per_class_max"]) == (10, 0, 2, 2)
    assert ds.limited(10, seed=0).provenance["limit_fingerprint"] == p["limit_fingerprint"]
    other = ds.limited(10, seed=1)
    assert other.identity() != sub.identity() and other.provenance["limit_fingerprint"] != p["limit_fingerprint"]
    assert ds.limited(None) is ds and ds.limited(50) is ds
    with pytest.raises(DatasetError, match="dataset.limit must be null or an integer >= 1, got 0"):
        ds.limited(0)


def test_eurosat_folders_get_curated_names_ids_and_the_mode_aware_loader(tmp_path):
    folders = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture", "PermanentCrop",
               "Residential", "River", "SeaLake"]  # fmt: skip
    for f in folders:
        (tmp_path / "eurosat" / "2750" / f).mkdir(parents=True)
        grey16 = Image.fromarray(np.full((4, 4), 257 * 100, dtype=np.uint16))
        grey16.save(tmp_path / "eurosat" / "2750" / f / f"{f}_1.png")
    ds = load_torchvision("EuroSAT", str(tmp_path))
    assert ds.class_ids == folders
    assert ds.classes[:3] == ["annual crop land", "forest", "brushland or shrubland"]
    assert ds.classes[-1] == "lake or sea" and ds.provenance["class_names"].startswith("CLIP's curated names")
    image, label, _ = ds[0]
    assert label == 0 and np.asarray(image)[0, 0].tolist() == [100, 100, 100]
    raw = load_torchvision("EuroSAT", str(tmp_path), names="raw")
    assert raw.classes[2] == "HerbaceousVegetation"
