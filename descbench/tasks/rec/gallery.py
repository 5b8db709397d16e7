"""The REC gallery: a seeded sample of a run's expressions, right ones and wrong ones apart, each drawn as the
image with every candidate box, the winner and the gold box(es), beside the marked input the model scored for the
winner (the run's own marking code: :func:`descbench.core.marking.geometry.render_marked_input`).

One gallery, two readers: the job logs it to W&B as a table (:func:`wandb_gallery`), and ``report.html`` shows it
(:func:`gallery_html`), rebuilding the run's reader, visual prompts and geometry from its saved config.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from descbench.core.marking.geometry import Geometry, render_marked_input
from descbench.core.marking.visual_prompts import PromptSpec
from descbench.tasks.marking import CHOSEN, GOLD, draw_example

#: the sample is drawn with this seed, so a page and the W&B table show the same expressions for a run
GALLERY_SEED = 0
CANDIDATE = (60, 120, 255)
#: the longest side of a marked model input in the gallery (it is the model's input size, often 224-336 px)
MARKED_SIDE = 160


@dataclass
class GalleryItem:
    """One expression drawn: its prediction record, the annotated image and the winner's marked inputs
    (``(visual prompt, image)`` per prompt of the run)."""

    record: Mapping[str, Any]
    image: Image.Image
    marked: list[tuple[str, Image.Image]]


def choose_examples(records: Sequence[Mapping[str, Any]], count: int, seed: int = GALLERY_SEED):
    """``(right, wrong)``: a seeded sample of up to ``count`` prediction records, half of them right and half
    wrong (the other side fills in when one runs short), each list in dataset order."""
    rng = random.Random(seed)
    right = [r for r in records if r["correct"]]
    wrong = [r for r in records if not r["correct"]]
    want_wrong = min(len(wrong), count - min(len(right), count // 2))
    want_right = min(len(right), count - want_wrong)
    pick = lambda rows, k: sorted(rng.sample(rows, k), key=lambda r: r["index"])  # noqa: E731
    return pick(right, want_right), pick(wrong, want_wrong)


class GalleryMismatch(ValueError):
    """The reader rebuilt for a run does not hold the expressions its predictions name."""


def draw_item(
    dataset: Any, record: Mapping[str, Any], prompts: Sequence[PromptSpec], input_size: int, geometry: Geometry
) -> GalleryItem:
    """The image with every candidate (blue), the winner (red) and the gold box(es) (green, drawn last: a right
    pick shows green over red), and the winner marked by each visual prompt as the model's input."""
    expression = dataset.expressions[record["index"]]
    if expression.expression != record["expression"] or str(expression.image_id) != str(record["image_id"]):
        raise GalleryMismatch(
            f"expression {record['index']} of the rebuilt data set is {expression.expression!r} on image "
            f"{expression.image_id}, the run's prediction names {record['expression']!r} on image {record['image_id']}"
        )
    image = dataset.load_image(record["image_id"])
    boxes = [(box, CANDIDATE) for box in expression.boxes]
    boxes += [(record["chosen_box"], CHOSEN)] + [(box, GOLD) for box in expression.gold_boxes]
    caption = f"{'OK' if record['correct'] else 'X'} {record['expression']}"
    annotated = draw_example(image, caption, boxes=boxes)
    marked = [
        (spec.key, render_marked_input(image, record["chosen_box"], spec, input_size, geometry)) for spec in prompts
    ]
    return GalleryItem(record, annotated, marked)


def build_gallery(
    dataset: Any,
    records: Sequence[Mapping[str, Any]],
    prompts: Sequence[PromptSpec],
    input_size: int,
    geometry: Geometry,
    count: int,
) -> tuple[list[GalleryItem], list[GalleryItem]]:
    """``(right, wrong)`` items of the seeded sample (:func:`choose_examples`), drawn."""
    right, wrong = choose_examples(records, count)
    draw = lambda rs: [draw_item(dataset, r, prompts, input_size, geometry) for r in rs]  # noqa: E731
    return draw(right), draw(wrong)


def item_caption(record: Mapping[str, Any]) -> str:
    """``split · IoU 0.00 · 3 candidates``: what a gallery item says besides its expression."""
    return f"{record['split']} · IoU {float(record['iou']):.2f} · {record.get('num_candidates', '?')} candidates"


GALLERY_COLUMNS = ["split", "expression", "correct", "iou", "candidates, winner (red), gold (green)", "marked winner"]


