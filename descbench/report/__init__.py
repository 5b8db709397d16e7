"""``python -m descbench.report DIR``: merge the ``results.json`` of a run or multirun into tables and plots.

Writes ``report.md``, the plots of each task's section (its definition names the section:
``descbench/tasks/<task>/report.py``; a task without one gets a table of its primary measure) and
``report_data.json`` (exactly the plotted series) into the given dir or ``--out``; a dir may mix tasks,
each gets its section.
Repeats over seeds are averaged (mean ± sample std, with the count); a one-run cell shows its recorded
95 % interval; jobs that failed or never ran are listed, not hidden; a run whose setting matches a
published one gets the published number and Δ beside it. ``--compare A B`` (or a ``compare.yaml`` in
DIR) adds paired comparisons on the same images.

``--html`` also writes ``report.html``: one self-contained page (figures and example images embedded, no
network at view time) with each task's section as the task writes it (:mod:`.html`).

Parts: :mod:`.runs` (read), :mod:`.groups` (options and cells), :mod:`.sections` (a task's section),
:mod:`.plots`, :mod:`.markdown` and :mod:`.html` (shared formats), :mod:`.compare` (paired tests).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from descbench.core.errors import ReportError
from descbench.core.files import write_error_reason
from descbench.report.compare import COMPARE_FILE, Comparison, compare_all, comparison_data, load_compare_file
from descbench.report.groups import grouping_keys, split_panels, undeclared_measurements
from descbench.report.markdown import comparisons_markdown, missing_markdown, published_markdown, runs_markdown
from descbench.report.runs import RESULTS, MissingJob, Run, expected_sweep_points, load_runs
from descbench.report.sections import Section, generic_section
from descbench.tasks.definition import definitions_of

__all__ = ["Report", "expected_sweep_points", "grouping_keys", "load_runs", "main", "write_report"]


@dataclass
class Report:
    """What ``write_report`` produced."""

    out_dir: Path
    runs: list[Run]
    missing: list[MissingJob]
    files: list[Path] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    html: Path | None = None
    left_out: list[str] = field(default_factory=list)


def _undeclared_warnings(by_task: dict[Any, list[Run]]) -> list[str]:
    """A grouping option holding fractional numbers may be a measurement missing from the registry."""
    keys: list[str] = []
    for definition, runs in by_task.items():
        first, exclude = definition.grouping
        results = [r.results for r in runs]
        # runs that write different keys (keypoint modes) are grouped apart, as their tables are
        groups = [[r for r in results if r.get("mode") == m] for m in dict.fromkeys(r.get("mode") for r in results)]
        for _, panel in [p for rs in groups for p in split_panels(rs)]:
            keys += [k for k in undeclared_measurements(panel, first, exclude) if k not in keys]
    return [
        f"results key {key!r} holds fractional numbers and is not declared as a measure (its task's definition or "
        "descbench/core/measures.py): the report treats it as an option (a line of its own); declare it if it is "
        "a measurement"
        for key in keys
    ]


def _comparison_sides(root: Path, compare: Sequence[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if compare:
        return list(compare)
    path = root / COMPARE_FILE
    return load_compare_file(path) if path.is_file() else []


def write_report(
    root: Path,
    out: Path | None = None,
    compare: Sequence[tuple[str, str]] | None = None,
    html: bool = False,
    examples: int = 8,
) -> Report:
    """Read every ``results.json`` under ``root``; write report.md, the PNGs and report_data.json to ``out``.

    ``compare``: ``[(A, B), ...]`` option assignments to test B - A on paired runs (default: the
    pairs of ``root/compare.yaml`` when present). ``html``: also ``report.html``, with up to ``examples``
    example images per run in its galleries.
    """
    root = Path(root)
    if not root.exists():
        raise ReportError(f"{root}: no such directory")
    if not root.is_dir():
        raise ReportError(f"{root}: not a directory (give a run or multirun dir of descbench.eval)")
    runs, missing = load_runs(root)
    if not runs:
        failed = f" ({len(missing)} failed or missing jobs)" if missing else ""
        raise ReportError(f"no {RESULTS} found under {root}{failed}: not a run or multirun dir of descbench.eval?")
    # the tasks' definitions first: they declare the measures, which never pair or group runs
    definitions = definitions_of([r.results for r in runs])
    comparisons = compare_all(root, runs, _comparison_sides(root, compare))
    out = Path(out) if out is not None else root
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ReportError(
            f"cannot write the report to {out} ({write_error_reason(err)}): choose another --out"
        ) from None
    report = Report(out_dir=out, runs=runs, missing=missing, comparisons=comparisons)

    by_task = {d: [r for r in runs if r.results.get("task") == name] for name, d in definitions.items()}
    unknown = [r for r in runs if r.results.get("task") not in definitions]
    report.warnings = _undeclared_warnings(by_task)
    counts = ", ".join(f"{len(rs)} {d.label}" for d, rs in by_task.items())
    counts += f"{', ' if counts else ''}{len(unknown)} of unknown tasks" if unknown else ""
    title = f"descbench report: {root.resolve().name}"
    intro = (
        f"Source: `{root.resolve()}` · {len(runs)} runs ({counts}) · "
        f"{len(missing)} missing or failed jobs. Means and sample standard deviations over seeds (std 0 when n=1); "
        "a cell of one run shows its recorded 95 % interval when the run has one."
    )
    lines = [f"# {title}", "", intro, ""]
    lines += [f"> warning: {w}" for w in report.warnings] + ([""] if report.warnings else [])
    lines += missing_markdown(missing)
    tables = []
    parts: list[tuple[Any, Section]] = []
    for definition, task_runs in by_task.items():
        write = definition.report_section()
        part: Section = (
            write(task_runs, out, len(missing)) if write else generic_section(definition, task_runs, out, len(missing))
        )
        parts.append((definition, part))
        lines += part.lines
        report.data.update(part.data)
        report.files += part.files
        tables.append((definition.label, part.runs_table))
    lines += comparisons_markdown(comparisons)
    lines += published_markdown(runs)
    lines += runs_markdown(tables, unknown)
    report.data["missing"] = [vars(m) for m in missing]
    if comparisons:
        report.data["comparisons"] = comparison_data(comparisons)

    from descbench.core.files import write_atomic
    from descbench.core.results import json_text

    write_atomic(out / "report_data.json", json_text(report.data))
    write_atomic(out / "report.md", "\n".join(lines).rstrip() + "\n")
    report.files += [out / "report_data.json", out / "report.md"]
    if html:
        from descbench.report.html import HtmlPage, write_page

        page = HtmlPage(root=root, out=out, examples=examples)
        report.html = write_page(
            page, title, intro, report.warnings, missing, parts, comparisons, runs, tables, unknown
        )
        report.left_out = page.left_out
        report.files.append(report.html)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m descbench.report",
        description="Tables and plots from the results.json files of a descbench run or multirun dir.",
    )
    parser.add_argument("dir", type=Path, help="a run dir or a multirun (sweep) dir")
    parser.add_argument("--out", type=Path, default=None, help="where to write report.md and the plots (default: DIR)")
    parser.add_argument(
        "--compare",
        nargs=2,
        action="append",
        metavar=("A", "B"),
        help="test B - A on runs that differ only there, e.g. --compare describe.detailed=false describe.detailed=true "
        f"(repeatable; default: the pairs of DIR/{COMPARE_FILE})",
    )
    parser.add_argument(
        "--html",
        action="store_true",
        help="also write report.html: one self-contained page (plots and examples embedded, opens offline)",
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=None,
        metavar="N",
        help="with --html: example images per run in its galleries (default 8; REC: a seeded sample, half right)",
    )
    args = parser.parse_args(argv)
    if args.examples is not None and not args.html:
        print("error: --examples sets the galleries of report.html: add --html", file=sys.stderr)
        return 2
    if args.examples is not None and args.examples < 0:
        print(f"error: --examples {args.examples}: give a count of 0 or more", file=sys.stderr)
        return 2
    try:
        report = write_report(
            args.dir,
            args.out,
            [tuple(pair) for pair in args.compare or []],
            html=args.html,
            examples=8 if args.examples is None else args.examples,
        )
    except ReportError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if report.missing:
        listed = "; ".join(f"{m.where} ({m.overrides or 'no overrides'})" for m in report.missing)
        print(f"warning: {len(report.missing)} missing or failed job(s) under {args.dir}: {listed}", file=sys.stderr)
    if report.comparisons:
        print("\n".join(comparisons_markdown(report.comparisons)))
    print(f"report: {report.out_dir / 'report.md'} ({len(report.runs)} runs)")
    if report.html is not None:
        print(f"page:   {report.html} ({report.html.stat().st_size / 2**20:.1f} MB)")
        if report.left_out:
            shown = "; ".join(report.left_out[:3]) + ("; ..." if len(report.left_out) > 3 else "")
            print(
                f"warning: report.html left out {len(report.left_out)} item(s), listed on the page: {shown}",
                file=sys.stderr,
            )
    for path in report.files:
        if path.suffix == ".png":
            print(f"plot:   {path}")
    return 0
