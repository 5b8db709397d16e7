"""Paired comparisons: ``--compare A B`` pairs runs that differ only in A -> B and tests B - A on the same images.

Two runs pair when every other option is equal (the registry says what an option is; ``seed`` and the
other bookkeeping keys are not; an option that does not apply to one side, ``n/a``, is not compared)
and, among several partners, when their seeds are equal. Each pair's per-sample ``predictions.csv``
files must hold the same samples in the same order (fingerprint: a hash of the ordered sample ids).

Per pair: Δ (B - A) of the task's primary measure in points, a 95 % paired bootstrap interval over
images, an exact McNemar p-value and its Holm adjustment over every pair the report tests. Per
comparison: the mean Δ over its pairs, with a paired bootstrap over images (the same resampled images
in every cell) when all pairs share one image list, else a t interval over the pairs' Δ.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from descbench.core.errors import ReportError
from descbench.core.files import read_text_file, read_yaml_file
from descbench.core.measures import measure
from descbench.core.stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    PairedResult,
    holm,
    mean_paired_delta,
    paired_comparison,
    t_interval,
)
from descbench.report.groups import NOT_APPLICABLE, display, group_label, grouping_keys, option_keys
from descbench.report.runs import Run
from descbench.tasks.definition import task_definition

COMPARE_FILE = "compare.yaml"
PREDICTIONS = "predictions.csv"
_MISSING = "-"


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the options that select its runs, ``{key: displayed value}``."""

    text: str
    options: dict[str, str]


@dataclass
class Pair:
    """Two runs that differ only in the compared options, and their paired test."""

    cell: str
    run_a: Run
    run_b: Run
    result: PairedResult
    fingerprint: str
    p_holm: float = 1.0


@dataclass(frozen=True)
class MeanDelta:
    """The mean Δ over several pairs, its 95 % interval, and how that interval was obtained."""

    mean: float
    ci_low: float
    ci_high: float
    pairs: int
    method: str


@dataclass
class Comparison:
    """Every pair of one ``A`` vs ``B`` comparison; the mean Δ over all of them and per (dataset, backbone)."""

    a: Side
    b: Side
    metric: str
    pairs: list[Pair]
    mean: MeanDelta
    by_group: dict[tuple[str, str], MeanDelta]
    unpaired: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- what to compare


def parse_side(text: str, runs: Sequence[Run]) -> Side:
    """``describe.detailed=false`` (or ``num_desc=7``, read as ``describe.num_desc``; several joined by ``,``)."""
    recorded = {key for run in runs for key in run.results}
    options: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ReportError(f"--compare {text!r}: expected key=value, e.g. describe.detailed=false")
        if key not in recorded and f"describe.{key}" in recorded:
            key = f"describe.{key}"  # the Hydra override spelling of a describe option
        if key not in recorded:
            raise ReportError(f"--compare {text!r}: no run records the option {key!r}")
        # Hydra and W&B spell booleans True/False; the results' display spelling is true/false
        options[key] = value.lower() if value.lower() in ("true", "false") else value
    return Side(text, options)


def load_compare_file(path: Path) -> list[tuple[str, str]]:
    """The ``[A, B]`` pairs of a sweep's ``compare.yaml`` (``compare: [[A, B], ...]``)."""
    try:
        loaded = read_yaml_file(path, "compare file", ReportError)
    except OSError as err:
        raise ReportError(f"compare file {path}: cannot read it ({err.strerror or err})") from None
    pairs = loaded.get("compare") if isinstance(loaded, Mapping) else loaded
    if (
        not isinstance(pairs, list)
        or not pairs
        or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs)
    ):
        raise ReportError(
            f"{path}: expected 'compare:' with a list of [A, B] pairs, e.g. "
            "[describe.detailed=false, describe.detailed=true]"
        )
    return [(a, b) for a, b in pairs]


def check_sides(a: Side, b: Side) -> None:
    """A comparison must change the same options on both sides, to other values: a side equal to the other pairs
    every run with itself, and sides that set different options would pool pairs that vary different things into
    one mean Δ."""
    if set(a.options) != set(b.options):
        raise ReportError(
            f"--compare {a.text} {b.text}: the two sides set different options ({', '.join(a.options)} vs "
            f"{', '.join(b.options)}): every pair would differ in all of them at once and the mean Δ would pool "
            "different comparisons; compare one option at a time (the same keys on both sides, e.g. "
            "--compare describe.detailed=false describe.detailed=true)"
        )
    if a.options == b.options:
        raise ReportError(
            f"--compare {a.text} {b.text}: both sides select the same runs, so every run would be paired with "
            "itself: give B another value"
        )


def _has(run: Run, side: Side) -> bool:
    return all(display(run.results.get(k)) == v for k, v in side.options.items())


