"""What a task's report section hands the report (:func:`descbench.report.write_report`), and the section of a
task that brings none (a plugin's): a table of its primary measure per run group."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from descbench.report.groups import build_cells, cell_interval, cell_stat, legend_title, panel_title, split_panels
from descbench.report.markdown import format_cell, primary_runs_table, table
from descbench.report.runs import Run


@dataclass
class Section:
    """``lines``: the Markdown; ``data``: what ``report_data.json`` keeps (exactly what is plotted);
    ``files``: the plots written; ``runs_table``: ``(header, rows)`` of the all-runs table; ``html``: builds the
    section's part of ``report.html`` from a :class:`descbench.report.html.HtmlPage` (called only with
    ``--html``, as it may read the runs' files; None: the Markdown rendered, figures embedded)."""

    lines: list[str]
    data: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    runs_table: tuple[list[str], list[list[Any]]] = ([], [])
    html: Callable[[Any], str] | None = None


def generic_section(definition: Any, runs: list[Run], out: Path, missing: int) -> Section:
    """The primary measure of each group of runs (grouped as the definition says), panel by panel."""
    first, exclude = definition.grouping
    results = [r.results for r in runs]
    key = definition.primary
    lines = [f"## {definition.label}", ""]
    for panel, rs in split_panels(results):
        lines += [f"### {panel_title(panel)}", ""]
        rows = []
        for label, cell in build_cells(rs, first, exclude).items():
            stat = cell_stat(cell, key, 100.0)
            if stat is not None:
                rows.append([label, f"{format_cell(*stat, 2, cell_interval(cell, key, 100.0))} (n={stat[2]})"])
        lines += table([legend_title(rs, first, exclude), key], rows) + [""]
    return Section(lines=lines, runs_table=primary_runs_table(runs, key))
