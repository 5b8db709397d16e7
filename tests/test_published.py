"""The published-number join: which runs match an entry of published.yaml, ours, and Δ."""

from __future__ import annotations

import json

import pytest

from descbench.core.errors import ConfigError
from descbench.core.published import (
    compare_published,
    load_published,
    match_published,
    published_fields,
    published_lines,
)
from descbench.report import write_report

MENON = "Menon & Vondrick, Visual Classification via Description from Large Language Models, ICLR 2023"


def imagenet_run(**changes) -> dict:
    """A ViT-B/32 ImageNet run with Menon's published descriptor file, as results.json writes it."""
    results = {
        "task": "classify",
        "top1": 0.6208,
        "top1.ci_low": 0.6165,
        "top1.ci_high": 0.6250,
        "dataset": "imagenet",
        "split": "val",
        "backbone": "ViT-B-32",
        "pretrained": "openai",
        "weights": "pretrained",
        "describe.source": "file",
        "describe.rule": "faithful",
        "describe.names": "key",
        "describe.empty": "menon",
        "describe.truncate": False,
        "describe.sentences": False,
        "describe.template": "{classname}, {descriptor}.",
        "describe.detailed": False,
        "aggregation": "score_mean",
        "seed": 0,
    }
    return {**results, **changes}


def red_circle_run(dataset: str = "refcoco(unc)") -> dict:
    return {
        "task": "rec",
        "acc": 0.50,
        "acc.val": 0.512,
        "acc.testA": 0.60,
        "acc.testB": 0.41,
        "dataset": dataset,
        "splits": ["val", "testA", "testB"],
        "backbone": "ViT-L-14-336",
        "pretrained": "openai",
        "backbones": ["ViT-L-14-336 [pretrained]", "RN50x16 [pretrained]"],
        "visual_prompt": ["blur_outside", "circle", "grayscale_outside"],  # an ensemble: order does not matter
        "visual_prompt.blur_outside.region": "ellipse",
        "visual_prompt.blur_outside.sigma": 100.0,
        "visual_prompt.circle.colour": [255, 0, 0],
        "visual_prompt.circle.thickness": 2.0,
        "visual_prompt.grayscale_outside.region": "ellipse",
        "proposals": "detector",
        "relations": "none",
        "subtract": True,
        "negatives": 500,
        "lowercase": True,
        "image_processing": "squash",
        "template": "a photo of {expression}",
        "seed": 0,
    }


def test_the_shipped_file_holds_the_papers_numbers():
    entries = load_published()
    values = {(e["source"].split(",")[0], str(e.get("dataset")), e.get("split"), e["value"]) for e in entries}
    assert ("Menon & Vondrick", "imagenet", "val", 58.46) in values
    assert ("Menon & Vondrick", "imagenet", "val", 62.97) in values
    study = sorted(e["value"] for e in entries if e["source"].startswith("The prompt-option study"))
    assert study == [59.07, 62.35]  # the study notes give only |D|=1 and |D|=7
    red = [(e["dataset"][0], e["split"], e["value"]) for e in entries if e["source"].startswith("Shtedritski")]
    assert red == [
        ("refcoco", "val", 49.8),
        ("refcoco", "testA", 58.6),
        ("refcoco", "testB", 39.9),
        ("refcoco+", "val", 55.3),
        ("refcoco+", "testA", 63.9),
        ("refcoco+", "testB", 45.4),
        ("refcocog", "val", 59.4),
        ("refcocog", "test", 58.9),
    ]
    fgvp = [(e["dataset"][0], e["split"], e["value"]) for e in entries if e["source"].startswith("FGVP")]
    assert fgvp == [("refcoco", "val", 51.4), ("refcoco+", "val", 56.3), ("refcocog", "val", 58.3)]


