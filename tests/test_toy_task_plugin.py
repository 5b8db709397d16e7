"""A task defined entirely under tests/ runs through the product: ``python -m descbench.eval task=toy`` writes
its measure to results.json and the printed table, and ``python -m descbench.report`` shows it."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SEARCH_PATH = f"hydra.searchpath=[file://{ROOT / 'tests' / 'toy_conf'}]"


def run(args, tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "DESCBENCH_CACHE_DIR": str(tmp_path / "c")}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_task_defined_under_tests_runs_reports_and_equals_a_slow_reference(tmp_path):
    out = run(
        [
            "-m",
            "descbench.eval",
            "task=toy",
            SEARCH_PATH,
            "logger=none",
            "dataset.limit=60",
            f"hydra.run.dir={tmp_path}/run",
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["task"] == "toy" and results["task_module"] == "tests.toy_task"
    # the slow reference: the same subset, preprocessed by the same model, counted in plain Python
    from descbench.shell.config import build, compose_config

    cfg = compose_config(["dataset.limit=60"])
    backbone = build(cfg.backbone)
    dataset = build(cfg.dataset.builder, transform=backbone.preprocess).limited(60)
    bright = [float(dataset[i][0].float().mean() > 0) for i in range(len(dataset))]
    assert results["bright_share"] == pytest.approx(sum(bright) / len(bright), abs=1e-6)
    assert results["bright_share.ci_method"] == "wilson"
    assert results["bright_share.ci_low"] <= results["bright_share"] <= results["bright_share.ci_high"]
    shown = f"{100 * results['bright_share']:.2f} [{100 * results['bright_share.ci_low']:.2f}"
    assert "bright images %" in out.stdout and shown in out.stdout
    report = run(
        ["-m", "descbench.report", str(tmp_path / "run"), "--out", str(tmp_path / "report"), "--html"], tmp_path
    )
    assert report.returncode == 0, report.stderr[-2000:]
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## toy brightness" in text and "bright_share" in text and shown.split(" [")[0] in text
    assert "no task definition found" not in text
    # report.html: the plugin brings no HTML of its own, so its Markdown section is rendered as HTML
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<h2>toy brightness</h2>" in page and "<th>bright_share</th>" in page
    assert f"<td>{shown.split(' [')[0]}" in page
    assert 0 < sum(bright) < len(bright)  # the measure is neither trivially 0 nor 1 on this set
