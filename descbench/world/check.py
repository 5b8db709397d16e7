"""Known-answer checks of a shapes-world model, measured through the product's own pipeline.

    python -m descbench.world.check [--bundle DIR] [--write-card]

Every number goes through the pieces ``descbench.eval`` runs: the backbone loader
(:func:`descbench.core.backbone.build_backbone` on ``local-dir:<bundle>``), the descriptions' "which is/has"
formatting rule (:func:`~descbench.core.description_text.format_description`), the ragged
:class:`~descbench.core.head.DescriptionHead`, the classification metrics and min-max entropy of :mod:`descbench.core.metrics`, the derangement of the
``swapped`` control, and the REC engine (:func:`descbench.core.marking.engine.run_rec` with the registered
visual prompts). This module only holds the scenario list and the text of the model card.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from descbench.core.backbone import Backbone, build_backbone
from descbench.core.description_set import derangement
from descbench.core.description_text import format_description
from descbench.core.head import DescriptionHead, ragged_class_index
from descbench.core.marking.engine import run_rec
from descbench.core.metrics import MeanEntropy, build_classification_metrics, entropy_nats, scale_scores
from descbench.world import BUNDLE_DIR
from descbench.world.builders import load_shapes, load_shapes_rec
from descbench.world.captions import TrainingRecipe
from descbench.world.lexicon import COLOURS, PATTERNS, SHAPE_NOUNS, SHAPES
from descbench.world.rendering import render_scene
from descbench.world.samples import load_classes

EVAL_SEED = 90210  # never used in training (training draws from seeds (train seed, step))
CONTROL_SEED = 0  # the seed of the swapped control, as a default run (seed=0) draws it
REC_PROMPTS = ("circle", "crop", "none")  # registered visual prompts with their default options
ENTROPY_SCALE = "minmax"  # the study's convention, the product's default (task.entropy_scale)


def load_world_backbone(bundle: str | Path = BUNDLE_DIR) -> Backbone:
    """The bundle as the product loads it (``backbone.model=local-dir:<bundle>``)."""
    return build_backbone(f"local-dir:{Path(bundle).resolve()}")


@torch.no_grad()
def encode_images(backbone: Backbone, images: Sequence, batch: int = 256) -> torch.Tensor:
    """Image features of PIL images or preprocessed tensors, through the backbone's preprocessing."""
    out = []
    for start in range(0, len(images), batch):
        chunk = [im if torch.is_tensor(im) else backbone.preprocess(im) for im in images[start : start + batch]]
        out.append(backbone.encode_images(torch.stack(chunk)))
    return torch.cat(out)


@torch.no_grad()
def class_scores(backbone: Backbone, image_features: torch.Tensor, texts: Sequence[Sequence[str]]) -> torch.Tensor:
    """Mean cosine per class over its texts: the product's ragged head (``aggregation=score_mean``)."""
    flat = [t for per_class in texts for t in per_class]
    index = ragged_class_index([len(t) for t in texts])
    head = DescriptionHead(backbone.encode_texts(flat), index, len(texts), "score_mean")
    return head(image_features)


def summarise(scores: torch.Tensor, labels: torch.Tensor, logit_scale: float) -> dict[str, float]:
    """top-1 (%) and mean entropy (nats) as the classification task computes them."""
    logits = scale_scores(scores, ENTROPY_SCALE, logit_scale)
    metrics = build_classification_metrics(scores.shape[1])
    metrics.update(logits.float().softmax(dim=1), labels)
    entropy = MeanEntropy()
    entropy.update(entropy_nats(logits))
    return {"top1": round(float(metrics.compute()["top1"]) * 100, 2), "entropy": round(float(entropy.compute()), 4)}