def test_menon_setting_matches_and_delta_is_ours_minus_published():
    [match] = match_published(imagenet_run())
    assert (match["source"], match["key"], match["value"]) == (MENON, "top1", 62.97)
    assert match["ours"] == pytest.approx(62.08) and match["delta"] == pytest.approx(62.08 - 62.97)
    assert published_fields(imagenet_run()) == {
        "top1.published": 62.97,
        "top1.published.delta": pytest.approx(-0.89),
        "top1.published.source": MENON,
    }
    [baseline] = match_published(
        imagenet_run(**{"describe.source": "classname", "describe.template": "{classname}", "top1": 0.5846})
    )
    assert baseline["value"] == 58.46 and baseline["delta"] == pytest.approx(0.0)


@pytest.mark.parametrize(
    "change",
    [
        {"describe.rule": "corrected"},  # a setting key of the entry
        {"backbone": "ViT-L-14"},
        {"pretrained": "laion2b_s34b_b79k"},
        {"dataset": "shapes"},
        {"split": "train"},
        {"task": "rec"},
    ],
)
def test_a_run_that_differs_in_a_required_field_does_not_match(change):
    assert match_published(imagenet_run(**change)) == []


RED_CIRCLE_SETTINGS = [
    ("proposals", "gt", "detector"),
    ("relations", "rules", "none"),
    ("visual_prompt.blur_outside.sigma", 3.0, "100"),
    ("visual_prompt.blur_outside.region", "box", "ellipse"),
    ("visual_prompt.grayscale_outside.region", "box", "ellipse"),
    ("visual_prompt.circle.thickness", 4.0, "2"),
    ("visual_prompt.circle.colour", [0, 0, 255], "255+0+0"),
    ("subtract", False, "true"),
    ("negatives", 10, "500"),
    ("lowercase", False, "true"),
    ("image_processing", "crop", "squash"),
    ("template", "{expression}", "a photo of {expression}"),
    ("pretrained", "laion2b_s32b_b82k", "openai"),
]


@pytest.mark.parametrize("key, ours, theirs", RED_CIRCLE_SETTINGS)
def test_each_differing_setting_is_named_instead_of_a_delta(key, ours, theirs):
    run = {**red_circle_run(), key: ours}
    comparisons = compare_published(run)
    assert [c["key"] for c in comparisons] == ["acc.val", "acc.testA", "acc.testB"]  # the closest entry per key
    assert all(c["delta"] is None and not c["comparable"] for c in comparisons)
    expected = f"not comparable: {key} = {ours if not isinstance(ours, list) else '+'.join(map(str, ours))}"
    expected = expected.replace("= False", "= false").replace("= 3.0", "= 3").replace("= 4.0", "= 4")
    assert comparisons[0]["verdict"] == f"{expected} vs {theirs}"
    fields = published_fields(run)
    assert fields["acc.val.published"] == 49.8 and fields["acc.val.published.delta"] == comparisons[0]["verdict"]
    assert not any(isinstance(v, float) for k, v in fields.items() if k.endswith(".delta"))


def test_random_weights_a_subset_and_an_unrecorded_setting_are_never_comparable():
    random = {**red_circle_run(), "backbones": ["ViT-L-14-336 [pretrained]", "RN50x16 [random (seed 0)]"]}
    assert compare_published(random)[0]["verdict"] == "not comparable: weights = random (seed 0) vs pretrained"
    gold_random = {**random, "proposals": "gt", "weights": "random (seed 0)"}
    assert compare_published(gold_random)[0]["verdict"] == (
        "not comparable: weights = random (seed 0) vs pretrained; proposals = gt vs detector"
    )
    subset = imagenet_run(**{"dataset.limit": 96})
    assert compare_published(subset)[0]["verdict"] == "not comparable: dataset.limit = 96 vs the whole split"
    unrecorded = {k: v for k, v in red_circle_run().items() if k != "proposals"}
    assert compare_published(unrecorded)[0]["verdict"] == "not comparable: proposals = not recorded vs detector"
    rows = published_lines({**imagenet_run(), **published_fields(subset)})
    assert rows == [("published top1", f"62.97 % (not comparable: dataset.limit = 96 vs the whole split; {MENON})")]
    rows = published_lines({**imagenet_run(), **published_fields(imagenet_run())})
    assert rows == [("published top1", f"62.97 % (Δ -0.89; {MENON})")]


