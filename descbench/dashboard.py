"""``python -m descbench.dashboard --entity E --project P``: a W&B workspace for a descbench sweep.

The workspace (built with ``wandb_workspaces``) holds one section per task whose definition names one
(``descbench/tasks/<task>/dashboard.py``): classification (top-1 and entropy vs. ``num_desc``, one line per
``describe.detailed`` value with the 95 % interval keys, the same from the run summaries, a
parallel-coordinates panel over the options, the per-class table, a run comparer) and REC (accuracy per
split with its interval, the options, the example images). ``--dry-run`` prints the spec as JSON and
contacts nobody.

The spec is plain data: every key a panel reads is written ``<where>:<key>`` with ``where`` one of
``history`` (``wandb.log`` rows), ``summary`` (a run's summary: the numeric results.json entries),
``config`` (the resolved Hydra config), ``media`` (logged images) or ``table`` (logged tables).
Measurement keys come from :mod:`descbench.core.measures`. Line plots read ``describe.num_desc`` from the
history, so they fill once a job logs its results as a history row; the scatter plots read summaries.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from descbench.core.measures import CI_HIGH, CI_LOW, companion, measure, name_segment_problem

SECTIONS = ("history", "summary", "config", "media", "table")


def with_interval(key: str) -> list[str]:
    """``key`` and, when the registry gives it an interval, its ``ci_low``/``ci_high`` companions."""
    if measure(key).has_interval:
        return [key, companion(key, CI_LOW), companion(key, CI_HIGH)]
    return [key]


def dashboard_spec(
    entity: str,
    project: str,
    sweep_group: str | None = None,
    name: str = "descbench",
    splits: Sequence[str] = ("val",),
) -> dict[str, Any]:
    """The workspace as plain data (what ``--dry-run`` prints and :func:`build_workspace` builds): one section
    per task whose definition names a dashboard section (``splits``: the splits to chart where a task has them)."""
    from descbench.tasks.definition import load_tasks

    sections = []
    for definition in load_tasks().values():
        if definition.dashboard:
            title, panels = definition.dashboard_section()(splits=tuple(splits))
            sections.append({"name": title, "panels": panels})
    return {"entity": entity, "project": project, "name": name, "sweep_group": sweep_group, "sections": sections}


def _refs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.split(":", 1)[0] in SECTIONS and ":" in value else []
    if isinstance(value, (list, tuple)):
        return [ref for item in value for ref in _refs(item)]
    return []


def panel_keys(spec: dict[str, Any]) -> dict[str, set[str]]:
    """``{section: {keys}}`` that the spec's panels read from the runs (for checking against a real run)."""
    keys: dict[str, set[str]] = {section: set() for section in SECTIONS}
    for section in spec["sections"]:
        for panel in section["panels"]:
            for field, value in panel.items():
                if field not in ("type", "title"):
                    for ref in _refs(value):
                        where, key = ref.split(":", 1)
                        keys[where].add(key)
    return keys


def _metric(ref: str) -> Any:
    """A ``where:key`` reference as the panel class wants it (history keys are plain strings)."""
    import wandb_workspaces.reports.v2 as wr

    where, key = ref.split(":", 1)
    return {"summary": wr.SummaryMetric, "config": wr.Config}.get(where, str)(key)


