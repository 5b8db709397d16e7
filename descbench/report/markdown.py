"""``report.md``: the sections every report has (missing jobs, comparisons, published numbers, all runs) and the
table and cell formats the tasks' own sections use (:mod:`descbench.tasks.<task>.report`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from descbench.core.measures import format_value, interval_of, measure
from descbench.core.published import compare_published
from descbench.report.groups import metric_value
from descbench.report.runs import MissingJob, Run


def format_mean_std(mean: float, std: float, digits: int) -> str:
    """``41.25 ± 1.06``: how every cell of the report writes a mean over seeds."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_cell(mean: float, std: float, n: int, digits: int, interval: Sequence[float] | None = None) -> str:
    """One run with a recorded interval: ``62.08 [57.60, 66.40]``; else ``mean ± std`` over the n runs."""
    if interval is not None and n == 1:
        return f"{mean:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
    return format_mean_std(mean, std, digits)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def run_cells(run: Run) -> list[Any]:
    """The first cells of a run's row in an all-runs table: its dir, overrides and seed."""
    return [run.dir, run.results.get("overrides", ""), run.results.get("seed", "")]


RUN_HEADER = ["run dir", "overrides", "seed"]


def measured(result: Mapping[str, Any], key: str) -> str:
    """A run's value of ``key`` in its display unit, with its interval when recorded."""
    value = metric_value(result, key)
    return "—" if value is None else format_value(key, value, interval_of(result, key))


def primary_runs_table(runs: Sequence[Run], primary: str) -> tuple[list[str], list[list[Any]]]:
    """The all-runs table of a task without its own: the primary measure with its interval."""
    name = measure(primary).display + (" (%)" if measure(primary).percent else "")
    return [*RUN_HEADER, name], [[*run_cells(run), measured(run.results, primary)] for run in runs]


def runs_markdown(tables: Sequence[tuple[str, tuple[list[str], list[list[Any]]]]], unknown: Sequence[Run]) -> list[str]:
    """The ``All runs`` section: one table per task (``(title, (header, rows))``), then the runs of tasks this
    report knows no definition of."""
    lines = ["## All runs", ""]
    for title, (header, rows) in tables:
        lines += [f"{title}:", ""] + table(header, rows) + [""]
    if unknown:
        rows = [[run.dir, run.results.get("task", "-"), run.results.get("overrides", "")] for run in unknown]
        lines += ["Runs of a task this report does not know (no task definition found):", ""]
        lines += table(["run dir", "task", "overrides"], rows) + [""]
    return lines


def published_markdown(runs: Sequence[Run]) -> list[str]:
    """Every published number about a run's measurement: ours, published and Δ, or why it is not comparable."""
    rows = []
    for run in runs:
        for match in compare_published(run.results):
            rows.append(
                [
                    run.dir,
                    match["key"],
                    f"{match['ours']:.2f}",
                    f"{float(match['value']):g}",
                    f"{match['delta']:+.2f}" if match["comparable"] else match["verdict"],
                    match["source"] + (f" ({match['table']})" if match.get("table") else ""),
                    match.get("caveat") or "",
                ]
            )
    if not rows:
        return []
    lines = ["## Published numbers", ""]
    lines += [
        "Published numbers about the runs' measurements (task, data set, split and point of the curve as in "
        "`descbench/core/published.yaml`). Δ = ours − published, in points, only where the run shares every "
        "setting the number depends on (backbones and weights, proposals, markings, prompt options, ...); "
        "otherwise the settings that differ, and no Δ.",
        "",
    ]
    header = ["run dir", "measure", "ours (%)", "published (%)", "Δ (pp)", "source", "caveat"]
    return lines + table(header, rows) + [""]


def missing_markdown(missing: Sequence[MissingJob]) -> list[str]:
    lines = ["## Missing or failed jobs", ""]
    if not missing:
        return lines + ["None: every job of every sweep wrote its results.", ""]
    rows = [[m.where, m.overrides or "-", m.reason] for m in missing]
    return lines + table(["job", "overrides", "problem"], rows) + [""]


