"""``descbench.report`` on keypoint and marking-bias runs: tables, plotted series, mixed dirs, missing jobs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from test_report import _write_job, assert_png, classification_result, rec_result, write_multirun_yaml

from descbench.core.errors import ReportError
from descbench.report import write_report
from descbench.tasks.keypoints.report import keypoint_columns, keypoint_mode
from descbench.tasks.marking_bias.report import bias_rows

STD_2 = statistics.stdev([0.75, 0.65]) * 100  # 7.07: two seeds 10 points apart


def interval(key: str, low: float, high: float, method: str = "wilson") -> dict:
    return {f"{key}.ci_low": low, f"{key}.ci_high": high, f"{key}.ci_method": method}


def keypoint_result(prompt: str, seed: int, pck: dict[str, float], intervals: bool = False, **options) -> dict:
    """A localisation run over the parts ``beak`` and ``left wing``; ``pck`` holds ``all``, ``beak``, ``left wing``."""
    result = {
        "task": "keypoints",
        "mode": "localization",
        "pck": pck["all"],
        "chance_pck": 0.25,
        "pck_alpha": 0.1,
        "pck_reference": "max(box w, h)",
        "num_keypoints": 40,
        "pck.beak": pck["beak"],
        "chance_pck.beak": 0.5,
        "pck.left wing": pck["left wing"],
        "chance_pck.left wing": 0.2,
        "dataset": "birds",
        "num_instances": 20,
        "num_images": 20,
        "backbone": "clip-b",
        "visual_prompt": prompt,
        "radius": 0.25,
        "radius_unit": "box",
        "image_processing": "squash",
        "seed": seed,
        "overrides": f"task=keypoints,visual_prompt={prompt},seed={seed}",
        **options,
    }
    if prompt == "circle":
        result["visual_prompt.circle.thickness"] = 2.0
    if intervals:
        for key, value in (("pck", pck["all"]), ("pck.beak", pck["beak"]), ("pck.left wing", pck["left wing"])):
            result.update(interval(key, value - 0.1, value + 0.1))
    return result


def naming_result() -> dict:
    """A naming run over the parts ``beak``, ``left wing``, ``right wing`` (no per-part chance, as the jobs write)."""
    result = keypoint_result("circle", 0, {"all": 0, "beak": 0, "left wing": 0})
    for key in [k for k in result if k.startswith(("pck", "chance_pck"))]:
        del result[key]
    result.update(
        {
            "mode": "naming",
            "acc": 0.6,
            "acc_lr_merged": 0.8,
            "chance_acc": 0.25,
            "chance_acc_lr_merged": 0.4,
            "acc.beak": 1.0,
            "acc.left wing": 0.3,
            "acc.right wing": 0.5,
            **interval("acc", 0.5, 0.7),
            **interval("acc_lr_merged", 0.7, 0.9),
        }
    )
    return result


KEYPOINT_RUNS = {  # job dir -> results: two seeds of circle, one crop (with intervals), one circle on pad
    "0": keypoint_result("circle", 0, {"all": 0.75, "beak": 1.0, "left wing": 0.5}),
    "1": keypoint_result("circle", 1, {"all": 0.65, "beak": 0.9, "left wing": 0.4}),
    "2": keypoint_result("crop", 0, {"all": 0.5, "beak": 0.6, "left wing": 0.4}, intervals=True),
    "3": keypoint_result("circle", 0, {"all": 0.3, "beak": 0.2, "left wing": 0.4}, image_processing="pad"),
}


def write_runs(root: Path, runs: dict[str, dict]) -> Path:
    for name, result in runs.items():
        (root / name).mkdir(parents=True)
        (root / name / "results.json").write_text(json.dumps(result, indent=2))
    return root


def test_keypoint_table_rows_per_option_value_columns_per_part(tmp_path):
    root = write_runs(tmp_path / "kp", KEYPOINT_RUNS)
    report = write_report(root)
    assert report.warnings == []  # pck_alpha, radius: options that do not vary
    figure = report.data["keypoints_pck"]
    assert figure["file"] == "keypoints_pck.png" and figure["ylabel"] == "PCK@0.1 (%)"
    [panel] = figure["panels"]
    assert [c["name"] for c in panel["columns"]] == ["all parts", "beak", "left wing"]
    assert [c["key"] for c in panel["columns"]] == ["pck", "pck.beak", "pck.left wing"]
    assert list(panel["series"]) == [
        "visual_prompt=circle, image_processing=pad",
        "visual_prompt=circle, image_processing=squash",
        "visual_prompt=crop, image_processing=squash",
    ]
    circle = panel["series"]["visual_prompt=circle, image_processing=squash"]
    assert circle["pck"] == pytest.approx([70.0, STD_2, 2])
    assert circle["pck.beak"] == pytest.approx([95.0, STD_2, 2])
    assert circle["pck.left wing"] == pytest.approx([45.0, STD_2, 2])
    # only the one-run cell with recorded intervals has them; chance levels per column, in %
    assert panel["intervals"] == {
        "visual_prompt=crop, image_processing=squash": {
            "pck": pytest.approx([40.0, 60.0]),
            "pck.beak": pytest.approx([50.0, 70.0]),
            "pck.left wing": pytest.approx([30.0, 50.0]),
        }
    }
    assert panel["chance"]["visual_prompt=crop, image_processing=squash"] == pytest.approx(
        {"pck": 25.0, "pck.beak": 50.0, "pck.left wing": 20.0}
    )
    assert_png(root / "keypoints_pck.png")
    assert not (root / "keypoints_naming.png").exists() and not (root / "marking_bias.png").exists()

    md = (root / "report.md").read_text()
    assert "## Keypoints" in md and "![" in md and "](keypoints_pck.png)" in md
    assert "| visual_prompt, image_processing | runs | all parts | chance | beak | left wing |" in md
    assert (
        "| visual_prompt=circle, image_processing=pad | 1 | 30.00 ± 0.00 | 25.00 | 20.00 ± 0.00 | 40.00 ± 0.00 |" in md
    )
    assert (
        "| visual_prompt=circle, image_processing=squash | 2 | 70.00 ± 7.07 | 25.00 | 95.00 ± 7.07 | 45.00 ± 7.07 |"
        in md
    )
    row = "| visual_prompt=crop, image_processing=squash | 1 | 50.00 [40.00, 60.00] | 25.00 | 60.00 [50.00, 70.00] |"
    assert row + " 40.00 [30.00, 50.00] |" in md
    assert "| chance level |  |  |  | 50.00 | 20.00 |" in md
    # the table of all runs: mode, the rate with its interval, the chance level
    assert (
        "| 2 | task=keypoints,visual_prompt=crop,seed=0 | 0 | localization | pck | 50.00 [40.00, 60.00] | 25.00 |" in md
    )


def test_keypoint_naming_has_accuracy_left_right_merged_and_chance(tmp_path):
    root = write_runs(tmp_path / "kn", {"0": naming_result()})
    report = write_report(root)
    assert "keypoints_pck" not in report.data
    figure = report.data["keypoints_naming"]
    [panel] = figure["panels"]
    assert [(c["name"], c["key"], c["part"]) for c in panel["columns"]] == [
        ("all parts", "acc", False),
        ("left/right merged", "acc_lr_merged", False),
        ("beak", "acc.beak", True),
        ("left wing", "acc.left wing", True),
        ("right wing", "acc.right wing", True),
    ]
    assert panel["series"] == {
        "visual_prompt=circle": {
            "acc": pytest.approx([60.0, 0.0, 1]),
            "acc_lr_merged": pytest.approx([80.0, 0.0, 1]),
            "acc.beak": pytest.approx([100.0, 0.0, 1]),
            "acc.left wing": pytest.approx([30.0, 0.0, 1]),
            "acc.right wing": pytest.approx([50.0, 0.0, 1]),
        }
    }
    assert panel["chance"] == {"visual_prompt=circle": pytest.approx({"acc": 25.0, "acc_lr_merged": 40.0})}
    assert_png(root / "keypoints_naming.png")
    md = (root / "report.md").read_text()
    header = "| visual_prompt | runs | all parts | chance | left/right merged | chance (left/right merged) |"
    assert header + " beak | left wing | right wing |" in md
    row = "| visual_prompt=circle | 1 | 60.00 [50.00, 70.00] | 25.00 | 80.00 [70.00, 90.00] | 40.00 |"
    assert row + " 100.00 ± 0.00 | 30.00 ± 0.00 | 50.00 ± 0.00 |" in md
    assert "| chance level |" not in md  # naming writes no per-part chance


def test_keypoint_columns_and_mode_read_from_the_registry():
    """Parts are measured ``pck.<part>`` keys; companions and chance keys are not parts; mode from the run."""
    result = KEYPOINT_RUNS["2"]
    mode = keypoint_mode(result)
    assert mode.name == "localization"
    assert [c["name"] for c in keypoint_columns([result], mode)] == ["all parts", "beak", "left wing"]
    assert keypoint_mode({"acc": 0.5}).name == "naming" and keypoint_mode({"pck": 0.5}).name == "localization"


# --------------------------------------------------------------------------- marking bias

PHRASES = ["doctor (neutral): a photo of a doctor", "teacher (neutral): a photo of a teacher",
           "thief (negative): a photo of a thief"]  # fmt: skip
# name -> (unmarked, circled, control, circled - unmarked, circled - control)
ASTRONAUT = {
    "doctor": (0.30, 0.25, 0.28, -0.05, -0.03),
    "teacher": (0.30, 0.30, 0.30, 0.0, 0.0),
    "thief": (0.40, 0.45, 0.42, 0.05, 0.03),
    "neutral": (0.60, 0.55, 0.58, -0.05, -0.03),
    "negative": (0.40, 0.45, 0.42, 0.05, 0.03),
}
MEASURES = ("unmarked.prob", "circled.prob", "control.prob", "shift_circled_unmarked", "shift_circled_control")


def bias_result(dataset: str, seed: int, table: dict[str, tuple], intervals: bool, num_images: int) -> dict:
    result = {"task": "marking_bias", "num_images": num_images, "bias_confidence": 0.95, "bias_resamples": 10000}
    for name, values in table.items():
        for measure, value in zip(MEASURES, values):
            key = f"bias.{name}.{measure}"
            result[key] = value
            if intervals:  # probabilities ± 0.01, shifts ± 0.02
                half = 0.02 if measure.startswith("shift") else 0.01
                result.update(interval(key, value - half, value + half, "bootstrap"))
    result.update(
        {
            "dataset": dataset,
            "num_images_skipped": 0,
            "backbone": "clip-b",
            "phrases": PHRASES,
            "conditions": ["unmarked", "circled", "control"],
            "visual_prompt": "circle(colour=[255, 0, 0],thickness=2.0)",
            "control_seed": 0,
            "seed": seed,
            "overrides": f"task=marking_bias,seed={seed}",
        }
    )
    return result


def shifted(delta: float) -> dict[str, tuple]:
    """The astronaut table with the thief's and the negative kind's circled - unmarked shift moved by ``delta``."""
    table = dict(ASTRONAUT)
    for name in ("thief", "negative"):
        values = list(table[name])
        values[3] += delta
        table[name] = tuple(values)
    return table


BIAS_RUNS = {
    "0": bias_result("astronaut_persons", 0, ASTRONAUT, intervals=True, num_images=10),
    "1": bias_result("coco_persons", 0, shifted(-0.01), intervals=False, num_images=20),
    "2": bias_result("coco_persons", 1, shifted(0.01), intervals=False, num_images=20),
}


def test_bias_rows_phrases_then_kinds():
    rows = bias_rows([BIAS_RUNS["0"]])
    assert [(r["name"], r["kind"], r["aggregate"]) for r in rows] == [
        ("doctor", "neutral", False),
        ("teacher", "neutral", False),
        ("thief", "negative", False),
        ("neutral", "neutral", True),
        ("negative", "negative", True),
    ]
    # without the recorded phrase list, kinds cannot be told from phrases: every name is a phrase
    unlisted = {k: v for k, v in BIAS_RUNS["0"].items() if k != "phrases"}
    assert [(r["name"], r["kind"], r["aggregate"]) for r in bias_rows([unlisted])][-1] == ("negative", None, False)


def test_bias_chart_series_and_table(tmp_path):
    root = write_runs(tmp_path / "bias", BIAS_RUNS)
    report = write_report(root)
    assert report.warnings == []
    figure = report.data["marking_bias"]
    assert figure["file"] == "marking_bias.png"
    astronaut, coco = figure["panels"]
    assert astronaut["dataset"] == "astronaut_persons" and coco["dataset"] == "coco_persons"
    assert astronaut["conditions"] == ["unmarked", "circled", "control"]
    assert astronaut["shifts"] == ["shift_circled_unmarked", "shift_circled_control"]
    assert [r["name"] for r in astronaut["rows"]] == ["doctor", "teacher", "thief", "neutral", "negative"]
    assert astronaut["num_images"] == [10] and coco["num_images"] == [20, 20]
    # the plotted series: [mean, std, n] of each shift; one run: its bootstrap interval as the error bar
    assert astronaut["series"]["thief"]["shift_circled_unmarked"] == pytest.approx([0.05, 0.0, 1])
    assert astronaut["series"]["doctor"]["shift_circled_control"] == pytest.approx([-0.03, 0.0, 1])
    assert astronaut["intervals"]["thief"]["shift_circled_unmarked"] == pytest.approx([0.03, 0.07])
    assert astronaut["intervals"]["negative"]["circled"] == pytest.approx([0.44, 0.46])
    # two seeds on coco: mean ± std, no interval drawn
    assert coco["series"]["thief"]["shift_circled_unmarked"] == pytest.approx([0.05, statistics.stdev([0.04, 0.06]), 2])
    assert coco["series"]["doctor"]["unmarked"] == pytest.approx([0.30, 0.0, 2])
    assert coco["intervals"] == {}
    assert_png(root / "marking_bias.png")

    md = (root / "report.md").read_text()
    assert "## Marking bias" in md and "measures a model's bias, not people" in md
    assert md.count("](marking_bias.png)") == 1
    header = "| phrase | kind | unmarked | circled | control | circled − unmarked | circled − control | images | runs |"
    assert md.count(header) == 2
    row = "| thief | negative | 0.4000 [0.3900, 0.4100] | 0.4500 [0.4400, 0.4600] | 0.4200 [0.4100, 0.4300] |"
    assert row + " +0.0500 [+0.0300, +0.0700] | +0.0300 [+0.0100, +0.0500] | 10 | 1 |" in md
    row = "| all neutral | neutral | 0.6000 [0.5900, 0.6100] | 0.5500 [0.5400, 0.5600] | 0.5800 [0.5700, 0.5900] |"
    assert row + " -0.0500 [-0.0700, -0.0300] | -0.0300 [-0.0500, -0.0100] | 10 | 1 |" in md
    row = "| thief | negative | 0.4000 ± 0.0000 | 0.4500 ± 0.0000 | 0.4200 ± 0.0000 | +0.0500 ± 0.0141 |"
    assert row + " +0.0300 ± 0.0000 | 20 | 2 |" in md
    # the table of all runs: each kind's shifts with sign and interval
    assert (
        "| 0 | task=marking_bias,seed=0 | 0 | 10 | -0.0500 [-0.0700, -0.0300] | -0.0300 [-0.0500, -0.0100] | "
        "+0.0500 [+0.0300, +0.0700] | +0.0300 [+0.0100, +0.0500] |" in md
    )


def test_bias_runs_cannot_be_paired(tmp_path):
    root = write_runs(tmp_path / "bias", BIAS_RUNS)
    with pytest.raises(ReportError) as err:
        write_report(root, compare=[("seed=0", "seed=1")])
    assert (
        str(err.value)
        == "--compare seed=0 seed=1: task marking_bias has no per-sample 0/1 primary measure to pair runs on"
    )


# --------------------------------------------------------------------------- one dir, every task


def write_keypoint_sweep(sweep: Path) -> None:
    """A keypoint multirun of three markings: circle and crop done, none failed (no results.json)."""
    sweep.mkdir(parents=True)
    write_multirun_yaml(sweep, ["task=keypoints", "visual_prompt=circle,crop,none"])
    _write_job(sweep / "0", ["task=keypoints", "visual_prompt=circle"], KEYPOINT_RUNS["0"])
    _write_job(sweep / "1", ["task=keypoints", "visual_prompt=crop"], KEYPOINT_RUNS["2"])
    _write_job(sweep / "2", ["task=keypoints", "visual_prompt=none"], None)  # failed


def test_mixed_dir_gets_every_section_data_and_its_missing_jobs(tmp_path):
    root = tmp_path / "mixed"
    write_runs(root / "classify", {"0": classification_result(False, 1, 0, 0.4, 2.0)})
    write_runs(root / "rec", {"0": rec_result("circle", 0, {"val": 0.6})})
    write_keypoint_sweep(root / "keypoints")
    write_runs(root / "naming", {"0": naming_result()})
    write_runs(root / "bias", {"0": BIAS_RUNS["0"]})

    report = write_report(root)
    assert report.warnings == []  # two keypoint modes side by side: pck_alpha is not a grouping option
    assert [m.where for m in report.missing] == ["keypoints/2"]
    expected = {"accuracy_vs_num_desc", "entropy_vs_num_desc", "rec_accuracy", "keypoints_pck", "keypoints_naming"}
    assert set(report.data) == expected | {"marking_bias", "missing"}
    for name in expected | {"marking_bias"}:
        assert report.data[name]["missing_jobs"] == 1
        assert_png(root / report.data[name]["file"])
    assert report.data["missing"] == [
        {
            "where": "keypoints/2",
            "overrides": "task=keypoints,visual_prompt=none",
            "reason": "no results.json (the job failed or is still running)",
        }
    ]
    [pck_panel] = report.data["keypoints_pck"]["panels"]
    assert list(pck_panel["series"]) == ["visual_prompt=circle", "visual_prompt=crop"]
    assert pck_panel["series"]["visual_prompt=circle"]["pck.beak"] == pytest.approx([100.0, 0.0, 1])
    [naming_panel] = report.data["keypoints_naming"]["panels"]
    assert naming_panel["series"]["visual_prompt=circle"]["acc_lr_merged"] == pytest.approx([80.0, 0.0, 1])
    stored = json.loads((root / "report_data.json").read_text())
    assert stored["marking_bias"]["panels"][0]["series"]["thief"]["shift_circled_control"] == pytest.approx(
        [0.03, 0.0, 1]
    )

    md = (root / "report.md").read_text()
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections == [
        "## Missing or failed jobs",
        "## Classification",
        "## REC",
        "## Keypoints",
        "## Marking bias",
        "## All runs",
    ]  # the tasks' sections by their definitions' positions
    assert "6 runs (1 classification, 1 REC, 3 keypoints, 1 marking bias) · 1 missing or failed jobs" in md
    assert "| keypoints/2 | task=keypoints,visual_prompt=none | no results.json" in md
    assert "Runs of a task this report does not chart" not in md


@pytest.mark.slow
def test_report_on_real_keypoint_and_bias_runs(tmp_path):
    """Real jobs of both tasks in one dir: every plotted cell is the job's own number, no undeclared key."""
    from conftest import run_eval

    root = tmp_path / "runs"
    jobs = [
        ["-m", "task=keypoints", "visual_prompt=circle,none", f"hydra.sweep.dir={root / 'sweep'}"],
        ["task=keypoints", "task.mode=naming", f"hydra.run.dir={root / 'naming'}"],
        ["task=marking_bias", f"hydra.run.dir={root / 'bias'}"],
    ]
    for args in jobs:
        done = run_eval([*args, "logger=none"], cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
    report = write_report(root)
    assert len(report.runs) == 4 and report.missing == [] and report.warnings == []
    for name in ("keypoints_pck", "keypoints_naming", "marking_bias"):
        assert_png(root / report.data[name]["file"])
    runs = {run.dir: run.results for run in report.runs}
    [pck] = report.data["keypoints_pck"]["panels"]
    assert list(pck["series"]) == ["visual_prompt=circle", "visual_prompt=none"]
    for job in ("sweep/0", "sweep/1"):
        results = runs[job]
        label = f"visual_prompt={results['visual_prompt']}"
        parts = [k for k in results if k.startswith("pck.") and not k.endswith(("ci_low", "ci_high", "ci_method"))]
        assert len(parts) >= 2 and [c["key"] for c in pck["columns"]] == ["pck", *parts]
        for key in ["pck", *parts]:
            assert pck["series"][label][key] == pytest.approx([results[key] * 100, 0.0, 1])
            low, high = results[f"{key}.ci_low"] * 100, results[f"{key}.ci_high"] * 100
            assert pck["intervals"][label][key] == pytest.approx([low, high])
            assert pck["chance"][label][key] == pytest.approx(results[f"chance_{key}"] * 100)
    [naming] = report.data["keypoints_naming"]["panels"]
    assert naming["series"]["visual_prompt=circle"]["acc_lr_merged"] == pytest.approx(
        [runs["naming"]["acc_lr_merged"] * 100, 0.0, 1]
    )
    [bias] = report.data["marking_bias"]["panels"]
    kinds = [row["name"] for row in bias["rows"] if row["aggregate"]]
    assert kinds == ["neutral", "negative"]
    for row in bias["rows"]:
        for shift in ("shift_circled_unmarked", "shift_circled_control"):
            key = f"bias.{row['name']}.{shift}"
            assert bias["series"][row["name"]][shift] == pytest.approx([runs["bias"][key], 0.0, 1])
            assert bias["intervals"][row["name"]][shift] == pytest.approx(
                [runs["bias"][f"{key}.ci_low"], runs["bias"][f"{key}.ci_high"]]
            )
    md = (root / "report.md").read_text()
    assert f"| {runs['bias']['num_images']} | 1 |" in md