def _panel(panel: dict[str, Any]) -> Any:
    import wandb_workspaces.reports.v2 as wr

    kind, title = panel["type"], panel.get("title")
    if kind == "LinePlot":
        return wr.LinePlot(
            title=title,
            x=_metric(panel["x"]),
            y=[_metric(y) for y in panel["y"]],
            groupby=_metric(panel["groupby"]),
            groupby_aggfunc=panel["aggfunc"],
            groupby_rangefunc=panel["rangefunc"],
        )
    if kind == "ScatterPlot":
        return wr.ScatterPlot(title=title, x=_metric(panel["x"]), y=_metric(panel["y"]))
    if kind == "BarPlot":
        return wr.BarPlot(title=title, metrics=[_metric(m) for m in panel["metrics"]])
    if kind == "ParallelCoordinatesPlot":
        columns = [
            wr.ParallelCoordinatesPlotColumn(metric=_metric(ref), display_name=label) for label, ref in panel["columns"]
        ]
        return wr.ParallelCoordinatesPlot(title=title, columns=columns)
    if kind == "WeavePanelSummaryTable":
        return wr.WeavePanelSummaryTable(table_name=panel["table"].split(":", 1)[1])
    if kind == "MediaBrowser":
        return wr.MediaBrowser(title=title, media_keys=[m.split(":", 1)[1] for m in panel["media"]], num_columns=4)
    if kind == "RunComparer":
        return wr.RunComparer(diff_only=panel["diff_only"])
    raise ValueError(f"unknown panel type {kind!r} in the dashboard spec")


def build_workspace(spec: dict[str, Any]) -> Any:
    """The ``wandb_workspaces`` Workspace of a spec (built offline; ``.save()`` sends it to W&B)."""
    import wandb_workspaces.workspaces as ws

    runset = ws.RunsetSettings()
    if spec.get("sweep_group"):
        runset = ws.RunsetSettings(filters=[ws.Metric("Group") == spec["sweep_group"]])
    sections = [
        ws.Section(name=s["name"], panels=[_panel(p) for p in s["panels"]], is_open=True) for s in spec["sections"]
    ]
    return ws.Workspace(
        entity=spec["entity"], project=spec["project"], name=spec["name"], sections=sections, runset_settings=runset
    )


#: the command-line option behind each field of the workspace that pydantic checks
OPTIONS = {"entity": "--entity", "project": "--project", "name": "--name", "runset_settings": "--sweep-group"}


def _validation_message(err: ValueError) -> str:
    """A pydantic ``ValidationError`` as one line naming the option (``--name 'sweep 🚀': Emojis are not allowed``)."""
    errors = getattr(err, "errors", None)
    if not callable(errors):
        return " ".join(str(err).split())
    parts = []
    for item in errors():
        field = str(item.get("loc", ("?",))[0])
        option = OPTIONS.get(field, field)
        shown = f" {item['input']!r}" if isinstance(item.get("input"), str) else ""
        parts.append(f"{option}{shown}: {' '.join(str(item.get('msg', '')).split())}")
    return "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m descbench.dashboard",
        description="Create a W&B workspace for a descbench sweep (a section per task).",
    )
    parser.add_argument("--entity", required=True, help="W&B entity (user or team)")
    parser.add_argument("--project", required=True, help="W&B project the runs log to")
    parser.add_argument("--sweep-group", default=None, help="only the runs of this group (the multirun dir name)")
    parser.add_argument("--name", default="descbench", help="the workspace's name")
    parser.add_argument("--splits", default="val", help="splits to chart (REC), comma-separated (default: val)")
    parser.add_argument("--dry-run", action="store_true", help="print the workspace spec as JSON; contact nobody")
    args = parser.parse_args(argv)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    for split in splits:
        problem = name_segment_problem(split)
        if problem:
            print(f"error: --splits: the split {split!r} {problem}: give the split names", file=sys.stderr)
            return 2
    spec = dashboard_spec(args.entity, args.project, args.sweep_group, args.name, splits)
    try:
        workspace = build_workspace(spec)  # built in a dry run too: the panel classes check the spec
    except ValueError as err:  # pydantic's ValidationError: a name W&B refuses (an emoji, ...)
        print(f"error: the workspace cannot be built: {_validation_message(err)}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(json.dumps(spec, indent=2))
        return 0
    try:
        workspace.save()
    except Exception as err:  # auth, network, permissions: W&B raises several types; one line for the user
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(
            f"error: could not save the workspace to W&B {args.entity}/{args.project}: {first} "
            "(log in with `wandb login` or set WANDB_API_KEY; --dry-run prints the spec offline)",
            file=sys.stderr,
        )
        return 2
    print(f"workspace: {workspace.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
