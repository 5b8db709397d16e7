"""The keypoints section of the report: per mode, tables with one column per part (with chance levels) and
bar charts per part, and the all-runs table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from descbench.core.measures import resolve
from descbench.report.groups import (
    BARS,
    build_cells,
    cell_interval,
    cell_stat,
    common_value,
    legend_title,
    metric_value,
    panel_title,
    split_panels,
)
from descbench.report.markdown import RUN_HEADER, format_cell, measured, run_cells, table
from descbench.report.plots import distinct_colours, error_bar, new_figure, note_missing
from descbench.report.runs import Run
from descbench.report.sections import Section
from descbench.tasks.keypoints import DEFINITION


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


def keypoint_data(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One figure per keypoint mode present (``keypoints_pck``, ``keypoints_naming``), panel by panel.

    A panel holds the columns (overall rate, the mode's summary columns, one per part) and, per row
    (option value), each column's ``[mean, std, n]`` in %, the recorded interval of a one-run cell and
    the chance level, all keyed by the column's results key.
    """
    first, exclude = DEFINITION.grouping
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
            "title": f"Keypoint {mode.name}: {what} per part ({BARS}; dash: chance)",
            "xlabel": "visual prompt and options",
            "ylabel": f"{what} (%)",
            "metric": mode.rate,
            "scale": 100.0,
            "panels": panels,
        }
    return figures


