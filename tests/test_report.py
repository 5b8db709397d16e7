"""``descbench.report`` on synthetic sweeps written here: plots, plotted series, tables, missing jobs, errors."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from descbench.core.errors import ReportError
from descbench.report import expected_sweep_points, main, write_report
from descbench.report.plots import with_gaps as _with_gaps
from descbench.tasks.classify.report import build_series
from descbench.tasks.rec.report import build_rec_series

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# (detailed, num_desc, seed) -> (top1, entropy). Two seeds at num_desc 1 and 3 for both styles.
POINTS = {
    (False, 1, 0): (0.20, 2.10),
    (False, 1, 1): (0.25, 2.00),
    (False, 2, 0): (0.30, 1.90),
    (False, 3, 0): (0.41, 1.52),
    (False, 3, 1): (0.45, 1.48),
    (True, 1, 0): (0.15, 2.30),
    (True, 1, 1): (0.18, 2.26),
    (True, 2, 0): (0.22, 2.05),
    (True, 3, 0): (0.33, 1.80),
    (True, 3, 1): (0.36, 1.70),
}
# The sweep also asked for (detailed=true, num_desc=2, seed=1): that job failed (a .hydra dir only),
# and for (detailed=false, num_desc=2, seed=1): that job never ran (no dir at all).
FAILED = (True, 2, 1)
NEVER_RAN = (False, 2, 1)


def _overrides(detailed: bool, num_desc: int, seed: int) -> list[str]:
    return [f"describe.detailed={str(detailed).lower()}", f"num_desc={num_desc}", f"seed={seed}"]


def classification_result(detailed: bool, num_desc: int, seed: int, top1: float, entropy: float) -> dict:
    return {
        "task": "classify",
        "top1": top1,
        "top5": min(1.0, top1 + 0.4),
        "mean_per_class_acc": top1 - 0.01,
        "entropy": entropy,
        "ece": 0.1 + 0.01 * num_desc,
        "top5_k": 5,
        "entropy_scale": "minmax",
        "ece_scale": "minmax",
        "chance_top1": 0.05,
        "dataset": "shapes",
        "split": "test",
        "num_samples": 400,
        "num_classes": 20,
        "backbone": "shapes-clip",
        "pretrained": "bundle",
        "weights": "pretrained",
        "describe.source": "world",
        "describe.num_desc": num_desc,
        "describe.detailed": detailed,
        "describe.rule": "not applicable to detailed sentences" if detailed else "corrected",
        "describe.template": "{classname}, {descriptor}",
        "describe.num_texts": 20 * num_desc,
        "aggregation": "score_mean",
        "seed": seed,
        "overrides": ",".join(_overrides(detailed, num_desc, seed)),
        "per_class_acc": {"stop sign": 0.9, "ladybird": top1},
    }


def _write_job(job_dir: Path, overrides: list[str], results: dict | None) -> None:
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides), encoding="utf-8")
    (job_dir / ".hydra" / "config.yaml").write_text("seed: 0\n", encoding="utf-8")
    if results is not None:
        (job_dir / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


def write_multirun_yaml(sweep: Path, task_overrides: list[str]) -> None:
    """The part of Hydra's multirun.yaml that the report reads."""
    config = {"hydra": {"mode": "MULTIRUN", "overrides": {"hydra": ["hydra.mode=MULTIRUN"], "task": task_overrides}}}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


def make_classification_sweep(sweep: Path) -> Path:
    """Numbered job dirs in Hydra's order (detailed, then num_desc, then seed), one failed, one never run."""
    sweep.mkdir(parents=True)
    write_multirun_yaml(sweep, ["describe.detailed=true,false", "num_desc=1,2,3", "seed=0,1"])
    number = 0
    for detailed in (True, False):
        for num_desc in (1, 2, 3):
            for seed in (0, 1):
                key = (detailed, num_desc, seed)
                if key == NEVER_RAN:
                    number += 1
                    continue
                if key == FAILED:
                    _write_job(sweep / str(number), _overrides(*key), None)
                elif key in POINTS:
                    _write_job(sweep / str(number), _overrides(*key), classification_result(*key, *POINTS[key]))
                number += 1
    return sweep


def expected_series(metric_index: int, scale: float) -> dict[str, list[tuple]]:
    """The plotted series computed by hand from POINTS: mean and sample std over seeds."""
    out: dict[str, list[tuple]] = {}
    for detailed in (False, True):
        label = f"detailed={str(detailed).lower()}"
        out[label] = []
        for num_desc in (1, 2, 3):
            values = [v[metric_index] * scale for (d, n, _), v in POINTS.items() if d == detailed and n == num_desc]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            out[label].append((num_desc, sum(values) / len(values), std, len(values)))
    return out


def assert_series_equal(actual: dict, expected: dict) -> None:
    assert list(actual) == list(expected)
    for label in expected:
        assert len(actual[label]) == len(expected[label])
        for got, want in zip(actual[label], expected[label]):
            assert got[0] == want[0] and got[3] == want[3]
            assert got[1] == pytest.approx(want[1], abs=1e-9)
            assert got[2] == pytest.approx(want[2], abs=1e-9)


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5000  # axes, lines and text, not a blank canvas


