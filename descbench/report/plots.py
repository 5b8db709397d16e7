"""PNG plots drawn from the figure data that ``report_data.json`` stores (what is plotted is what is saved).

Error bars: a cell's recorded 95 % interval when it is one run, else ± the sample std over its runs
or repetitions; lines with intervals also get a light band between them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def new_figure(num_panels: int, height: float = 4.2, panel_width: float = 6.4):
    from matplotlib.figure import Figure  # Agg through Figure.savefig: no pyplot, no global state

    fig = Figure(figsize=(panel_width * num_panels + 2.6, height), layout="constrained")
    axes = fig.subplots(1, num_panels, squeeze=False)[0]
    return fig, axes


def note_missing(fig: Any, figure: Mapping[str, Any]) -> None:
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


def error_bar(mean: float, std: float, interval: Sequence[float] | None) -> tuple[float, float]:
    """(below, above) the mean: the interval when recorded, else the std on both sides."""
    if interval is None or any(math.isnan(v) for v in interval):
        return std, std
    return max(0.0, mean - interval[0]), max(0.0, interval[1] - mean)


def distinct_colours(count: int) -> list[Any]:
    """``count`` colours no two alike: tab10, tab20 up to 20, then evenly spaced on a wide colormap."""
    from matplotlib import colormaps

    if count <= 10:
        return [f"C{i}" for i in range(count)]
    if count <= 20:
        return [colormaps["tab20"](i) for i in range(count)]
    return [colormaps["turbo"](i / (count - 1)) for i in range(count)]
