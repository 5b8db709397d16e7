"""What a classification job leaves in its run dir (and in W&B), written by rank 0 only.

All files of a job are written together through :class:`descbench.core.results.JobOutputs` (temp name +
rename each, ``results.json`` last). Per-class outputs are keyed by class index, with the name beside
it, so two classes that share a name (ImageNet's two "missile" classes) keep two rows.
"""

from __future__ import annotations

import logging
from statistics import fmean
from typing import Any

import numpy as np

from descbench.core.results import JobOutputs, csv_field_text, fixed_text, int_text
from descbench.core.stats import interval_fields, mean_fields, repetition_fields
from descbench.tasks.classify import DEFINITION
from descbench.tasks.job_results import job_results, shown, wandb_table, write_job

log = logging.getLogger("descbench")


METRICS = ("top1", "top5", "mean_per_class_acc", "entropy", "ece")


def classification_results(cfg, context, module, dataset, metrics: dict[str, float]) -> dict[str, Any]:
    """The flat results of a job: metrics (with intervals, and repetitions), then every option that produced them."""
    descriptions = module.descriptions
    num_classes = len(dataset.classes)
    pred = module.predictions
    evaluated = pred["evaluated"].bool()
    label = pred["label"][evaluated]
    correct = (pred["pred"][evaluated] == label[:, None]).float()  # [N, reps]
    in_top5 = (pred["top5"][evaluated] == label[:, None, None]).any(dim=2).float()
    entropy = pred["entropy"][evaluated].double()
    results: dict[str, Any] = {}
    if module.num_reps == 1:
        results.update({k: metrics[k] for k in METRICS})
        # 95 % intervals over the images: Wilson for the rates, a seeded bootstrap for the mean entropy
        results.update(
            interval_fields(
                {"top1": correct[:, 0].numpy(), "top5": in_top5[:, 0].numpy(), "entropy": entropy[:, 0].numpy()}
            )
        )
    else:
        # a random control repeated: each repetition recorded, the measure is their mean (as WaffleCLIP);
        # the interval is a bootstrap over images of each image's mean over the repetitions
        for key in METRICS:
            results.update(
                repetition_fields(key, [metrics[module.metric_name(r, key)] for r in range(module.num_reps)])
            )
        results["num_reps"] = module.num_reps
        results.update(mean_fields("top1", correct.mean(dim=1).numpy()))
        results.update(mean_fields("top5", in_top5.mean(dim=1).numpy()))
        results.update(mean_fields("entropy", entropy.mean(dim=1).numpy()))
    results.update(
        {
            "per_class_acc": [
                {"index": i, "class": name, "acc": fmean(acc[i] for acc in module.per_class_acc)}
                for i, name in enumerate(dataset.classes)
            ],
            "top5_k": min(5, num_classes),
            "entropy_scale": cfg.task.entropy_scale,
            "ece_scale": cfg.task.entropy_scale,
            "chance_top1": 1.0 / num_classes,
            "dataset": dataset.name,
            "split": dataset.split,
            "num_samples": len(dataset),
            "num_evaluated": int(evaluated.sum()),
            "num_classes": num_classes,
            **{f"dataset.{k}": v for k, v in dataset.provenance.items()},
        }
    )
    options = {
        "describe.source": descriptions.source,
        **{f"describe.{k}": v for k, v in descriptions.options.items()},
        **{f"describe.stats.{k}": v for k, v in descriptions.stats.items()},
        "describe.num_texts": sum(descriptions.counts),
        "describe.excluded_classes": list(descriptions.excluded),
        "aggregation": cfg.task.aggregation,
    }
    return job_results(cfg, context, DEFINITION.name, [module.backbone], results, options)


def prediction_columns_text(module, dataset) -> list[np.ndarray]:
    """The field texts of ``predictions.csv``, one array per column of :func:`prediction_columns`, for the
    evaluated samples in dataset order; with repetitions, the prediction of repetition 0 and, in
    ``reps_correct``, how many repetitions were right. Built as arrays (no Python work per sample)."""
    pred = module.predictions
    keep = pred["evaluated"].bool().numpy()
    index = pred["index"].numpy()[keep]
    label = pred["label"].numpy()[keep]
    guess = pred["pred"][:, 0].numpy()[keep]
    top5 = pred["top5"][:, 0].numpy()[keep]
    names = csv_field_text(list(dataset.classes))
    ids = csv_field_text(dataset.identity())
    top5_text = int_text(top5[:, 0]) if top5.shape[1] else np.full(len(index), "", dtype=np.str_)
    for column in range(1, top5.shape[1]):
        top5_text = np.char.add(np.char.add(top5_text, " "), int_text(top5[:, column]))
    columns = [
        int_text(index),
        ids[index] if len(index) else ids[:0],
        int_text(label),
        names[label],
        int_text(guess),
        names[guess],
        top5_text,
        fixed_text(pred["confidence"][:, 0].numpy()[keep]),
        fixed_text(pred["entropy"][:, 0].numpy()[keep]),
        int_text(guess == label),
    ]
    if module.num_reps > 1:
        columns.append(int_text((pred["pred"].numpy()[keep] == label[:, None]).sum(axis=1)))
    return columns


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


def prediction_columns(module) -> list[str]:
    """The columns of ``predictions.csv`` (with repetitions, ``reps_correct`` too)."""
    return PREDICTION_COLUMNS + (["reps_correct"] if module.num_reps > 1 else [])


def write_classification_outputs(cfg, context, module, dataset, metrics: dict[str, float]) -> dict[str, Any]:
    """results.json, predictions.csv, per_class.csv, descriptions.json; W&B table; the printed table."""
    results = classification_results(cfg, context, module, dataset, metrics)
    outputs = JobOutputs(context.run_dir)
    outputs.add_json("descriptions.json", module.descriptions.to_json())
    outputs.add_csv_columns("predictions.csv", prediction_columns(module), prediction_columns_text(module, dataset))
    per_class = [[row["index"], row["class"], row["acc"]] for row in results["per_class_acc"]]
    outputs.add_csv("per_class.csv", PER_CLASS_COLUMNS, per_class)
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
    ]
    if results.get("describe.stats.point_excluded") is True:
        share = 100 * results["describe.stats.wrong_count_share"]
        table.append(("excluded point", f"{share:.0f} % of classes answered another count than the examples'"))
    write_job(
        context,
        results,
        outputs,
        table,
        wandb_media=lambda: {"per_class_acc": wandb_table(PER_CLASS_COLUMNS, per_class)},
    )
    return results


PER_CLASS_COLUMNS = ["index", "class", "accuracy"]
