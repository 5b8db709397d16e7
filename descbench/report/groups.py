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
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from descbench.core.measures import REPS, companion, interval_of, is_option, resolve
from descbench.core.stats import mean_std
from descbench.report.runs import natural_key

NOT_APPLICABLE = "n/a"
MISSING = object()  # an option a run does not record at all
# Plotted on the x axis, or averaged over: not a line of its own.
NUM_DESC = "describe.num_desc"
REC_SPLIT_MEASURE = "acc.<split>"
# Per task: the option that leads the group labels, and options that never split a group.
GROUPING: dict[str, tuple[str, frozenset[str]]] = {
    "classify": ("describe.detailed", frozenset({NUM_DESC})),
    "rec": ("visual_prompt", frozenset()),
    "keypoints": ("visual_prompt", frozenset({"mode"})),
    "marking_bias": ("visual_prompt", frozenset()),
}


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


def num_desc_of(result: Mapping[str, Any]) -> int | float | None:
    value = result.get(NUM_DESC)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None  # not applicable to the source (e.g. classname): a horizontal reference line
    return value


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


def _x_order(x: Any) -> tuple:
    return (x is None, x if x is not None else 0)


def group_cells(
    results: Sequence[Mapping[str, Any]], metric: str, first: str = "describe.detailed"
) -> dict[str, dict[int | float | None, list[Mapping[str, Any]]]]:
    """``{line label: {num_desc: [runs]}}`` of the runs that hold ``metric``, lines in option order."""
    keys = grouping_keys(results, first=first, exclude={NUM_DESC})
    cells: dict[str, dict[Any, list[Mapping[str, Any]]]] = {}
    order: dict[str, tuple] = {}
    for result in results:
        if not cell_values(result, metric):
            continue
        label = group_label(result, keys)
        order[label] = _order(result, keys)
        cells.setdefault(label, {}).setdefault(num_desc_of(result), []).append(result)
    return {
        label: {x: cells[label][x] for x in sorted(cells[label], key=_x_order)}
        for label in sorted(cells, key=lambda g: order[g])
    }


def build_series(
    results: Sequence[Mapping[str, Any]], metric: str = "top1", scale: float = 100.0
) -> dict[str, list[tuple[int | float | None, float, float, int]]]:
    """``{group label: [(num_desc, mean, std, n), ...]}`` of ``metric * scale`` over the runs' seeds.

    One group per ``describe.detailed`` value and per value of every other option that varies
    (num_desc and seed aside); ``num_desc`` is ``None`` for sources where it does not apply.
    """
    return {
        label: [(x, *mean_std([v * scale for r in cell for v in cell_values(r, metric)])) for x, cell in by_x.items()]
        for label, by_x in group_cells(results, metric).items()
    }


def build_intervals(
    results: Sequence[Mapping[str, Any]], metric: str = "top1", scale: float = 100.0
) -> dict[str, list[list[Any]]]:
    """``{group label: [[num_desc, low, high], ...]}``: the recorded interval of every one-run cell."""
    intervals: dict[str, list[list[Any]]] = {}
    for label, by_x in group_cells(results, metric).items():
        for x, cell in by_x.items():
            interval = cell_interval(cell, metric, scale)
            if interval is not None:
                intervals.setdefault(label, []).append([x, *interval])
    return intervals


