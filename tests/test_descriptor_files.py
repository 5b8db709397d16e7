"""Published descriptor files load as published: each key convention, nested files, aliases, clear errors.

The files are written by the tests in the conventions of Menon & Vondrick's seven descriptor files
(keys as published) and of the CuPL file; the dataset sides use the class names and ids our
loaders produce for the official layouts.
"""

from __future__ import annotations

import json
import logging

import pytest

from descbench.core.errors import DescriptionError
from descbench.datasets.folders import cub_class_name, imagenet_classes
from descbench.datasets.torchvision_sets import places365_class_name
from descbench.descriptions import sources
from descbench.descriptions.descriptor_files import match_keys, normalise_key, read_descriptor_file


def write(tmp_path, data, name="d.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def load(tmp_path, classes, data, class_ids=None, **kw):
    kw.setdefault("num_desc", 1)
    kw.setdefault("truncate", False)
    return sources.file(classes, path=write(tmp_path, data), class_ids=class_ids, **kw)


def matches(out):
    return [(m["class"], m["key"], m["how"]) for m in out.meta["key_matches"]]


def test_normalise_key():
    assert (
        normalise_key("Black-footed Albatross") == normalise_key("black_footed  albatross") == "black footed albatross"
    )
    assert normalise_key("apartment_building-outdoor") == "apartment building outdoor"
    assert normalise_key("Chuck-will Widow") == normalise_key(cub_class_name("022.Chuck_will_Widow"))


def test_cub_hyphenated_keys_match_the_cleaned_class_names(tmp_path, caplog):
    ids = ["001.Black_footed_Albatross", "022.Chuck_will_Widow", "017.Cardinal"]
    classes = [cub_class_name(i) for i in ids]
    assert classes == ["Black footed Albatross", "Chuck will Widow", "Cardinal"]
    data = {
        "Cardinal": ["It is a red bird."],
        "Chuck-will Widow": ["It is nocturnal."],
        "Black-footed Albatross": ["x"],
    }
    with caplog.at_level(logging.INFO):
        out = load(tmp_path, classes, data, class_ids=ids)
    assert out.descriptors == [["x"], ["It is nocturnal."], ["It is a red bird."]]  # class order, not file order
    assert matches(out) == [
        ("Black footed Albatross", "Black-footed Albatross", "normalised"),
        ("Chuck will Widow", "Chuck-will Widow", "normalised"),
    ]
    assert out.options["key_matching"] == "1 exact, 2 normalised, 0 alias"
    assert out.stats["key_matches_loose"] == [
        "Black footed Albatross <- Black-footed Albatross (normalised)",
        "Chuck will Widow <- Chuck-will Widow (normalised)",
    ]
    assert "'Black footed Albatross' <- 'Black-footed Albatross' (normalised)" in caplog.text
    # as Menon's code: the file's key is the class name in the texts
    keyed = load(tmp_path, classes, data, class_ids=ids, names="key")
    assert keyed.texts[0] == ["Black-footed Albatross, which has x"] and keyed.classes == classes


def test_pets_keys_differ_by_case(tmp_path):
    # torchvision's raw names are title case; Menon's file keeps the dog breeds in lower case
    classes = ["Abyssinian", "American Bulldog", "Staffordshire Bull Terrier"]
    data = {"Abyssinian": ["a"], "american bulldog": ["b"], "staffordshire bull terrier": ["c"]}
    out = load(tmp_path, classes, data)
    assert [d[0] for d in out.descriptors] == ["a", "b", "c"] and out.stats["key_matches_normalised"] == 2


def test_eurosat_curated_names_match_exactly(tmp_path):
    from descbench.datasets.base import read_curated_names

    table = read_curated_names("eurosat")
    ids = ["AnnualCrop", "HerbaceousVegetation", "SeaLake"]
    classes = [table[i] for i in ids]
    assert classes == ["annual crop land", "brushland or shrubland", "lake or sea"]
    data = {"annual crop land": ["fields"], "brushland or shrubland": ["bushes"], "lake or sea": ["water"]}
    out = load(tmp_path, classes, data, class_ids=ids)
    assert out.options["key_matching"] == "3 exact, 0 normalised, 0 alias" and out.meta["key_matches"] == []


def test_places365_underscore_keys_and_aliases(tmp_path):
    ids = ["/a/airplane_cabin", "/a/apartment_building/outdoor", "/a/arcade", "/l/lock_chamber", "/a/alley"]
    classes = [places365_class_name(i) for i in ids]
    assert classes == ["airplane cabin", "apartment building outdoor", "arcade", "lock chamber", "alley"]
    data = {
        "airplane_cabin": ["seats"],
        "apartment_building-outdoor": ["windows"],
        "arcade (passageway)": ["arches"],
        "lock_chamber (canal)": ["gates"],
        "alley": ["narrow"],
        "amphitheater": ["steps"],  # a key no class uses is fine
    }
    out = load(tmp_path, classes, data, class_ids=ids)
    assert [d[0] for d in out.descriptors] == ["seats", "windows", "arches", "gates", "narrow"]
    assert matches(out) == [
        ("airplane cabin", "airplane_cabin", "normalised"),
        ("apartment building outdoor", "apartment_building-outdoor", "normalised"),
        ("arcade", "arcade (passageway)", "alias"),
        ("lock chamber", "lock_chamber (canal)", "alias"),
    ]
    assert out.meta["unused_keys"] == 1
    # without class ids the aliases do not apply: the error names the two classes
    with pytest.raises(
        DescriptionError, match=r"no key for 2 class\(es\) of the dataset: \['arcade', 'lock chamber'\]"
    ):
        load(tmp_path, classes, data)


def test_imagenet_aliases_are_tied_to_wnids(tmp_path):
    wnids, names = imagenet_classes()
    assert len(wnids) == 1000 and names.count("missile") == 2 and names.count("sunglasses") == 2
    picked = ["n01631663", "n03710637", "n03773504", "n04008634", "n04355933", "n04356056", "n01440764"]
    classes = [names[wnids.index(w)] for w in picked]
    assert classes == ["newt", "tights", "missile", "missile", "sunglasses", "sunglasses", "tench"]
    # Menon & Vondrick's keys: ImageNet's own first synonyms where CLIP's curated names differ
    data = {
        "eft": ["e"],
        "maillot": ["m"],
        "missile": ["rocket"],
        "projectile": ["shell"],
        "sunglass": ["lens"],
        "sunglasses": ["shades"],
        "tench": ["fish"],
    }
    out = load(tmp_path, classes, data, class_ids=picked)
    assert [d[0] for d in out.descriptors] == ["e", "m", "rocket", "shell", "lens", "shades", "fish"]
    assert sorted((m["index"], m["key"]) for m in out.meta["key_matches"]) == [
        (0, "eft"),
        (1, "maillot"),
        (3, "projectile"),
        (4, "sunglass"),
    ]
    assert out.options["key_matching"] == "3 exact, 0 normalised, 4 alias"
    assert out.stats["keys_shared_by_same_name_classes"] == []


def test_cupl_nested_file_with_key_and_shared_names(tmp_path, caplog):
    wnids, names = imagenet_classes()
    picked = ["n03773504", "n04008634", "n01440764"]
    classes = [names[wnids.index(w)] for w in picked]
    cupl = {"imagenet1k": {"tench": ["A tench is a fish."], "missile": ["A missile is long."]}}
    path = write(tmp_path, cupl)
    with pytest.raises(DescriptionError) as err:
        sources.file(classes, path=path, num_desc=1, sentences=True, truncate=False, class_ids=picked)
    assert str(err.value) == (
        f"description file {path} nests its classes under top-level keys ['imagenet1k']: "
        "set describe.key to one of them"
    )
    with caplog.at_level(logging.WARNING):
        out = sources.file(
            classes, path=path, key="imagenet1k", num_desc=1, sentences=True, truncate=False, class_ids=picked
        )
    # CuPL keys by CLIP's names: both "missile" classes get the one entry, reported, as in CuPL's own evaluation
    assert out.texts == [["A missile is long."], ["A missile is long."], ["A tench is a fish."]]
    assert out.stats["keys_shared_by_same_name_classes"] == ["missile"] and out.options["key"] == "imagenet1k"
    assert "classes sharing one name get the same descriptors: 'missile' -> classes [0, 1]" in caplog.text
    with pytest.raises(
        DescriptionError, match=r"has no top-level key 'imagenet' \(describe.key\); its keys: \['imagenet1k'\]"
    ):
        sources.file(classes, path=path, key="imagenet", num_desc=1, truncate=False)


def test_unmatched_and_ambiguous_keys_are_one_line_errors(tmp_path):
    with pytest.raises(DescriptionError) as err:
        load(tmp_path, ["Black footed Albatross", "american bulldog"], {"Black-footed Albatross": ["x"]})
    message = str(err.value)
    assert "no key for 1 class(es) of the dataset: ['american bulldog']" in message and "\n" not in message
    # one class, two keys that both normalise to its name
    with pytest.raises(DescriptionError, match=r"'Gray Catbird' matches keys \['Gray-Catbird', 'gray catbird'\]"):
        load(tmp_path, ["Gray Catbird"], {"Gray-Catbird": ["a"], "gray catbird": ["b"]})
    # one key, two differently named classes
    with pytest.raises(DescriptionError, match=r"key 'Sea Lake' matches classes \['sea lake', 'Sea-Lake'\]"):
        load(tmp_path, ["sea lake", "Sea-Lake"], {"Sea Lake": ["water"]})


def test_class_order_never_from_the_file(tmp_path):
    data = {"rocket": ["tall"], "cat": ["fur"], "ladybird": ["dots"]}
    out = load(tmp_path, ["cat", "ladybird", "rocket"], data)
    assert out.descriptors == [["fur"], ["dots"], ["tall"]]


def test_non_utf8_file_is_one_line_without_its_bytes(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"caf\xe9": ["cr\xe8me"]}'.encode("latin-1") + b"\xff" * 4096)
    with pytest.raises(DescriptionError) as err:
        read_descriptor_file(path)
    assert str(err.value) == (
        f"description file {path} is not UTF-8 text (undecodable byte at offset 5); save it as UTF-8"
    )


def test_match_keys_with_an_explicit_alias_table():
    found = match_keys(["newt"], ["eft"], class_ids=["n1"], aliases={"n1": ["EFT"]})
    assert [(m.key, m.how) for m in found] == [("eft", "alias")]


def test_real_cupl_file_loads_on_imagenet():
    resources = pytest.importorskip("importlib.resources")
    pytest.importorskip("clip_benchmark")
    text = resources.files("clip_benchmark.datasets").joinpath("cupl_prompts.json").read_text(encoding="utf-8")
    keys = list(json.loads(text)["imagenet1k"])
    wnids, names = imagenet_classes()
    found = match_keys(names, keys, class_ids=wnids)
    assert len(found) == 1000 and all(m.how == "exact" for m in found)
    shared = sorted({m.key for m in found if sum(o.key == m.key for o in found) > 1})
    assert shared == ["missile", "sunglasses"]
