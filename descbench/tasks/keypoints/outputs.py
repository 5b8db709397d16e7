"""What a keypoint job leaves in its run dir (and in W&B), written by rank 0 only."""

from __future__ import annotations

from typing import Any

from descbench.core.marking.points import confusion_table
from descbench.core.results import JobOutputs
from descbench.core.stats import interval_fields
from descbench.tasks.job_results import backbone_list, job_results, shown, write_job
from descbench.tasks.keypoints import DEFINITION
from descbench.tasks.marking import CHOSEN, GOLD, draw_example


def keypoint_results(cfg, context, module, images, spec, metrics: dict[str, float]) -> dict[str, Any]:
    """Flat results: PCK (localisation) or accuracy (naming), overall and per part, with Wilson intervals,
    the chance levels, then every option."""
    summary, records = module.summary()
    results: dict[str, Any] = dict(summary)
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
            "num_instances": len(dataset.instances),
            "num_images": len({i.image_id for i in dataset.instances}),
            **{f"data.{k}": v for k, v in dataset.stats.items()},
        }
    )
    options = {
        "mode": module.mode,
        "dataset": dataset.name,
        "splits": dataset.splits,
        "backbones": backbone_list(backbones),
        "visual_prompt": [p.name for p in module.prompts] if len(module.prompts) > 1 else module.prompts[0].name,
        **{f"visual_prompt.{p.name}.{k}": v for p in module.prompts for k, v in sorted(p.options.items())},
        "template": module.template,
        "radius": spec.radius,
        "radius_unit": spec.radius_unit,
        "image_processing": spec.geometry.key,
    }
    return job_results(cfg, context, DEFINITION.name, backbones, results, options), records


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
        image = draw_example(dataset.load_image(instance.image_id), caption, points=[(gold, GOLD), (chosen, CHOSEN)])
        examples.append((f"examples/{len(examples):03d}_{r['index']}.png", image, caption))
    for name, image, _ in examples:
        outputs.add_png(name, image)
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
    write_job(context, results, outputs, rows, wandb_media=lambda: {"keypoint_examples": wandb_images(examples)})
    return results


def wandb_images(examples) -> list[Any]:
    """``(name, image, caption)`` examples as ``wandb.Image``."""
    import wandb

    return [wandb.Image(image, caption=caption) for _, image, caption in examples]