def run_report(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "descbench.report", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture
def sweep(tmp_path) -> Path:
    return make_classification_sweep(tmp_path / "multirun")


def test_build_series_is_mean_and_std_over_seeds(sweep):
    results = [json.loads(p.read_text()) for p in sweep.rglob("results.json")]
    assert_series_equal(build_series(results, "top1", 100.0), expected_series(0, 100.0))
    assert_series_equal(build_series(results, "entropy", 1.0), expected_series(1, 1.0))
    # A hand-checked cell: detailed=false, num_desc=3 -> top-1 43.0 %, sample std of (41, 45) = 2.828...
    point = build_series(results)["detailed=false"][2]
    assert point[0] == 3 and point[1] == pytest.approx(43.0) and point[2] == pytest.approx(2 * 2**0.5) and point[3] == 2


def test_report_writes_plots_data_and_tables(sweep):
    result = run_report([str(sweep)])
    assert result.returncode == 0, result.stderr
    for name in ("accuracy_vs_num_desc.png", "entropy_vs_num_desc.png"):
        assert_png(sweep / name)
    assert not (sweep / "rec_accuracy.png").exists()

    data = json.loads((sweep / "report_data.json").read_text())
    acc, ent = data["accuracy_vs_num_desc"], data["entropy_vs_num_desc"]
    assert acc["ylabel"] == "top-1 accuracy (%)" and "nats" in ent["ylabel"] and "num_desc" in acc["xlabel"]
    assert acc["missing_jobs"] == 2 and ent["missing_jobs"] == 2  # also written on the figures
    [acc_panel], [ent_panel] = acc["panels"], ent["panels"]
    assert acc_panel["title"] == "dataset shapes · backbone shapes-clip"
    assert acc_panel["legend_title"] == "detailed"  # rule varies too, but only with detailed: no extra lines
    assert acc_panel["chance"] == pytest.approx(5.0)
    assert_series_equal({k: [tuple(p) for p in v] for k, v in acc_panel["series"].items()}, expected_series(0, 100.0))
    assert_series_equal({k: [tuple(p) for p in v] for k, v in ent_panel["series"].items()}, expected_series(1, 1.0))

    md = (sweep / "report.md").read_text()
    # The num_desc=1 row, by hand: false: top-1 (20, 25) -> 22.50 ± 3.54, entropy (2.10, 2.00) -> 2.050 ± 0.071;
    # true: top-1 (15, 18) -> 16.50 ± 2.12, entropy (2.30, 2.26) -> 2.280 ± 0.028.
    assert "| num_desc | detailed=false | detailed=true |" in md
    assert "| 1 | 22.50 ± 3.54 / 2.050 ± 0.071 (n=2) | 16.50 ± 2.12 / 2.280 ± 0.028 (n=2) |" in md
    # num_desc=2: one seed each (the other failed or never ran): std 0.
    assert "| 2 | 30.00 ± 0.00 / 1.900 ± 0.000 (n=1) | 22.00 ± 0.00 / 2.050 ± 0.000 (n=1) |" in md
    assert "| 3 | 43.00 ± 2.83 / 1.500 ± 0.028 (n=2) | 34.50 ± 2.12 / 1.750 ± 0.071 (n=2) |" in md
    # The table of all runs: job 0 is detailed=true, num_desc=1, seed=0: top1 15, top5 55, entropy 2.3, ece 11.
    assert "| 0 | describe.detailed=true,num_desc=1,seed=0 | 0 | 15.00 | 55.00 | 2.300 | 11.00 |" in md
    assert md.count("](accuracy_vs_num_desc.png)") == 1 and md.count("](entropy_vs_num_desc.png)") == 1


def test_failed_and_never_run_jobs_are_listed(sweep):
    result = run_report([str(sweep)])
    assert result.returncode == 0
    # Job numbers follow Hydra's order: FAILED (true, 2, 1) is job 3, NEVER_RAN (false, 2, 1) is job 9.
    md = (sweep / "report.md").read_text()
    section = md.split("## Missing or failed jobs", 1)[1].split("\n## ", 1)[0]
    assert "| 3 | describe.detailed=true,num_desc=2,seed=1 | no results.json" in section
    assert "| job #9 | describe.detailed=false,num_desc=2,seed=1 | no job dir" in section
    assert section.count("\n| ") == 3  # header + 2 rows
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "2 missing or failed job(s)" in warning[0]
    assert "num_desc=2,seed=1" in warning[0]
    data = json.loads((sweep / "report_data.json").read_text())
    assert [m["where"] for m in data["missing"]] == ["3", "job #9"]


def test_expected_sweep_points_match_hydra_job_numbers(sweep):
    points = expected_sweep_points(sweep / "multirun.yaml")
    assert len(points) == 12
    assert points[3] == ["describe.detailed=true", "num_desc=2", "seed=1"]
    assert points[9] == ["describe.detailed=false", "num_desc=2", "seed=1"]


def test_groups_by_every_varying_option_and_shows_controls(tmp_path):
    """Sources, llm instructions and example counts become lines of their own; classname (no num_desc) a level."""
    results = []
    llm_options = [("role", 3, 0.30), ("rule", 3, 0.35), ("role", 1, 0.25)]
    for seed in (0, 1):
        for num_desc in (1, 2):
            results.append(classification_result(False, num_desc, seed, 0.2 + 0.1 * num_desc + 0.01 * seed, 2.0))
            for instruction, examples, top1 in llm_options:
                llm = classification_result(False, num_desc, seed, top1, 1.5)
                llm.update(
                    {"describe.source": "llm", "describe.instruction": instruction, "describe.num_examples": examples}
                )
                results.append(llm)
        control = classification_result(False, 0, seed, 0.05 + 0.01 * seed, 2.9)
        control.update({"describe.source": "classname", "describe.num_desc": "not applicable to source classname"})
        control["describe.detailed"] = "not applicable to source classname"
        results.append(control)
    series = build_series(results)
    assert list(series) == [  # sorted by option values; detailed first
        "detailed=false, source=llm, instruction=role, num_examples=1",
        "detailed=false, source=llm, instruction=role, num_examples=3",
        "detailed=false, source=llm, instruction=rule, num_examples=3",
        "detailed=false, source=world",
        "detailed=n/a, source=classname",
    ]
    world = series["detailed=false, source=world"]
    assert [p[0] for p in world] == [1, 2] and world[0][1] == pytest.approx(30.5)
    assert series["detailed=false, source=llm, instruction=rule, num_examples=3"][1] == pytest.approx((2, 35.0, 0.0, 2))
    [(x, mean, std, n)] = series["detailed=n/a, source=classname"]
    assert x is None and mean == pytest.approx(5.5) and std == pytest.approx(statistics.stdev([5, 6])) and n == 2

    for i, result in enumerate(results):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "results.json").write_text(json.dumps(result))
    assert main([str(tmp_path), "--out", str(tmp_path / "report")]) == 0
    data = json.loads((tmp_path / "report" / "report_data.json").read_text())
    panel = data["accuracy_vs_num_desc"]["panels"][0]
    assert panel["legend_title"] == "detailed, source, instruction, num_examples"
    assert panel["series"]["detailed=n/a, source=classname"] == [
        [None, pytest.approx(5.5), pytest.approx(0.7071, abs=1e-4), 2]
    ]
    assert_png(tmp_path / "report" / "accuracy_vs_num_desc.png")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| n/a | — | — | — | — | 5.50 ± 0.71 / 2.900 ± 0.000 (n=2) |" in md
    assert not (tmp_path / "report.md").exists()  # --out: nothing written into the runs' dir