def _differences(a: Run, b: Run, compared: set[str]) -> list[str]:
    """Options on which two runs differ (options that do not apply to one of them are not compared)."""
    keys = [k for k in option_keys([a.results, b.results]) if k not in compared]
    found = []
    for key in keys:
        va = display(a.results[key]) if key in a.results else _MISSING
        vb = display(b.results[key]) if key in b.results else _MISSING
        if va != vb and NOT_APPLICABLE not in (va, vb):
            found.append(f"{key} ({va} vs {vb})")
    return found


def pair_runs(runs: Sequence[Run], a: Side, b: Side) -> tuple[list[tuple[Run, Run]], list[str]]:
    """``[(run A, run B)]`` that differ only in the compared options, and a line per run left without partner."""
    compared = set(a.options) | set(b.options)
    side_a = [r for r in runs if _has(r, a)]
    side_b = [r for r in runs if _has(r, b)]
    for side, runs_of in ((a, side_a), (b, side_b)):
        if not runs_of:
            raise ReportError(f"--compare: no run has {side.text}")
    pairs, unpaired, used = [], [], set()
    for run_a in side_a:
        partners = [r for r in side_b if id(r) not in used and r.results.get("task") == run_a.results.get("task")]
        equal = [r for r in partners if not _differences(run_a, r, compared)]
        same_seed = [r for r in equal if r.results.get("seed") == run_a.results.get("seed")]
        chosen = (same_seed or equal or [None])[0]
        if chosen is None:
            line = f"{run_a.dir} ({a.text}): no partner with {b.text}"
            closest = min(partners, key=lambda r: len(_differences(run_a, r, compared)), default=None)
            if closest is not None:  # say what keeps the nearest candidate apart
                line += f"; differs from {closest.dir} in " + ", ".join(_differences(run_a, closest, compared))
            unpaired.append(line)
            continue
        used.add(id(chosen))
        pairs.append((run_a, chosen))
    unpaired += [f"{r.dir} ({b.text}): no partner with {a.text}" for r in side_b if id(r) not in used]
    if not pairs:
        raise ReportError(f"--compare {a.text} {b.text}: no two runs differ only there ({unpaired[0]})")
    return pairs, unpaired


# --------------------------------------------------------------------------- per-sample outcomes


def read_outcomes(run_dir: Path, expected: int | None = None) -> tuple[list[str], np.ndarray]:
    """(ordered sample ids, 0/1 correct) of a job's ``predictions.csv``, in sample-index order.

    A sample id is the classification ``sample_id``, or for REC ``image_id``, split and expression.
    A damaged file (not UTF-8, a cut row, an index given twice, fewer rows than the ``expected``
    count its ``results.json`` records) is one line naming it, never a partial comparison.
    """
    path = run_dir / PREDICTIONS
    if not path.is_file():
        raise ReportError(f"{path} not found: a paired comparison needs the per-sample predictions every job writes")
    damaged = "the file is truncated or edited: rerun the job"
    try:
        rows = list(csv.DictReader(io.StringIO(read_text_file(path, "predictions file", ReportError), newline="")))
    except csv.Error as err:
        raise ReportError(f"{path} is not a readable CSV file ({err}): {damaged}") from None
    columns = set(rows[0]) if rows else set()
    if not {"index", "correct"} <= columns or not ({"sample_id"} <= columns or {"image_id", "expression"} <= columns):
        raise ReportError(f"{path}: expected the columns index, sample_id (or image_id, split, expression), correct")
    id_columns = ["sample_id"] if "sample_id" in columns else ["image_id", "split", "expression"]
    parsed = []
    for number, row in enumerate(rows, 2):
        try:
            index, correct = int(row["index"]), int(row["correct"])
            if correct not in (0, 1) or any(row.get(c) is None for c in id_columns if c in columns):
                raise ValueError
        except (TypeError, ValueError):
            raise ReportError(
                f"{path}:{number}: a damaged row (index {row.get('index')!r}, correct {row.get('correct')!r}): {damaged}"
            ) from None
        sample = (
            row["sample_id"]
            if "sample_id" in columns
            else f"{row['image_id']}\t{row.get('split', '')}\t{row['expression']}"
        )
        parsed.append((index, sample, correct))
    parsed.sort()
    indices = [index for index, _, _ in parsed]
    if len(set(indices)) != len(indices) or (indices and indices[0] < 0):
        raise ReportError(f"{path}: a sample index is negative or given twice: {damaged}")
    if expected is not None and len(parsed) != expected:
        raise ReportError(f"{path} holds {len(parsed)} rows but its results.json counts {expected} samples: {damaged}")
    return [s for _, s, _ in parsed], np.array([c for _, _, c in parsed], dtype=np.int8)


#: the results.json count that a task's predictions.csv has one row for
SAMPLE_COUNTS = {"classify": "num_evaluated", "rec": "num_expressions", "keypoints": "num_keypoints"}


def _expected_rows(run: Run) -> int | None:
    count = run.results.get(SAMPLE_COUNTS.get(str(run.results.get("task")), ""))
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def fingerprint(sample_ids: Sequence[str]) -> str:
    """A hash of the ordered sample ids: equal exactly when two runs saw the same samples in the same order."""
    digest = hashlib.sha256()
    for sample in sample_ids:
        digest.update(sample.encode("utf-8") + b"\n")
    return digest.hexdigest()


