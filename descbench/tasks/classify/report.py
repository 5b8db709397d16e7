"""The classification section of the report: accuracy and entropy vs num_desc (interval bands, chance line),
one table per backbone x data set, and the all-runs table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from descbench.core.stats import mean_std
from descbench.report.groups import (
    BARS,
    MISSING,
    NOT_APPLICABLE,
    as_lists,
    cell_interval,
    cell_values,
    common_value,
    display,
    group_label,
    grouping_keys,
    legend_title,
    metric_value,
    panel_title,
    split_panels,
)
from descbench.report.markdown import RUN_HEADER, format_cell, measured, run_cells, table
from descbench.report.plots import MARKERS, error_bar, new_figure, note_missing, with_gaps
from descbench.report.runs import Run, natural_key
from descbench.report.sections import Section
from descbench.tasks.classify import NUM_DESC


def num_desc_of(result: Mapping[str, Any]) -> int | float | None:
    value = result.get(NUM_DESC)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None  # not applicable to the source (e.g. classname): a horizontal reference line
    return value


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
        order[label] = tuple(natural_key(display(result.get(k, MISSING))) for k in keys)
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


XLABEL = "num_desc (descriptors per in-context example)"


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
        for panels, key, scale, level in ((acc_panels, "top1", 100.0, chance), (ent_panels, "entropy", 1.0, None)):
            panels.append(
                {
                    **base,
                    "chance": level * 100 if level is not None else None,
                    "series": as_lists(_without(build_series(rs, key, scale=scale), excluded)),
                    "intervals": _without(build_intervals(rs, key, scale=scale), excluded),
                }
            )
    scale = common_value(results, "entropy_scale")
    return {
        "accuracy_vs_num_desc": {
            "file": "accuracy_vs_num_desc.png",
            "title": f"Top-1 accuracy vs. num_desc ({BARS})",
            "xlabel": XLABEL,
            "ylabel": "top-1 accuracy (%)",
            "metric": "top1",
            "scale": 100.0,
            "panels": acc_panels,
        },
        "entropy_vs_num_desc": {
            "file": "entropy_vs_num_desc.png",
            "title": f"Mean prediction entropy vs. num_desc ({BARS})",
            "xlabel": XLABEL,
            "ylabel": f"mean prediction entropy (nats{', ' + scale + ' scale' if scale else ''})",
            "metric": "entropy",
            "scale": 1.0,
            "panels": ent_panels,
        },
    }


def plot_series(path: Path, figure: Mapping[str, Any]) -> Path:
    """A line plot (error bars, interval bands) per panel of ``figure`` as stored in ``report_data.json``."""
    from matplotlib.ticker import MaxNLocator

    panels = figure["panels"]
    fig, axes = new_figure(len(panels))
    for ax, panel in zip(axes, panels):
        xs_all = [p[0] for pts in panel["series"].values() for p in pts if p[0] is not None]
        handles = []
        lines = [label for label, points in panel["series"].items() if any(p[0] is not None for p in points)]
        for i, (label, points) in enumerate(panel["series"].items()):
            style = {"color": f"C{i % 10}", "marker": MARKERS[i % len(MARKERS)]}
            intervals = {x: (low, high) for x, low, high in panel.get("intervals", {}).get(label, [])}
            line = with_gaps([p for p in points if p[0] is not None], xs_all)
            if line:
                # a small sideways dodge keeps overlapping error bars apart; the data keep the true num_desc
                dodge = (lines.index(label) - (len(lines) - 1) / 2) * min(0.06, 0.3 / max(len(lines), 1))
                errors = [error_bar(p[1], p[2], intervals.get(p[0])) for p in line]
                handles.append(
                    ax.errorbar(
                        [p[0] + dodge for p in line],
                        [p[1] for p in line],
                        yerr=[[e[0] for e in errors], [e[1] for e in errors]],
                        capsize=3,
                        label=label,
                        **style,
                    )
                )
                banded = [p for p in line if p[0] in intervals]
                if len(banded) > 1:
                    ax.fill_between(
                        [p[0] + dodge for p in banded],
                        [intervals[p[0]][0] for p in banded],
                        [intervals[p[0]][1] for p in banded],
                        color=style["color"],
                        alpha=0.12,
                        linewidth=0,
                    )
            for x, mean, std, _ in points:
                if x is None:  # the source has no num_desc: a reference level across the plot
                    handles.append(
                        ax.axhline(mean, linestyle="--", color=style["color"], label=f"{label} (no num_desc)")
                    )
                    below, above = error_bar(mean, std, intervals.get(None))
                    if below > 0 or above > 0:
                        ax.axhspan(mean - below, mean + above, color=style["color"], alpha=0.15)
        if panel.get("chance") is not None:
            handles.append(ax.axhline(panel["chance"], color="grey", linestyle=":", label="chance"))
        if panel.get("excluded"):  # the study's rule left these points out of the curve: say so on the plot
            text = "; ".join(f"{label} at {x}: {share:.0f} %" for label, x, share in panel["excluded"])
            ax.text(
                0.01, 0.01, f"excluded (answer count not the examples'): {text}", transform=ax.transAxes,
                fontsize="x-small", color="tab:red", va="bottom", wrap=True,
            )  # fmt: skip
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
    note_missing(fig, figure)
    fig.savefig(path, dpi=120)
    return path


def num_desc_label(x: Any) -> str:
    return NOT_APPLICABLE if x is None else display(x)


def _intervals_by_x(panel: Mapping[str, Any], label: str) -> dict[Any, list[float]]:
    return {item[0]: item[1:] for item in panel.get("intervals", {}).get(label, [])}


def classification_markdown(data: Mapping[str, Any]) -> list[str]:
    lines = ["## Classification", ""]
    acc, ent = data["accuracy_vs_num_desc"], data["entropy_vs_num_desc"]
    lines += [f"![top-1 accuracy vs num_desc]({acc['file']})", "", f"![entropy vs num_desc]({ent['file']})", ""]
    for acc_panel, ent_panel in zip(acc["panels"], ent["panels"]):
        lines += [f"### {acc_panel['title']}", ""]
        lines += [
            "Cells: top-1 accuracy (%) / mean entropy (nats), mean ± std over n seeds "
            "(one run with a recorded interval: value [95 % interval]). "
            f"Columns grouped by: {acc_panel['legend_title']}.",
            "",
        ]
        labels, xs, cells = sweep_cells(acc_panel, ent_panel)
        rows = [[num_desc_label(x), *(cells[label, x] for label in labels)] for x in xs]
        lines += table(["num_desc", *labels], rows) + [""]
    return lines


def sweep_cells(
    acc_panel: Mapping[str, Any], ent_panel: Mapping[str, Any]
) -> tuple[list[str], list[Any], dict[tuple[str, Any], str]]:
    """(line labels, num_desc values, ``{(label, num_desc): cell text}``) of a panel's sweep table: top-1 /
    entropy with intervals and n, ``—`` where no run is, or why the study's rule excluded the point."""
    excluded = {(label, x): share for label, x, share in acc_panel.get("excluded", [])}
    labels = list(dict.fromkeys([*acc_panel["series"], *(label for label, _ in excluded)]))
    xs = sorted(
        {p[0] for pts in acc_panel["series"].values() for p in pts} | {x for _, x in excluded},
        key=lambda x: (x is None, x if x is not None else 0),
    )
    cells = {}
    for x in xs:
        for label in labels:
            a = {p[0]: p for p in acc_panel["series"].get(label, [])}.get(x)
            e = {p[0]: p for p in ent_panel["series"].get(label, [])}.get(x)
            if (label, x) in excluded:
                cells[label, x] = (
                    f"excluded (the study's rule: {excluded[label, x]:.0f} % of classes answered another "
                    "count than the examples')"
                )
                continue
            if a is None:
                cells[label, x] = "—"
                continue
            text = format_cell(a[1], a[2], a[3], 2, _intervals_by_x(acc_panel, label).get(x))
            if e is not None:
                text += " / " + format_cell(e[1], e[2], e[3], 3, _intervals_by_x(ent_panel, label).get(x))
            cells[label, x] = f"{text} (n={a[3]})"
    return labels, xs, cells


def runs_table(runs: Sequence[Run]) -> tuple[list[str], list[list[Any]]]:
    """One row per run: top-1, top-5, entropy and ECE with their intervals."""
    keys = ("top1", "top5", "entropy", "ece")
    header = [*RUN_HEADER, "top-1 (%)", "top-5 (%)", "entropy (nats)", "ECE (%)"]
    return header, [[*run_cells(run), *(measured(run.results, key) for key in keys)] for run in runs]


def section(runs: list[Run], out: Path, missing: int) -> Section:
    """The classification section: the two figures, one table per panel, the all-runs table; in report.html
    also the published numbers beside the cells and the per-class drill-down (:mod:`.drilldown`)."""
    data = classification_data([r.results for r in runs])
    for figure in data.values():
        figure["missing_jobs"] = missing
    files = [plot_series(out / figure["file"], figure) for figure in data.values()]

    def html(page) -> str:
        from descbench.tasks.classify.drilldown import classification_html

        return classification_html(data, runs, page)

    lines = classification_markdown(data)
    return Section(lines=lines, data=data, files=files, runs_table=runs_table(runs), html=html)
