"""What a classification job leaves in its run dir (and in W&B), written by rank 0 only.

All files of a job are written together through :class:`descbench.results.JobOutputs` (temp name +
rename each, ``results.json`` last). Per-class outputs are keyed by class index, with the name beside
it, so two classes that share a name (ImageNet's two "missile" classes) keep two rows.
"""

from __future__ import annotations

import logging
from typing import Any

from descbench.measures import format_value, interval_of
from descbench.published import published_fields
from descbench.results import JobOutputs, format_table
from descbench.stats import interval_fields

log = logging.getLogger("descbench")


def classification_results(cfg, context, module, dataset, metrics: dict[str, float]) -> dict[str, Any]:
    """The flat results of a job: metrics first, then every option that produced them."""
    descriptions = module.descriptions
    backbone = module.backbone
    num_classes = len(dataset.classes)
    pred = module.predictions
    results: dict[str, Any] = {
        "task": "classify",
        "top1": metrics["top1"],
        "top5": metrics["top5"],
        "mean_per_class_acc": metrics["mean_per_class_acc"],
        "entropy": metrics["entropy"],
        "ece": metrics["ece"],
        # 95 % intervals over the images: Wilson for the rates, a seeded bootstrap for the mean entropy
        **interval_fields(
            {
                "top1": (pred["pred"] == pred["label"]).numpy(),
                "top5": (pred["top5"] == pred["label"][:, None]).any(dim=1).numpy(),
                "entropy": pred["entropy"].numpy(),
            }
        ),
        "top5_k": min(5, num_classes),
        "entropy_scale": cfg.task.entropy_scale,
        "ece_scale": cfg.task.entropy_scale,
        "chance_top1": 1.0 / num_classes,
        "dataset": dataset.name,
        "split": dataset.split,
        "num_samples": len(dataset),
        "num_classes": num_classes,
        **backbone.describe(),
        "describe.source": descriptions.source,
        **{f"describe.{k}": v for k, v in descriptions.options.items()},
        "describe.num_texts": sum(descriptions.counts),
        "aggregation": cfg.task.aggregation,
        "seed": cfg.seed,
        "overrides": context.name,
        "per_class_acc": [
            {"index": i, "class": name, "acc": acc}
            for i, (name, acc) in enumerate(zip(dataset.classes, module.per_class_acc))
        ],
    }
    if backbone.weights.startswith("random"):
        results["note"] = "random weights: a pipeline check, not a result"
    results.update(published_fields(results))
    return results


def prediction_rows(module, dataset) -> list[list[Any]]:
    """One row per sample in dataset order (the columns of :data:`PREDICTION_COLUMNS`)."""
    pred = module.predictions
    ids = dataset.identity()
    classes = dataset.classes
    rows = []
    for i in range(len(pred["index"])):
        index, label, guess = int(pred["index"][i]), int(pred["label"][i]), int(pred["pred"][i])
        rows.append(
            [
                index,
                ids[index],
                label,
                classes[label],
                guess,
                classes[guess],
                " ".join(str(int(t)) for t in pred["top5"][i]),
                f"{float(pred['confidence'][i]):.6f}",
                f"{float(pred['entropy'][i]):.6f}",
                int(guess == label),
            ]
        )
    return rows


PREDICTION_COLUMNS = [
    "index",
    "sample_id",
    "label",
    "label_name",
    "pred",
    "pred_name",
    "top5",
    "confidence",
    "entropy",
    "correct",
]


def write_classification_outputs(cfg, context, module, dataset, metrics: dict[str, float]) -> dict[str, Any]:
    """results.json, predictions.csv, per_class.csv, descriptions.json; W&B table; the printed table."""
    results = classification_results(cfg, context, module, dataset, metrics)
    outputs = JobOutputs(context.run_dir)
    outputs.add_json("descriptions.json", module.descriptions.to_json())
    outputs.add_csv("predictions.csv", PREDICTION_COLUMNS, prediction_rows(module, dataset))
    outputs.add_csv(
        "per_class.csv",
        ["index", "class", "accuracy"],
        [[row["index"], row["class"], row["acc"]] for row in results["per_class_acc"]],
    )
    outputs.commit(results)
    log_to_wandb(context.logger, results)
    table = [
        ("dataset", f"{results['dataset']} ({results['num_samples']} images, {results['num_classes']} classes)"),
        ("backbone", f"{results['backbone']} [{results['weights']}]"),
        (
            "descriptions",
            f"{results['describe.source']} num_desc={results.get('describe.num_desc')} "
            f"detailed={results.get('describe.detailed')}",
        ),
        ("top-1 %", f"{shown(results, 'top1')} (chance {100 * results['chance_top1']:.2f})"),
        ("top-5 %", shown(results, "top5")),
        ("mean per-class acc %", shown(results, "mean_per_class_acc")),
        (f"entropy ({results['entropy_scale']})", f"{shown(results, 'entropy')} nats"),
        ("ECE", shown(results, "ece")),
        ("run dir", str(context.run_dir)),
    ]
    table += published_rows(results)
    if "note" in results:
        table.append(("note", results["note"]))
    print(format_table(table), flush=True)
    return results


def shown(results: dict[str, Any], key: str) -> str:
    """A measure as the report shows it: display unit, digits and its 95 % interval when recorded."""
    return format_value(key, results[key], interval_of(results, key))


def published_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """``published`` rows of the printed table: the paper's number and our Δ, where the setting matches one."""
    rows = []
    for key, value in results.items():
        if key.endswith(".published") and isinstance(value, (int, float)):
            metric = key.removesuffix(".published")
            delta = results.get(f"{key}.delta")
            source = results.get(f"{key}.source", "")
            rows.append(
                (
                    f"published {metric}",
                    f"{format_value(metric, value)} (ours Δ {format_value(metric, delta)}; {source})",
                )
            )
    return rows


def log_summary(logger, results: dict[str, Any]) -> bool:
    """The numeric results as the W&B run's summary (for sweep views); False without a W&B logger."""
    from lightning.pytorch.loggers import WandbLogger

    if not isinstance(logger, WandbLogger):
        return False
    scalars = {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    logger.experiment.summary.update(scalars)
    logger.experiment.log(scalars)  # one history row too: W&B line plots read history, not the summary
    return True


def log_to_wandb(logger, results: dict[str, Any]) -> None:
    """Summary metrics and the per-class accuracy table."""
    if log_summary(logger, results):
        logger.log_table(
            "per_class_acc",
            columns=["index", "class", "accuracy"],
            data=[[row["index"], row["class"], row["acc"]] for row in results["per_class_acc"]],
        )