def test_empty_dir_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_report([str(empty)])
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: no results.json found under {empty}: not a run or multirun dir of descbench.eval?"
    )
    assert "Traceback" not in result.stderr
    assert not (empty / "report.md").exists()


def test_missing_dir_is_a_clear_error(tmp_path):
    result = run_report([str(tmp_path / "nope")])
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope'}: no such directory"


def test_only_failed_jobs_is_an_error_that_says_so(tmp_path):
    _write_job(tmp_path / "0", ["num_desc=1"], None)
    result = run_report([str(tmp_path)])
    assert result.returncode == 2
    assert "no results.json found under" in result.stderr and "(1 failed or missing jobs)" in result.stderr


REC_ACC = {  # (visual_prompt, seed) -> {split: acc}
    ("circle", 0): {"val": 0.60, "testA": 0.70, "testB": 0.50},
    ("circle", 1): {"val": 0.64, "testA": 0.72, "testB": 0.52},
    ("crop", 0): {"val": 0.40, "testA": 0.45, "testB": 0.35},
    (("circle", "crop"), 0): {"val": 0.66, "testA": 0.75, "testB": 0.55},
}


def rec_result(visual_prompt, seed: int, accs: dict[str, float]) -> dict:
    return {
        "task": "rec",
        "acc": sum(accs.values()) / len(accs),
        **{f"acc.{split}": value for split, value in accs.items()},
        "dataset": "rec_shapes",
        "visual_prompt": list(visual_prompt) if isinstance(visual_prompt, tuple) else visual_prompt,
        "subtract": True,
        "proposals": "gt",
        "backbone": "shapes-clip",
        "seed": seed,
        "overrides": f"visual_prompt={visual_prompt},seed={seed}",
    }


def test_rec_sweep_gives_bars_and_table(tmp_path):
    sweep = tmp_path / "rec"
    for i, ((prompt, seed), accs) in enumerate(REC_ACC.items()):
        _write_job(sweep / str(i), [f"seed={seed}"], rec_result(prompt, seed, accs))
    results = [json.loads(p.read_text()) for p in sorted(sweep.rglob("results.json"))]
    series = build_rec_series(results)
    assert list(series) == ["visual_prompt=circle", "visual_prompt=circle+crop", "visual_prompt=crop"]
    mean, std, n = series["visual_prompt=circle"]["testA"]
    assert mean == pytest.approx(71.0) and std == pytest.approx(statistics.stdev([70, 72])) and n == 2
    assert series["visual_prompt=crop"]["val"] == pytest.approx((40.0, 0.0, 1))

    result = run_report([str(sweep)])
    assert result.returncode == 0, result.stderr
    assert_png(sweep / "rec_accuracy.png")
    assert not (sweep / "accuracy_vs_num_desc.png").exists()
    data = json.loads((sweep / "report_data.json").read_text())
    [panel] = data["rec_accuracy"]["panels"]
    assert panel["splits"] == ["all", "val", "testA", "testB"]
    assert panel["series"]["visual_prompt=circle"]["val"] == pytest.approx([62.0, statistics.stdev([60, 64]), 2])
    md = (sweep / "report.md").read_text()
    assert "| visual_prompt | all | val | testA | testB |" in md
    # circle: all = mean of (60, 70, 50)=60 and (64, 72, 52)=62.67 -> 61.33 ± 1.89
    all_circle = [statistics.fmean(REC_ACC[("circle", s)].values()) * 100 for s in (0, 1)]
    cell = f"{statistics.fmean(all_circle):.2f} ± {statistics.stdev(all_circle):.2f} (n=2)"
    assert f"| visual_prompt=circle | {cell} | 62.00 ± 2.83 (n=2) | 71.00 ± 1.41 (n=2) | 51.00 ± 1.41 (n=2) |" in md
    assert "| visual_prompt=crop | 40.00 ± 0.00 (n=1) | 40.00 ± 0.00 (n=1) | 45.00 ± 0.00 (n=1) |" in md