def test_study_entries_match_any_backbone_at_their_num_desc():
    run = imagenet_run(
        **{
            "describe.source": "llm",
            "describe.num_desc": 7,
            "describe.instruction": "none",
            "describe.num_examples": 2,
            "describe.bank": "study",
            "describe.backend": "openai",
            "describe.model": "text-davinci-003",
            "backbone": "RN50",
        }
    )
    [match] = match_published(run)
    assert match["value"] == 62.35 and "backbone not stated" in match["caveat"]
    assert compare_published({**run, "describe.num_desc": 4}) == []  # no published number at |D| = 4
    assert compare_published({**run, "describe.detailed": True}) == []
    [other] = compare_published({**run, "describe.model": "SmolLM2-135M-Instruct"})
    assert other["delta"] is None and other["verdict"] == (
        "not comparable: describe.model = SmolLM2-135M-Instruct vs text-davinci-003 or text-davinci-002 or "
        "text-davinci-001 or davinci"
    )


def test_red_circle_ensemble_matches_per_split_and_the_reproduction_too():
    matches = match_published(red_circle_run())
    assert [(m["key"], m["value"], m["source"][:4]) for m in matches] == [
        ("acc.val", 49.8, "Shte"),
        ("acc.testA", 58.6, "Shte"),
        ("acc.testB", 39.9, "Shte"),
        ("acc.val", 51.4, "FGVP"),
    ]
    assert matches[0]["delta"] == pytest.approx(51.2 - 49.8)
    fields = published_fields(red_circle_run())
    assert fields["acc.val.published"] == 49.8  # the paper before its reproduction
    assert fields["acc.testB.published.delta"] == pytest.approx(41.0 - 39.9)
    assert [m["value"] for m in match_published(red_circle_run("refcocog(umd)"))] == [59.4, 58.3]
    single = {**red_circle_run(), "backbones": ["ViT-L-14-336 [pretrained]"]}
    assert match_published(single) == []  # one backbone is not the published ensemble
    assert compare_published(single)[0]["verdict"] == (
        "not comparable: backbone = ViT-L-14-336 vs ViT-L-14-336+RN50x16"
    )
    assert match_published({**red_circle_run(), "visual_prompt": "circle"}) == []


def test_report_shows_published_and_delta_beside_ours(tmp_path):
    for name, results in {"menon": imagenet_run(), "world": imagenet_run(dataset="shapes")}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results))
    write_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    section = md.split("## Published numbers", 1)[1].split("\n## ", 1)[0]
    assert "| run dir | measure | ours (%) | published (%) | Δ (pp) | source | caveat |" in section
    assert f"| menon | top1 | 62.08 | 62.97 | -0.89 | {MENON} |" in section
    assert "| world |" not in section


def test_report_says_not_comparable_instead_of_a_delta(tmp_path):
    (tmp_path / "gold").mkdir()
    (tmp_path / "gold" / "results.json").write_text(json.dumps({**red_circle_run(), "proposals": "gt"}))
    write_report(tmp_path)
    section = (tmp_path / "report.md").read_text().split("## Published numbers", 1)[1].split("\n## ", 1)[0]
    assert "| gold | acc.val | 51.20 | 49.8 | not comparable: proposals = gt vs detector | Shtedritski" in section


def test_a_malformed_entry_is_a_one_line_error(tmp_path):
    path = tmp_path / "published.yaml"
    path.write_text("entries:\n  - {source: x, metric: top1}\n")
    with pytest.raises(ConfigError) as err:
        load_published(path)
    assert str(err.value) == f"{path}: entry #0 lacks value (every entry needs ('source', 'metric', 'value'))"
    path.write_text("entries:\n  - {source: x, metric: accuracy, value: 1}\n")
    with pytest.raises(ConfigError, match="metric 'accuracy', not a key of descbench.core.measures"):
        load_published(path)
