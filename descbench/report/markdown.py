"""``report.md``: the sections, each a list of lines, from the figure data and the runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from descbench.core.measures import format_value, interval_of, measure
from descbench.core.published import compare_published
from descbench.report.groups import (
    ALL_PARTS,
    NOT_APPLICABLE,
    bias_key,
    bias_measures,
    bias_rows,
    display,
    keypoint_mode,
    metric_value,
    rec_key,
    rec_splits,
)
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


def _x_label(x: Any) -> str:
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
        excluded = {(label, x): share for label, x, share in acc_panel.get("excluded", [])}
        labels = list(dict.fromkeys([*acc_panel["series"], *(label for label, _ in excluded)]))
        xs = sorted(
            {p[0] for pts in acc_panel["series"].values() for p in pts} | {x for _, x in excluded},
            key=lambda x: (x is None, x if x is not None else 0),
        )
        rows = []
        for x in xs:
            row = [_x_label(x)]
            for label in labels:
                a = {p[0]: p for p in acc_panel["series"].get(label, [])}.get(x)
                e = {p[0]: p for p in ent_panel["series"].get(label, [])}.get(x)
                if (label, x) in excluded:
                    row.append(
                        f"excluded (the study's rule: {excluded[label, x]:.0f} % of classes answered another "
                        "count than the examples')"
                    )
                    continue
                if a is None:
                    row.append("—")
                    continue
                text = format_cell(a[1], a[2], a[3], 2, _intervals_by_x(acc_panel, label).get(x))
                if e is not None:
                    text += " / " + format_cell(e[1], e[2], e[3], 3, _intervals_by_x(ent_panel, label).get(x))
                row.append(f"{text} (n={a[3]})")
            rows.append(row)
        lines += table(["num_desc", *labels], rows) + [""]
    return lines


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


def _measured(result: Mapping[str, Any], key: str) -> str:
    """A run's value of ``key`` in its display unit, with its interval when recorded."""
    value = metric_value(result, key)
    return "—" if value is None else format_value(key, value, interval_of(result, key))


def _measured_shift(result: Mapping[str, Any], key: str) -> str:
    """A run's shift with its sign and its interval when recorded."""
    value = metric_value(result, key)
    if value is None:
        return "—"
    return _signed_cell([value, 0.0, 1], interval_of(result, key), measure(key).digits)


def runs_markdown(runs: Sequence[Run]) -> list[str]:
    lines = ["## All runs", ""]
    classify = [r for r in runs if r.results.get("task") == "classify"]
    rec = [r for r in runs if r.results.get("task") == "rec"]
    keypoints = [r for r in runs if r.results.get("task") == "keypoints"]
    bias = [r for r in runs if r.results.get("task") == "marking_bias"]
    other = [r for r in runs if r.results.get("task") not in ("classify", "rec", "keypoints", "marking_bias")]
    if classify:
        rows = [
            [
                run.dir,
                run.results.get("overrides", ""),
                run.results.get("seed", ""),
                *(_measured(run.results, key) for key in ("top1", "top5", "entropy", "ece")),
            ]
            for run in classify
        ]
        header = ["run dir", "overrides", "seed", "top-1 (%)", "top-5 (%)", "entropy (nats)", "ECE (%)"]
        lines += table(header, rows) + [""]
    if rec:
        splits = rec_splits([r.results for r in rec])
        rows = [
            [run.dir, run.results.get("overrides", ""), run.results.get("seed", "")]
            + [_measured(run.results, rec_key(s)) for s in splits]
            for run in rec
        ]
        lines += table(["run dir", "overrides", "seed", *[f"{s} (%)" for s in splits]], rows) + [""]
    if keypoints:
        rows = []
        for run in keypoints:
            mode = keypoint_mode(run.results)
            chance = metric_value(run.results, mode.chance)
            rows.append(
                [run.dir, run.results.get("overrides", ""), run.results.get("seed", ""), mode.name]
                + [mode.rate, _measured(run.results, mode.rate), "—" if chance is None else f"{chance * 100:.2f}"]
            )
        header = ["run dir", "overrides", "seed", "mode", "measure", "value (%)", "chance (%)"]
        lines += table(header, rows) + [""]
    if bias:
        kinds = [row["name"] for row in bias_rows([r.results for r in bias]) if row["aggregate"]]
        shifts = bias_measures([r.results for r in bias])[2]
        columns = [(kind, shift) for kind in kinds for shift in shifts]
        rows = [
            [run.dir, run.results.get("overrides", ""), run.results.get("seed", ""), run.results.get("num_images", "")]
            + [_measured_shift(run.results, bias_key(kind, shift)) for kind, shift in columns]
            for run in bias
        ]
        names = [f"all {kind}: {shift.removeprefix('shift_').replace('_', ' − ', 1)}" for kind, shift in columns]
        lines += table(["run dir", "overrides", "seed", "images", *names], rows) + [""]
    if other:
        rows = [[run.dir, run.results.get("task", "-"), run.results.get("overrides", "")] for run in other]
        lines += ["Runs of a task this report does not chart:", ""]
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


