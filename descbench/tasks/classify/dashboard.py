"""The classification section of the W&B workspace (:mod:`descbench.dashboard`): accuracy and confidence vs
``num_desc``, the options, the per-class table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from descbench.core.measures import measure, measures_of
from descbench.dashboard import with_interval
from descbench.tasks.classify import DEFINITION, NUM_DESC

# The options a prompt-option sweep varies, as paths of the config each run logs (display name, path).
OPTIONS = (
    ("num_desc", "num_desc"),
    ("detailed", "describe.detailed"),
    ("instruction", "describe.instruction"),
    ("examples", "describe.num_examples"),
    ("source", "describe._target_"),
    ("dataset", "dataset.name"),
    ("backbone", "backbone.model"),
    ("aggregation", "task.aggregation"),
    ("entropy scale", "task.entropy_scale"),
    ("seed", "seed"),
)


def _vs_num_desc(key: str) -> list[dict[str, Any]]:
    name = measure(key).display
    return [
        {
            "type": "LinePlot",
            "title": f"{name} vs num_desc (lines: describe.detailed; 95 % interval keys beside the mean)",
            "x": f"history:{NUM_DESC}",
            "y": [f"history:{k}" for k in with_interval(key)],
            "groupby": "config:describe.detailed",
            "aggfunc": "mean",
            "rangefunc": "stddev",
        },
        {"type": "ScatterPlot", "title": f"{name} per run vs num_desc", "x": "config:num_desc", "y": f"summary:{key}"},
    ]


def section(splits: Sequence[str] = ()) -> tuple[str, list[dict[str, Any]]]:
    """``(title, panels)`` of the classification section."""
    top1 = DEFINITION.primary
    tables = [m.key for m in measures_of(DEFINITION.name, kinds=("table",))]
    panels = [*_vs_num_desc(top1), *_vs_num_desc("entropy")]
    panels += [
        {
            "type": "ParallelCoordinatesPlot",
            "title": "every option -> top-1 and entropy",
            "columns": [[label, f"config:{path}"] for label, path in OPTIONS]
            + [[measure(k).display, f"summary:{k}"] for k in (top1, "entropy")],
        },
        *({"type": "WeavePanelSummaryTable", "title": f"{key} (per run)", "table": f"table:{key}"} for key in tables),
        {"type": "RunComparer", "title": "options and metrics side by side", "diff_only": "split"},
    ]
    return "Prompt options: accuracy and confidence vs num_desc", panels
