"""The REC section of the W&B workspace (:mod:`descbench.dashboard`): accuracy per run and per split, the
options, the example images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from descbench.core.measures import measure
from descbench.dashboard import with_interval
from descbench.tasks.rec import DEFINITION

#: logged by the REC job (:func:`descbench.tasks.rec.outputs.wandb_examples`): images with gold/predicted boxes
EXAMPLES = "rec_examples"
OPTIONS = (
    ("dataset", "dataset.name"),
    ("backbone", "backbone.model"),
    ("subtract", "task.subtract"),
    ("negatives", "task.negatives"),
    ("seed", "seed"),
)


def section(splits: Sequence[str] = ("val",)) -> tuple[str, list[dict[str, Any]]]:
    """``(title, panels)`` of the REC section, charting ``splits``."""
    acc = DEFINITION.primary
    split_keys = [f"{acc}.{split}" for split in splits]
    for key in split_keys:
        measure(key)  # a split key the registry does not declare is a bug here, not a blank panel
    panels = [
        {
            "type": "BarPlot",
            "title": "REC accuracy per run, with its 95 % interval keys",
            "metrics": [f"history:{k}" for k in with_interval(acc)],
        },
        {
            "type": "BarPlot",
            "title": f"REC accuracy per split ({', '.join(splits)})",
            "metrics": [f"history:{k}" for k in split_keys],
        },
        {
            "type": "ParallelCoordinatesPlot",
            "title": "REC options -> accuracy",
            "columns": [[label, f"config:{path}"] for label, path in OPTIONS]
            + [[measure(acc).display, f"summary:{acc}"]],
        },
        {
            "type": "MediaBrowser",
            "title": "examples: gold (green) and predicted (red) boxes",
            "media": [f"media:{EXAMPLES}"],
        },
    ]
    return "Referring expressions (REC)", panels
