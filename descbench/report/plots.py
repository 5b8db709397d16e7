"""PNG plots drawn from the figure data that ``report_data.json`` stores (what is plotted is what is saved).

Error bars: a cell's recorded 95 % interval when it is one run, else ± the sample std over its runs
or repetitions; lines with intervals also get a light band between them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def _new_figure(num_panels: int, height: float = 4.2, panel_width: float = 6.4):
    from matplotlib.figure import Figure  # Agg through Figure.savefig: no pyplot, no global state

    fig = Figure(figsize=(panel_width * num_panels + 2.6, height), layout="constrained")
    axes = fig.subplots(1, num_panels, squeeze=False)[0]
    return fig, axes


def _note_missing(fig: Any, figure: Mapping[str, Any]) -> None:
    """Say on the figure itself that jobs are missing: a line may otherwise look complete."""
    if figure.get("missing_jobs"):
        # bottom right: under the legend, clear of the axis labels
        text = f"{figure['missing_jobs']} missing or failed job(s):\nsee report.md"
        fig.text(0.99, 0.02, text, color="tab:red", fontsize="small", ha="right", va="bottom")


def with_gaps(line: list[Sequence[Any]], xs_all: Sequence[Any]) -> list[Sequence[Any]]:
    """A NaN point where a num_desc that other lines have is missing inside this line: a gap, not a bridge."""
    if not line:
        return line
    have = {p[0] for p in line}
    low, high = min(have), max(have)
    holes = sorted({x for x in xs_all if low < x < high and x not in have})
    return sorted([*line, *[(x, math.nan, math.nan, 0) for x in holes]], key=lambda p: p[0])


def _error(mean: float, std: float, interval: Sequence[float] | None) -> tuple[float, float]:
    """(below, above) the mean: the interval when recorded, else the std on both sides."""
    if interval is None or any(math.isnan(v) for v in interval):
        return std, std
    return max(0.0, mean - interval[0]), max(0.0, interval[1] - mean)


def plot_series(path: Path, figure: Mapping[str, Any]) -> Path:
    """A line plot (error bars, interval bands) per panel of ``figure`` as stored in ``report_data.json``."""
    from matplotlib.ticker import MaxNLocator

    panels = figure["panels"]
    fig, axes = _new_figure(len(panels))
    for ax, panel in zip(axes, panels):
        xs_all = [p[0] for pts in panel["series"].values() for p in pts if p[0] is not None]
        handles = []
        lines = [label for label, points in panel["series"].items() if any(p[0] is not None for p in points)]
        for i, (label, points) in enumerate(panel["series"].items()):
            style = {"color": f"C{i % 10}", "marker": _MARKERS[i % len(_MARKERS)]}
            intervals = {x: (low, high) for x, low, high in panel.get("intervals", {}).get(label, [])}
            line = with_gaps([p for p in points if p[0] is not None], xs_all)
            if line:
                # a small sideways dodge keeps overlapping error bars apart; the data keep the true num_desc
                dodge = (lines.index(label) - (len(lines) - 1) / 2) * min(0.06, 0.3 / max(len(lines), 1))
                errors = [_error(p[1], p[2], intervals.get(p[0])) for p in line]
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
                    below, above = _error(mean, std, intervals.get(None))
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
    _note_missing(fig, figure)
    fig.savefig(path, dpi=120)
    return path


def plot_rec(path: Path, figure: Mapping[str, Any]) -> Path:
    """Grouped bars per panel: one group of bars per split, one bar per visual prompt (interval or ± std)."""
    panels = figure["panels"]
    fig, axes = _new_figure(len(panels))
    for ax, panel in zip(axes, panels):
        splits = panel["splits"]
        groups = list(panel["series"])
        width = 0.8 / max(len(groups), 1)
        for i, label in enumerate(groups):
            cells = panel["series"][label]
            intervals = panel.get("intervals", {}).get(label, {})
            present = [s for s in splits if s in cells]
            errors = [_error(cells[s][0], cells[s][1], intervals.get(s)) for s in present]
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
    _note_missing(fig, figure)
    fig.savefig(path, dpi=120)
    return path


def _distinct_colours(count: int) -> list[Any]:
    """``count`` colours no two alike: tab10, tab20 up to 20, then evenly spaced on a wide colormap."""
    from matplotlib import colormaps

    if count <= 10:
        return [f"C{i}" for i in range(count)]
    if count <= 20:
        return [colormaps["tab20"](i) for i in range(count)]
    return [colormaps["turbo"](i / (count - 1)) for i in range(count)]


def plot_keypoints(path: Path, figure: Mapping[str, Any]) -> Path:
    """Grouped bars per panel: one group per option value (row), one bar per column (all parts, then each part),
    error bars from the interval (or ± std), and each bar's chance level as a black dash across it."""
    panels = figure["panels"]
    most = max((len(p["columns"]) * max(len(p["series"]), 1) for p in panels), default=1)
    fig, axes = _new_figure(len(panels), height=4.8, panel_width=max(6.4, 0.16 * most + 2.0))
    for ax, panel in zip(axes, panels):
        columns = panel["columns"]
        groups = list(panel["series"])
        width = 0.85 / max(len(columns), 1)
        colours = _distinct_colours(len(columns) - 1)
        chance_drawn = False
        for i, column in enumerate(columns):
            key = column["key"]
            xs, means, below, above = [], [], [], []
            for j, label in enumerate(groups):
                cell = panel["series"][label].get(key)
                if cell is None:
                    continue
                x = j + (i - (len(columns) - 1) / 2) * width
                error = _error(cell[0], cell[1], panel.get("intervals", {}).get(label, {}).get(key))
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
    _note_missing(fig, figure)
    fig.savefig(path, dpi=120)
    return path


