"""``python -m descbench.report DIR``: merge the ``results.json`` of a run or multirun into tables and plots.

Writes ``report.md``, ``accuracy_vs_num_desc.png``, ``entropy_vs_num_desc.png`` (classification),
``rec_accuracy.png`` (REC) and ``report_data.json`` (exactly the plotted series) into the given dir
or ``--out``. Repeats over seeds are averaged (mean ± sample std, with the count); jobs that failed
or never ran are listed, not hidden.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from descbench.errors import ReportError

RESULTS = "results.json"
NOT_APPLICABLE = "n/a"
MISSING = object()  # an option a run does not record at all

# Keys that are measurements, bookkeeping or derived from another key: never a grouping option.
NOT_OPTIONS = {
    "task",
    "top1",
    "top5",
    "mean_per_class_acc",
    "entropy",
    "ece",
    "top5_k",
    "ece_scale",
    "chance_top1",
    "num_samples",
    "num_classes",
    "describe.num_texts",
    "per_class_acc",
    "overrides",
    "note",
    "seed",
    "acc",
}
# Plotted on the x axis, or averaged over: not a line of its own.
NUM_DESC = "describe.num_desc"
_REC_SPLIT = re.compile(r"^acc[./_:](.+)$")
# Hydra run outputs that are never job dirs and can be large.
_SKIP_DIRS = {"wandb", "cache", "__pycache__"}


@dataclass
class Run:
    """One job's results and where they came from (``dir`` relative to the report root)."""

    dir: str
    results: dict[str, Any]


@dataclass
class MissingJob:
    """A job dir without results, or a sweep point without a job dir."""

    where: str
    overrides: str
    reason: str


@dataclass
class Report:
    """What ``write_report`` produced."""

    out_dir: Path
    runs: list[Run]
    missing: list[MissingJob]
    files: list[Path] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading


def _natural_key(text: str) -> list[Any]:
    """``2`` before ``10``: numbered job dirs in their sweep order."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


def _rel(path: Path, root: Path) -> str:
    rel = os.path.relpath(path, root)
    return "." if rel == "." else Path(rel).as_posix()


def _walk(root: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(results.json files, Hydra job dirs, multirun.yaml files) under ``root``, in natural order."""
    results, jobs, sweeps = [], [], []
    for current, dirs, files in os.walk(root):
        here = Path(current)
        if ".hydra" in dirs:
            jobs.append(here)
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS]
        if RESULTS in files:
            results.append(here / RESULTS)
        if "multirun.yaml" in files:
            sweeps.append(here / "multirun.yaml")
    order = lambda p: _natural_key(_rel(p, root))  # noqa: E731
    return sorted(results, key=order), sorted(jobs, key=order), sorted(sweeps, key=order)


def _job_overrides(job_dir: Path) -> list[str] | None:
    path = job_dir / ".hydra" / "overrides.yaml"
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return [str(item) for item in loaded] if isinstance(loaded, list) else None