def wandb_gallery(right: Sequence[GalleryItem], wrong: Sequence[GalleryItem]) -> Any:
    """The gallery as a ``wandb.Table``: one row per item, wrong ones first, the annotated image and the marked
    input of the winner (the first visual prompt's) as images."""
    import wandb

    rows = []
    for item in [*wrong, *right]:
        r = item.record
        marked = wandb.Image(item.marked[0][1], caption=item.marked[0][0]) if item.marked else None
        rows.append([r["split"], r["expression"], bool(r["correct"]), float(r["iou"]), wandb.Image(item.image), marked])
    return wandb.Table(columns=GALLERY_COLUMNS, data=rows)


def rebuild_run(run_dir: Path, readers: dict | None = None) -> tuple[Any, list[PromptSpec], int, Geometry]:
    """The reader, visual prompts, input size and geometry a REC job ran with, from its ``.hydra/config.yaml``
    (no weights loaded). ``readers``: readers already rebuilt, by their resolved config (the runs of a sweep share
    one). Raises ``ValueError`` or the reader's own error with what is missing."""
    import json

    from omegaconf import OmegaConf

    from descbench.core.backbone import model_input_size
    from descbench.report.runs import load_run_config
    from descbench.shell.config import build
    from descbench.tasks.marking import build_marked_dataset, visual_prompts_of

    cfg = load_run_config(run_dir)
    spec = build(cfg.task)
    prompts = visual_prompts_of(cfg.get("visual_prompt"), "rec")
    key = json.dumps(OmegaConf.to_container(cfg.dataset, resolve=True), sort_keys=True, default=str)
    readers = {} if readers is None else readers
    if key not in readers:
        readers[key] = build_marked_dataset(cfg)
    return readers[key], prompts, model_input_size(str(cfg.backbone.model)), spec.geometry


def _rgb(colour: Sequence[int]) -> str:
    return f"rgb({', '.join(str(c) for c in colour)})"


LEGEND = (
    f'<p class="legend"><span><i class="swatch" style="border-color: {_rgb(CANDIDATE)}"></i>candidate</span>'
    f'<span><i class="swatch" style="border-color: {_rgb(CHOSEN)}"></i>winner</span>'
    f'<span><i class="swatch" style="border-color: {_rgb(GOLD)}"></i>gold (drawn last: over the winner when right)'
    "</span><span>beside it: the winner as the model saw it (marked, at its input size)</span></p>"
)


def gallery_html(run: Any, page: Any) -> str:
    """A run's gallery for ``report.html``: right and wrong apart, or one line saying why there is none."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from descbench.core.errors import UserError
    from descbench.report.html import escape
    from descbench.tasks.rec.outputs import read_predictions

    if page.examples == 0:
        return ""
    run_dir = page.run_dir(run)
    head = page.run_heading(run)
    try:
        records = read_predictions(run_dir)
        dataset, prompts, size, geometry = rebuild_run(run_dir, page.shared.setdefault("rec readers", {}))
        right, wrong = build_gallery(dataset, records, prompts, size, geometry, page.examples)
    except (UserError, OSError, ValueError, KeyError, HydraException, OmegaConfBaseException) as err:
        # a gallery is an extra: the page (and the command's output) says why it is missing, the report goes on
        message = " ".join(str(err).split()) or type(err).__name__
        page.left_out.append(f"REC examples of run {run.dir}: {message}")
        return head + f'<p class="left-out">no examples: {escape(message)}</p>'
    total = len(records)
    counts = f"{sum(r['correct'] for r in records)} right, {sum(not r['correct'] for r in records)} wrong of {total}"
    parts = [head, f'<p class="note">A seeded sample (seed {GALLERY_SEED}) of the run\'s expressions ({counts}).</p>']
    for name, items, cls in (("Wrong", wrong, "wrong"), ("Right", right, "right")):
        figures = []
        for item in items:
            r = item.record
            what = f"run {run.dir}, expression {r['index']}"
            img = page.img(page.image_uri(item.image, what), r["expression"])
            marked = "".join(
                page.img(page.image_uri(image, f"{what}, marked ({key})", MARKED_SIDE), f"marked: {key}", "marked")
                for key, image in item.marked
            )
            figures.append(
                f'<figure><div class="pair">{img}{marked}</div><figcaption><b>{escape(r["expression"])}</b><br>'
                f"{escape(item_caption(r))}</figcaption></figure>"
            )
        body = "".join(figures) or '<p class="note">none in this run</p>'
        parts.append(f'<h5>{name} ({len(items)} shown)</h5><div class="gallery {cls}">{body}</div>')
    return "".join(parts)
