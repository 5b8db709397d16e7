"""The report's figures as data, panel by panel: what ``report_data.json`` stores and the plots draw.

A series point is ``[num_desc, mean, std, n]`` (a REC, keypoint or bias cell ``[mean, std, n]``) in display
units; a panel's ``intervals`` hold the recorded 95 % interval of every cell that is one run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from descbench.report.groups import (
    GROUPING,
    NUM_DESC,
    bias_key,
    bias_measures,
    bias_rows,
    build_cells,
    build_intervals,
    build_rec_cells,
    build_rec_series,
    build_series,
    cell_interval,
    cell_stat,
    common_value,
    group_cells,
    keypoint_columns,
    legend_title,
    metric_value,
    panel_title,
    rec_key,
    rec_splits,
    split_modes,
    split_panels,
)

XLABEL = "num_desc (descriptors per in-context example)"
_BARS = "mean ± std over seeds; one run: its 95 % interval"


def _lists(series: Mapping[str, Sequence[tuple]]) -> dict[str, list[list[Any]]]:
    return {label: [list(point) for point in points] for label, points in series.items()}


#: set by ``describe.exclude_wrong_count=point`` (the study's rule): most classes answered another count
POINT_EXCLUDED, WRONG_COUNT_SHARE = "describe.stats.point_excluded", "describe.stats.wrong_count_share"


def excluded_points(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[Any, float]]:
    """``{line label: {num_desc: share of classes with another count, in %}}`` of the points whose every run
    is marked excluded by the study's rule: the curves leave them out, the tables say why."""
    out: dict[str, dict[Any, float]] = {}
    for label, by_x in group_cells(results, "top1").items():
        for x, cell in by_x.items():
            if cell and all(r.get(POINT_EXCLUDED) is True for r in cell):
                shares = [float(r.get(WRONG_COUNT_SHARE, float("nan"))) for r in cell]
                out.setdefault(label, {})[x] = 100 * sum(shares) / len(shares)
    return out


def _without(points: Mapping[str, Sequence[Sequence[Any]]], excluded: Mapping[str, Mapping[Any, float]]):
    return {label: [p for p in pts if p[0] not in excluded.get(label, {})] for label, pts in points.items()}


def classification_data(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The two classification figures, panel by panel, exactly as plotted (points excluded by the study's
    rule left out of the series and listed under ``excluded``: ``[[label, num_desc, share %], ...]``)."""
    acc_panels, ent_panels = [], []
    for panel, rs in split_panels(results):
        excluded = excluded_points(rs)
        legend = legend_title(rs, "describe.detailed", exclude={NUM_DESC})
        chances = {metric_value(r, "chance_top1") for r in rs}
        chance = chances.pop() if len(chances) == 1 else None  # one chance level per panel, or none drawn
        base = {
            **panel,
            "title": panel_title(panel),
            "legend_title": legend,
            "excluded": [[label, x, share] for label, xs in excluded.items() for x, share in xs.items()],
        }
        acc_panels.append(
            {
                **base,
                "chance": chance * 100 if chance is not None else None,
                "series": _lists(_without(build_series(rs, "top1"), excluded)),
                "intervals": _without(build_intervals(rs, "top1"), excluded),
            }
        )
        ent_panels.append(
            {
                **base,
                "chance": None,
                "series": _lists(_without(build_series(rs, "entropy", scale=1.0), excluded)),
                "intervals": _without(build_intervals(rs, "entropy", scale=1.0), excluded),
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


def keypoint_data(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One figure per keypoint mode present (``keypoints_pck``, ``keypoints_naming``), panel by panel.

    A panel holds the columns (overall rate, the mode's summary columns, one per part) and, per row
    (option value), each column's ``[mean, std, n]`` in %, the recorded interval of a one-run cell and
    the chance level, all keyed by the column's results key.
    """
    first, exclude = GROUPING["keypoints"]
    figures: dict[str, Any] = {}
    for mode, of_mode in split_modes(results):
        panels = []
        for panel, rs in split_panels(of_mode):
            columns = keypoint_columns(rs, mode)
            series: dict[str, dict[str, list[float]]] = {}
            intervals: dict[str, dict[str, list[float]]] = {}
            chance: dict[str, dict[str, float]] = {}
            for label, cell in build_cells(rs, first, exclude).items():
                for column in columns:
                    key = column["key"]
                    stat = cell_stat(cell, key, 100.0)
                    if stat is None:
                        continue
                    series.setdefault(label, {})[key] = list(stat)
                    interval = cell_interval(cell, key, 100.0)
                    if interval is not None:
                        intervals.setdefault(label, {})[key] = interval
                    level = cell_stat(cell, column["chance_key"], 100.0)
                    if level is not None:
                        chance.setdefault(label, {})[key] = level[0]
            panels.append(
                {
                    **panel,
                    "title": panel_title(panel),
                    "legend_title": legend_title(rs, first, exclude),
                    "columns": columns,
                    "series": series,
                    "intervals": intervals,
                    "chance": chance,
                }
            )
        alpha = common_value(of_mode, "pck_alpha")
        if mode.rate == "pck":
            name, what = "keypoints_pck", f"PCK@{alpha or 'α'}"
        else:
            name, what = "keypoints_naming", "naming accuracy"
        figures[name] = {
            "file": f"{name}.png",
            "mode": mode.name,
            "title": f"Keypoint {mode.name}: {what} per part ({_BARS}; dash: chance)",
            "xlabel": "visual prompt and options",
            "ylabel": f"{what} (%)",
            "metric": mode.rate,
            "scale": 100.0,
            "panels": panels,
        }
    return figures


def bias_data(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The marking-bias figure: a panel per (dataset, backbone) and option value; per phrase and kind row the
    mean probability of each condition and the shifts as ``[mean, std, n]`` (probabilities, not %), the
    recorded bootstrap interval of a one-run cell, and the runs' numbers of images."""
    first, exclude = GROUPING["marking_bias"]
    panels = []
    for panel, rs in split_panels(results):
        legend = legend_title(rs, first, exclude)
        for label, cell in build_cells(rs, first, exclude).items():
            _, conditions, shifts = bias_measures(cell)
            series: dict[str, dict[str, list[float]]] = {}
            intervals: dict[str, dict[str, list[float]]] = {}
            rows = bias_rows(cell)
            for row in rows:
                for name in conditions + shifts:
                    key = bias_key(row["name"], name)
                    stat = cell_stat(cell, key, 1.0)
                    if stat is None:
                        continue
                    series.setdefault(row["name"], {})[name] = list(stat)
                    interval = cell_interval(cell, key, 1.0)
                    if interval is not None:
                        intervals.setdefault(row["name"], {})[name] = interval
            panels.append(
                {
                    **panel,
                    "title": f"{panel_title(panel)} · {label}",
                    "label": label,
                    "legend_title": legend,
                    "rows": rows,
                    "conditions": conditions,
                    "shifts": shifts,
                    "num_images": [r.get("num_images") for r in cell],
                    "series": series,
                    "intervals": intervals,
                }
            )
    return {
        "marking_bias": {
            "file": "marking_bias.png",
            "title": f"Marking bias: shift of the mean phrase probability ({_BARS})",
            "xlabel": "phrase (kind); a kind sums its phrases per image",
            "ylabel": "shift in probability",
            "metric": "shift",
            "scale": 1.0,
            "panels": panels,
        }
    }