def plot_bias(path: Path, figure: Mapping[str, Any]) -> Path:
    """Per panel: two bars per phrase and per kind (each shift), error bars from the bootstrap interval (or ± std),
    a zero line; kinds (the sums of their phrases) right of a dashed separator."""
    panels = figure["panels"]
    most = max((len(p["rows"]) for p in panels), default=1)
    fig, axes = _new_figure(len(panels), height=4.8, panel_width=max(6.4, 0.7 * most + 1.5))
    for ax, panel in zip(axes, panels):
        rows, shifts = panel["rows"], panel["shifts"]
        width = 0.8 / max(len(shifts), 1)
        for i, shift in enumerate(shifts):
            xs, means, below, above = [], [], [], []
            for j, row in enumerate(rows):
                cell = panel["series"].get(row["name"], {}).get(shift)
                if cell is None:
                    continue
                error = _error(cell[0], cell[1], panel.get("intervals", {}).get(row["name"], {}).get(shift))
                xs.append(j + (i - (len(shifts) - 1) / 2) * width)
                means.append(cell[0])
                below.append(error[0])
                above.append(error[1])
            label = shift.removeprefix("shift_").replace("_", " − ", 1)
            ax.bar(xs, means, width=width, yerr=[below, above], capsize=3, color=f"C{i % 10}", label=label)
        ax.axhline(0.0, color="black", linewidth=0.8)
        first_kind = next((j for j, row in enumerate(rows) if row["aggregate"]), None)
        if first_kind is not None and first_kind > 0:
            ax.axvline(first_kind - 0.5, color="grey", linestyle="--", linewidth=0.8)
        ticks = [
            f"all {row['name']}" if row["aggregate"] else row["name"] + (f" ({row['kind']})" if row["kind"] else "")
            for row in rows
        ]
        ax.set_xticks(range(len(rows)), ticks, rotation=45, ha="right", fontsize="small")
        ax.set_xlabel(figure["xlabel"])
        ax.set_ylabel(figure["ylabel"])
        images = sorted({n for n in panel.get("num_images", []) if n is not None})
        counted = f" · {'/'.join(str(n) for n in images)} images" if images else ""
        ax.set_title(f"{figure['title']}\n{panel['title']}{counted}", fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(title="shift", fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    _note_missing(fig, figure)
    fig.savefig(path, dpi=120)
    return path