def plot_keypoints(path: Path, figure: Mapping[str, Any]) -> Path:
    """Grouped bars per panel: one group per option value (row), one bar per column (all parts, then each part),
    error bars from the interval (or ± std), and each bar's chance level as a black dash across it."""
    panels = figure["panels"]
    most = max((len(p["columns"]) * max(len(p["series"]), 1) for p in panels), default=1)
    fig, axes = new_figure(len(panels), height=4.8, panel_width=max(6.4, 0.16 * most + 2.0))
    for ax, panel in zip(axes, panels):
        columns = panel["columns"]
        groups = list(panel["series"])
        width = 0.85 / max(len(columns), 1)
        colours = distinct_colours(len(columns) - 1)
        chance_drawn = False
        for i, column in enumerate(columns):
            key = column["key"]
            xs, means, below, above = [], [], [], []
            for j, label in enumerate(groups):
                cell = panel["series"][label].get(key)
                if cell is None:
                    continue
                x = j + (i - (len(columns) - 1) / 2) * width
                error = error_bar(cell[0], cell[1], panel.get("intervals", {}).get(label, {}).get(key))
                xs.append(x)
                means.append(cell[0])
                below.append(error[0])
                above.append(error[1])
                level = panel.get("chance", {}).get(label, {}).get(key)
                if level is not None:
                    dash = {"color": "black", "linewidth": 1.5, "zorder": 3}
                    ax.hlines(level, x - width / 2, x + width / 2, label=None if chance_drawn else "chance", **dash)
                    chance_drawn = True
            # the overall column stands apart in dark grey; every part its own colour
            colour = "dimgrey" if i == 0 else colours[i - 1]
            bars = {"width": width, "capsize": 2, "error_kw": {"elinewidth": 0.8}}
            ax.bar(xs, means, yerr=[below, above], color=colour, label=column["name"], **bars)
        # one option per line: long labels of neighbouring groups would run into each other
        ax.set_xticks(range(len(groups)), [label.replace(", ", "\n") for label in groups], fontsize="small")
        ax.set_xlabel(figure["xlabel"])
        ax.set_ylabel(figure["ylabel"])
        ax.set_ylim(0, 105)
        ax.set_title(f"{figure['title']}\n{panel['title']}", fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(title="part", fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    note_missing(fig, figure)
    fig.savefig(path, dpi=120)
    return path


def _range(values: Sequence[float], digits: int) -> str:
    """One value when the rows share it, else ``low–high``."""
    texts = sorted({round(v, digits) for v in values})
    if not texts:
        return "—"
    return f"{texts[0]:.{digits}f}" if len(texts) == 1 else f"{texts[0]:.{digits}f}–{texts[-1]:.{digits}f}"


def keypoints_markdown(data: Mapping[str, Any]) -> list[str]:
    """The ``Keypoints`` section: per mode and panel a table, rows = option values, columns = the overall rate
    with its chance level, the mode's summary columns, one column per part; a last row of per-part chance."""
    lines = ["## Keypoints", ""]
    for name in ("keypoints_pck", "keypoints_naming"):
        figure = data.get(name)
        if figure is None:
            continue
        lines += [f"![{figure['title']}]({figure['file']})", ""]
        for panel in figure["panels"]:
            lines += [f"### Keypoint {figure['mode']} · {panel['title']}", ""]
            lines += [
                f"Cells: {figure['ylabel']}, one run: value [95 % Wilson interval]; several runs (n > 1): mean ± std "
                "over them. Chance: the expected score of a uniform random choice among the candidates. "
                f"Rows grouped by: {panel['legend_title']}.",
                "",
            ]
            columns = panel["columns"]
            summary = [c for c in columns if not c["part"]]
            parts = [c for c in columns if c["part"]]
            header = [panel["legend_title"], "runs"]
            for column in summary:
                header += [column["name"], f"chance ({column['name']})" if column["name"] != ALL_PARTS else "chance"]
            header += [c["name"] for c in parts]
            rows = []
            for label, cells in panel["series"].items():
                intervals = panel.get("intervals", {}).get(label, {})
                chance = panel.get("chance", {}).get(label, {})
                n = max((cell[2] for cell in cells.values()), default=0)
                row: list[Any] = [label, n]
                for column in summary:
                    row.append(_rate_cell(cells.get(column["key"]), intervals.get(column["key"])))
                    level = chance.get(column["key"])
                    row.append("—" if level is None else f"{level:.2f}")
                row += [_rate_cell(cells.get(c["key"]), intervals.get(c["key"])) for c in parts]
                rows.append(row)
            levels = [
                _range([v[c["key"]] for v in panel.get("chance", {}).values() if c["key"] in v], 2) for c in parts
            ]
            if any(level != "—" for level in levels):
                rows.append(["chance level", "", *[""] * (2 * len(summary)), *levels])
            lines += table(header, rows) + [""]
    return lines


def _rate_cell(cell: Sequence[float] | None, interval: Sequence[float] | None) -> str:
    return "—" if cell is None else format_cell(cell[0], cell[1], cell[2], 2, interval)


def runs_table(runs: Sequence[Run]) -> tuple[list[str], list[list[Any]]]:
    """One row per run: its mode, the mode's measure with its interval, and its chance level."""
    rows = []
    for run in runs:
        mode = keypoint_mode(run.results)
        chance = metric_value(run.results, mode.chance)
        level = "—" if chance is None else f"{chance * 100:.2f}"
        rows.append([*run_cells(run), mode.name, mode.rate, measured(run.results, mode.rate), level])
    return [*RUN_HEADER, "mode", "measure", "value (%)", "chance (%)"], rows


def section(runs: list[Run], out: Path, missing: int) -> Section:
    """The keypoints section: per mode, a figure per part and one table per panel; the all-runs table."""
    data = keypoint_data([r.results for r in runs])
    files = []
    for figure in data.values():
        figure["missing_jobs"] = missing
        files.append(plot_keypoints(out / figure["file"], figure))
    lines = keypoints_markdown(data)

    def html(page) -> str:
        """report.html: the section as report.md has it, then each run's examples (the images the job drew)."""
        from descbench.report.html import markdown_html

        galleries = "".join(page.run_heading(run, "Examples") + page.examples_gallery(run) for run in runs)
        legend = "<p class='note'>Green: the gold point; red: the point the model picked (as the job drew them).</p>"
        return markdown_html(lines, page) + (f"<h3>Examples</h3>{legend}{galleries}" if page.examples else "")

    return Section(lines=lines, data=data, files=files, runs_table=runs_table(runs), html=html)