@pytest.mark.slow
def test_report_on_a_real_multirun(tmp_path):
    """The issue's command on the embedded default, then the report: every job found, numbers from its results."""
    from conftest import run_eval

    sweep = tmp_path / "multirun"
    args = ["-m", "describe.detailed=true,false", "num_desc=1..2", "logger=none", f"hydra.sweep.dir={sweep}"]
    done = run_eval(args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    report = write_report(sweep)
    assert len(report.runs) == 4 and report.missing == []
    for name in ("accuracy_vs_num_desc.png", "entropy_vs_num_desc.png"):
        assert_png(sweep / name)
    series = build_series([run.results for run in report.runs])
    assert list(series) == ["detailed=false", "detailed=true"]
    for run in report.runs:
        label = f"detailed={str(run.results['describe.detailed']).lower()}"
        [point] = [p for p in series[label] if p[0] == run.results["describe.num_desc"]]
        assert point[1:] == pytest.approx((run.results["top1"] * 100, 0.0, 1))
    assert report.warnings == []  # every measurement key the jobs write is declared in descbench.core.measures
    # the paired comparison reads each job's predictions.csv: its accuracies are the jobs' own top-1
    report = write_report(sweep, compare=[("describe.detailed=false", "describe.detailed=true")])
    [comparison] = report.comparisons
    assert [p.cell for p in comparison.pairs] == ["num_desc=1", "num_desc=2"]
    for pair in comparison.pairs:
        assert pair.result.n == pair.run_a.results["num_samples"]
        assert pair.result.mean_a == pytest.approx(pair.run_a.results["top1"], abs=1e-6)
        assert pair.result.mean_b == pytest.approx(pair.run_b.results["top1"], abs=1e-6)


def test_wandb_sweep_file_drives_eval_with_hydra_overrides(tmp_path):
    """Every grid point of sweeps/prompt_options.yaml, as W&B's agent spells it, composes the intended config."""
    from conftest import compose_config
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args, load_sweep_config

    sweep = load_sweep_config(str(ROOT / "sweeps" / "prompt_options.yaml"))
    assert sweep["command"] == ["${env}", "${interpreter}", "-m", "descbench.eval", "${args_no_hyphens}"]
    assert sweep["method"] == "grid" and sweep["metric"] == {"name": "top1", "goal": "maximize"}
    params = sweep["parameters"]
    assert params["describe.detailed"]["values"] == [True, False]
    assert params["num_desc"]["values"] == [1, 2, 3, 4, 5, 6, 7]
    for detailed in params["describe.detailed"]["values"]:
        for num_desc in (1, 7):
            point = {"describe.detailed": {"value": detailed}, "num_desc": {"value": num_desc}}
            args = create_sweep_command_args({"args": point})["args_no_hyphens"]
            assert args == [f"describe.detailed={detailed}", f"num_desc={num_desc}"]  # Python's True/False
            cfg = compose_config(args, tmp_path)
            assert cfg.describe.detailed is detailed and cfg.num_desc == num_desc
            assert cfg.describe.num_desc == num_desc


def test_wandb_rec_sweep_file_composes_each_visual_prompt(tmp_path):
    """Every point of sweeps/rec_visual_prompts.yaml composes a REC job with that marking and subtract."""
    from conftest import compose_config
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args, load_sweep_config

    sweep = load_sweep_config(str(ROOT / "sweeps" / "rec_visual_prompts.yaml"))
    assert sweep["command"] == ["${env}", "${interpreter}", "-m", "descbench.eval", "${args_no_hyphens}"]
    assert sweep["metric"] == {"name": "acc", "goal": "maximize"}
    params = sweep["parameters"]
    prompts = params["visual_prompt"]["values"]
    assert prompts == ["circle", "rectangle", "crop", "marked_crop", "blur_outside", "grayscale_outside"]
    for prompt in prompts:
        for subtract in params["task.subtract"]["values"]:
            point = {"task": {"value": "rec"}, "visual_prompt": {"value": prompt}, "task.subtract": {"value": subtract}}
            args = create_sweep_command_args({"args": point})["args_no_hyphens"]
            cfg = compose_config(args, tmp_path)
            assert cfg.task._target_.endswith("RecTaskSpec") and list(cfg.visual_prompt) == [prompt]
            assert cfg.task.subtract is subtract and cfg.dataset.name == "rec_shapes"


def test_a_line_breaks_where_its_num_desc_is_missing():
    """A point other lines have but this one lacks is drawn as a gap (NaN), never bridged."""
    line = [(1, 20.0, 0.0, 1), (3, 40.0, 0.0, 1)]
    gapped = _with_gaps(line, [1, 2, 3, 4])
    assert [p[0] for p in gapped] == [1, 2, 3] and math.isnan(gapped[1][1])
    assert _with_gaps(line, [1, 3]) == line


# --------------------------------------------------------------------------- the metric registry


def test_a_declared_measure_never_groups_runs_and_an_undeclared_one_is_an_option_with_a_warning(
    tmp_path, monkeypatch, capsys
):
    """``foo_score`` varies per run: undeclared it is an option (a line each, and a warning); declared, a measure."""
    from descbench.core import measures
    from descbench.report import grouping_keys

    results = []
    for num_desc, score in ((1, 0.31), (2, 0.47)):
        result = classification_result(False, num_desc, 0, 0.2 * num_desc, 2.0)
        result["foo_score"] = score
        results.append(result)
    assert grouping_keys(results, first="describe.detailed", exclude={"describe.num_desc"}) == [
        "describe.detailed",
        "foo_score",
    ]
    for i, result in enumerate(results):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "results.json").write_text(json.dumps(result))
    assert main([str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert (
        "warning: results key 'foo_score' holds fractional numbers and is not declared as a measure (its task's "
        "definition or descbench/core/measures.py): the report treats it as an option (a line of its own); declare "
        "it if it is a measurement"
    ) in err

    declared = measures.Measure("foo_score", "mean", "foo score", "higher")
    monkeypatch.setitem(measures.TASK_MEASURES, "classify", (*measures.TASK_MEASURES["classify"], declared))
    measures._index.cache_clear()
    try:
        assert grouping_keys(results, first="describe.detailed", exclude={"describe.num_desc"}) == ["describe.detailed"]
        assert main([str(tmp_path)]) == 0
        assert "foo_score" not in capsys.readouterr().err
        # its companions are declared with it
        assert measures.resolve("foo_score.ci_low").stem == "foo_score"
    finally:
        monkeypatch.undo()
        measures._index.cache_clear()


def test_registry_declares_todays_measurement_keys_and_leaves_options_open():
    from descbench.core.measures import is_declared, is_option, resolve
    from descbench.tasks.definition import load_tasks

    tasks = load_tasks()

    measured = [
        # classification
        "top1", "top5", "mean_per_class_acc", "entropy", "ece", "top5_k", "ece_scale", "chance_top1",
        "num_samples", "num_classes", "describe.num_texts", "per_class_acc", "overrides", "note", "seed", "task",
        # REC
        "acc", "acc.val", "acc.testA", "chance_acc", "num_expressions", "num_images", "mean_candidates",
        "data.boxes_dropped",
        # keypoints, bias probe, repetitions
        "pck", "pck.left_eye", "chance_pck", "acc_lr_merged", "bias.criminal.circled.prob",
        "bias.criminal.shift_circled_unmarked", "num_reps",
    ]  # fmt: skip
    assert [k for k in measured if not is_declared(k)] == []
    options = ["dataset", "backbone", "pretrained", "describe.detailed", "describe.num_desc", "visual_prompt",
               "visual_prompt.circle.thickness", "subtract", "entropy_scale", "split", "splits", "backbones"]  # fmt: skip
    assert [k for k in options if not is_option(k, "x")] == []
    assert not is_option("per_class_acc", {"cat": 1.0})
    # companions: interval, repetitions, published join; the stem is the concrete measure key
    for key, stem, suffix in [
        ("top1.ci_low", "top1", "ci_low"),
        ("acc.val.ci_high", "acc.val", "ci_high"),
        ("acc.ci_method", "acc", "ci_method"),
        ("top1.reps", "top1", "reps"),
        ("top1.std", "top1", "std"),
        ("bias.criminal.circled.prob.ci_low", "bias.criminal.circled.prob", "ci_low"),
        ("acc.testB.published.delta", "acc.testB", "published.delta"),
        ("top1.published", "top1", "published"),
    ]:
        found = resolve(key)
        assert (found.stem, found.suffix) == (stem, suffix), key
    assert resolve("describe.detailed.ci_low") is None  # a companion of an option is not a measure's
    assert [tasks[t].primary for t in ("classify", "rec", "keypoints")] == ["top1", "acc", "pck"]


# --------------------------------------------------------------------------- intervals and repetitions


def test_one_run_cells_show_their_interval_and_repetitions_their_mean_and_std(tmp_path):
    runs = {
        "0": {**classification_result(False, 1, 0, 0.6208, 1.9), "top1.ci_low": 0.576, "top1.ci_high": 0.664},
        # a run that repeats a random control three times: the cell is over its repetitions
        "1": {
            **classification_result(False, 2, 0, 0.35, 1.5),
            "top1.reps": [0.30, 0.35, 0.40],
            "top1.std": 0.05,
            "num_reps": 3,
            "top1.ci_low": 0.30,
            "top1.ci_high": 0.40,
        },
    }
    for name, result in runs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({**result, "top1.ci_method": "wilson"}))
    results = [r for r in runs.values()]
    assert build_series(results)["detailed=false"][1] == pytest.approx((2, 35.0, 5.0, 3))
    report = write_report(tmp_path)
    panel = report.data["accuracy_vs_num_desc"]["panels"][0]
    assert panel["intervals"] == {"detailed=false": [[1, pytest.approx(57.6), pytest.approx(66.4)]]}
    md = (tmp_path / "report.md").read_text()
    assert "| 1 | 62.08 [57.60, 66.40] / 1.900 ± 0.000 (n=1) |" in md
    assert "| 2 | 35.00 ± 5.00 / 1.500 ± 0.000 (n=3) |" in md
    # the table of all runs shows each run's own value with its interval
    assert "| 0 | describe.detailed=false,num_desc=1,seed=0 | 0 | 62.08 [57.60, 66.40] |" in md
    assert_png(tmp_path / "accuracy_vs_num_desc.png")


def test_rec_cells_show_recorded_intervals(tmp_path):
    result = rec_result("circle", 0, {"val": 0.60, "testA": 0.70})
    result.update({"acc.val.ci_low": 0.55, "acc.val.ci_high": 0.65})
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "results.json").write_text(json.dumps(result))
    report = write_report(tmp_path)
    [panel] = report.data["rec_accuracy"]["panels"]
    assert panel["intervals"] == {"visual_prompt=circle": {"val": [pytest.approx(55.0), pytest.approx(65.0)]}}
    md = (tmp_path / "report.md").read_text()
    assert "| visual_prompt=circle | 65.00 ± 0.00 (n=1) | 60.00 [55.00, 65.00] (n=1) | 70.00 ± 0.00 (n=1) |" in md


