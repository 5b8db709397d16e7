import json

import pytest

from descbench.descriptions import sources
from descbench.descriptions.types import DescriptionError

CLASSES = ["cat", "ladybird", "rocket"]
NATIVE = {
    "words": {
        "cat": ["whiskers", "a tail", "fur"],
        "ladybird": ["red", "black dots", "round"],
        "rocket": ["tall", "white", "fins"],
    },
    "sentences": {"cat": ["A cat has whiskers."], "ladybird": ["A ladybird is red."], "rocket": ["A rocket is tall."]},
}
WORLD = {"_target_": "descbench.descriptions.sources.world"}


def test_world_takes_first_num_desc_and_formats():
    out = sources.world(CLASSES, num_desc=2, native=NATIVE)
    assert out.descriptors[0] == ["whiskers", "a tail"]
    assert out.texts[0] == ["cat, which has whiskers", "cat, which is a tail"]
    detailed = sources.world(CLASSES, num_desc=2, detailed=True, native=NATIVE)
    assert detailed.texts[1] == ["A ladybird is red."]
    assert detailed.options["rule"].startswith("not applicable")


def test_options_without_effect_are_recorded():
    out = sources.classname(CLASSES, num_desc=3, detailed=True)
    assert out.options["detailed"] == "not applicable to source classname"
    assert out.options["num_desc"] == "not applicable to source classname"
    assert sources.waffle(CLASSES, base=WORLD, num_desc=2, native=NATIVE).options["detailed"] == (
        "not applicable to source waffle"
    )


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True])
def test_num_desc_must_be_positive_integer(bad):
    with pytest.raises(DescriptionError, match="num_desc must be an integer >= 1"):
        sources.classname(CLASSES, num_desc=bad)


def test_file_source_formats_falls_back_and_truncates(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(
        json.dumps({"cat": ["whiskers", "an eye", "fur"], "ladybird": [], "rocket": ["fins"], "extra": ["x"]})
    )
    out = sources.file(CLASSES, path=str(path), num_desc=2)
    assert out.texts == [["cat, which has whiskers", "cat, which is an eye"], ["ladybird"], ["rocket, which has fins"]]
    assert out.meta["fallback_to_classname"] == ["ladybird"]
    cupl = sources.file(CLASSES, path=str(path), num_desc=5, sentences=True)
    assert cupl.texts[0] == ["whiskers", "an eye", "fur"]


def test_file_source_errors_name_the_problem(tmp_path):
    missing = tmp_path / "m.json"
    missing.write_text(json.dumps({"cat": ["fur"]}))
    with pytest.raises(DescriptionError, match=r"misses 2 class\(es\) of the dataset: \['ladybird', 'rocket'\]"):
        sources.file(CLASSES, path=str(missing), num_desc=1)
    broken = tmp_path / "b.json"
    broken.write_text("{not json")
    with pytest.raises(DescriptionError, match=r"b.json is not valid JSON"):
        sources.file(CLASSES, path=str(broken), num_desc=1)
    wrong = tmp_path / "w.json"
    wrong.write_text(json.dumps({"cat": "fur"}))
    with pytest.raises(DescriptionError, match=r"w.json must map each class name to a list of strings"):
        sources.file(CLASSES, path=str(wrong), num_desc=1)
    with pytest.raises(DescriptionError, match="description file not found"):
        sources.file(CLASSES, path=str(tmp_path / "nope.json"), num_desc=1)


def test_swapped_is_a_seeded_derangement():
    out = sources.swapped(CLASSES, base=WORLD, num_desc=2, native=NATIVE, seed=1)
    donors = out.meta["taken_from"]
    assert all(c != d for c, d in donors.items()) and sorted(donors.values()) == sorted(CLASSES)
    for c, texts in zip(CLASSES, out.texts):
        expected = sources.world(CLASSES, num_desc=2, native=NATIVE).descriptors[CLASSES.index(donors[c])]
        assert out.descriptors[CLASSES.index(c)] == expected
        assert all(t.startswith(f"{c}, which") for t in texts)
    assert sources.swapped(CLASSES, base=WORLD, num_desc=2, native=NATIVE, seed=1).texts == out.texts


def test_shuffled_and_waffle_keep_counts():
    base = sources.world(CLASSES, num_desc=3, native=NATIVE)
    shuffled = sources.shuffled(CLASSES, base=WORLD, num_desc=3, native=NATIVE, seed=0)
    assert shuffled.counts == base.counts
    assert sorted(sum(shuffled.descriptors, [])) == sorted(sum(base.descriptors, []))
    waffle = sources.waffle(CLASSES, base=WORLD, num_desc=3, native=NATIVE, seed=0)
    assert waffle.counts == base.counts
    assert waffle.texts == sources.waffle(CLASSES, base=WORLD, num_desc=3, native=NATIVE, seed=0).texts
    assert waffle.texts != sources.waffle(CLASSES, base=WORLD, num_desc=3, native=NATIVE, seed=1).texts


def test_templates_source_uses_clip_ensemble():
    out = sources.templates(["cat"], num_desc=1)
    assert len(out.texts[0]) == 80 and "a photo of a cat." in out.texts[0]


def test_world_source_needs_native_descriptors():
    with pytest.raises(DescriptionError, match="describe=world needs a dataset that ships its own descriptors"):
        sources.world(CLASSES, num_desc=1, native=None)