def attribute_classification(backbone: Backbone, per_class: int = 3, seed: int = EVAL_SEED) -> dict:
    """Colour x shape classes named by their attributes ("a red circle"); chance 1/120."""
    classes = [(c, s) for c in COLOURS for s in SHAPES]
    images, labels = [], []
    for label, (colour, shape) in enumerate(classes):
        for k in range(per_class):
            rng = np.random.default_rng([seed, label, k])
            spec = {
                "shape": shape,
                "colour": colour,
                "pattern": PATTERNS[int(rng.integers(len(PATTERNS)))],
                "size": ("small", "large")[int(rng.integers(2))],
            }
            images.append(render_scene([spec], rng, layout="single").image)
            labels.append(label)
    features = encode_images(backbone, images)
    texts = [[f"a {c} {SHAPE_NOUNS[s][0]}"] for c, s in classes]
    result = summarise(class_scores(backbone, features, texts), torch.tensor(labels), backbone.logit_scale)
    return result | {"classes": len(classes), "chance": round(100 / len(classes), 2)}


def named_classification(
    backbone: Backbone,
    num_per_class: int = 20,
    seed: int = EVAL_SEED,
    attr_prob: float = 0.8,
    max_desc: int = 7,
    detailed: bool = False,
) -> dict:
    """The named classes (``dataset=shapes``) by name only (``describe=classname``), by ``describe=world``
    with ``num_desc`` = 1..max_desc, ``swapped`` descriptions and a wrong label order."""
    data = load_shapes(num_per_class=num_per_class, seed=seed, attr_prob=attr_prob, transform=backbone.preprocess)
    items = [data[i] for i in range(len(data))]
    features = encode_images(backbone, [image for image, _, _ in items])
    labels = torch.tensor([label for _, label, _ in items])
    classes = list(data.classes)

    def measure(texts: list[list[str]], truth: torch.Tensor = labels) -> dict[str, float]:
        return summarise(class_scores(backbone, features, texts), truth, backbone.logit_scale)

    def world_texts(num_desc: int, native=data.native) -> list[list[str]]:
        """describe=world: the first ``num_desc`` descriptors, words in the "which is/has" rule, sentences as written."""
        table = native["sentences" if detailed else "words"]
        if detailed:
            return [list(table[c][:num_desc]) for c in classes]
        return [[format_description(c, d) for d in table[c][:num_desc]] for c in classes]

    out: dict = {"chance": round(100 / len(classes), 2), "images": len(items), "detailed": detailed}
    out["classname"] = measure([[c] for c in classes])  # describe=classname (template "{classname}")
    for k in range(1, max_desc + 1):
        out[f"num_desc={k}"] = measure(world_texts(k))
    # swapped: class i gets the descriptors of class perm[i], formatted with its own name (describe=swapped)
    perm = derangement(len(classes), random.Random(CONTROL_SEED))
    swapped = {kind: {c: table[classes[p]] for c, p in zip(classes, perm)} for kind, table in data.native.items()}
    out["swapped"] = measure(world_texts(max_desc, native=swapped))
    # a wrong label order: the true descriptions, scored against deranged labels
    wrong = torch.tensor(derangement(len(classes), random.Random(CONTROL_SEED + 1)))[labels]
    out["wrong_label_order"] = measure(world_texts(max_desc), truth=wrong)
    return out


def rec_check(backbone: Backbone, num_canvases: int = 100, seed: int = EVAL_SEED) -> dict:
    """REC on 3-object canvases, gold boxes as candidates, each registered visual prompt alone (``task=rec``)."""
    data = load_shapes_rec(num_canvases=num_canvases, seed=seed, num_objects=(3, 3))
    out: dict = {p: round(run_rec(data, [backbone], p).accuracy * 100, 2) for p in REC_PROMPTS}
    return out | {"expressions": len(data), "chance": 33.33}


#: the card's scenarios: name -> measurement of a backbone
SCENARIOS: dict[str, Callable[[Backbone], dict]] = {
    "attribute_classes": attribute_classification,
    "named_words": named_classification,
    "named_sentences": lambda backbone: named_classification(backbone, detailed=True),
    "rec": rec_check,
}


