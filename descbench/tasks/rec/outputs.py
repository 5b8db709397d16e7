"""What a REC job leaves in its run dir (and in W&B), written by rank 0 only."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from descbench.core.marking.engine import make_prediction
from descbench.core.marking.relations import RESOLUTION_RULES
from descbench.core.marking.visual_prompts import PromptSpec
from descbench.core.published import published_fields
from descbench.core.results import JobOutputs, format_table, json_safe
from descbench.core.stats import interval_fields
from descbench.tasks.classify.outputs import log_summary, published_rows, shown

log = logging.getLogger("descbench")
GOLD, PREDICTED = (0, 200, 0), (255, 0, 0)


def rec_results(
    cfg, context, module, dataset, prompts: Sequence[PromptSpec], metrics: dict[str, float]
) -> dict[str, Any]:
    """The flat results of a job: accuracy overall and per split, then every option that produced them."""
    backbones = list(module.backbones)
    predictions = module.predictions
    results: dict[str, Any] = {"task": "rec", "acc": metrics["acc"]}
    for split in module.splits:
        results[f"acc.{split}"] = metrics[f"acc.{split}"]
    # 95 % Wilson intervals over the expressions, overall and per split
    correct = {"acc": [p.correct for p in predictions]}
    for split in module.splits:
        correct[f"acc.{split}"] = [p.correct for p in predictions if p.split == split]
    if module.relations == "rules":
        # the same accuracies of CLIP's own picks, and what the resolver did
        baseline = {
            p.index: make_prediction(
                p.index, dataset.expressions[p.index], module.resolutions[p.index]["baseline"], 0.0
            )
            for p in predictions
        }
        results["acc_no_relations"] = sum(b.correct for b in baseline.values()) / max(1, len(predictions))
        correct["acc_no_relations"] = [baseline[p.index].correct for p in predictions]
        for split in module.splits:
            mine = [baseline[p.index].correct for p in predictions if p.split == split]
            results[f"acc_no_relations.{split}"] = sum(mine) / max(1, len(mine))
            correct[f"acc_no_relations.{split}"] = mine
        rules = [module.resolutions[p.index]["rule"] for p in predictions]
        results["relations.parsed_share"] = sum(r != "none" for r in rules) / max(1, len(rules))
        results["relations.changed_share"] = sum(module.resolutions[p.index]["changed"] for p in predictions) / max(
            1, len(predictions)
        )
        for rule in RESOLUTION_RULES:
            results[f"relations.rule_share.{rule}"] = rules.count(rule) / max(1, len(rules))
    results.update(interval_fields(correct))
    candidates = [p.num_candidates for p in predictions]
    results.update(
        {
            "chance_acc": sum(1.0 / c for c in candidates) / max(1, len(candidates)),
            "dataset": dataset.name,
            "splits": list(module.splits),
            "proposals": dataset.proposals,
            "num_expressions": len(predictions),
            "num_images": len(module.groups),
            "mean_candidates": sum(candidates) / max(1, len(candidates)),
            **{f"data.{k}": v for k, v in dataset.stats.items()},
            **backbones[0].describe(),
            "backbones": [f"{b.name} [{b.weights}]" for b in backbones],
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
            "seed": cfg.seed,
            "overrides": context.name,
        }
    )
    if any(b.weights.startswith("random") for b in backbones):
        results["note"] = "random weights: a pipeline check, not a result"
    results.update(published_fields(results))
    return results


def draw_example(image: Image.Image, gold: Sequence[float], chosen: Sequence[float], caption: str) -> Image.Image:
    """The image with the gold box (green) and the predicted box (red), the expression written above."""
    scale = max(1.0, 256 / max(image.size))  # small canvases (the shapes world) upscaled to be legible
    image = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)), Image.NEAREST)
    out = Image.new("RGB", (image.width, image.height + 16), (255, 255, 255))
    out.paste(image, (0, 16))
    draw = ImageDraw.Draw(out)
    for box, colour in ((gold, GOLD), (chosen, PREDICTED)):
        x, y, w, h = (float(v) * scale for v in box)
        draw.rectangle([x, y + 16, x + w - 1, y + h - 1 + 16], outline=colour, width=2)
    draw.text((2, 2), caption[: max(8, image.width // 6)], fill=(0, 0, 0))
    return out


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
        image = draw_example(dataset.load_image(p.image_id), p.gold_box, p.chosen_box, caption)
        examples.append((f"examples/{len(examples):03d}_{p.index}.png", image, p))
    return examples


def log_examples_to_wandb(logger, dataset, examples) -> None:
    """The examples as ``wandb.Image`` with gold and predicted boxes (W&B draws them)."""
    if not examples:
        return
    import wandb

    images = []
    for _, _, p in examples:

        def box(b, class_id, caption):
            x, y, w, h = (float(v) for v in b)
            position = {"minX": x, "maxX": x + w, "minY": y, "maxY": y + h}
            return {"position": position, "domain": "pixel", "class_id": class_id, "box_caption": caption}

        boxes = {
            "rec": {
                "box_data": [box(p.gold_box, 0, "gold"), box(p.chosen_box, 1, f"predicted (IoU {p.iou:.2f})")],
                "class_labels": {0: "gold", 1: "predicted"},
            }
        }
        images.append(wandb.Image(dataset.load_image(p.image_id), caption=p.expression, boxes=boxes))
    logger.experiment.log({"rec_examples": images})


def write_rec_outputs(cfg, context, module, dataset, prompts, metrics: dict[str, float]) -> dict[str, Any]:
    """results.json, predictions.jsonl/.csv, examples/*.png; W&B summary and images; the printed table."""
    results = rec_results(cfg, context, module, dataset, prompts, metrics)
    run_dir = Path(context.run_dir)
    predictions = module.predictions
    outputs = JobOutputs(run_dir)
    resolutions = module.resolutions if module.relations == "rules" else {}
    outputs.add(
        "predictions.jsonl",
        "".join(
            json.dumps(json_safe(prediction_record(p, resolutions.get(p.index))), allow_nan=False) + "\n"
            for p in predictions
        ),
    )
    outputs.add_csv("predictions.csv", PREDICTION_COLUMNS, [prediction_row(p) for p in predictions])
    examples = render_examples(dataset, predictions, int(cfg.task.get("num_examples", 8)))
    for name, image, _ in examples:
        outputs.add_png(name, image)
    outputs.commit(results)
    if log_summary(context.logger, results):
        log_examples_to_wandb(context.logger, dataset, examples)
    splits = ", ".join(f"{s} {shown(results, f'acc.{s}')}" for s in module.splits)
    table = [
        ("dataset", f"{results['dataset']} ({results['num_expressions']} expressions, {results['num_images']} images)"),
        ("proposals", str(results["proposals"])),
        ("backbones", ", ".join(results["backbones"])),
        ("visual prompts", " + ".join(p.key for p in prompts)),
        ("subtract", f"{results['subtract']} (K={results['negatives']})"),
        ("geometry", f"{results['image_processing']}; relations {results['relations']}"),
        ("accuracy %", f"{shown(results, 'acc')} (chance {100 * results['chance_acc']:.2f})"),
        ("per split %", splits),
        ("run dir", str(run_dir)),
    ]
    if module.relations == "rules":
        table.insert(
            -1,
            (
                "without relations %",
                f"{shown(results, 'acc_no_relations')} ({100 * results['relations.changed_share']:.1f} % of picks "
                f"changed, {100 * results['relations.parsed_share']:.1f} % parsed)",
            ),
        )
    table += published_rows(results)
    if "note" in results:
        table.append(("note", results["note"]))
    print(format_table(table), flush=True)
    return results


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