def rec_splits(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """``all`` (the overall accuracy) then each split found as an ``acc.<split>`` key, in first-seen order."""
    splits: list[str] = []
    if any(metric_value(r, "acc") is not None for r in results):
        splits.append("all")
    for result in results:
        for key in result:
            found = resolve(key)
            if found and found.suffix is None and found.measure.key == REC_SPLIT_MEASURE:
                split = key.removeprefix("acc.")
                if split not in splits and metric_value(result, key) is not None:
                    splits.append(split)
    return splits


def rec_key(split: str) -> str:
    """The results key of a REC split's accuracy (``all`` is the overall ``acc``)."""
    return "acc" if split == "all" else f"acc.{split}"


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


def build_rec_cells(results: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """``{group label: [runs]}`` by visual prompt and every other varying option, in option order."""
    return build_cells(results, first="visual_prompt")


def cell_stat(cell: Sequence[Mapping[str, Any]], key: str, scale: float) -> tuple[float, float, int] | None:
    """``(mean, std, n)`` of ``key * scale`` over a cell's runs and repetitions; ``None`` when no run has it."""
    values = [v * scale for r in cell for v in cell_values(r, key)]
    return mean_std(values) if values else None


def build_rec_series(
    results: Sequence[Mapping[str, Any]], scale: float = 100.0
) -> dict[str, dict[str, tuple[float, float, int]]]:
    """``{group label: {split: (mean, std, n)}}`` of REC accuracy in %; groups by visual prompt and varying options."""
    splits = rec_splits(results)
    series: dict[str, dict[str, tuple[float, float, int]]] = {}
    for label, cell in build_rec_cells(results).items():
        per_split = {}
        for split in splits:
            values = [v * scale for r in cell for v in cell_values(r, rec_key(split))]
            if values:
                per_split[split] = mean_std(values)
        series[label] = per_split
    return series


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


@dataclass(frozen=True)
class KeypointMode:
    """How one keypoint mode is reported: its rate, its chance level, and summary columns besides the parts."""

    name: str
    rate: str  # the overall measure; a part's measure is ``<rate>.<part>``
    chance: str  # its chance level; a part's chance is ``chance_<rate>.<part>`` when the job writes one
    extras: tuple[tuple[str, str, str], ...] = ()  # (column name, measure, its chance level)


KEYPOINT_MODES = (
    KeypointMode("localization", "pck", "chance_pck"),
    KeypointMode("naming", "acc", "chance_acc", (("left/right merged", "acc_lr_merged", "chance_acc_lr_merged"),)),
)
ALL_PARTS = "all parts"


def keypoint_mode(result: Mapping[str, Any]) -> KeypointMode:
    """The mode a keypoint run recorded (``mode``); a run without one is read by the rate it holds."""
    for mode in KEYPOINT_MODES:
        if result.get("mode") == mode.name:
            return mode
    return KEYPOINT_MODES[1] if "pck" not in result and "acc" in result else KEYPOINT_MODES[0]


def split_modes(results: Sequence[Mapping[str, Any]]) -> list[tuple[KeypointMode, list[Mapping[str, Any]]]]:
    """The keypoint runs of each mode present: the modes write different keys, so they never share a table."""
    by_mode = [(mode, [r for r in results if keypoint_mode(r) is mode]) for mode in KEYPOINT_MODES]
    return [(mode, rs) for mode, rs in by_mode if rs]


def keypoint_parts(results: Sequence[Mapping[str, Any]], rate: str) -> list[str]:
    """The parts with a measured ``<rate>.<part>`` in any run, in first-seen order (companions left out)."""
    parts: list[str] = []
    for result in results:
        for key in result:
            found = resolve(key)
            if key.startswith(rate + ".") and found is not None and found.suffix is None:
                part = key.removeprefix(rate + ".")
                if part not in parts and metric_value(result, key) is not None:
                    parts.append(part)
    return parts


def keypoint_columns(results: Sequence[Mapping[str, Any]], mode: KeypointMode) -> list[dict[str, Any]]:
    """``[{name, key, chance_key, part}]``: the overall rate, the mode's summary columns, then one per part."""
    columns: list[dict[str, Any]] = [{"name": ALL_PARTS, "key": mode.rate, "chance_key": mode.chance, "part": False}]
    columns += [{"name": name, "key": key, "chance_key": chance, "part": False} for name, key, chance in mode.extras]
    columns += [
        {"name": part, "key": f"{mode.rate}.{part}", "chance_key": f"chance_{mode.rate}.{part}", "part": True}
        for part in keypoint_parts(results, mode.rate)
    ]
    return [c for c in columns if any(metric_value(r, c["key"]) is not None for r in results)]


# --------------------------------------------------------------------------- marking bias

BIAS_PREFIX = "bias."
PROB_SUFFIX = ".prob"
# ``id (kind): text``: how a bias run records each phrase it scored (``phrases``)
_PHRASE_LINE = re.compile(r"(?P<id>.+?) \((?P<kind>[^()]*)\): ")


def phrase_kinds(results: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``{phrase id: kind}`` from the runs' recorded ``phrases`` lines."""
    kinds: dict[str, str] = {}
    for result in results:
        lines = result.get("phrases")
        for line in lines if isinstance(lines, list) else []:
            found = _PHRASE_LINE.match(str(line))
            if found:
                kinds.setdefault(found["id"], found["kind"])
    return kinds


def bias_measures(results: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str], list[str]]:
    """(names, conditions, shifts) of the ``bias.<name>.<condition>.prob`` / ``bias.<name>.shift_<a>_<b>``
    measures the runs hold, each in first-seen order."""
    names: list[str] = []
    conditions: list[str] = []
    shifts: list[str] = []
    for result in results:
        for key in result:
            found = resolve(key)
            if found is None or found.suffix is not None or not found.measure.key.startswith(BIAS_PREFIX):
                continue
            name, rest = key.removeprefix(BIAS_PREFIX).split(".", 1)
            target = conditions if rest.endswith(PROB_SUFFIX) else shifts
            for items, item in ((names, name), (target, rest.removesuffix(PROB_SUFFIX))):
                if item not in items:
                    items.append(item)
    return names, conditions, shifts


def bias_key(name: str, measure_name: str) -> str:
    """The results key of a phrase's (or kind's) condition probability or shift."""
    return f"{BIAS_PREFIX}{name}.{measure_name}" + ("" if measure_name.startswith("shift_") else PROB_SUFFIX)


def bias_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[{name, kind, aggregate}]``: the phrases in their order, then the kinds (each the sum of its phrases).

    A name that is some phrase's kind is a kind row; without recorded ``phrases`` every name is a phrase
    of unknown kind.
    """
    names, _, _ = bias_measures(results)
    kinds = phrase_kinds(results)
    kind_names = set(kinds.values())
    rows = [{"name": n, "kind": kinds.get(n), "aggregate": False} for n in names if n not in kind_names]
    return rows + [{"name": n, "kind": n, "aggregate": True} for n in names if n in kind_names]
