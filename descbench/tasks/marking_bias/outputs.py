"""What a marking-bias job leaves in its run dir (and in W&B), written by rank 0 only.

No identity is recorded: image ids, the person and control boxes, and probabilities.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from descbench.core.marking.bias_probe import CONDITIONS, summarize_bias
from descbench.core.marking.visual_prompts import PromptSpec
from descbench.core.results import JobOutputs
from descbench.tasks.job_results import job_results, write_job
from descbench.tasks.marking_bias import DEFINITION


def bias_results(cfg, context, module, images, marking: PromptSpec, spec) -> dict[str, Any]:
    """Per phrase and phrase kind: mean probability per condition and the paired shifts with intervals.
    The ``circled`` condition is the person marked with ``marking`` (a circle unless asked otherwise)."""
    results = summarize_bias(
        module.probabilities, module.phrases, CONDITIONS, spec.confidence, spec.resamples, seed=cfg.seed
    )
    results.update(
        {
            "num_images_skipped": len(images.skipped),
            **{f"data.{k}": v for k, v in images.dataset.stats.items()},
        }
    )
    options = {
        "dataset": images.dataset.name,
        "phrases": [f"{p.id} ({p.kind}): {p.text}" for p in module.phrases],
        "conditions": list(CONDITIONS),
        "visual_prompt": marking.name,
        **{f"visual_prompt.{marking.name}.{k}": v for k, v in sorted(marking.options.items())},
        "control": f"{marking.name} on a region of the person box's size (shrunk in steps to 0.5 if needed) "
        "overlapping no person",
        "control_seed": spec.control_seed,
        "image_processing": spec.geometry.key,
        "probabilities": "softmax over the phrases of logit scale x cosine",
    }
    return job_results(cfg, context, DEFINITION.name, [module.backbone], results, options)


def write_bias_outputs(cfg, context, module, images, marking, spec, metrics: dict[str, float]) -> dict[str, Any]:
    """results.json, per_image.csv, examples/*.png (the three conditions side by side); W&B; the table."""
    results = bias_results(cfg, context, module, images, marking, spec)
    outputs = JobOutputs(context.run_dir)
    rows = []
    for item, (index, control, scale) in enumerate(images.items):
        person = images.dataset.images[index]
        for c, condition in enumerate(CONDITIONS):
            for p, phrase in enumerate(module.phrases):
                rows.append(
                    [
                        person.image_id,
                        condition,
                        phrase.id,
                        phrase.kind,
                        f"{float(module.probabilities[item, c, p]):.6f}",
                        " ".join(f"{v:g}" for v in person.target_box),
                        " ".join(f"{v:g}" for v in control),
                        scale,
                    ]
                )
    outputs.add_csv(
        "per_image.csv",
        ["image_id", "condition", "phrase", "kind", "probability", "person_box", "control_box", "control_scale"],
        rows,
    )
    examples = []
    for item in range(min(spec.num_examples, len(images))):
        index, control, _ = images.items[item]
        person = images.dataset.images[index]
        image = images.dataset.load_image(person.image_id)
        panels = [image, marking.apply(image, person.target_box), marking.apply(image, control)]
        strip = Image.new("RGB", (sum(p.width for p in panels), max(p.height for p in panels)), (255, 255, 255))
        x = 0
        for panel in panels:
            strip.paste(panel, (x, 0))
            x += panel.width
        examples.append((f"examples/{item:03d}_unmarked_circled_control.png", strip))
    for name, image in examples:
        outputs.add_png(name, image)
    table = [
        ("dataset", f"{results['dataset']} ({results['num_images']} images, {results['num_images_skipped']} skipped)"),
        ("backbone", f"{results['backbone']} [{results['weights']}]"),
    ]
    for kind in dict.fromkeys(p.kind for p in module.phrases):
        for shift in ("shift_circled_unmarked", "shift_circled_control"):
            key = f"bias.{kind}.{shift}"
            table.append(
                (
                    f"{kind} {shift.removeprefix('shift_').replace('_', ' - ')}",
                    f"{results[key]:+.4f} [{results[key + '.ci_low']:+.4f}, {results[key + '.ci_high']:+.4f}]",
                )
            )
    caption = f"unmarked | person {marking.name} | control {marking.name}"
    write_job(context, results, outputs, table, wandb_media=lambda: {"bias_examples": wandb_images(examples, caption)})
    return results


def wandb_images(examples, caption: str) -> list[Any]:
    """The example strips as ``wandb.Image``."""
    import wandb

    return [wandb.Image(image, caption=caption) for _, image in examples]
