"""``python -m descbench.report DIR``: merge the ``results.json`` of a run or multirun into tables and plots.

Writes ``report.md``, ``accuracy_vs_num_desc.png``, ``entropy_vs_num_desc.png`` (classification),
``rec_accuracy.png`` (REC), ``keypoints_pck.png`` / ``keypoints_naming.png`` (keypoints: per part, per
option value), ``marking_bias.png`` (the marking-bias probe's shifts) and ``report_data.json`` (exactly
the plotted series) into the given dir or ``--out``; a dir may mix tasks, each gets its section.
Repeats over seeds are averaged (mean ± sample std, with the count); a one-run cell shows its recorded
95 % interval; jobs that failed or never ran are listed, not hidden; a run whose setting matches a
published one gets the published number and Δ beside it. ``--compare A B`` (or a ``compare.yaml`` in
DIR) adds paired comparisons on the same images.

Parts: :mod:`.runs` (read), :mod:`.groups` (options and cells), :mod:`.figures` (plotted data),
:mod:`.plots`, :mod:`.markdown`, :mod:`.compare` (paired tests).
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
from descbench.report.figures import bias_data, classification_data, keypoint_data, rec_data
from descbench.report.groups import (
    GROUPING,
    build_rec_series,
    build_series,
    grouping_keys,
    split_modes,
    split_panels,
    undeclared_measurements,
)
from descbench.report.markdown import (
    bias_markdown,
    classification_markdown,
    comparisons_markdown,
    keypoints_markdown,
    missing_markdown,
    published_markdown,
    rec_markdown,
    runs_markdown,
)
from descbench.report.plots import plot_bias, plot_keypoints, plot_rec, plot_series
from descbench.report.plots import with_gaps as _with_gaps
from descbench.report.runs import RESULTS, MissingJob, Run, expected_sweep_points, load_runs

__all__ = [
    "Report",
    "build_rec_series",
    "build_series",
    "expected_sweep_points",
    "grouping_keys",
    "load_runs",
    "main",
    "write_report",
    "_with_gaps",
]


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


def _undeclared_warnings(by_task: dict[str, list[dict]]) -> list[str]:
    """A grouping option holding fractional numbers may be a measurement missing from the registry."""
    keys: list[str] = []
    for task, results in by_task.items():
        first, exclude = GROUPING[task]
        # keypoint modes are grouped apart (they write different keys), as their tables are
        groups = [rs for _, rs in split_modes(results)] if task == "keypoints" else [results]
        for _, panel in [p for rs in groups for p in split_panels(rs)]:
            keys += [k for k in undeclared_measurements(panel, first, exclude) if k not in keys]
    return [
        f"results key {key!r} holds fractional numbers and is not declared in descbench/core/measures.py: the report "
        "treats it as an option (a line of its own); declare it there if it is a measurement"
        for key in keys
    ]


def _comparison_sides(root: Path, compare: Sequence[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if compare:
        return list(compare)
    path = root / COMPARE_FILE
    return load_compare_file(path) if path.is_file() else []


def write_report(root: Path, out: Path | None = None, compare: Sequence[tuple[str, str]] | None = None) -> Report:
    """Read every ``results.json`` under ``root``; write report.md, the PNGs and report_data.json to ``out``.

    ``compare``: ``[(A, B), ...]`` option assignments to test B - A on paired runs (default: the
    pairs of ``root/compare.yaml`` when present).
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

    by_task = {task: [r.results for r in runs if r.results.get("task") == task] for task in GROUPING}
    classify, rec, keypoints, bias = by_task["classify"], by_task["rec"], by_task["keypoints"], by_task["marking_bias"]
    report.warnings = _undeclared_warnings(by_task)
    counts = f"{len(classify)} classification, {len(rec)} REC, {len(keypoints)} keypoints, {len(bias)} marking bias"
    others = len(runs) - sum(len(v) for v in by_task.values())
    counts += f", {others} of other tasks" if others else ""
    lines = [f"# descbench report: {root.resolve().name}", ""]
    lines += [
        f"Source: `{root.resolve()}` · {len(runs)} runs ({counts}) · "
        f"{len(missing)} missing or failed jobs. Means and sample standard deviations over seeds (std 0 when n=1); "
        "a cell of one run shows its recorded 95 % interval when the run has one.",
        "",
    ]
    lines += [f"> warning: {w}" for w in report.warnings] + ([""] if report.warnings else [])
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
    if keypoints:
        data = keypoint_data(keypoints)
        for figure in data.values():
            figure["missing_jobs"] = len(missing)
            report.files.append(plot_keypoints(out / figure["file"], figure))
        report.data.update(data)
        lines += keypoints_markdown(data)
    if bias:
        data = bias_data(bias)
        data["marking_bias"]["missing_jobs"] = len(missing)
        report.data.update(data)
        report.files.append(plot_bias(out / data["marking_bias"]["file"], data["marking_bias"]))
        lines += bias_markdown(data)
    lines += comparisons_markdown(comparisons)
    lines += published_markdown(runs)
    lines += runs_markdown(runs)
    report.data["missing"] = [vars(m) for m in missing]
    if comparisons:
        report.data["comparisons"] = comparison_data(comparisons)

    from descbench.core.files import write_atomic
    from descbench.core.results import json_text

    write_atomic(out / "report_data.json", json_text(report.data))
    write_atomic(out / "report.md", "\n".join(lines).rstrip() + "\n")
    report.files += [out / "report_data.json", out / "report.md"]
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
    args = parser.parse_args(argv)
    try:
        report = write_report(args.dir, args.out, [tuple(pair) for pair in args.compare or []])
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
    for path in report.files:
        if path.suffix == ".png":
            print(f"plot:   {path}")
    return 0