def format_p(p: float) -> str:
    """``p = 0.0352`` or ``p < 0.001``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


def format_delta(delta: float, low: float, high: float) -> str:
    """``-0.43 [-1.10, +0.22]``: a difference of fractions in points with its interval."""
    return f"{delta * 100:+.2f} [{low * 100:+.2f}, {high * 100:+.2f}]"


def _sign(mean: float, low: float, high: float) -> str:
    """``B > A`` / ``B < A`` when the interval excludes 0, else the sign alone (not significant)."""
    if low > 0:
        return "B > A"
    if high < 0:
        return "B < A"
    return ("+" if mean > 0 else "−" if mean < 0 else "0") + " (interval spans 0)"


def comparisons_markdown(comparisons: Sequence[Any]) -> list[str]:
    """The ``Comparisons`` section (also what ``--compare`` prints): per pair, the mean, the sign table."""
    if not comparisons:
        return []
    total = sum(len(c.pairs) for c in comparisons)
    lines = ["## Comparisons", ""]
    lines += [
        "Δ = B − A in points of the task's primary measure, on the same images (each job's predictions.csv; "
        "runs pair when every other option is equal). Interval: 95 % percentile bootstrap over images, "
        "each image resampled with both runs' outcomes (10,000 resamples, seeded). p: exact McNemar test, a "
        "two-sided binomial test on the images only one run gets right (p = 1 when there are none). "
        f"p (Holm): Holm's step-down adjustment over all {total} pairs tested in this report.",
        "",
    ]
    for c in comparisons:
        name = measure(c.metric).display
        lines += [f"### {c.a.text} (A) vs {c.b.text} (B)", ""]
        labels = [p.cell for p in c.pairs]
        rows = []
        for p in c.pairs:
            r = p.result
            cell = p.cell if labels.count(p.cell) == 1 else f"{p.cell}, seed {p.run_a.results.get('seed')}"
            rows.append(
                [
                    cell,
                    r.n,
                    f"{r.mean_a * 100:.2f}",
                    f"{r.mean_b * 100:.2f}",
                    format_delta(r.delta, r.ci_low, r.ci_high),
                    r.only_a,
                    r.only_b,
                    format_p(r.p_value),
                    format_p(p.p_holm),
                ]
            )
        header = ["cell", "images", f"A {name} (%)", f"B {name} (%)", "Δ (pp) [95 % CI]", "only A right"]
        lines += table(header + ["only B right", "McNemar", "Holm"], rows) + [""]
        m = c.mean
        lines += [
            f"**mean Δ over {m.pairs} matched pair(s): {format_delta(m.mean, m.ci_low, m.ci_high)} pp** ({m.method}).",
            "",
        ]
        if len(c.by_group) > 1:
            lines += _sign_table(c)
        if c.unpaired:
            lines += ["Runs left without a partner:", ""] + [f"- {u}" for u in c.unpaired] + [""]
    return lines


def _sign_table(c: Any) -> list[str]:
    """Does B beat A on every dataset and backbone? Mean Δ per dataset × backbone with its interval."""
    datasets = list(dict.fromkeys(d for d, _ in c.by_group))
    backbones = list(dict.fromkeys(b for _, b in c.by_group))
    rows = []
    for dataset in datasets:
        row = [dataset]
        for backbone in backbones:
            m = c.by_group.get((dataset, backbone))
            row.append(
                "—"
                if m is None
                else f"{format_delta(m.mean, m.ci_low, m.ci_high)} {_sign(m.mean, m.ci_low, m.ci_high)}"
            )
        rows.append(row)
    lines = ["Sign of Δ (B − A) per dataset × backbone: mean Δ (pp) over that group's pairs [95 % CI].", ""]
    return lines + table(["dataset \\ backbone", *backbones], rows) + [""]
