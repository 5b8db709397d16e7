"""Like for like with the papers: the study's exclusion rule in the report, and `make study` composing."""

from __future__ import annotations

import json

from descbench.report import write_report
from descbench.report.figures import classification_data


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
