import ast
import json
import logging
from functools import partial
from pathlib import Path

import pytest
from hydra.utils import instantiate

from descbench.core.description_set import DescriptionError
from descbench.core.errors import ConfigError
from descbench.descriptions import controls, sources

CLASSES = ["cat", "ladybird", "rocket"]
NATIVE = {
    "words": {
        "cat": ["whiskers", "a tail", "fur"],
        "ladybird": ["red", "black dots", "round"],
        "rocket": ["tall", "white", "fins"],
    },
    "sentences": {"cat": ["A cat has whiskers."], "ladybird": ["A ladybird is red."], "rocket": ["A rocket is tall."]},
}
WORLD = partial(sources.world)


def test_world_takes_first_num_desc_and_formats():
    out = sources.world(CLASSES, num_desc=2, native=NATIVE)
    assert out.descriptors[0] == ["whiskers", "a tail"]
    assert out.texts[0] == ["cat, which has whiskers", "cat, which is a tail"]
    detailed = sources.world(CLASSES, num_desc=1, detailed=True, native=NATIVE)
    assert detailed.texts[1] == ["A ladybird is red."]
    assert detailed.options["rule"].startswith("not applicable")
    assert out.stats | {} == {
        "desc_min": 2,
        "desc_mean": 2.0,
        "desc_max": 2,
        "num_short": 0,
        "num_fallback": 0,
        "fallback_classes": [],
    }


def test_num_desc_above_what_the_source_has_is_one_line_unless_allowed():
    with pytest.raises(DescriptionError) as err:
        sources.world(CLASSES, num_desc=100, native=NATIVE)
    assert str(err.value) == (
        "num_desc=100 but describe=world has fewer descriptors for 3 class(es): 'cat' (3), 'ladybird' (3), "
        "'rocket' (3); set num_desc<=3, or describe.allow_fewer=true to use what each class has (counts are recorded)"
    )
    assert "\n" not in str(err.value)
    out = sources.world(CLASSES, num_desc=100, native=NATIVE, allow_fewer=True)
    assert out.counts == [3, 3, 3] and out.options["num_desc"] == 100 and out.options["allow_fewer"] is True
    assert out.stats["num_short"] == 3 and out.stats["desc_max"] == 3


def test_options_without_effect_are_recorded():
    out = sources.classname(CLASSES, num_desc=3, detailed=True)
    assert out.options["detailed"] == "not applicable to source classname"
    assert out.options["num_desc"] == "not applicable to source classname"
    assert controls.waffle(CLASSES, base=WORLD, num_desc=2, native=NATIVE).options["detailed"] == (
        "not applicable to source waffle"
    )


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True])
def test_num_desc_must_be_positive_integer(bad):
    with pytest.raises(DescriptionError, match="num_desc must be an integer >= 1"):
        sources.classname(CLASSES, num_desc=bad)


def test_sources_import_no_hydra():
    tree = ast.parse(Path(sources.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not [m for m in imported if m.split(".")[0] in ("hydra", "omegaconf")]


def test_file_source_formats_truncates_and_falls_back(tmp_path, caplog):
    path = tmp_path / "d.json"
    path.write_text(
        json.dumps({"cat": ["whiskers", "an eye", "fur"], "ladybird": [], "rocket": ["fins"], "extra": ["x"]})
    )
    with caplog.at_level(logging.WARNING):
        out = sources.file(CLASSES, path=str(path), num_desc=2, truncate=True, allow_fewer=True)
    assert out.texts == [["cat, which has whiskers", "cat, which is an eye"], ["ladybird"], ["rocket, which has fins"]]
    assert out.stats["fallback_classes"] == ["ladybird"] and out.stats["num_fallback"] == 1
    assert out.stats["num_short"] == 2 and (out.stats["desc_min"], out.stats["desc_max"]) == (0, 2)
    assert out.stats["desc_mean"] == 1.0
    assert "1 class(es) have no descriptor and fall back (empty=classname): ['ladybird']" in caplog.text
    cupl = sources.file(CLASSES, path=str(path), num_desc=5, sentences=True, truncate=False)
    assert cupl.texts[0] == ["whiskers", "an eye", "fur"] and cupl.options["num_desc"].startswith("not applicable")


def test_empty_lists_under_each_mode(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"cat": ["fur"], "ladybird": [], "rocket": []}))
    common = dict(path=str(path), num_desc=1, truncate=False)
    assert sources.file(CLASSES, **common).texts[1:] == [["ladybird"], ["rocket"]]
    menon = sources.file(CLASSES, empty="menon", **common)
    assert menon.texts[1:] == [["ladybird, which has "], ["rocket, which has "]]  # Menon's "" -> "which has "
    assert menon.options["empty"] == "menon"
    dotted = sources.file(CLASSES, empty="menon", template="{classname}, {descriptor}.", **common)
    assert dotted.texts[1] == ["ladybird, which has ."]
    with pytest.raises(DescriptionError) as err:
        sources.file(CLASSES, empty="error", **common)
    assert str(err.value) == (
        "describe=file: 2 class(es) have no descriptor: ['ladybird', 'rocket'] "
        "(describe.empty=error; classname or menon fall back to one text)"
    )
    with pytest.raises(ConfigError, match=r"describe.empty='nothing' is not one of classname, menon, error"):
        sources.file(CLASSES, empty="nothing", **common)


