"""Group runs into cells: panels per (dataset, backbone), lines per option value, points per num_desc.

Keypoint runs: columns per part (``<rate>.<part>``) beside the overall rate; marking-bias runs: rows per
phrase and per phrase kind (``bias.<name>.<condition>.prob``, ``bias.<name>.shift_<a>_<b>``).

Whether a results key is an option (a grouping axis) or a measurement is the registry's call
(:mod:`descbench.core.measures`): declared keys never group runs; every other key is an option. Runs of
one cell that differ only by ``seed`` (bookkeeping) are repetitions: the cell is their mean ± sample
std with the count; a run that records ``<measure>.reps`` contributes each repetition.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from descbench.core.measures import REPS, companion, interval_of, is_option
from descbench.core.stats import mean_std
from descbench.report.runs import natural_key

NOT_APPLICABLE = "n/a"
MISSING = object()  # an option a run does not record at all


def display(value: Any) -> str:
    """An option value as a label shows it (Hydra spelling for booleans)."""
    if value is MISSING or value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith("not applicable"):
        return NOT_APPLICABLE
    if isinstance(value, (list, tuple)):
        return "+".join(display(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def short(key: str, keys: Sequence[str]) -> str:
    """``describe.detailed`` -> ``detailed`` unless that would be ambiguous."""
    name = key.removeprefix("describe.")
    clash = any(other != key and other.removeprefix("describe.") == name for other in keys)
    return key if clash else name


def option_keys(results: Sequence[Mapping[str, Any]], exclude: Iterable[str] = ()) -> list[str]:
    """Every option key of the runs, in first-seen order (the registry decides what is not one)."""
    exclude = set(exclude)
    keys: list[str] = []
    for result in results:
        for key, value in result.items():
            if key not in keys and key not in exclude and is_option(key, value):
                keys.append(key)
    return keys


def grouping_keys(results: Sequence[Mapping[str, Any]], first: str, exclude: Iterable[str] = ()) -> list[str]:
    """``first`` (when any run records it) and every other option that tells runs apart (num_desc, seed aside)."""
    keys = option_keys(results, exclude)
    varying = [k for k in keys if len({display(r.get(k, MISSING)) for r in results}) > 1]
    chosen = [first] if first in keys else []
    for key in varying:
        # A key that only follows the ones already chosen (``rule`` is n/a whenever ``detailed`` is true)
        # would split no line: leave it out of the labels.
        if key not in chosen and _splits_groups(results, chosen, key):
            chosen.append(key)
    return chosen


def _splits_groups(results: Sequence[Mapping[str, Any]], chosen: Sequence[str], key: str) -> bool:
    seen: dict[tuple[str, ...], str] = {}
    for result in results:
        group = tuple(display(result.get(k, MISSING)) for k in chosen)
        value = display(result.get(key, MISSING))
        if seen.setdefault(group, value) != value:
            return True
    return False


def undeclared_measurements(results: Sequence[Mapping[str, Any]], first: str, exclude: Iterable[str] = ()) -> list[str]:
    """Grouping keys that hold fractional numbers and are not declared: measurements missing from the registry?"""
    return [
        key
        for key in grouping_keys(results, first, exclude)
        if any(isinstance(r.get(key), float) and not float(r[key]).is_integer() for r in results)
    ]


def group_label(result: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``detailed=true, source=world``: the options that tell this run's line apart (absent options left out)."""
    parts = [f"{short(k, keys)}={display(result[k])}" for k in keys if k in result]
    return ", ".join(parts) or "all runs"


def metric_value(result: Mapping[str, Any], key: str) -> float | None:
    """A numeric results value, or ``None`` (absent, not a number, NaN)."""
    value = result.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def cell_values(result: Mapping[str, Any], key: str) -> list[float]:
    """What a run adds to a cell: its repetitions when it records ``<key>.reps``, else its one value."""
    reps = result.get(companion(key, REPS))
    if isinstance(reps, list) and reps and all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in reps):
        return [float(r) for r in reps]
    value = metric_value(result, key)
    return [] if value is None else [value]


def cell_interval(cell: Sequence[Mapping[str, Any]], key: str, scale: float) -> list[float] | None:
    """The recorded interval of a cell made of one run without repetitions (scaled), else ``None``.

    A cell of several runs or repetitions shows mean ± std over them instead.
    """
    if len(cell) != 1 or len(cell_values(cell[0], key)) != 1:
        return None
    interval = interval_of(cell[0], key)
    return None if interval is None else [interval[0] * scale, interval[1] * scale]


def _order(result: Mapping[str, Any], keys: Sequence[str]) -> tuple:
    return tuple(natural_key(display(result.get(k, MISSING))) for k in keys)


def build_cells(
    results: Sequence[Mapping[str, Any]], first: str = "visual_prompt", exclude: Iterable[str] = ()
) -> dict[str, list[Mapping[str, Any]]]:
    """``{group label: [runs]}`` by ``first`` and every other varying option, in option order."""
    keys = grouping_keys(results, first=first, exclude=exclude)
    cells: dict[str, list[Mapping[str, Any]]] = {}
    order: dict[str, tuple] = {}
    for result in results:
        label = group_label(result, keys)
        order[label] = _order(result, keys)
        cells.setdefault(label, []).append(result)
    return {label: cells[label] for label in sorted(cells, key=lambda g: order[g])}


def cell_stat(cell: Sequence[Mapping[str, Any]], key: str, scale: float) -> tuple[float, float, int] | None:
    """``(mean, std, n)`` of ``key * scale`` over a cell's runs and repetitions; ``None`` when no run has it."""
    values = [v * scale for r in cell for v in cell_values(r, key)]
    return mean_std(values) if values else None


def split_panels(results: Sequence[Mapping[str, Any]]) -> list[tuple[dict[str, str], list[Mapping[str, Any]]]]:
    """One panel per (dataset, backbone): lines from different data or models are never drawn together."""
    panels: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for result in results:
        key = (display(result.get("dataset", MISSING)), display(result.get("backbone", MISSING)))
        panels.setdefault(key, []).append(result)
    return [({"dataset": d, "backbone": b}, rs) for (d, b), rs in panels.items()]


def panel_title(panel: Mapping[str, str]) -> str:
    return f"dataset {panel['dataset']} · backbone {panel['backbone']}"


def legend_title(results: Sequence[Mapping[str, Any]], first: str, exclude: Iterable[str] = ()) -> str:
    keys = grouping_keys(results, first=first, exclude=exclude)
    return ", ".join(short(k, keys) for k in keys) or "all runs"


def common_value(results: Sequence[Mapping[str, Any]], key: str) -> Any:
    """The displayed value all runs share for ``key``, or ``None`` when they differ."""
    values = {display(r.get(key, MISSING)) for r in results}
    return values.pop() if len(values) == 1 else None


# --------------------------------------------------------------------------- keypoints


# --------------------------------------------------------------------------- marking bias


BARS = "mean ± std over seeds; one run: its 95 % interval"


def as_lists(series: Mapping[str, Sequence[tuple]]) -> dict[str, list[list[Any]]]:
    return {label: [list(point) for point in points] for label, points in series.items()}


def figure_data(
    name: str, panels: list[dict[str, Any]], metric: str, scale: float, title: str, xlabel: str, ylabel: str
) -> dict[str, Any]:
    """``{name: {file: <name>.png, title, labels, metric, scale, panels}}``: one figure of ``report_data.json``."""
    fields = {"title": title, "xlabel": xlabel, "ylabel": ylabel, "metric": metric, "scale": scale}
    return {name: {"file": f"{name}.png", **fields, "panels": panels}}