# --------------------------------------------------------------------------- paired comparisons


def report_in_process(capsys, args: list[str]) -> subprocess.CompletedProcess:
    """``main(args)`` with its exit code and output, as ``run_report`` gives them (faster: no new interpreter)."""
    capsys.readouterr()
    code = main(args)
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


# Hand-made per-image outcomes over 8 images: (detailed, num_desc) -> correct.
OUTCOMES = {
    (False, 1): [1, 1, 0, 0, 1, 0, 1, 0],
    (True, 1): [1, 1, 1, 0, 1, 1, 1, 1],  # B right on 3 more images (2, 5, 7), never worse
    (False, 2): [1, 1, 1, 1, 0, 0, 1, 1],
    (True, 2): [1, 0, 1, 1, 0, 0, 1, 1],  # B wrong on image 1 only
}


def write_predictions(job: Path, correct: list[int], ids: list[str] | None = None) -> None:
    ids = ids or [f"shapes:{i}" for i in range(len(correct))]
    lines = ["index,sample_id,label,label_name,pred,pred_name,top5,confidence,entropy,correct"]
    lines += [f"{i},{ids[i]},0,a,{1 - c},x,0 1,0.5,1.0,{c}" for i, c in enumerate(correct)]
    (job / "predictions.csv").write_text("\n".join(lines) + "\n")