def test_file_source_errors_name_the_problem(tmp_path):
    missing = tmp_path / "m.json"
    missing.write_text(json.dumps({"cat": ["fur"]}))
    with pytest.raises(DescriptionError, match=r"no key for 2 class\(es\) of the dataset: \['ladybird', 'rocket'\]"):
        sources.file(CLASSES, path=str(missing), num_desc=1)
    broken = tmp_path / "b.json"
    broken.write_text("{not json")
    with pytest.raises(DescriptionError, match=r"b.json is not valid JSON: Expecting property name"):
        sources.file(CLASSES, path=str(broken), num_desc=1)
    wrong = tmp_path / "w.json"
    wrong.write_text(json.dumps({"cat": "fur"}))
    with pytest.raises(DescriptionError, match=r"w.json: the entry 'cat' is a str, not a list of strings"):
        sources.file(CLASSES, path=str(wrong), num_desc=1)
    with pytest.raises(DescriptionError, match="description file not found"):
        sources.file(CLASSES, path=str(tmp_path / "nope.json"), num_desc=1)
    for path in (None, "???", ""):
        with pytest.raises(DescriptionError, match=r"^describe=file needs a descriptor file: add describe.path="):
            sources.file(CLASSES, path=path, num_desc=1)


def test_swapped_is_a_seeded_derangement():
    out = controls.swapped(CLASSES, base=WORLD, num_desc=2, native=NATIVE, seed=1)
    donors = out.meta["taken_from"]
    assert all(i != d for i, d in enumerate(donors)) and sorted(donors) == [0, 1, 2]
    reference = sources.world(CLASSES, num_desc=2, native=NATIVE)
    for i, c in enumerate(CLASSES):
        assert out.descriptors[i] == reference.descriptors[donors[i]]
        assert all(t.startswith(f"{c}, which") for t in out.texts[i])
    assert controls.swapped(CLASSES, base=WORLD, num_desc=2, native=NATIVE, seed=1).texts == out.texts
    assert out.repetitions == [] and out.all_repetitions() == [out]


def test_shuffled_keeps_counts_and_pool():
    base = sources.world(CLASSES, num_desc=3, native=NATIVE)
    shuffled = controls.shuffled(CLASSES, base=WORLD, num_desc=3, native=NATIVE, seed=0)
    assert shuffled.counts == base.counts
    assert sorted(sum(shuffled.descriptors, [])) == sorted(sum(base.descriptors, []))


def test_waffle_shape_as_waffleclip():
    # names: "great white shark" (2 spaces, words 5/5/5), "tench" (0 spaces, 5), "ice cream" (1 space, 3/5)
    shape = controls.waffle_shape(["great white shark", "tench", "ice cream"])
    # words: round(mean(3, 1, 2)) = 2; length: round(mean(5, 5, 4)) = 5
    # groups: round(mean(2, 0, 1)) + 1 = 2; chars: ceil(mean(5, 5, 5)) = 5 -> 5 + 2 - 5 % 2 = 6 -> 3 per group
    assert shape == {"words": 2, "word_length": 5, "groups": 2, "group_chars": 3}
    # already a multiple of the groups: the reference still adds a full group (2 -> 2 + 2 - 0 = 4, 2 per group)
    assert controls.waffle_shape(["ab cd", "ef gh"]) == {"words": 2, "word_length": 2, "groups": 2, "group_chars": 2}


