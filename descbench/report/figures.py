"""The report's figures as data, panel by panel: what ``report_data.json`` stores and the plots draw.

A series point is ``[num_desc, mean, std, n]`` (a REC cell ``[mean, std, n]``) in display units; a
panel's ``intervals`` hold the recorded 95 % interval of every cell that is one run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from descbench.report.groups import (
    NUM_DESC,
    build_intervals,
    build_rec_cells,
    build_rec_series,
    build_series,
    cell_interval,
    common_value,
    legend_title,
    metric_value,
    panel_title,
    rec_key,
    rec_splits,
    split_panels,
)

XLABEL = "num_desc (descriptors per in-context example)"
_BARS = "mean ± std over seeds; one run: its 95 % interval"


def _lists(series: Mapping[str, Sequence[tuple]]) -> dict[str, list[list[Any]]]:
    return {label: [list(point) for point in points] for label, points in series.items()}


def classification_data(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The two classification figures, panel by panel, exactly as plotted."""
    acc_panels, ent_panels = [], []
    for panel, rs in split_panels(results):
        legend = legend_title(rs, "describe.detailed", exclude={NUM_DESC})
        chances = {metric_value(r, "chance_top1") for r in rs}
        chance = chances.pop() if len(chances) == 1 else None  # one chance level per panel, or none drawn
        base = {**panel, "title": panel_title(panel), "legend_title": legend}
        acc_panels.append(
            {
                **base,
                "chance": chance * 100 if chance is not None else None,
                "series": _lists(build_series(rs, "top1")),
                "intervals": build_intervals(rs, "top1"),
            }
        )
        ent_panels.append(
            {
                **base,
                "chance": None,
                "series": _lists(build_series(rs, "entropy", scale=1.0)),
                "intervals": build_intervals(rs, "entropy", scale=1.0),
            }
        )
    scale = common_value(results, "entropy_scale")
    return {
        "accuracy_vs_num_desc": {
            "file": "accuracy_vs_num_desc.png",
            "title": f"Top-1 accuracy vs. num_desc ({_BARS})",
            "xlabel": XLABEL,
            "ylabel": "top-1 accuracy (%)",
            "metric": "top1",
            "scale": 100.0,
            "panels": acc_panels,
        },
        "entropy_vs_num_desc": {
            "file": "entropy_vs_num_desc.png",
            "title": f"Mean prediction entropy vs. num_desc ({_BARS})",
            "xlabel": XLABEL,
            "ylabel": f"mean prediction entropy (nats{', ' + scale + ' scale' if scale else ''})",
            "metric": "entropy",
            "scale": 1.0,
            "panels": ent_panels,
        },
    }


def rec_data(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The REC figure, panel by panel, exactly as plotted."""
    panels = []
    for panel, rs in split_panels(results):
        splits = rec_splits(rs)
        series = build_rec_series(rs)
        intervals: dict[str, dict[str, list[float]]] = {}
        for label, cell in build_rec_cells(rs).items():
            for split in splits:
                interval = cell_interval(cell, rec_key(split), 100.0)
                if interval is not None:
                    intervals.setdefault(label, {})[split] = interval
        panels.append(
            {
                **panel,
                "title": panel_title(panel),
                "legend_title": legend_title(rs, "visual_prompt"),
                "splits": splits,
                "series": {label: {s: list(v) for s, v in cells.items()} for label, cells in series.items()},
                "intervals": intervals,
            }
        )
    return {
        "rec_accuracy": {
            "file": "rec_accuracy.png",
            "title": f"REC accuracy per split and visual prompt ({_BARS})",
            "xlabel": "split",
            "ylabel": "accuracy (%, IoU ≥ 0.5)",
            "metric": "acc",
            "scale": 100.0,
            "panels": panels,
        }
    }