def make_paired_sweep(root: Path, outcomes=OUTCOMES, extra: dict | None = None) -> Path:
    for number, ((detailed, num_desc), correct) in enumerate(outcomes.items()):
        job = root / str(number)
        result = classification_result(detailed, num_desc, 0, sum(correct) / len(correct), 2.0)
        result.update(extra or {})
        _write_job(job, _overrides(detailed, num_desc, 0), result)
        write_predictions(job, correct)
    return root


def test_compare_prints_paired_delta_interval_mcnemar_holm_and_the_mean(tmp_path, capsys):
    from descbench.core.stats import mean_paired_delta, paired_comparison

    sweep = make_paired_sweep(tmp_path / "sweep")
    result = report_in_process(capsys, [str(sweep), "--compare", "describe.detailed=false", "describe.detailed=true"])
    assert result.returncode == 0, result.stderr
    one = paired_comparison(OUTCOMES[(False, 1)], OUTCOMES[(True, 1)])
    two = paired_comparison(OUTCOMES[(False, 2)], OUTCOMES[(True, 2)])
    # by hand: num_desc=1: 0 vs 3 discordant -> p = 2 / 2**3 = 0.25; num_desc=2: 1 vs 0 -> p = 1.
    # Holm over the 2 pairs: 0.25 * 2 = 0.5; max(0.5, 1 * 1) = 1.
    row1 = f"| num_desc=1 | 8 | 50.00 | 87.50 | +37.50 [{one.ci_low * 100:+.2f}, {one.ci_high * 100:+.2f}] | 0 | 3 |"
    assert row1 + " p = 0.25 | p = 0.5 |" in result.stdout
    row2 = f"| num_desc=2 | 8 | 75.00 | 62.50 | -12.50 [{two.ci_low * 100:+.2f}, {two.ci_high * 100:+.2f}] | 1 | 0 |"
    assert row2 + " p = 1 | p = 1 |" in result.stdout
    mean, low, high = mean_paired_delta([(OUTCOMES[(False, n)], OUTCOMES[(True, n)]) for n in (1, 2)])
    assert mean == pytest.approx(0.125)
    assert (
        f"**mean Δ over 2 matched pair(s): +12.50 [{low * 100:+.2f}, {high * 100:+.2f}] pp** "
        "(paired bootstrap over images, the same resampled images in every cell)." in result.stdout
    )
    assert "Holm's step-down adjustment over all 2 pairs" in result.stdout
    md = (sweep / "report.md").read_text()
    assert "## Comparisons" in md and row1 in md
    data = json.loads((sweep / "report_data.json").read_text())
    [comparison] = data["comparisons"]
    assert [(p["only_a"], p["only_b"], p["p_value"], p["p_holm"]) for p in comparison["pairs"]] == [
        (0, 3, 0.25, 0.5),
        (1, 0, 1.0, 1.0),
    ]