def evaluate_all(bundle: str | Path = BUNDLE_DIR, scenarios: Sequence[str] | None = None) -> dict:
    """Every scenario of the model card (or the named ones)."""
    torch.set_num_threads(2)
    backbone = load_world_backbone(bundle)
    start = time.time()
    results = {name: SCENARIOS[name](backbone) for name in (scenarios or SCENARIOS)}
    results["seconds"] = round(time.time() - start, 1)
    return results


def _card_table(named: dict) -> str:
    rows = ["| descriptions | top-1 % | mean entropy (nats) |", "|---|---|---|"]
    for key in ["classname"] + [k for k in named if k.startswith("num_desc=")] + ["swapped", "wrong_label_order"]:
        rows.append(f"| {key} | {named[key]['top1']} | {named[key]['entropy']} |")
    return "\n".join(rows)


#: the last section of a card written without measuring
NOT_MEASURED = """## Measured

Not measured when the bundle was written: `python -m descbench.world.check --bundle DIR --write-card` measures
it and rewrites this card (with `check.json`).
"""


def write_model_card(bundle: Path, facts: dict | None = None, measure: bool = True) -> Path:
    """Measure everything and write ``MODEL_CARD.md`` (+ ``check.json``) into the bundle (``measure=False``: the
    card of the config and training alone, no ``check.json``)."""
    bundle = Path(bundle)
    if facts is None:
        facts = json.loads((bundle / "training.json").read_text())
    config = json.loads((bundle / "open_clip_config.json").read_text())
    results = evaluate_all(bundle) if measure else None
    if results is not None:
        (bundle / "check.json").write_text(json.dumps(results, indent=2) + "\n")
    path = bundle / "MODEL_CARD.md"
    path.write_text(card_text(config, facts, results))
    return path


def _workers(facts: dict) -> str:
    count = facts.get("workers", 1)  # the shipped bundle's training.json predates the record: it used one
    return {0: "no data worker", 1: "one data worker"}.get(count, f"{count} data workers")


