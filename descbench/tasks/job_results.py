"""What every job writes the same way, whatever its task (rank 0 only): the common results fields, the
published comparison, the files committed together, the W&B summary and the printed end-of-run table.

A task's writer computes its own measures and options and hands them to :func:`job_results`; nothing here
recomputes a number the task measured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from descbench.core.backbone import Backbone
from descbench.core.measures import format_value, interval_of, measures_of
from descbench.core.published import published_fields, published_lines
from descbench.core.results import JobOutputs, format_table
from descbench.tasks.definition import TASKS

RANDOM_WEIGHTS_NOTE = "random weights: a pipeline check, not a result"


def job_results(
    cfg: Any,
    context: Any,
    task: str,
    backbones: Sequence[Backbone],
    measured: Mapping[str, Any],
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """The flat ``results.json`` of a job: the task, its measures, the options that produced them, then what
    every job records (backbones, seed, overrides, a note when weights are random, the published comparison;
    for a task defined outside descbench, the module that defines it, so the report can import it again)."""
    results: dict[str, Any] = {"task": task, **measured, **backbones[0].describe(), **options}
    results.update({"seed": cfg.seed, "overrides": context.name})
    module = TASKS[task].spec.rpartition(".")[0] if task in TASKS else None
    if module and not module.startswith("descbench."):
        results["task_module"] = module
    if any(b.weights.startswith("random") for b in backbones):
        results["note"] = RANDOM_WEIGHTS_NOTE
    results.update(published_fields(results))
    return results


def backbone_list(backbones: Sequence[Backbone]) -> list[str]:
    """``["ViT-L-14-336 [openai]", ...]``: the backbones whose scores a job sums."""
    return [f"{b.name} [{b.weights}]" for b in backbones]


def shown(results: Mapping[str, Any], key: str) -> str:
    """A measure as the report shows it: display unit, digits and its 95 % interval when recorded."""
    return format_value(key, results[key], interval_of(results, key))


def measure_rows(results: Mapping[str, Any], task: str) -> list[tuple[str, str]]:
    """One printed row per rate or mean the task declares and the results hold (the generic table)."""
    rows = []
    for m in measures_of(task, kinds=("rate", "mean")):
        if m.key in results:
            rows.append((f"{m.display}{' %' if m.percent else ''}", shown(results, m.key)))
    return rows


def log_summary(logger: Any, results: Mapping[str, Any]) -> bool:
    """The numeric results as the W&B run's summary and one history row; False without a W&B logger."""
    from lightning.pytorch.loggers import WandbLogger

    if not isinstance(logger, WandbLogger):
        return False
    scalars = {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    logger.experiment.summary.update(scalars)
    logger.experiment.log(scalars)  # one history row too: W&B line plots read history, not the summary
    return True


def write_job(
    context: Any,
    results: Mapping[str, Any],
    outputs: JobOutputs,
    table: Sequence[tuple[str, str]],
    wandb_media: Callable[[], Mapping[str, Any]] | None = None,
) -> Mapping[str, Any]:
    """Commit the job's files (``results.json`` last); log to W&B the summary and what ``wandb_media`` builds
    (called only for a W&B run: ``{key: wandb.Image list or wandb.Table}``); print ``table`` with the run dir,
    the published rows and the note."""
    outputs.commit(results)
    if log_summary(context.logger, results) and wandb_media is not None:
        media = {key: value for key, value in wandb_media().items() if value}
        if media:
            context.logger.experiment.log(media)
    rows = [*table, ("run dir", str(context.run_dir)), *published_lines(results)]
    if "note" in results:
        rows.append(("note", results["note"]))
    print(format_table(rows), flush=True)
    return results


def wandb_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Any:
    """A ``wandb.Table`` (for :func:`write_job`'s ``wandb_media``)."""
    import wandb

    return wandb.Table(columns=list(columns), data=[list(r) for r in rows])