def _paired_outcomes(root: Path, run_a: Run, run_b: Run) -> tuple[np.ndarray, np.ndarray, str]:
    ids_a, correct_a = read_outcomes(root / run_a.dir, _expected_rows(run_a))
    ids_b, correct_b = read_outcomes(root / run_b.dir, _expected_rows(run_b))
    fa, fb = fingerprint(ids_a), fingerprint(ids_b)
    if fa != fb:
        raise ReportError(
            f"cannot pair {run_a.dir} with {run_b.dir}: their image lists differ (fingerprints {fa[:12]} vs "
            f"{fb[:12]}, {len(ids_a)} vs {len(ids_b)} samples); compare runs over the same images "
            "(same dataset, split and dataset.limit)"
        )
    return correct_a, correct_b, fa


# --------------------------------------------------------------------------- the tests


def compare(
    root: Path,
    runs: Sequence[Run],
    a_text: str,
    b_text: str,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Comparison:
    """One comparison: every pair's Δ, interval and McNemar p; the mean Δ over the pairs."""
    a, b = parse_side(a_text, runs), parse_side(b_text, runs)
    check_sides(a, b)
    matched, unpaired = pair_runs(runs, a, b)
    tasks = {run_a.results.get("task") for run_a, _ in matched}
    if len(tasks) != 1:
        raise ReportError(f"--compare {a.text} {b.text}: the pairs mix tasks ({', '.join(map(str, tasks))})")
    task = str(tasks.pop())
    definition = task_definition(task, matched[0][0].results.get("task_module"))
    metric = definition.primary if definition is not None else None
    if metric is None or measure(metric).kind != "rate":
        raise ReportError(
            f"--compare {a.text} {b.text}: task {task} has no per-sample 0/1 primary measure to pair runs on"
        )
    labels = grouping_keys([run_a.results for run_a, _ in matched], first="", exclude=set(a.options) | set(b.options))
    pairs, outcomes = [], []
    for run_a, run_b in matched:
        correct_a, correct_b, print_ = _paired_outcomes(root, run_a, run_b)
        result = paired_comparison(correct_a, correct_b, n_resamples=n_resamples, seed=seed)
        pairs.append(Pair(group_label(run_a.results, labels), run_a, run_b, result, print_))
        outcomes.append((correct_a, correct_b))
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (run_a, _) in enumerate(matched):
        groups.setdefault((display(run_a.results.get("dataset")), display(run_a.results.get("backbone"))), []).append(i)
    by_group = {
        group: _mean_over([pairs[i] for i in idx], [outcomes[i] for i in idx], n_resamples, seed)
        for group, idx in groups.items()
    }
    return Comparison(a, b, metric, pairs, _mean_over(pairs, outcomes, n_resamples, seed), by_group, unpaired)


def _mean_over(pairs: Sequence[Pair], outcomes: Sequence[tuple], n_resamples: int, seed: int) -> MeanDelta:
    """Mean Δ over pairs: paired bootstrap over one shared image list, else a t interval over the pairs' Δ."""
    if len({p.fingerprint for p in pairs}) == 1:
        mean, low, high = mean_paired_delta(outcomes, n_resamples=n_resamples, seed=seed)
        method = "paired bootstrap over images, the same resampled images in every cell"
    else:
        deltas = [p.result.delta for p in pairs]
        mean = float(np.mean(deltas))
        low, high = t_interval(deltas)
        method = "t interval over the pairs' Δ (the pairs hold different image lists)"
    return MeanDelta(mean, low, high, len(pairs), method)


def compare_all(root: Path, runs: Sequence[Run], sides: Sequence[tuple[str, str]]) -> list[Comparison]:
    """Every requested comparison, p-values Holm-adjusted over all the pairs they test together."""
    comparisons = [compare(root, runs, a, b) for a, b in sides]
    pairs = [p for c in comparisons for p in c.pairs]
    for pair, adjusted in zip(pairs, holm([p.result.p_value for p in pairs])):
        pair.p_holm = adjusted
    return comparisons


def comparison_data(comparisons: Sequence[Comparison]) -> list[dict[str, Any]]:
    """The comparisons as plain data for ``report_data.json`` (fractions, not points)."""
    return [
        {
            "a": c.a.text,
            "b": c.b.text,
            "metric": c.metric,
            "pairs": [
                {"cell": p.cell, "run_a": p.run_a.dir, "run_b": p.run_b.dir, **vars(p.result), "p_holm": p.p_holm}
                for p in c.pairs
            ],
            "mean": vars(c.mean),
            "by_group": [{"dataset": d, "backbone": b, **vars(m)} for (d, b), m in c.by_group.items()],
            "unpaired": c.unpaired,
        }
        for c in comparisons
    ]