def _canonical(overrides: Iterable[str]) -> frozenset[tuple[str, str]] | None:
    """Overrides as {(key, value)} so that ``x=True`` (a sweep's expansion) equals ``x=true`` (the job's)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    items = {}
    try:
        for override in parser.parse_overrides(list(overrides)):
            items[override.get_key_element()] = json.dumps(override.value(), sort_keys=True, default=str)
    except Exception:  # an override Hydra cannot parse: no match rather than a crash
        return None
    return frozenset(items.items())


def _hydra_str(value: Any, override_type: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return override_type._get_value_element_as_str(value)


def expected_sweep_points(multirun_yaml: Path) -> list[list[str]]:
    """Every job a sweep asked for, in job-number order, as its list of overrides (Hydra's basic sweeper)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override

    from descbench.cli import expand_ranges

    config = yaml.safe_load(multirun_yaml.read_text(encoding="utf-8")) or {}
    hydra_cfg = config.get("hydra") or {}
    params = (hydra_cfg.get("sweeper") or {}).get("params") or {}
    task = (hydra_cfg.get("overrides") or {}).get("task") or []
    arguments = [f"{key}={value}" for key, value in params.items()] + expand_ranges([str(t) for t in task])
    axes: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(arguments):
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise ValueError(f"cannot list the points of the sweep {key} (not a discrete sweep)")
            # Hydra's own spelling of each value (``true``, not Python's ``True``), as the job's overrides.yaml has it
            axes[key] = [f"{key}={_hydra_str(value, Override)}" for value in override.sweep_iterator()]
        else:
            axes[key] = [f"{key}={override.get_value_element_as_str()}"]
    points: list[list[str]] = [[]]
    for values in axes.values():
        points = [point + [value] for point in points for value in values]
    return points


def load_runs(root: Path) -> tuple[list[Run], list[MissingJob]]:
    """Every ``results.json`` under ``root``, and every job that has none (failed, or never ran)."""
    result_files, job_dirs, sweep_files = _walk(root)
    runs: list[Run] = []
    missing: list[MissingJob] = []
    for path in result_files:
        where = _rel(path.parent, root)
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(results, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as err:
            overrides = ",".join(_job_overrides(path.parent) or [])
            missing.append(MissingJob(where, overrides, f"unreadable {RESULTS}: {err}"))
            continue
        runs.append(Run(where, results))
    done = {_rel(path.parent, root) for path in result_files}
    for job in job_dirs:
        if _rel(job, root) not in done:
            overrides = ",".join(_job_overrides(job) or [])
            missing.append(MissingJob(_rel(job, root), overrides, f"no {RESULTS} (the job failed or is still running)"))
    for sweep_file in sweep_files:
        missing.extend(_missing_sweep_points(sweep_file, job_dirs, root))
    return runs, missing


def _missing_sweep_points(sweep_file: Path, job_dirs: Sequence[Path], root: Path) -> list[MissingJob]:
    sweep_dir = sweep_file.parent
    where = _rel(sweep_dir, root)
    try:
        points = expected_sweep_points(sweep_file)
    except Exception as err:  # a sweep we cannot expand is reported, never a crash
        return [MissingJob(where, "", f"could not list the sweep points of {sweep_file.name}: {err}")]
    present = set()
    for job in job_dirs:
        if job != sweep_dir and sweep_dir in job.parents:
            overrides = _job_overrides(job)
            if overrides is not None:
                present.add(_canonical(overrides))
    return [
        MissingJob(
            f"job #{number}" if where == "." else f"{where} job #{number}",
            ",".join(point),
            "no job dir (the sweep point never ran)",
        )
        for number, point in enumerate(points)
        if _canonical(point) not in present
    ]


# --------------------------------------------------------------------------- grouping


def _display(value: Any) -> str:
    """An option value as a label shows it (Hydra spelling for booleans)."""
    if value is MISSING or value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith("not applicable"):
        return NOT_APPLICABLE
    if isinstance(value, (list, tuple)):
        return "+".join(_display(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _short(key: str, keys: Sequence[str]) -> str:
    """``describe.detailed`` -> ``detailed`` unless that would be ambiguous."""
    short = key.removeprefix("describe.")
    clash = any(other != key and other.removeprefix("describe.") == short for other in keys)
    return key if clash else short


def _is_option(key: str, value: Any, extra_exclude: Iterable[str]) -> bool:
    if key in NOT_OPTIONS or key in extra_exclude or _REC_SPLIT.match(key) or isinstance(value, Mapping):
        return False
    return True


def grouping_keys(results: Sequence[Mapping[str, Any]], first: str, exclude: Iterable[str] = ()) -> list[str]:
    """``first`` (when any run records it) and every other option that tells runs apart (num_desc, seed aside)."""
    exclude = set(exclude)
    keys: list[str] = []
    for result in results:
        for key, value in result.items():
            if key not in keys and _is_option(key, value, exclude):
                keys.append(key)
    varying = [k for k in keys if len({_display(r.get(k, MISSING)) for r in results}) > 1]
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
        group = tuple(_display(result.get(k, MISSING)) for k in chosen)
        value = _display(result.get(key, MISSING))
        if seen.setdefault(group, value) != value:
            return True
    return False


def group_label(result: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``detailed=true, source=world``: the options that tell this run's line apart (absent options left out)."""
    parts = [f"{_short(k, keys)}={_display(result[k])}" for k in keys if k in result]
    return ", ".join(parts) or "all runs"


def _num_desc(result: Mapping[str, Any]) -> int | float | None:
    value = result.get(NUM_DESC)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None  # not applicable to the source (e.g. classname): a horizontal reference line
    return value


def _metric(result: Mapping[str, Any], key: str) -> float | None:
    value = result.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample std (0 for a single value), count)."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std, len(values)


def _sort_groups(groups: Mapping[str, Any], order: Mapping[str, tuple]) -> dict[str, Any]:
    return {label: groups[label] for label in sorted(groups, key=lambda g: order[g])}


def build_series(
    results: Sequence[Mapping[str, Any]], metric: str = "top1", scale: float = 100.0
) -> dict[str, list[tuple[int | float | None, float, float, int]]]:
    """``{group label: [(num_desc, mean, std, n), ...]}`` of ``metric * scale`` over the runs' seeds.

    One group per ``describe.detailed`` value and per value of every other option that varies
    (num_desc and seed aside); ``num_desc`` is ``None`` for sources where it does not apply.
    """
    keys = grouping_keys(results, first="describe.detailed", exclude={NUM_DESC})
    values: dict[str, dict[Any, list[float]]] = {}
    order: dict[str, tuple] = {}
    for result in results:
        value = _metric(result, metric)
        if value is None:
            continue
        label = group_label(result, keys)
        order[label] = tuple(_natural_key(_display(result.get(k, MISSING))) for k in keys)
        values.setdefault(label, {}).setdefault(_num_desc(result), []).append(value * scale)
    series = {
        label: [(x, *mean_std(points[x])) for x in sorted(points, key=lambda x: (x is None, x if x is not None else 0))]
        for label, points in values.items()
    }
    return _sort_groups(series, order)


def rec_splits(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """``all`` (the overall accuracy) then each split found as an ``acc.<split>`` key, in first-seen order."""
    splits: list[str] = []
    if any(_metric(r, "acc") is not None for r in results):
        splits.append("all")
    for result in results:
        for key in result:
            match = _REC_SPLIT.match(key)
            if match and match.group(1) not in splits and _metric(result, key) is not None:
                splits.append(match.group(1))
    return splits


def _rec_value(result: Mapping[str, Any], split: str) -> float | None:
    if split == "all":
        return _metric(result, "acc")
    for key in result:
        match = _REC_SPLIT.match(key)
        if match and match.group(1) == split:
            return _metric(result, key)
    return None


def build_rec_series(
    results: Sequence[Mapping[str, Any]], scale: float = 100.0
) -> dict[str, dict[str, tuple[float, float, int]]]:
    """``{group label: {split: (mean, std, n)}}`` of REC accuracy in %; groups by visual prompt and varying options."""
    keys = grouping_keys(results, first="visual_prompt")
    splits = rec_splits(results)
    values: dict[str, dict[str, list[float]]] = {}
    order: dict[str, tuple] = {}
    for result in results:
        label = group_label(result, keys)
        order[label] = tuple(_natural_key(_display(result.get(k, MISSING))) for k in keys)
        per_split = values.setdefault(label, {})
        for split in splits:
            value = _rec_value(result, split)
            if value is not None:
                per_split.setdefault(split, []).append(value * scale)
    series = {
        label: {split: mean_std(per_split[split]) for split in splits if split in per_split}
        for label, per_split in values.items()
    }
    return _sort_groups(series, order)


def split_panels(results: Sequence[Mapping[str, Any]]) -> list[tuple[dict[str, str], list[Mapping[str, Any]]]]:
    """One panel per (dataset, backbone): lines from different data or models are never drawn together."""
    panels: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for result in results:
        key = (_display(result.get("dataset", MISSING)), _display(result.get("backbone", MISSING)))
        panels.setdefault(key, []).append(result)
    return [({"dataset": d, "backbone": b}, rs) for (d, b), rs in panels.items()]


def _panel_title(panel: Mapping[str, str]) -> str:
    return f"dataset {panel['dataset']} · backbone {panel['backbone']}"


def _legend_title(results: Sequence[Mapping[str, Any]], first: str, exclude: Iterable[str] = ()) -> str:
    keys = grouping_keys(results, first=first, exclude=exclude)
    return ", ".join(_short(k, keys) for k in keys) or "all runs"


def _common(results: Sequence[Mapping[str, Any]], key: str) -> Any:
    values = {_display(r.get(key, MISSING)) for r in results}
    return values.pop() if len(values) == 1 else None


# --------------------------------------------------------------------------- plotting

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_XLABEL = "num_desc (descriptors per in-context example)"


def _new_figure(num_panels: int, height: float = 4.2):
    from matplotlib.figure import Figure  # Agg through Figure.savefig: no pyplot, no global state

    fig = Figure(figsize=(6.4 * num_panels + 2.6, height), layout="constrained")
    axes = fig.subplots(1, num_panels, squeeze=False)[0]
    return fig, axes


def _note_missing(fig: Any, figure: Mapping[str, Any]) -> None:
    """Say on the figure itself that jobs are missing: a line may otherwise look complete."""
    if figure.get("missing_jobs"):
        # bottom right: under the legend, clear of the axis labels
        text = f"{figure['missing_jobs']} missing or failed job(s):\nsee report.md"
        fig.text(0.99, 0.02, text, color="tab:red", fontsize="small", ha="right", va="bottom")


def _with_gaps(line: list[Sequence[Any]], xs_all: Sequence[Any]) -> list[Sequence[Any]]:
    """A NaN point where a num_desc that other lines have is missing inside this line: a gap, not a bridge."""
    if not line:
        return line
    have = {p[0] for p in line}
    low, high = min(have), max(have)
    holes = sorted({x for x in xs_all if low < x < high and x not in have})
    return sorted([*line, *[(x, math.nan, math.nan, 0) for x in holes]], key=lambda p: p[0])


def plot_series(path: Path, figure: Mapping[str, Any]) -> Path:
    """A line plot (mean ± std error bars) per panel of ``figure`` as stored in ``report_data.json``."""
    from matplotlib.ticker import MaxNLocator

    panels = figure["panels"]
    fig, axes = _new_figure(len(panels))
    for ax, panel in zip(axes, panels):
        xs_all = [p[0] for pts in panel["series"].values() for p in pts if p[0] is not None]
        handles = []
        lines = [label for label, points in panel["series"].items() if any(p[0] is not None for p in points)]
        for i, (label, points) in enumerate(panel["series"].items()):
            style = {"color": f"C{i % 10}", "marker": _MARKERS[i % len(_MARKERS)]}
            line = _with_gaps([p for p in points if p[0] is not None], xs_all)
            if line:
                # a small sideways dodge keeps overlapping error bars apart; the data keep the true num_desc
                dodge = (lines.index(label) - (len(lines) - 1) / 2) * min(0.06, 0.3 / max(len(lines), 1))
                handles.append(
                    ax.errorbar(
                        [p[0] + dodge for p in line],
                        [p[1] for p in line],
                        yerr=[p[2] for p in line],
                        capsize=3,
                        label=label,
                        **style,
                    )
                )
            for x, mean, std, _ in points:
                if x is None:  # the source has no num_desc: a reference level across the plot
                    handles.append(
                        ax.axhline(mean, linestyle="--", color=style["color"], label=f"{label} (no num_desc)")
                    )
                    if std > 0:
                        ax.axhspan(mean - std, mean + std, color=style["color"], alpha=0.15)
        if panel.get("chance") is not None:
            handles.append(ax.axhline(panel["chance"], color="grey", linestyle=":", label="chance"))
        if xs_all:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(figure["xlabel"])
        ax.set_ylabel(figure["ylabel"])
        ax.set_title(f"{figure['title']}\n{panel['title']}", fontsize="medium")
        ax.grid(alpha=0.3)
        ax.legend(
            handles=handles,
            title=panel["legend_title"],
            fontsize="small",
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
        )
    _note_missing(fig, figure)
    fig.savefig(path, dpi=120)
    return path


def plot_rec(path: Path, figure: Mapping[str, Any]) -> Path:
    """Grouped bars per panel: one group of bars per split, one bar per visual prompt (mean ± std)."""
    panels = figure["panels"]
    fig, axes = _new_figure(len(panels))
    for ax, panel in zip(axes, panels):
        splits = panel["splits"]
        groups = list(panel["series"])
        width = 0.8 / max(len(groups), 1)
        for i, label in enumerate(groups):
            cells = panel["series"][label]
            xs = [j + (i - (len(groups) - 1) / 2) * width for j, s in enumerate(splits) if s in cells]
            ax.bar(
                xs,
                [cells[s][0] for s in splits if s in cells],
                width=width,
                yerr=[cells[s][1] for s in splits if s in cells],
                capsize=3,
                label=label,
            )
        ax.set_xticks(range(len(splits)), splits)
        ax.set_xlabel(figure["xlabel"])
        ax.set_ylabel(figure["ylabel"])
        ax.set_ylim(0, 100)
        ax.set_title(f"{figure['title']}\n{panel['title']}", fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(title=panel["legend_title"], fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    _note_missing(fig, figure)
    fig.savefig(path, dpi=120)
    return path


# --------------------------------------------------------------------------- data and Markdown


def format_mean_std(mean: float, std: float, digits: int) -> str:
    """``41.25 ± 1.06``: how every cell of the report writes a mean over seeds."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def classification_data(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The two classification figures, panel by panel, exactly as plotted."""
    acc_panels, ent_panels = [], []
    for panel, rs in split_panels(results):
        legend = _legend_title(rs, "describe.detailed", exclude={NUM_DESC})
        chance = _common(rs, "chance_top1")
        base = {**panel, "title": _panel_title(panel), "legend_title": legend}
        acc_panels.append(
            {**base, "chance": float(chance) * 100 if chance else None, "series": _lists(build_series(rs, "top1"))}
        )
        ent_panels.append({**base, "chance": None, "series": _lists(build_series(rs, "entropy", scale=1.0))})
    scale = _common(results, "entropy_scale")
    return {
        "accuracy_vs_num_desc": {
            "file": "accuracy_vs_num_desc.png",
            "title": "Top-1 accuracy vs. num_desc (mean ± std over seeds)",
            "xlabel": _XLABEL,
            "ylabel": "top-1 accuracy (%)",
            "metric": "top1",
            "scale": 100.0,
            "panels": acc_panels,
        },
        "entropy_vs_num_desc": {
            "file": "entropy_vs_num_desc.png",
            "title": "Mean prediction entropy vs. num_desc (mean ± std over seeds)",
            "xlabel": _XLABEL,
            "ylabel": f"mean prediction entropy (nats{', ' + scale + ' scale' if scale else ''})",
            "metric": "entropy",
            "scale": 1.0,
            "panels": ent_panels,
        },
    }


def _lists(series: Mapping[str, Sequence[tuple]]) -> dict[str, list[list[Any]]]:
    return {label: [list(point) for point in points] for label, points in series.items()}


def rec_data(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The REC figure, panel by panel, exactly as plotted."""
    panels = []
    for panel, rs in split_panels(results):
        series = build_rec_series(rs)
        panels.append(
            {
                **panel,
                "title": _panel_title(panel),
                "legend_title": _legend_title(rs, "visual_prompt"),
                "splits": rec_splits(rs),
                "series": {label: {s: list(v) for s, v in cells.items()} for label, cells in series.items()},
            }
        )
    return {
        "rec_accuracy": {
            "file": "rec_accuracy.png",
            "title": "REC accuracy per split and visual prompt (mean ± std over seeds)",
            "xlabel": "split",
            "ylabel": "accuracy (%, IoU ≥ 0.5)",
            "metric": "acc",
            "scale": 100.0,
            "panels": panels,
        }
    }


def _x_label(x: Any) -> str:
    return NOT_APPLICABLE if x is None else _display(x)


def classification_markdown(data: Mapping[str, Any]) -> list[str]:
    lines = ["## Classification", ""]
    acc, ent = data["accuracy_vs_num_desc"], data["entropy_vs_num_desc"]
    lines += [f"![top-1 accuracy vs num_desc]({acc['file']})", "", f"![entropy vs num_desc]({ent['file']})", ""]
    for acc_panel, ent_panel in zip(acc["panels"], ent["panels"]):
        lines += [f"### {acc_panel['title']}", ""]
        lines += [
            f"Cells: top-1 accuracy (%) / mean entropy (nats), mean ± std over n seeds. "
            f"Columns grouped by: {acc_panel['legend_title']}.",
            "",
        ]
        labels = list(acc_panel["series"])
        xs = sorted(
            {p[0] for pts in acc_panel["series"].values() for p in pts},
            key=lambda x: (x is None, x if x is not None else 0),
        )
        rows = []
        for x in xs:
            row = [_x_label(x)]
            for label in labels:
                a = {p[0]: p for p in acc_panel["series"][label]}.get(x)
                e = {p[0]: p for p in ent_panel["series"].get(label, [])}.get(x)
                if a is None:
                    row.append("—")
                    continue
                text = format_mean_std(a[1], a[2], 2)
                if e is not None:
                    text += " / " + format_mean_std(e[1], e[2], 3)
                row.append(f"{text} (n={a[3]})")
            rows.append(row)
        lines += _table(["num_desc", *labels], rows) + [""]
    return lines


def rec_markdown(data: Mapping[str, Any]) -> list[str]:
    figure = data["rec_accuracy"]
    lines = ["## REC", "", f"![REC accuracy per split and visual prompt]({figure['file']})", ""]
    for panel in figure["panels"]:
        lines += [f"### {panel['title']}", ""]
        lines += [
            f"Cells: accuracy (%), mean ± std over n seeds. Rows grouped by: {panel['legend_title']}.",
            "",
        ]
        rows = []
        for label, cells in panel["series"].items():
            row = [label]
            for split in panel["splits"]:
                cell = cells.get(split)
                row.append("—" if cell is None else f"{format_mean_std(cell[0], cell[1], 2)} (n={cell[2]})")
            rows.append(row)
        lines += _table([panel["legend_title"], *panel["splits"]], rows) + [""]
    return lines


def _percent(result: Mapping[str, Any], key: str) -> str:
    value = _metric(result, key)
    return "—" if value is None else f"{value * 100:.2f}"


def runs_markdown(runs: Sequence[Run]) -> list[str]:
    lines = ["## All runs", ""]
    classify = [r for r in runs if r.results.get("task") == "classify"]
    rec = [r for r in runs if r.results.get("task") == "rec"]
    other = [r for r in runs if r.results.get("task") not in ("classify", "rec")]
    if classify:
        rows = []
        for run in classify:
            res = run.results
            entropy = _metric(res, "entropy")
            rows.append(
                [
                    run.dir,
                    res.get("overrides", ""),
                    res.get("seed", ""),
                    _percent(res, "top1"),
                    _percent(res, "top5"),
                    "—" if entropy is None else f"{entropy:.3f}",
                    _percent(res, "ece"),
                ]
            )
        header = ["run dir", "overrides", "seed", "top-1 (%)", "top-5 (%)", "entropy (nats)", "ECE (%)"]
        lines += _table(header, rows) + [""]
    if rec:
        splits = rec_splits([r.results for r in rec])
        rows = []
        for run in rec:
            res = run.results
            cells = [_rec_value(res, s) for s in splits]
            rows.append(
                [run.dir, res.get("overrides", ""), res.get("seed", "")]
                + ["—" if v is None else f"{v * 100:.2f}" for v in cells]
            )
        lines += _table(["run dir", "overrides", "seed", *[f"{s} (%)" for s in splits]], rows) + [""]
    if other:
        rows = [[run.dir, run.results.get("task", "-"), run.results.get("overrides", "")] for run in other]
        lines += ["Runs of a task this report does not chart:", ""]
        lines += _table(["run dir", "task", "overrides"], rows) + [""]
    return lines


def missing_markdown(missing: Sequence[MissingJob]) -> list[str]:
    lines = ["## Missing or failed jobs", ""]
    if not missing:
        return lines + ["None: every job of every sweep wrote its results.", ""]
    rows = [[m.where, m.overrides or "-", m.reason] for m in missing]
    return lines + _table(["job", "overrides", "problem"], rows) + [""]


# --------------------------------------------------------------------------- the command


def write_report(root: Path, out: Path | None = None) -> Report:
    """Read every ``results.json`` under ``root``; write report.md, the PNGs and report_data.json to ``out``."""
    root = Path(root)
    if not root.exists():
        raise ReportError(f"{root}: no such directory")
    if not root.is_dir():
        raise ReportError(f"{root}: not a directory (give a run or multirun dir of descbench.eval)")
    runs, missing = load_runs(root)
    if not runs:
        failed = f" ({len(missing)} failed or missing jobs)" if missing else ""
        raise ReportError(f"no {RESULTS} found under {root}{failed}: not a run or multirun dir of descbench.eval?")
    out = Path(out) if out is not None else root
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out_dir=out, runs=runs, missing=missing)

    classify = [r.results for r in runs if r.results.get("task") == "classify"]
    rec = [r.results for r in runs if r.results.get("task") == "rec"]
    lines = [f"# descbench report: {root.resolve().name}", ""]
    lines += [
        f"Source: `{root.resolve()}` · {len(runs)} runs ({len(classify)} classification, {len(rec)} REC) · "
        f"{len(missing)} missing or failed jobs. Means and sample standard deviations over seeds (std 0 when n=1).",
        "",
    ]
    lines += missing_markdown(missing)
    if classify:
        data = classification_data(classify)
        for figure in data.values():
            figure["missing_jobs"] = len(missing)
        report.data.update(data)
        for figure in data.values():
            report.files.append(plot_series(out / figure["file"], figure))
        lines += classification_markdown(data)
    if rec:
        data = rec_data(rec)
        data["rec_accuracy"]["missing_jobs"] = len(missing)
        report.data.update(data)
        report.files.append(plot_rec(out / data["rec_accuracy"]["file"], data["rec_accuracy"]))
        lines += rec_markdown(data)
    lines += runs_markdown(runs)
    report.data["missing"] = [vars(m) for m in missing]

    from descbench.results import atomic_write_text

    atomic_write_text(out / "report_data.json", json.dumps(report.data, indent=2))
    atomic_write_text(out / "report.md", "\n".join(lines).rstrip() + "\n")
    report.files += [out / "report_data.json", out / "report.md"]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m descbench.report",
        description="Tables and plots from the results.json files of a descbench run or multirun dir.",
    )
    parser.add_argument("dir", type=Path, help="a run dir or a multirun (sweep) dir")
    parser.add_argument("--out", type=Path, default=None, help="where to write report.md and the plots (default: DIR)")
    args = parser.parse_args(argv)
    try:
        report = write_report(args.dir, args.out)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if report.missing:
        listed = "; ".join(f"{m.where} ({m.overrides or 'no overrides'})" for m in report.missing)
        print(f"warning: {len(report.missing)} missing or failed job(s) under {args.dir}: {listed}", file=sys.stderr)
    print(f"report: {report.out_dir / 'report.md'} ({len(report.runs)} runs)")
    for path in report.files:
        if path.suffix == ".png":
            print(f"plot:   {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
