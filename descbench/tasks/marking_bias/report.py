"""The marking-bias section of the report: the purpose, the shifts as a bar chart with their intervals, the
conditions' probabilities and shifts per phrase, and the all-runs table."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from descbench.core.measures import interval_of, measure, resolve
from descbench.report.groups import (
    BARS,
    build_cells,
    cell_interval,
    cell_stat,
    figure_data,
    legend_title,
    metric_value,
    panel_title,
    split_panels,
)
from descbench.report.markdown import RUN_HEADER, format_cell, run_cells, table
from descbench.report.plots import error_bar, new_figure, note_missing
from descbench.report.runs import Run
from descbench.report.sections import Section
from descbench.tasks.marking_bias import DEFINITION

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


def bias_data(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The marking-bias figure: a panel per (dataset, backbone) and option value; per phrase and kind row the
    mean probability of each condition and the shifts as ``[mean, std, n]`` (probabilities, not %), the
    recorded bootstrap interval of a one-run cell, and the runs' numbers of images."""
    first, exclude = DEFINITION.grouping
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
    title = f"Marking bias: shift of the mean phrase probability ({BARS})"
    xlabel = "phrase (kind); a kind sums its phrases per image"
    return figure_data("marking_bias", panels, "shift", 1.0, title, xlabel, "shift in probability")


def plot_bias(path: Path, figure: Mapping[str, Any]) -> Path:
    """Per panel: two bars per phrase and per kind (each shift), error bars from the bootstrap interval (or ± std),
    a zero line; kinds (the sums of their phrases) right of a dashed separator."""
    panels = figure["panels"]
    most = max((len(p["rows"]) for p in panels), default=1)
    fig, axes = new_figure(len(panels), height=4.8, panel_width=max(6.4, 0.7 * most + 1.5))
    for ax, panel in zip(axes, panels):
        rows, shifts = panel["rows"], panel["shifts"]
        width = 0.8 / max(len(shifts), 1)
        for i, shift in enumerate(shifts):
            xs, means, below, above = [], [], [], []
            for j, row in enumerate(rows):
                cell = panel["series"].get(row["name"], {}).get(shift)
                if cell is None:
                    continue
                error = error_bar(cell[0], cell[1], panel.get("intervals", {}).get(row["name"], {}).get(shift))
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
    note_missing(fig, figure)
    fig.savefig(path, dpi=120)
    return path


#: the longest side of an example strip in report.html (three images side by side)
STRIP_SIDE = 720


BIAS_PURPOSE = (
    "The marking-bias probe measures a model's bias, not people: it asks whether circling a person shifts "
    "the model's probabilities over category phrases (neutral and negative ones), against the image unmarked "
    "and against a control circle of the same size on background. Nothing that identifies a person is stored "
    "or reported."
)


def _signed_cell(cell: Sequence[float], interval: Sequence[float] | None, digits: int) -> str:
    """``+0.0068 [+0.0015, +0.0113]`` (one run) or ``+0.0068 ± 0.0010`` (several): a shift keeps its sign."""
    if interval is not None and cell[2] == 1:
        return f"{cell[0]:+.{digits}f} [{interval[0]:+.{digits}f}, {interval[1]:+.{digits}f}]"
    return f"{cell[0]:+.{digits}f} ± {cell[1]:.{digits}f}"


def bias_markdown(data: Mapping[str, Any]) -> list[str]:
    """The ``Marking bias`` section: the purpose, the bar chart, and per panel a table with the conditions'
    mean probabilities, the two shifts with their intervals and the number of images."""
    figure = data["marking_bias"]
    lines = ["## Marking bias", "", BIAS_PURPOSE, "", f"![{figure['title']}]({figure['file']})", ""]
    for panel in figure["panels"]:
        lines += [f"### {panel['title']}", ""]
        lines += [
            "Cells: the mean over images of the phrase's probability (softmax over the phrases), and the mean "
            "paired shift per image, with the 95 % bootstrap interval over images; several runs (n > 1): mean ± std "
            "over them. A kind row (all …) sums its phrases' probabilities per image.",
            "",
        ]
        conditions, shifts = panel["conditions"], panel["shifts"]
        images = sorted({n for n in panel.get("num_images", []) if n is not None})
        header = ["phrase", "kind", *conditions]
        header += [s.removeprefix("shift_").replace("_", " − ", 1) for s in shifts] + ["images", "runs"]
        rows = []
        for row in panel["rows"]:
            cells = panel["series"].get(row["name"], {})
            intervals = panel.get("intervals", {}).get(row["name"], {})
            line: list[Any] = [f"all {row['name']}" if row["aggregate"] else row["name"], row["kind"] or "-"]
            for name in conditions + shifts:
                digits = measure(bias_key(row["name"], name)).digits
                cell = cells.get(name)
                if cell is None:
                    line.append("—")
                elif name in shifts:
                    line.append(_signed_cell(cell, intervals.get(name), digits))
                else:
                    line.append(format_cell(cell[0], cell[1], cell[2], digits, intervals.get(name)))
            n = max((cell[2] for cell in cells.values()), default=0)
            rows.append([*line, "/".join(str(i) for i in images) or "—", n])
        lines += table(header, rows) + [""]
    return lines


def measured_shift(result: Mapping[str, Any], key: str) -> str:
    """A run's shift with its sign and its interval when recorded."""
    value = metric_value(result, key)
    if value is None:
        return "—"
    return _signed_cell([value, 0.0, 1], interval_of(result, key), measure(key).digits)


def runs_table(runs: Sequence[Run]) -> tuple[list[str], list[list[Any]]]:
    """One row per run: its images and, per phrase kind, both shifts with their intervals."""
    results = [r.results for r in runs]
    kinds = [row["name"] for row in bias_rows(results) if row["aggregate"]]
    columns = [(kind, shift) for kind in kinds for shift in bias_measures(results)[2]]
    rows = [
        [*run_cells(run), run.results.get("num_images", "")]
        + [measured_shift(run.results, bias_key(kind, shift)) for kind, shift in columns]
        for run in runs
    ]
    names = [f"all {kind}: {shift.removeprefix('shift_').replace('_', ' − ', 1)}" for kind, shift in columns]
    return [*RUN_HEADER, "images", *names], rows


def section(runs: list[Run], out: Path, missing: int) -> Section:
    """The marking-bias section: the purpose, the shifts' bar chart, one table per panel; the all-runs table."""
    data = bias_data([r.results for r in runs])
    data["marking_bias"]["missing_jobs"] = missing
    files = [plot_bias(out / data["marking_bias"]["file"], data["marking_bias"])]
    lines = bias_markdown(data)

    def html(page) -> str:
        """report.html: the section as report.md has it, then each run's example triplets (as the job drew them)."""
        from descbench.report.html import markdown_html

        galleries = "".join(
            page.run_heading(run, "Example triplets") + page.examples_gallery(run, max_side=STRIP_SIDE) for run in runs
        )
        legend = (
            "<p class='note'>Each strip: the image unmarked, the person circled, a control circle of the same size.</p>"
        )
        return markdown_html(lines, page) + (f"<h3>Examples</h3>{legend}{galleries}" if page.examples else "")

    return Section(lines=lines, data=data, files=files, runs_table=runs_table(runs), html=html)
