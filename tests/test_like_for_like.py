"""Like for like with the papers: the study's exclusion rule in the report, and `make study` composing."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from descbench.report import write_report
from descbench.tasks.classify.report import classification_data

ROOT = Path(__file__).resolve().parent.parent


def study_run(num_desc: int, detailed: bool, top1: float, excluded: bool = False, share: float = 0.0) -> dict:
    return {
        "task": "classify",
        "top1": top1,
        "top1.ci_low": top1 - 0.01,
        "top1.ci_high": top1 + 0.01,
        "entropy": 1.0,
        "dataset": "shapes",
        "backbone": "shapes-clip",
        "describe.source": "llm",
        "describe.num_desc": num_desc,
        "describe.detailed": detailed,
        "describe.exclude_wrong_count": "point",
        "describe.stats.point_excluded": excluded,
        "describe.stats.wrong_count_share": share,
        "seed": 0,
    }


def test_an_excluded_point_leaves_the_curve_and_the_table_says_why(tmp_path):
    runs = {
        "d1": study_run(1, True, 0.40),
        "d2": study_run(2, True, 0.50),
        "d3": study_run(3, True, 0.10, excluded=True, share=0.8),
        "w3": study_run(3, False, 0.55),
    }
    data = classification_data(list(runs.values()))
    [panel] = data["accuracy_vs_num_desc"]["panels"]
    assert panel["excluded"] == [["detailed=true", 3, 80.0]]
    assert [p[0] for p in panel["series"]["detailed=true"]] == [1, 2]  # 3 is out of the curve
    assert [p[0] for p in panel["series"]["detailed=false"]] == [3]
    assert [i[0] for i in panel["intervals"]["detailed=true"]] == [1, 2]
    for name, results in runs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results))
    write_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 3 |"))
    assert "excluded (the study's rule: 80 % of classes answered another count than the examples')" in row
    assert "55.00" in row  # the word point at |D| = 3 stays


# ---------------------------------------------------------------------------- `make study`


def study_commands() -> list[list[str]]:
    """The commands of the Makefile's ``study`` target, as argument lists after ``$(PY)``."""
    text = (ROOT / "Makefile").read_text()
    recipe = text.split("\nstudy:", 1)[1].split("\n\n", 1)[0].split("\n", 1)[1]
    joined = recipe.replace("\\\n", " ")
    return [shlex.split(c)[1:] for c in joined.split(";") if "$(PY)" in c]


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The jobs Hydra's basic sweeper makes of ``-m OVERRIDES``: the preset's ``hydra.sweeper.params`` first, the
    command line's after (a key given on both keeps the command line's), expanded by Hydra's own splitter."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from descbench.shell.cli import expand_ranges
    from descbench.shell.config import compose_config

    overrides = expand_ranges(overrides)
    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    cfg = compose_config(fixed, return_hydra_config=True)
    params = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.params or {}).items()]
    parsed = parser.parse_overrides(params + overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def test_make_study_composes_every_job_of_every_arm(tmp_path):
    """Every command of `make study` composes, passes the config checks, and builds its prompts (no model):
    the grid (14), role and rule at |D| = 7, 1 and 2 examples at |D| = 7, the waffle control (7), one report."""
    from descbench.descriptions.llm.source import dry_run_prompt
    from descbench.shell.checks import check_config
    from descbench.shell.config import compose_config

    commands = study_commands()
    assert [c[:2] for c in commands] == [["-m", "descbench.eval"]] * 4 + [["-m", "descbench.report"]]
    assert commands[-1][2] == "$$d"  # one report over the parent dir of every arm
    arms = {}
    for command in commands[:-1]:
        assert command[2] == "-m"  # each arm is a sweep
        sweep_dir = next(a for a in command if a.startswith("hydra.sweep.dir="))
        overrides = [a for a in command[3:] if a != sweep_dir]
        jobs = sweep_jobs(overrides)
        arms[sweep_dir.rsplit("/", 1)[1]] = jobs
        for job in jobs:
            cfg = compose_config(
                ["logger=none", f"paths.cache_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}", *job]
            )
            check_config(cfg, multirun=True)
            describe = cfg.describe if "llm.source" in cfg.describe._target_ else cfg.describe.base
            assert describe._target_.endswith("llm.source.llm") and describe.bank == "study"
            assert describe.detailed_prefix == "rule"
            options = {"num_examples": 2, **describe, "num_desc": cfg.num_desc, "detailed": cfg.describe.detailed}
            prompt = dry_run_prompt(options, "tench")
            assert prompt.endswith("a tench in a photo:\n-\n") and prompt.count("Q: ") == options["num_examples"] + 1
    assert {arm: len(jobs) for arm, jobs in arms.items()} == {"grid": 14, "instruction": 2, "examples": 2, "waffle": 7}
    assert sorted(j for job in arms["instruction"] for j in job if j.startswith("describe.instruction")) == [
        "describe.instruction=role",
        "describe.instruction=rule",
    ]
    lowered = {arm: [[o.lower() for o in job] for job in jobs] for arm, jobs in arms.items()}
    assert all("num_desc=7" in job and "describe.detailed=false" in job for job in lowered["examples"])
    assert all("describe.detailed=false" in job for job in lowered["waffle"])


def test_the_upper_bound_in_the_results_is_the_share_of_reachable_expressions():
    """Four expressions, hand-computed: only the first has a candidate with IoU > 0.5 with its gold box."""
    from types import SimpleNamespace

    from descbench.core.marking.expressions import RefExpression
    from descbench.tasks.rec.outputs import proposal_fields

    gold = [10.0, 10.0, 20.0, 20.0]
    expressions = [
        RefExpression("1", "a", [[10.0, 10.0, 20.0, 20.0], [0.0, 0.0, 5.0, 5.0]], gold, "val"),  # IoU 1
        RefExpression("1", "b", [[10.0, 10.0, 20.0, 10.0]], gold, "val"),  # IoU 0.5: not above
        RefExpression("2", "c", [[0.0, 0.0, 5.0, 5.0]], gold, "testA"),  # IoU 0
        RefExpression("2", "d", [[0.0, 0.0, 100.0, 100.0]], gold, "testA"),  # the whole image: IoU 0.04
    ]
    dataset = SimpleNamespace(expressions=expressions)
    predictions = [SimpleNamespace(index=i, split=e.split) for i, e in enumerate(expressions)]
    assert proposal_fields(dataset, predictions, ["val", "testA"]) == {
        "upper_bound": 0.25,
        "upper_bound.val": 0.5,
        "upper_bound.testA": 0.0,
    }
