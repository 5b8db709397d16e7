"""What a REC job leaves in its run dir (and in W&B), written by rank 0 only."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from descbench.core.marking.engine import DEFAULT_GEOMETRY, make_prediction
from descbench.core.marking.geometry import Geometry
from descbench.core.marking.relations import RESOLUTION_RULES
from descbench.core.marking.scoring import gold_reachable
from descbench.core.marking.visual_prompts import PromptSpec
from descbench.core.results import JobOutputs, json_safe
from descbench.core.stats import interval_fields
from descbench.tasks.job_results import backbone_list, job_results, shown, write_job
from descbench.tasks.marking import CHOSEN, GOLD, draw_example
from descbench.tasks.rec import DEFINITION
from descbench.tasks.rec.gallery import build_gallery, wandb_gallery

log = logging.getLogger("descbench")

#: the W&B key of the gallery table
GALLERY = "rec_gallery"


def rec_results(
    cfg, context, module, dataset, prompts: Sequence[PromptSpec], metrics: dict[str, float]
) -> dict[str, Any]:
    """The flat results of a job: accuracy overall and per split, then every option that produced them."""
    backbones = list(module.backbones)
    predictions = module.predictions
    # the accuracies the module logged (torchmetrics, synced over ranks), overall and per split
    results: dict[str, Any] = {key: value for key, value in metrics.items() if key.split(".")[0] in LOGGED}
    # 95 % Wilson intervals over the expressions, overall and per split
    correct = {"acc": [p.correct for p in predictions]}
    for split in module.splits:
        correct[f"acc.{split}"] = [p.correct for p in predictions if p.split == split]
    if module.relations == "rules":
        # the same of CLIP's own picks (the resolver's baseline, logged too), and what the resolver did
        baseline = {
            p.index: make_prediction(
                p.index, dataset.expressions[p.index], module.resolutions[p.index]["baseline"], 0.0
            ).correct
            for p in predictions
        }
        correct["acc_no_relations"] = [baseline[p.index] for p in predictions]
        for split in module.splits:
            correct[f"acc_no_relations.{split}"] = [baseline[p.index] for p in predictions if p.split == split]
        rules = [module.resolutions[p.index]["rule"] for p in predictions]
        results["relations.parsed_share"] = sum(r != "none" for r in rules) / max(1, len(rules))
        results["relations.changed_share"] = sum(module.resolutions[p.index]["changed"] for p in predictions) / max(
            1, len(predictions)
        )
        for rule in RESOLUTION_RULES:
            results[f"relations.rule_share.{rule}"] = rules.count(rule) / max(1, len(rules))
    results.update(interval_fields(correct))
    results.update(proposal_fields(dataset, predictions, module.splits))
    candidates = [p.num_candidates for p in predictions]
    results.update(
        {
            "chance_acc": sum(1.0 / c for c in candidates) / max(1, len(candidates)),
            "num_expressions": len(predictions),
            "num_images": len(module.groups),
            "mean_candidates": sum(candidates) / max(1, len(candidates)),
            "min_candidates": min(candidates, default=0),
            "max_candidates": max(candidates, default=0),
            **{f"data.{k}": v for k, v in dataset.stats.items()},
        }
    )
    options = {
        "dataset": dataset.name,
        "splits": list(module.splits),
        "proposals": dataset.proposals,
        **{f"proposals.{k}": v for k, v in dataset.proposal_info.items() if k != "source"},
        "backbones": backbone_list(backbones),
        "visual_prompt": [p.name for p in prompts] if len(prompts) > 1 else prompts[0].name,
        **{f"visual_prompt.{p.name}.{k}": v for p in prompts for k, v in sorted(p.options.items())},
        "relations": module.relations,
        "image_processing": module.geometry_key,
        "template": module.template,
        "lowercase": module.lowercase,
        "backbone_scores": "cosine x logit scale, summed over backbones and markings",
        "subtract": module.subtract,
        "negatives": module.negatives if module.subtract else 0,
        "correct_rule": "IoU > 0.5 with a gold box",
    }
    return job_results(cfg, context, DEFINITION.name, backbones, results, options)


#: the keys the module logs (torchmetrics objects): ``acc``, ``acc.<split>`` and, with relations, the same
#: of CLIP's own picks
LOGGED = ("acc", "acc_no_relations")


def proposal_fields(dataset, predictions, splits: Sequence[str]) -> dict[str, Any]:
    """The upper bound of the candidates, overall and per split: the share of expressions where some candidate
    has IoU > 0.5 with a gold box (100 % with gold boxes; a detector's boxes set a lower ceiling)."""
    reach = {p.index: reachable(dataset, p) for p in predictions}
    fields = {"upper_bound": sum(reach.values()) / max(1, len(reach))}
    for split in splits:
        mine = [reach[p.index] for p in predictions if p.split == split]
        fields[f"upper_bound.{split}"] = sum(mine) / max(1, len(mine))
    return fields


def reachable(dataset, p) -> bool:
    """Whether the expression of prediction ``p`` has a candidate that a pick could get right."""
    expression = dataset.expressions[p.index]
    return gold_reachable(expression.boxes, expression.gold_boxes)


def render_examples(dataset, predictions, count: int) -> list[tuple[str, Image.Image, Any]]:
    """The first ``count`` expressions of distinct images, drawn: ``(examples/<name>.png, image, prediction)``."""
    examples, seen = [], set()
    for p in predictions:
        if len(examples) >= count:
            break
        if p.image_id in seen:
            continue
        seen.add(p.image_id)
        caption = f"{'OK' if p.correct else 'X'} {p.expression}"
        boxes = [(p.gold_box, GOLD), (p.chosen_box, CHOSEN)]
        image = draw_example(dataset.load_image(p.image_id), caption, boxes=boxes)
        examples.append((f"examples/{len(examples):03d}_{p.index}.png", image, p))
    return examples


def wandb_examples(dataset, examples) -> list[Any]:
    """The examples as ``wandb.Image`` with gold and predicted boxes (W&B draws them)."""
    import wandb

    def box(b, class_id, caption):
        x, y, w, h = (float(v) for v in b)
        position = {"minX": x, "maxX": x + w, "minY": y, "maxY": y + h}
        return {"position": position, "domain": "pixel", "class_id": class_id, "box_caption": caption}

    images = []
    for _, _, p in examples:
        boxes = {
            "rec": {
                "box_data": [box(p.gold_box, 0, "gold"), box(p.chosen_box, 1, f"predicted (IoU {p.iou:.2f})")],
                "class_labels": {0: "gold", 1: "predicted"},
            }
        }
        images.append(wandb.Image(dataset.load_image(p.image_id), caption=p.expression, boxes=boxes))
    return images


def write_rec_outputs(
    cfg, context, module, dataset, prompts, metrics: dict[str, float], geometry: Geometry = DEFAULT_GEOMETRY
) -> dict[str, Any]:
    """results.json, predictions.jsonl/.csv, examples/*.png; W&B summary, images and the gallery table (the
    seeded sample report.html shows, :mod:`.gallery`); the printed table."""
    results = rec_results(cfg, context, module, dataset, prompts, metrics)
    predictions = module.predictions
    outputs = JobOutputs(context.run_dir)
    resolutions = module.resolutions if module.relations == "rules" else {}
    outputs.add(
        "predictions.jsonl",
        "".join(
            json.dumps(
                json_safe({**prediction_record(p, resolutions.get(p.index)), "gold_reachable": reachable(dataset, p)}),
                allow_nan=False,
            )
            + "\n"
            for p in predictions
        ),
    )
    outputs.add_csv("predictions.csv", PREDICTION_COLUMNS, [prediction_row(p) for p in predictions])
    examples = render_examples(dataset, predictions, int(cfg.task.num_examples))
    for name, image, _ in examples:
        outputs.add_png(name, image)
    splits = ", ".join(f"{s} {shown(results, f'acc.{s}')}" for s in module.splits)
    table = [
        ("dataset", f"{results['dataset']} ({results['num_expressions']} expressions, {results['num_images']} images)"),
        ("proposals", proposals_row(results)),
        ("backbones", ", ".join(results["backbones"])),
        ("visual prompts", " + ".join(p.key for p in prompts)),
        ("subtract", f"{results['subtract']} (K={results['negatives']})"),
        ("geometry", f"{results['image_processing']}; relations {results['relations']}"),
        ("accuracy %", f"{shown(results, 'acc')} (chance {100 * results['chance_acc']:.2f})"),
        ("per split %", splits),
    ]
    if module.relations == "rules":
        table.append(
            (
                "without relations %",
                f"{shown(results, 'acc_no_relations')} ({100 * results['relations.changed_share']:.1f} % of picks "
                f"changed, {100 * results['relations.parsed_share']:.1f} % parsed)",
            )
        )

    def media() -> dict[str, Any]:
        records = [prediction_record(p) for p in predictions]
        size = module.backbones[0].image_size
        right, wrong = build_gallery(dataset, records, prompts, size, geometry, int(cfg.task.num_examples))
        return {"rec_examples": wandb_examples(dataset, examples), GALLERY: wandb_gallery(right, wrong)}

    write_job(context, results, outputs, table, wandb_media=media)
    return results


def proposals_row(results: dict[str, Any]) -> str:
    """The printed table's proposals line: the source, the file and the upper bound it sets."""
    text = str(results["proposals"])
    if "proposals.file" in results:
        text += f" ({results['proposals.file']}, sha256 {str(results['proposals.sha256'])[:12]})"
    fallback = results.get("data.whole_image_fallback", 0)
    text += f"; upper bound {100 * results['upper_bound']:.2f} %"
    if fallback:
        text += f"; {fallback} expressions on the whole image (no detection)"
    return text


PREDICTION_COLUMNS = [
    "index",
    "image_id",
    "split",
    "expression",
    "chosen_index",
    "chosen_box",
    "gold_box",
    "score",
    "iou",
    "correct",
]


def prediction_record(p, resolution: dict[str, Any] | None = None) -> dict[str, Any]:
    """One line of ``predictions.jsonl`` (with relations: how the pick came about)."""
    return {
        **(resolution or {}),
        "index": p.index,
        "image_id": p.image_id,
        "split": p.split,
        "expression": p.expression,
        "chosen_index": p.chosen_index,
        "chosen_box": p.chosen_box,
        "gold_box": p.gold_box,
        "score": p.score,
        "iou": p.iou,
        "correct": p.correct,
        "num_candidates": p.num_candidates,
    }


def read_predictions(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a job's ``predictions.jsonl`` (:func:`prediction_record`), in its order: how readers of a
    run's per-expression outcomes get them. Raises ``ValueError`` naming the file and line when unreadable."""
    path = Path(run_dir) / "predictions.jsonl"
    if not path.is_file():
        raise ValueError(f"{path} not found: the job wrote no per-expression predictions")
    records = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                records.append(json.loads(line))
            except ValueError as err:
                raise ValueError(f"{path} line {number}: not JSON ({err})") from None
    return records


def prediction_row(p) -> list[Any]:
    """One row of ``predictions.csv`` (the columns of :data:`PREDICTION_COLUMNS`)."""
    return [
        p.index,
        p.image_id,
        p.split,
        p.expression,
        p.chosen_index,
        " ".join(f"{v:g}" for v in p.chosen_box),
        " ".join(f"{v:g}" for v in p.gold_box),
        f"{p.score:.6f}",
        f"{p.iou:.4f}",
        int(p.correct),
    ]
