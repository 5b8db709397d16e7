"""What a keypoint job leaves in its run dir (and in W&B), written by rank 0 only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw

from descbench.core.marking.points import confusion_table
from descbench.core.published import published_fields
from descbench.core.results import JobOutputs, format_table
from descbench.core.stats import interval_fields
from descbench.tasks.classify.outputs import log_summary, shown

GOLD, CHOSEN = (0, 200, 0), (255, 0, 0)


def keypoint_results(cfg, context, module, images, spec, metrics: dict[str, float]) -> dict[str, Any]:
    """Flat results: PCK (localisation) or accuracy (naming), overall and per part, with Wilson intervals,
    the chance levels, then every option."""
    summary, records = module.summary()
    results: dict[str, Any] = {"task": "keypoints", "mode": module.mode}
    results.update(summary)
    rate = "pck" if module.mode == "localization" else "acc"
    per_sample = {rate: [r["correct"] for r in records]}
    for part in dict.fromkeys(r["part"] for r in records):
        per_sample[f"{rate}.{part}"] = [r["correct"] for r in records if r["part"] == part]
    if module.mode == "naming":
        per_sample["acc_lr_merged"] = [r["correct_lr_merged"] for r in records]
    results.update(interval_fields(per_sample))
    dataset = module.dataset
    backbones = list(module.backbones)
    results.update(
        {
            "dataset": dataset.name,
            "splits": dataset.splits,
            "num_instances": len(dataset.instances),
            "num_images": len({i.image_id for i in dataset.instances}),
            **{f"data.{k}": v for k, v in dataset.stats.items()},
            **backbones[0].describe(),
            "backbones": [f"{b.name} [{b.weights}]" for b in backbones],
            "visual_prompt": [p.name for p in module.prompts] if len(module.prompts) > 1 else module.prompts[0].name,
            **{f"visual_prompt.{p.name}.{k}": v for p in module.prompts for k, v in sorted(p.options.items())},
            "template": module.template,
            "radius": spec.radius,
            "radius_unit": spec.radius_unit,
            "image_processing": spec.image_processing,
            "seed": cfg.seed,
            "overrides": context.name,
        }
    )
    if any(b.weights.startswith("random") for b in backbones):
        results["note"] = "random weights: a pipeline check, not a result"
    results.update(published_fields(results))
    return results, records


def draw_keypoint_example(image: Image.Image, gold: Sequence[float], chosen: Sequence[float], caption: str):
    """The image with the gold point (green) and the chosen point (red), the query written above."""
    scale = max(1.0, 256 / max(image.size))
    image = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)), Image.NEAREST)
    out = Image.new("RGB", (image.width, image.height + 16), (255, 255, 255))
    out.paste(image, (0, 16))
    draw = ImageDraw.Draw(out)
    for (x, y), colour in ((gold, GOLD), (chosen, CHOSEN)):
        cx, cy, r = x * scale, y * scale + 16, 5
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=2)
    draw.text((2, 2), caption[: max(8, image.width // 6)], fill=(0, 0, 0))
    return out


def write_keypoint_outputs(cfg, context, module, images, spec, metrics: dict[str, float]) -> dict[str, Any]:
    """results.json, predictions.csv, confusion.csv (naming), examples/*.png; W&B; the printed table."""
    results, records = keypoint_results(cfg, context, module, images, spec, metrics)
    outputs = JobOutputs(context.run_dir)
    columns = list(records[0]) if records else ["query"]
    outputs.add_csv("predictions.csv", columns, [[r[c] for c in columns] for r in records])
    if module.mode == "naming":
        labels = list(dict.fromkeys(p for r in records for p in (r["part"], r["chosen"])))
        confusion = confusion_table([r["part"] for r in records], [r["chosen"] for r in records], labels)
        table = confusion.as_dict()
        outputs.add_csv(
            "confusion.csv", ["gold \\ predicted", *labels], [[g, *[table[g][p] for p in labels]] for g in labels]
        )
    examples = []
    seen = set()
    dataset = module.dataset
    for r in records:
        if len(examples) >= spec.num_examples:
            break
        if r["instance"] in seen:
            continue
        seen.add(r["instance"])
        instance = dataset.instances[r["instance"]]
        gold = instance.keypoints[r["part"]]
        chosen = gold if module.mode == "naming" else instance.keypoints[r["chosen"]]
        caption = f"{'OK' if r['correct'] else 'X'} {r['part']} -> {r['chosen']}"
        image = draw_keypoint_example(dataset.load_image(instance.image_id), gold, chosen, caption)
        examples.append((f"examples/{len(examples):03d}_{r['index']}.png", image, caption))
    for name, image, _ in examples:
        outputs.add_png(name, image)
    outputs.commit(results)
    if log_summary(context.logger, results) and examples:
        import wandb

        context.logger.experiment.log({"keypoint_examples": [wandb.Image(im, caption=c) for _, im, c in examples]})
    rate = "pck" if module.mode == "localization" else "acc"
    chance = results.get("chance_pck" if rate == "pck" else "chance_acc")
    rows = [
        ("dataset", f"{results['dataset']} ({results['num_instances']} instances, {results['num_keypoints']} queries)"),
        ("backbones", ", ".join(results["backbones"])),
        ("mode", f"{module.mode}; visual prompts {' + '.join(p.key for p in module.prompts)}"),
        (f"{rate} %", f"{shown(results, rate)} (chance {100 * chance:.2f})"),
    ]
    if module.mode == "naming":
        rows.append(
            (
                "left/right merged %",
                f"{shown(results, 'acc_lr_merged')} (chance {100 * results['chance_acc_lr_merged']:.2f})",
            )
        )
    rows.append(("run dir", str(context.run_dir)))
    if "note" in results:
        rows.append(("note", results["note"]))
    print(format_table(rows), flush=True)
    return results