def test_compare_yaml_in_the_sweep_dir_and_hydra_spelling_of_num_desc(tmp_path, capsys):
    sweep = make_paired_sweep(tmp_path / "sweep")
    (sweep / "compare.yaml").write_text("compare:\n  - [num_desc=1, num_desc=2]\n")
    report = write_report(sweep)
    [comparison] = report.comparisons
    assert [(p.cell, p.run_a.dir, p.run_b.dir) for p in comparison.pairs] == [
        ("detailed=false", "0", "2"),
        ("detailed=true", "1", "3"),
    ]
    (sweep / "compare.yaml").write_text("compare: describe.detailed\n")
    result = report_in_process(capsys, [str(sweep)])
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {sweep / 'compare.yaml'}: expected 'compare:' with a list of [A, B] pairs, "
        "e.g. [describe.detailed=false, describe.detailed=true]"
    )


def test_compare_refuses_runs_over_different_images(tmp_path, capsys):
    sweep = make_paired_sweep(tmp_path / "sweep")
    shifted = [f"shapes:{i + 1}" for i in range(8)]
    write_predictions(sweep / "1", OUTCOMES[(True, 1)], ids=shifted)
    result = report_in_process(capsys, [str(sweep), "--compare", "describe.detailed=false", "describe.detailed=true"])
    assert result.returncode == 2
    from descbench.report.compare import fingerprint

    fa = fingerprint([f"shapes:{i}" for i in range(8)])[:12]
    fb = fingerprint(shifted)[:12]
    assert result.stderr.strip() == (
        f"error: cannot pair 0 with 1: their image lists differ (fingerprints {fa} vs {fb}, 8 vs 8 samples); "
        "compare runs over the same images (same dataset, split and dataset.limit)"
    )
    assert "Traceback" not in result.stderr


def test_compare_errors_name_the_option(tmp_path, capsys):
    sweep = make_paired_sweep(tmp_path / "sweep")
    result = report_in_process(capsys, [str(sweep), "--compare", "describe.detailed=maybe", "describe.detailed=true"])
    assert (result.returncode, result.stderr.strip()) == (2, "error: --compare: no run has describe.detailed=maybe")
    result = report_in_process(capsys, [str(sweep), "--compare", "colour=red", "colour=blue"])
    assert result.stderr.strip() == "error: --compare 'colour=red': no run records the option 'colour'"
    (sweep / "3" / "predictions.csv").unlink()
    result = report_in_process(capsys, [str(sweep), "--compare", "describe.detailed=false", "describe.detailed=true"])
    assert result.stderr.strip() == (
        f"error: {sweep / '3' / 'predictions.csv'} not found: a paired comparison needs the per-sample "
        "predictions every job writes"
    )


def test_sign_table_per_dataset_and_backbone(tmp_path):
    """Words vs sentences on 2 data sets x 2 backbones: the sign of Δ with its interval in each."""
    sweep = tmp_path / "grid"
    better = [0] * 10 + [1] * 10  # A: right on half of 20 images
    number = 0
    for dataset in ("shapes", "photos"):
        for backbone in ("clip-a", "clip-b"):
            # B gains all 10 images on shapes/clip-a, loses them on photos/clip-b, ties elsewhere
            b = {("shapes", "clip-a"): [1] * 20, ("photos", "clip-b"): [0] * 20}.get((dataset, backbone), better)
            for detailed, correct in ((False, better), (True, b)):
                job = sweep / str(number)
                result = classification_result(detailed, 7, 0, sum(correct) / 20, 2.0)
                result.update({"dataset": dataset, "backbone": backbone})
                _write_job(job, _overrides(detailed, 7, 0), result)
                write_predictions(job, correct, ids=[f"{dataset}:{i}" for i in range(20)])
                number += 1
    report = write_report(sweep, compare=[("describe.detailed=false", "describe.detailed=true")])
    [comparison] = report.comparisons
    assert len(comparison.pairs) == 4
    assert comparison.mean.method == "t interval over the pairs' Δ (the pairs hold different image lists)"
    md = (sweep / "report.md").read_text()
    assert "| dataset \\ backbone | clip-a | clip-b |" in md
    assert "| shapes | +50.00 [+30.00, +70.00] B > A | +0.00 [+0.00, +0.00] 0 (interval spans 0) |" in md
    assert "| photos | +0.00 [+0.00, +0.00] 0 (interval spans 0) | -50.00 [-70.00, -30.00] B < A |" in md
    # one table per dataset x backbone in the classification section
    assert md.count("### dataset ") == 4


def test_compare_pairs_rec_runs_on_their_expressions(tmp_path):
    """REC predictions.csv (image_id, split, expression): the pair's accuracies and the McNemar counts by hand."""
    sweep = tmp_path / "rec"
    outcomes = {"circle": [1, 1, 0, 1, 0, 1], "crop": [0, 1, 0, 0, 0, 1]}
    for number, (prompt, correct) in enumerate(outcomes.items()):
        job = sweep / str(number)
        _write_job(job, [f"visual_prompt={prompt}"], rec_result(prompt, 0, {"val": sum(correct) / 6}))
        lines = ["index,image_id,split,expression,chosen_index,chosen_box,gold_box,score,iou,correct"]
        lines += [f"{i},{i // 2},val,the thing {i},0,0 0 1 1,0 0 1 1,0.5,1.0,{c}" for i, c in enumerate(correct)]
        (job / "predictions.csv").write_text("\n".join(lines) + "\n")
    report = write_report(sweep, compare=[("visual_prompt=crop", "visual_prompt=circle")])
    [comparison] = report.comparisons
    assert comparison.metric == "acc"
    [pair] = comparison.pairs
    r = pair.result
    assert (r.n, r.mean_a, r.mean_b, r.only_a, r.only_b) == (6, pytest.approx(2 / 6), pytest.approx(4 / 6), 0, 2)
    assert r.p_value == pytest.approx(0.5)  # 2 * 0.5**2
    md = (sweep / "report.md").read_text()
    assert "| cell | images | A accuracy (%) | B accuracy (%) |" in md


