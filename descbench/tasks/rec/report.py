"""The REC section of the report: accuracy per split and visual prompt (interval bars), one table per backbone
x data set, and the all-runs table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from descbench.core.measures import resolve
from descbench.core.stats import mean_std
from descbench.report.groups import (
    BARS,
    build_cells,
    cell_interval,
    cell_values,
    figure_data,
    legend_title,
    metric_value,
    panel_title,
    split_panels,
)
from descbench.report.markdown import RUN_HEADER, format_cell, measured, run_cells, table
from descbench.report.plots import error_bar, new_figure, note_missing
from descbench.report.runs import Run
from descbench.report.sections import Section

REC_SPLIT_MEASURE = "acc.<split>"


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


def build_rec_cells(results: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """``{group label: [runs]}`` by visual prompt and every other varying option, in option order."""
    return build_cells(results, first="visual_prompt")


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
    title = f"REC accuracy per split and visual prompt ({BARS})"
    return figure_data("rec_accuracy", panels, "acc", 100.0, title, "split", "accuracy (%, IoU ≥ 0.5)")


def plot_rec(path: Path, figure: Mapping[str, Any]) -> Path:
    """Grouped bars per panel: one group of bars per split, one bar per visual prompt (interval or ± std)."""
    panels = figure["panels"]
    fig, axes = new_figure(len(panels))
    for ax, panel in zip(axes, panels):
        splits = panel["splits"]
        groups = list(panel["series"])
        width = 0.8 / max(len(groups), 1)
        for i, label in enumerate(groups):
            cells = panel["series"][label]
            intervals = panel.get("intervals", {}).get(label, {})
            present = [s for s in splits if s in cells]
            errors = [error_bar(cells[s][0], cells[s][1], intervals.get(s)) for s in present]
            ax.bar(
                [j + (i - (len(groups) - 1) / 2) * width for j, s in enumerate(splits) if s in cells],
                [cells[s][0] for s in present],
                width=width,
                yerr=[[e[0] for e in errors], [e[1] for e in errors]],
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
    note_missing(fig, figure)
    fig.savefig(path, dpi=120)
    return path


def rec_markdown(data: Mapping[str, Any]) -> list[str]:
    figure = data["rec_accuracy"]
    lines = ["## REC", "", f"![REC accuracy per split and visual prompt]({figure['file']})", ""]
    for panel in figure["panels"]:
        lines += [f"### {panel['title']}", ""]
        lines += [
            "Cells: accuracy (%), mean ± std over n seeds (one run with a recorded interval: value "
            f"[95 % interval]). Rows grouped by: {panel['legend_title']}.",
            "",
        ]
        rows = []
        for label, cells in panel["series"].items():
            row = [label]
            intervals = panel.get("intervals", {}).get(label, {})
            for split in panel["splits"]:
                cell = cells.get(split)
                if cell is None:
                    row.append("—")
                else:
                    row.append(f"{format_cell(cell[0], cell[1], cell[2], 2, intervals.get(split))} (n={cell[2]})")
            rows.append(row)
        lines += table([panel["legend_title"], *panel["splits"]], rows) + [""]
    return lines


def runs_table(runs: Sequence[Run]) -> tuple[list[str], list[list[Any]]]:
    """One row per run: the accuracy of every split with its interval."""
    splits = rec_splits([r.results for r in runs])
    rows = [[*run_cells(run), *(measured(run.results, rec_key(s)) for s in splits)] for run in runs]
    return [*RUN_HEADER, *[f"{s} (%)" for s in splits]], rows


def section(runs: list[Run], out: Path, missing: int) -> Section:
    """The REC section: accuracy per split and marking (a figure and one table per panel), the all-runs table;
    in report.html also each run's gallery of right and wrong picks (:mod:`.gallery`)."""
    data = rec_data([r.results for r in runs])
    data["rec_accuracy"]["missing_jobs"] = missing
    files = [plot_rec(out / data["rec_accuracy"]["file"], data["rec_accuracy"])]
    lines = rec_markdown(data)

    def html(page) -> str:
        from descbench.report.html import markdown_html
        from descbench.tasks.rec.gallery import LEGEND, gallery_html

        galleries = "".join(gallery_html(run, page) for run in runs)
        return markdown_html(lines, page) + (f"<h3>Examples</h3>{LEGEND}{galleries}" if galleries else "")

    return Section(lines=lines, data=data, files=files, runs_table=runs_table(runs), html=html)