def _range(values: Sequence[float], digits: int) -> str:
    """One value when the rows share it, else ``low–high``."""
    texts = sorted({round(v, digits) for v in values})
    if not texts:
        return "—"
    return f"{texts[0]:.{digits}f}" if len(texts) == 1 else f"{texts[0]:.{digits}f}–{texts[-1]:.{digits}f}"


def keypoints_markdown(data: Mapping[str, Any]) -> list[str]:
    """The ``Keypoints`` section: per mode and panel a table, rows = option values, columns = the overall rate
    with its chance level, the mode's summary columns, one column per part; a last row of per-part chance."""
    lines = ["## Keypoints", ""]
    for name in ("keypoints_pck", "keypoints_naming"):
        figure = data.get(name)
        if figure is None:
            continue
        lines += [f"![{figure['title']}]({figure['file']})", ""]
        for panel in figure["panels"]:
            lines += [f"### Keypoint {figure['mode']} · {panel['title']}", ""]
            lines += [
                f"Cells: {figure['ylabel']}, one run: value [95 % Wilson interval]; several runs (n > 1): mean ± std "
                "over them. Chance: the expected score of a uniform random choice among the candidates. "
                f"Rows grouped by: {panel['legend_title']}.",
                "",
            ]
            columns = panel["columns"]
            summary = [c for c in columns if not c["part"]]
            parts = [c for c in columns if c["part"]]
            header = [panel["legend_title"], "runs"]
            for column in summary:
                header += [column["name"], f"chance ({column['name']})" if column["name"] != ALL_PARTS else "chance"]
            header += [c["name"] for c in parts]
            rows = []
            for label, cells in panel["series"].items():
                intervals = panel.get("intervals", {}).get(label, {})
                chance = panel.get("chance", {}).get(label, {})
                n = max((cell[2] for cell in cells.values()), default=0)
                row: list[Any] = [label, n]
                for column in summary:
                    row.append(_rate_cell(cells.get(column["key"]), intervals.get(column["key"])))
                    level = chance.get(column["key"])
                    row.append("—" if level is None else f"{level:.2f}")
                row += [_rate_cell(cells.get(c["key"]), intervals.get(c["key"])) for c in parts]
                rows.append(row)
            levels = [
                _range([v[c["key"]] for v in panel.get("chance", {}).values() if c["key"] in v], 2) for c in parts
            ]
            if any(level != "—" for level in levels):
                rows.append(["chance level", "", *[""] * (2 * len(summary)), *levels])
            lines += table(header, rows) + [""]
    return lines


def _rate_cell(cell: Sequence[float] | None, interval: Sequence[float] | None) -> str:
    return "—" if cell is None else format_cell(cell[0], cell[1], cell[2], 2, interval)


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