def card_text(config: dict, facts: dict, results: dict | None) -> str:
    """The text of ``MODEL_CARD.md`` from the bundle's config, its training facts and its measurements (None:
    a card without them, as the emergence grid writes by default)."""
    classes = load_classes()
    recipe = TrainingRecipe.from_facts(facts)
    knobs = ""
    if "size" in facts:  # a bundle of the emergence knobs (the shipped bundle's training.json predates them)
        knobs = (
            f"\n- Knobs: size `{facts['size']}` (open_clip name `{facts.get('model_name')}`), marking share "
            f"{recipe.marking_share}, filler `{recipe.filler}`; {facts.get('samples_seen')} samples seen, "
            f"{facts.get('marked_samples_seen')} of them marked."
        )
    card = f"""# shapes-clip: the known-answer model of the shapes world

A tiny open_clip CLIP trained from scratch by `python -m descbench.world.train` on captions of
procedurally drawn objects (`descbench/world/rendering.py`, `descbench/world/captions.py`). It has never seen the names of the
{len(classes)} named classes of `classes.yaml`: it can only recognise them through their descriptions.

Load: `open_clip.create_model_and_transforms("local-dir:descbench/world/model")`, or
`open_clip.add_model_config("descbench/world/model/shapes-clip.json")` then
`open_clip.create_model("shapes-clip", pretrained="descbench/world/model/open_clip_model.safetensors")`;
in descbench: `backbone=shapes_clip`.
Tokenizer: open_clip's standard `SimpleTokenizer` (49,408 tokens), context length 24.

## Config

```json
{json.dumps({"model_cfg": config["model_cfg"], "preprocess_cfg": config["preprocess_cfg"]}, indent=2)}
```

Parameters: {facts.get("params")}; weights stored in fp16 (`open_clip_model.safetensors`),
sha256 `{facts.get("sha256")}`.

## Training

- seed {facts.get("seed")}, {facts.get("steps")} steps of batch {facts.get("batch_size")}, AdamW
  (lr {facts.get("lr")}, betas 0.9/0.98, weight decay 0.05 on matrices), 5 % warm-up then cosine;
  {facts.get("train_seconds")} s on 2 CPU cores (`torch.set_num_threads({facts.get("threads", 2)})`, {_workers(facts)});
  final smoothed loss {facts.get("final_loss_smoothed")}.
- Loss: CLIP's contrastive loss with multiple positives — a caption is a positive for every image
  of the batch whose described object satisfies all of the caption's attribute predicates.
- {recipe.describe()}
  Objects: {len(SHAPES)} shapes x {len(COLOURS)} colours x 5 patterns x 2 sizes, on square 64 x 64 canvases.{knobs}
- Captions: 50 % attribute phrases with dropout ("a small red striped circle", "red",
  "the one with dots on a dark background"); 25 % descriptor phrases behind a made-up name
  drawn from the tokenizer's vocabulary ("blick, which has eight sides", "which is a pattern");
  15 % descriptor sentences ("A blick is usually red in colour."); 10 % bare descriptor words.
  No word of any class name is ever used (checked by `tests/test_world.py`).

"""
    if results is None:
        return card + NOT_MEASURED
    attr, words, sents, rec = (results[k] for k in ("attribute_classes", "named_words", "named_sentences", "rec"))
    card += f"""## Measured (fresh samples, seed {EVAL_SEED}; `python -m descbench.world.check`)

Every number below is computed by the product's own pieces (`descbench.world.check`): the backbone
loader, the descriptions' "which is/has" formatting rule, the ragged description head
(`score_mean`), the classification metrics with min-max entropy, the `swapped` control's derangement
(seed {CONTROL_SEED}) and the REC engine with the registered visual prompts; `tests/test_world.py`
recomputes them and compares with `check.json`.

(a) Colour x shape classes named by attributes ("a red circle"): top-1 **{attr["top1"]} %**
over {attr["classes"]} classes (chance {attr["chance"]} %).

(b) Named classes (`dataset=shapes`), {words["images"]} images ({words["images"] // len(classes)} per class,
attr_prob 0.8), `describe=classname`, `describe=world num_desc=1..7`, `swapped` and a wrong label
order; score = mean cosine over "{{class}}, which (is/has) {{descriptor}}", chance {words["chance"]} %.

Word descriptors:

{_card_table(words)}

Sentence descriptors (detailed, encoded as written):

{_card_table(sents)}

(c) REC (`task=rec`), {rec["expressions"]} expressions on 3-object canvases, gold boxes as candidates,
text "a photo of {{expression}}" (chance 33.3 %): `circle` **{rec["circle"]} %**, `crop` **{rec["crop"]} %**,
`none` {rec["none"]} % (ties broken at random, seeded by the expression's index).
`circle` is the product's red ellipse inscribed in the box, 2 px wide at the model's input resolution;
`crop` is the box alone, resized to the input (the default `squash` geometry for every marking).

Changes from the card of the first release, whose numbers came from a separate re-implementation:
its "circle" was a 1 px ellipse with half-axes w/2 + 1, h/2 + 1 around the box (85.96 %; the
inscribed 2 px ellipse scored 79.45 % there), its REC text was the bare expression without
"a photo of", its entropy was computed in float32 and its `swapped`/wrong-label controls drew their
derangement from numpy instead of the product's seeded `random.Random`.
"""
    return card


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=BUNDLE_DIR)
    parser.add_argument("--write-card", action="store_true", help="write MODEL_CARD.md and check.json into the bundle")
    args = parser.parse_args(argv)
    if args.write_card:
        print(write_model_card(args.bundle).read_text())
    else:
        print(json.dumps(evaluate_all(args.bundle), indent=2))


if __name__ == "__main__":
    main()
