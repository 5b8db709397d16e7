"""descbench.dashboard: the W&B workspace spec, built offline, reads keys the runs log."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from descbench import dashboard
from descbench.core.measures import resolve


def _spec(**kwargs) -> dict:
    return dashboard.dashboard_spec("acceptance", "descbench", **kwargs)


def test_dry_run_prints_the_spec_without_contacting_wandb(capsys, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert dashboard.main(["--dry-run", "--entity", "e", "--project", "p", "--sweep-group", "mysweep"]) == 0
    spec = json.loads(capsys.readouterr().out)
    assert (spec["entity"], spec["project"], spec["sweep_group"]) == ("e", "p", "mysweep")
    [line_top1] = [p for p in spec["sections"][0]["panels"] if p["type"] == "LinePlot" and "history:top1" in p["y"]]
    assert line_top1 == {
        "type": "LinePlot",
        "title": "top-1 vs num_desc (lines: describe.detailed; 95 % interval keys beside the mean)",
        "x": "history:describe.num_desc",
        "y": ["history:top1", "history:top1.ci_low", "history:top1.ci_high"],
        "groupby": "config:describe.detailed",
        "aggfunc": "mean",
        "rangefunc": "stddev",
    }
    types = [p["type"] for s in spec["sections"] for p in s["panels"]]
    for kind in ("ParallelCoordinatesPlot", "WeavePanelSummaryTable", "MediaBrowser", "ScatterPlot", "BarPlot"):
        assert kind in types


def test_measurement_keys_of_the_panels_are_declared_in_the_registry():
    keys = dashboard.panel_keys(_spec(splits=("val", "testA")))
    measured = (keys["history"] | keys["summary"]) - {"describe.num_desc"}
    assert {k for k in measured if resolve(k) is None} == set()
    assert {"top1", "top1.ci_low", "top1.ci_high", "entropy", "acc", "acc.val", "acc.testA"} <= measured
    assert keys["table"] == {"per_class_acc"} and keys["media"] == {"rec_examples"}


def test_config_columns_exist_in_the_configs_the_runs_log(tmp_path):
    """W&B config = the resolved Hydra config: every config path a panel reads is in it."""
    from conftest import compose_config

    keys = dashboard.panel_keys(_spec())["config"]
    configs = [
        OmegaConf.to_container(compose_config(overrides, tmp_path), resolve=False)
        for overrides in (["describe=llm"], ["task=rec"])
    ]

    def present(path: str) -> bool:  # the key exists (its value may be null, e.g. describe.num_examples)
        for config in configs:
            node, found = config, True
            for part in path.split("."):
                if not isinstance(node, dict) or part not in node:
                    found = False
                    break
                node = node[part]
            if found:
                return True
        return False

    assert {k for k in keys if not present(k)} == set()


def test_the_workspace_is_built_offline_with_the_specs_keys():
    import wandb_workspaces.reports.v2 as wr

    workspace = dashboard.build_workspace(_spec(sweep_group="mysweep"))
    prompt, rec = workspace.sections
    line = prompt.panels[0]
    assert isinstance(line, wr.LinePlot)
    assert (line.x, line.y, line.groupby) == (
        "describe.num_desc",
        ["top1", "top1.ci_low", "top1.ci_high"],
        wr.Config("describe.detailed"),
    )
    [parallel] = [p for p in prompt.panels if isinstance(p, wr.ParallelCoordinatesPlot)]
    assert parallel.columns[0].metric == wr.Config("num_desc") and parallel.columns[-1].metric == wr.SummaryMetric(
        "entropy"
    )
    [media] = [p for p in rec.panels if isinstance(p, wr.MediaBrowser)]
    assert media.media_keys == ["rec_examples"]
    assert workspace.runset_settings.filters == """Metric("Group") == 'mysweep'"""
    dumped = json.dumps(workspace._to_model().model_dump(by_alias=True, exclude_none=True))
    assert '"xAxis": "config:num_desc.value"' in dumped and '"groupBy": "describe.value.detailed"' in dumped


def test_saving_without_credentials_is_a_one_line_error(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb"))
    assert dashboard.main(["--entity", "e", "--project", "p"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: could not save the workspace to W&B e/p: ") and "\n" not in err
    assert err.endswith("(log in with `wandb login` or set WANDB_API_KEY; --dry-run prints the spec offline)")


@pytest.mark.slow
def test_panel_keys_are_logged_by_real_offline_runs(tmp_path):
    """A classification and a REC job with logger=wandb (offline): every key a panel reads is in their records."""
    from conftest import run_eval
    from wandb_records import summarize_run

    logged = {"history": set(), "summary": set()}
    for name, args in {"classify": ["dataset.limit=32"], "rec": ["task=rec", "dataset.limit=16"]}.items():
        done = run_eval(["logger=wandb", *args, f"hydra.run.dir={tmp_path / name}"], cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        [run_file] = (tmp_path / name / "wandb").glob("offline-run-*/run-*.wandb")
        run = summarize_run(run_file)
        logged["history"] |= set(run["history"])
        logged["summary"] |= set(run["summary"])
    keys = dashboard.panel_keys(_spec())
    assert keys["history"] - logged["history"] == set()
    assert keys["summary"] - logged["summary"] == set()
    # tables and images are logged as W&B objects: their summary entries are "<key>._type", ...
    assert {f"{k}._type" for k in keys["table"] | keys["media"]} <= logged["summary"]


@pytest.mark.parametrize(
    "args, expect",
    [
        (
            ["--name", "sweep 🚀"],
            "error: the workspace cannot be built: --name 'sweep 🚀': Value error, Emojis are not allowed",
        ),
        (["--splits", "val,a.b"], "error: --splits: the split 'a.b' holds a '.': give the split names"),
        (["--splits", "ci_low"], "error: --splits: the split 'ci_low' is a reserved result-key word"),
    ],
)
def test_names_the_workspace_refuses_are_one_line(capsys, args, expect):
    assert dashboard.main(["--dry-run", "--entity", "e", "--project", "p", *args]) == 2
    out = capsys.readouterr()
    assert out.err.startswith(expect) and len(out.err.strip().splitlines()) == 1 and not out.out, out.err