def test_waffle_shared_by_default_and_per_class_on_request():
    shared = controls.waffle(CLASSES, base=WORLD, num_desc=3, native=NATIVE, seed=0)
    assert shared.counts == [3, 3, 3]
    assert shared.descriptors[0] == shared.descriptors[1] == shared.descriptors[2]
    assert shared.texts[1] == [f"ladybird, {t.split(', ', 1)[1]}" for t in shared.texts[0]]
    shape = controls.waffle_shape(CLASSES)
    word, chars, word2 = shared.descriptors[0]
    assert len(word.split(" ")) == shape["words"] and all(len(w) <= shape["word_length"] for w in word.split(" "))
    groups = chars.split(", ")
    assert len(groups) == shape["groups"] and all(len(g) == shape["group_chars"] for g in groups)
    pool = set("".join(d for ds in NATIVE["words"].values() for d in ds[:3]).replace(" ", ""))
    assert set("".join(groups)) <= pool  # characters come from the base's descriptors, as WaffleCLIP's
    own = controls.waffle(CLASSES, base=WORLD, num_desc=3, native=NATIVE, seed=0, shared=False)
    assert own.descriptors[0] != own.descriptors[1] and own.options["shared"] is False
    words = controls.waffle(CLASSES, base=WORLD, num_desc=2, native=NATIVE, kind="words", count=4)
    assert words.counts == [4, 4, 4] and all("," not in d for d in words.descriptors[0])
    letters = controls.waffle(CLASSES, base=WORLD, num_desc=2, native=NATIVE, kind="chars")
    assert all(len(d.split(", ")) == shape["groups"] for d in letters.descriptors[0])


def test_repetitions_have_their_own_reproducible_seeds():
    run = controls.waffle(CLASSES, base=WORLD, num_desc=3, native=NATIVE, seed=5, reps=3)
    seeds = [r.options["seed"] for r in run.repetitions]
    assert seeds[0] == 5 and len(set(seeds)) == 3 and run.stats["rep_seeds"] == seeds
    assert seeds == [controls.rep_seed(5, r) for r in range(3)]
    assert [r.options["rep"] for r in run.repetitions] == [0, 1, 2]
    assert len({tuple(r.descriptors[0]) for r in run.repetitions}) == 3  # each repetition draws anew
    again = controls.waffle(CLASSES, base=WORLD, num_desc=3, native=NATIVE, seed=5, reps=3)
    assert [r.texts for r in again.repetitions] == [r.texts for r in run.repetitions]
    single = controls.waffle(CLASSES, base=WORLD, num_desc=3, native=NATIVE, seed=5)
    assert single.texts == run.repetitions[0].texts == run.texts and single.repetitions == []
    assert controls.rep_seed(5, 1) != controls.rep_seed(6, 0) and controls.rep_seed(5, 1) != controls.rep_seed(6, 1)
    shuffled = controls.shuffled(CLASSES, base=WORLD, num_desc=3, native=NATIVE, seed=0, reps=4)
    assert len(shuffled.repetitions) == 4 and shuffled.options["reps"] == 4
    with pytest.raises(DescriptionError, match="describe.reps must be an integer >= 1, got 0"):
        controls.swapped(CLASSES, base=WORLD, num_desc=1, native=NATIVE, reps=0)


def test_controls_get_their_base_from_the_config(compose_cfg):
    cfg = compose_cfg(["describe=waffle", "describe.reps=2", "num_desc=3"])
    out = instantiate(cfg.describe, classes=CLASSES, native=NATIVE, _convert_="all")
    assert out.source == "waffle" and out.options["base"] == "world" and len(out.repetitions) == 2
    assert out.counts == [3, 3, 3]
    swapped = instantiate(
        compose_cfg(["describe=swapped", "num_desc=2"]).describe, classes=CLASSES, native=NATIVE, _convert_="all"
    )
    assert swapped.source == "swapped" and swapped.options["base"] == "world"


def test_templates_source_uses_clip_ensemble():
    out = sources.templates(["cat"], num_desc=1)
    assert len(out.texts[0]) == 80 and "a photo of a cat." in out.texts[0]


def test_world_source_needs_native_descriptors():
    with pytest.raises(DescriptionError, match="describe=world needs a dataset that ships its own descriptors"):
        sources.world(CLASSES, num_desc=1, native=None)


def test_descriptions_json_keeps_classes_that_share_a_name():
    out = sources.classname(["missile", "missile", "cat"])
    saved = out.to_json()["classes"]
    assert [(c["index"], c["class"]) for c in saved] == [(0, "missile"), (1, "missile"), (2, "cat")]