def test_compare_lists_runs_without_partner_and_says_why(tmp_path):
    outcomes = {**OUTCOMES, (True, 3): [1] * 8}  # a sentences run at num_desc=3 has no words run
    sweep = make_paired_sweep(tmp_path / "sweep", outcomes)
    report = write_report(sweep, compare=[("describe.detailed=False", "describe.detailed=True")])  # W&B spelling
    [comparison] = report.comparisons
    assert len(comparison.pairs) == 2
    assert comparison.unpaired == ["4 (describe.detailed=True): no partner with describe.detailed=False"]
    md = (sweep / "report.md").read_text()
    assert "- 4 (describe.detailed=True): no partner with describe.detailed=False" in md
    # only runs that differ in another option: the error names the first and what sets it apart
    lone = make_paired_sweep(tmp_path / "lone", {(False, 1): [1, 0], (True, 2): [0, 1]})
    with pytest.raises(ReportError) as err:
        write_report(lone, compare=[("describe.detailed=false", "describe.detailed=true")])
    assert str(err.value) == (
        "--compare describe.detailed=false describe.detailed=true: no two runs differ only there "
        "(0 (describe.detailed=false): no partner with describe.detailed=true; differs from 1 in "
        "describe.num_desc (1 vs 2))"
    )


@pytest.mark.parametrize(
    "sides, expect",
    [
        (
            ["num_desc=1", "num_desc=1"],
            "error: --compare num_desc=1 num_desc=1: both sides select the same runs, so every run would be paired "
            "with itself: give B another value",
        ),
        (
            ["num_desc=1", "describe.num_desc=1"],
            "error: --compare num_desc=1 describe.num_desc=1: both sides select the same runs",
        ),
        (
            ["num_desc=1", "describe.detailed=true"],
            "error: --compare num_desc=1 describe.detailed=true: the two sides set different options "
            "(describe.num_desc vs describe.detailed): every pair would differ in all of them at once and the mean "
            "Δ would pool different comparisons",
        ),
    ],
)
def test_compare_refuses_self_pairs_and_sides_that_vary_different_options(tmp_path, capsys, sides, expect):
    sweep = make_paired_sweep(tmp_path / "sweep")
    result = report_in_process(capsys, [str(sweep), "--compare", *sides])
    assert result.returncode == 2 and result.stderr.startswith(expect), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (sweep / "report.md").exists()


@pytest.mark.parametrize(
    "content, expect",
    [
        (b"compare:\n  - [num_desc=1, num_desc=2\n", "is not valid YAML: "),
        ("compare:\n  - [num_desc=1, caf\u00e9]\n".encode("latin-1"), "is not UTF-8 text (undecodable byte at offset"),
        (b"compare:\n  - [num_desc=1, {a: b}]\n", "expected 'compare:' with a list of [A, B] pairs"),
    ],
)
def test_a_damaged_compare_yaml_is_one_line(tmp_path, capsys, content, expect):
    sweep = make_paired_sweep(tmp_path / "sweep")
    (sweep / "compare.yaml").write_bytes(content)
    result = report_in_process(capsys, [str(sweep)])
    assert result.returncode == 2 and str(sweep / "compare.yaml") in result.stderr, result.stderr
    assert expect in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "damage, expect",
    [
        (lambda text: text[: text.rindex(",")], "predictions.csv:9: a damaged row (index '7', correct None)"),
        (lambda text: "\n".join(text.splitlines()[:-1]) + "\n", "predictions.csv holds 7 rows but its results.json"),
        (lambda text: text.replace("\n3,", "\n2,"), "predictions.csv: a sample index is negative or given twice"),
        (lambda text: text.replace(",1\n", ",yes\n", 1), "predictions.csv:2: a damaged row (index '0', correct 'yes')"),
    ],
    ids=["cut-row", "cut-at-a-row", "index-twice", "not-0-or-1"],
)
def test_a_damaged_predictions_csv_under_compare_is_one_line(tmp_path, capsys, damage, expect):
    sweep = make_paired_sweep(tmp_path / "sweep", extra={"num_evaluated": 8})
    path = sweep / "1" / "predictions.csv"
    path.write_text(damage(path.read_text()))
    result = report_in_process(capsys, [str(sweep), "--compare", "describe.detailed=false", "describe.detailed=true"])
    assert result.returncode == 2 and expect in result.stderr, result.stderr
    assert "the file is truncated or edited: rerun the job" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_report_out_under_a_file_is_one_line(tmp_path, capsys):
    sweep = make_paired_sweep(tmp_path / "sweep")
    (tmp_path / "plain").write_text("x")
    result = report_in_process(capsys, [str(sweep), "--out", str(tmp_path / "plain" / "rep")])
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot write the report to {tmp_path / 'plain' / 'rep'} (")
    assert result.stderr.strip().endswith("choose another --out") and len(result.stderr.strip().splitlines()) == 1
