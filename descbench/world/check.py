"""Known-answer checks of a shapes-world model, on freshly generated samples.

    python -m descbench.world.check [--bundle DIR] [--write-card]

(a) attribute-named classification ("a red circle", colour x shape); (b) the named
classes scored by descriptions ("stop sign, which has red"), name only, ``num_desc``
1..7, and the ``swapped`` / wrong-label-order controls, with top-1 and mean entropy
(min-max scaling to [-10, 10], softmax, nats); (c) REC on 3-object canvases with
gold boxes under the ``circle``, ``crop`` and ``none`` visual prompts.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image
from torch.nn import functional as F

from descbench.world.data import ShapesClassification, ShapesREC, load_classes, world_descriptors
from descbench.world.lexicon import COLOURS, SHAPE_NOUNS, SHAPES
from descbench.world.scene import draw_marking, render_scene

BUNDLE_DIR = Path(__file__).parent / "model"
EVAL_SEED = 90210  # never used in training (training draws from seeds (train seed, step))


def load_world_model(bundle: str | Path = BUNDLE_DIR):
    """(model in eval mode, preprocess, tokenizer) of a bundle, through open_clip's ``local-dir:`` path."""
    name = f"local-dir:{bundle}"
    model, _, preprocess = open_clip.create_model_and_transforms(name)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)


@torch.no_grad()
def encode_texts(model, tokenizer, texts: Sequence[str]) -> torch.Tensor:
    return F.normalize(model.encode_text(tokenizer(list(texts))).float(), dim=-1)


@torch.no_grad()
def encode_images(model, preprocess: Callable, images: Sequence[Image.Image], batch: int = 256) -> torch.Tensor:
    out = []
    for i in range(0, len(images), batch):
        pixels = torch.stack([preprocess(im) for im in images[i : i + batch]])
        out.append(F.normalize(model.encode_image(pixels).float(), dim=-1))
    return torch.cat(out)


def minmax_entropy(scores: torch.Tensor) -> torch.Tensor:
    """Per-row entropy (nats) after min-max scaling each row to [-10, 10] and a softmax."""
    lo, hi = scores.min(1, keepdim=True).values, scores.max(1, keepdim=True).values
    scaled = (scores - lo) / (hi - lo).clamp_min(1e-12) * 20 - 10
    logp = F.log_softmax(scaled, 1)
    return -(logp.exp() * logp).sum(1)


def describe_text(classname: str, descriptor: str) -> str:
    """The published "{class}, which (is/has) {descriptor}" text (SPEC §2, corrected rule)."""
    first = descriptor.split(maxsplit=1)[0].lower()
    if first in ("a", "an", "used"):
        return f"{classname}, which is {descriptor}"
    if first in ("has", "often", "typically", "may", "can"):
        return f"{classname}, which {descriptor}"
    return f"{classname}, which has {descriptor}"


def class_scores(
    image_emb: torch.Tensor, text_emb: torch.Tensor, owner: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Mean cosine per class over its descriptions (ragged: ``owner[k]`` is text k's class)."""
    sims = image_emb @ text_emb.T
    total = torch.zeros(len(image_emb), num_classes).index_add_(1, owner, sims)
    return total / torch.bincount(owner, minlength=num_classes).clamp_min(1)


def score_descriptions(model, tokenizer, image_emb, texts_per_class: Sequence[Sequence[str]]) -> torch.Tensor:
    texts = [t for ts in texts_per_class for t in ts]
    owner = torch.tensor([c for c, ts in enumerate(texts_per_class) for _ in ts])
    return class_scores(image_emb, encode_texts(model, tokenizer, texts), owner, len(texts_per_class))


def _summary(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    return {
        "top1": round(float((scores.argmax(1) == labels).float().mean()) * 100, 2),
        "entropy": round(float(minmax_entropy(scores).mean()), 4),
    }


def derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation with no fixed point."""
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n).tolist()
        if all(i != p for i, p in enumerate(perm)):
            return perm


def attribute_classification(model, preprocess, tokenizer, per_class: int = 3, seed: int = EVAL_SEED) -> dict:
    """Colour x shape classes named by their attributes ("a red circle"); chance 1/120."""
    classes = [(c, s) for c in COLOURS for s in SHAPES]
    images, labels = [], []
    for label, (colour, shape) in enumerate(classes):
        for k in range(per_class):
            rng = np.random.default_rng([seed, label, k])
            spec = {
                "shape": shape,
                "colour": colour,
                "pattern": ("plain", "striped", "dotted", "checkered", "outlined")[int(rng.integers(5))],
                "size": ("small", "large")[int(rng.integers(2))],
            }
            images.append(render_scene([spec], rng, layout="single").image)
            labels.append(label)
    image_emb = encode_images(model, preprocess, images)
    texts = [[f"a {c} {SHAPE_NOUNS[s][0]}"] for c, s in classes]
    result = _summary(score_descriptions(model, tokenizer, image_emb, texts), torch.tensor(labels))
    return result | {"classes": len(classes), "chance": round(100 / len(classes), 2)}


def named_classification(
    model,
    preprocess,
    tokenizer,
    num_per_class: int = 20,
    seed: int = EVAL_SEED,
    attr_prob: float = 0.8,
    max_desc: int = 7,
    detailed: bool = False,
) -> dict:
    """The named classes by name only, by ``num_desc`` = 1..max_desc descriptors, and the two controls."""
    data = ShapesClassification(num_per_class=num_per_class, seed=seed, attr_prob=attr_prob)
    images = [data[i][0] for i in range(len(data))]
    labels = torch.tensor(data.targets)
    image_emb = encode_images(model, preprocess, images)
    names = data.classes
    table = world_descriptors(detailed)
    out: dict = {"chance": round(100 / len(names), 2), "images": len(images), "detailed": detailed}
    out["classname"] = _summary(score_descriptions(model, tokenizer, image_emb, [[n] for n in names]), labels)

    def texts_for(descs: list[list[str]]) -> list[list[str]]:
        if detailed:
            return descs
        return [[describe_text(n, d) for d in ds] for n, ds in zip(names, descs, strict=True)]

    for k in range(1, max_desc + 1):
        descs = [table[n][:k] for n in names]
        out[f"num_desc={k}"] = _summary(score_descriptions(model, tokenizer, image_emb, texts_for(descs)), labels)
    full = [table[n][:max_desc] for n in names]
    perm = derangement(len(names), seed)
    out["swapped"] = _summary(
        score_descriptions(model, tokenizer, image_emb, texts_for([full[p] for p in perm])), labels
    )
    scores = score_descriptions(model, tokenizer, image_emb, texts_for(full))
    wrong = torch.tensor(derangement(len(names), seed + 1))[labels]
    out["wrong_label_order"] = _summary(scores, wrong)
    return out


def visual_prompt(image: Image.Image, box: Sequence[float], prompt: str, size: int = 64) -> Image.Image:
    """The image a candidate box is scored with: ``circle`` (thin red ellipse), ``crop`` or ``none``."""
    if prompt == "circle":
        return draw_marking(image, box, width=1, scale=1.0, margin=1.0)
    if prompt == "circle_inscribed":  # exactly inscribed in the box, 2 px
        return draw_marking(image, box, width=2, scale=1.0, margin=0.0)
    if prompt == "crop":
        x, y, w, h = box
        return image.crop((x, y, x + w, y + h)).resize((size, size), Image.BICUBIC)
    if prompt == "none":
        return image
    raise ValueError(f"unknown visual prompt {prompt!r}: use circle, crop or none")


def rec_accuracy(model, preprocess, tokenizer, rec: ShapesREC, prompt: str, seed: int = 0) -> float:
    """Top-1 over expressions; ties (all candidates equal, as with ``none``) broken at random, seeded."""
    rng = np.random.default_rng(seed)
    correct = 0
    text_emb = encode_texts(model, tokenizer, [e["expression"] for e in rec.expressions])
    for k, e in enumerate(rec.expressions):
        image = rec.load_image(e["image_id"])
        candidates = [visual_prompt(image, box, prompt) for box in e["boxes"]]
        scores = (encode_images(model, preprocess, candidates) @ text_emb[k]).numpy()
        best = np.flatnonzero(scores >= scores.max() - 1e-6)
        correct += int(rng.choice(best) == e["gold_index"])
    return round(100 * correct / max(1, len(rec.expressions)), 2)


def rec_check(model, preprocess, tokenizer, num_canvases: int = 100, seed: int = EVAL_SEED) -> dict:
    rec = ShapesREC(num_canvases=num_canvases, seed=seed, num_objects=(3, 3))
    out = {
        p: rec_accuracy(model, preprocess, tokenizer, rec, p) for p in ("circle", "circle_inscribed", "crop", "none")
    }
    two = [e for e in rec.expressions if len(e["attributes"]) > 1]
    return out | {"expressions": len(rec), "two_attribute_expressions": len(two), "chance": 33.33}


def evaluate_all(bundle: str | Path = BUNDLE_DIR, num_per_class: int = 20, num_canvases: int = 100) -> dict:
    """Every check of the model card."""
    torch.set_num_threads(2)
    model, preprocess, tokenizer = load_world_model(bundle)
    start = time.time()
    results = {
        "attribute_classes": attribute_classification(model, preprocess, tokenizer),
        "named_words": named_classification(model, preprocess, tokenizer, num_per_class=num_per_class),
        "named_sentences": named_classification(
            model, preprocess, tokenizer, num_per_class=num_per_class, detailed=True
        ),
        "rec": rec_check(model, preprocess, tokenizer, num_canvases=num_canvases),
    }
    results["seconds"] = round(time.time() - start, 1)
    return results


def _card_table(named: dict) -> str:
    rows = ["| descriptions | top-1 % | mean entropy (nats) |", "|---|---|---|"]
    for key in ["classname"] + [k for k in named if k.startswith("num_desc=")] + ["swapped", "wrong_label_order"]:
        rows.append(f"| {key} | {named[key]['top1']} | {named[key]['entropy']} |")
    return "\n".join(rows)


def write_model_card(bundle: Path, facts: dict | None = None) -> Path:
    """Measure everything and write ``MODEL_CARD.md`` (+ ``check.json``) into the bundle."""
    from descbench.world.train import MODEL_CFG, PREPROCESS_CFG

    bundle = Path(bundle)
    if facts is None:
        facts = json.loads((bundle / "training.json").read_text())
    results = evaluate_all(bundle)
    (bundle / "check.json").write_text(json.dumps(results, indent=2) + "\n")
    attr, words, sents, rec = (results[k] for k in ("attribute_classes", "named_words", "named_sentences", "rec"))
    classes = load_classes()
    card = f"""# shapes-clip: the known-answer model of the shapes world

A tiny open_clip CLIP trained from scratch by `python -m descbench.world.train` on captions of
procedurally drawn objects (`descbench/world/scene.py`). It has never seen the names of the
{len(classes)} named classes of `classes.yaml`: it can only recognise them through their descriptions.

Load: `open_clip.create_model_and_transforms("local-dir:descbench/world/model")`, or
`open_clip.add_model_config("descbench/world/model/shapes-clip.json")` then
`open_clip.create_model("shapes-clip", pretrained="descbench/world/model/open_clip_model.safetensors")`.
Tokenizer: open_clip's standard `SimpleTokenizer` (49,408 tokens), context length 24.

## Config

```json
{json.dumps({"model_cfg": MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG}, indent=2)}
```

Parameters: {facts.get("params")}; weights stored in fp16 (`open_clip_model.safetensors`),
sha256 `{facts.get("sha256")}`.

## Training

- seed {facts.get("seed")}, {facts.get("steps")} steps of batch {facts.get("batch_size")}, AdamW
  (lr {facts.get("lr")}, betas 0.9/0.98, weight decay 0.05 on matrices), 5 % warm-up then cosine;
  {facts.get("train_seconds")} s on 2 CPU cores (`torch.set_num_threads(2)`, one data worker);
  final smoothed loss {facts.get("final_loss_smoothed")}.
- Loss: CLIP's contrastive loss with multiple positives — a caption is a positive for every image
  of the batch whose described object satisfies all of the caption's attribute predicates.
- Data recipe (each batch seeded by (seed, step)): 60 % one object anywhere on a light or dark
  background; 15 % one object filling the canvas (like a crop of a box, resized); 25 % 2-4 objects
  with the described one circled by a thin red ellipse (1-2 px, scale 1.0-1.45 of the box).
  Objects: {len(SHAPES)} shapes x {len(COLOURS)} colours x 5 patterns x 2 sizes.
- Captions: 50 % attribute phrases with dropout ("a small red striped circle", "red",
  "the one with dots on a dark background"); 25 % descriptor phrases behind a made-up name
  drawn from the tokenizer's vocabulary ("blick, which has eight sides", "which is a pattern");
  15 % descriptor sentences ("A blick is usually red in colour."); 10 % bare descriptor words.
  No word of any class name is ever used (checked by `tests/test_world.py`).

## Measured (fresh samples, seed {EVAL_SEED}; `python -m descbench.world.check`)

(a) Colour x shape classes named by attributes ("a red circle"): top-1 **{attr["top1"]} %**
over {attr["classes"]} classes (chance {attr["chance"]} %).

(b) Named classes, {words["images"]} images ({words["images"] // len(classes)} per class, attr_prob 0.8),
score = mean cosine over "{{class}}, which (is/has) {{descriptor}}", chance {words["chance"]} %.

Word descriptors:

{_card_table(words)}

Sentence descriptors (detailed):

{_card_table(sents)}

(c) REC, {rec["expressions"]} expressions on 3-object canvases ({rec["two_attribute_expressions"]} need or use
two attributes), gold boxes as candidates (chance 33.3 %): circle **{rec["circle"]} %**,
crop **{rec["crop"]} %**, none {rec["none"]} % (ties broken at random, seeded).
"circle" is a 1 px ellipse of half-axes w/2 + 1, h/2 + 1 around the box; an ellipse exactly
inscribed in the box, 2 px wide, scores {rec["circle_inscribed"]} %.
"""
    path = bundle / "MODEL_CARD.md"
    path.write_text(card)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=BUNDLE_DIR)
    parser.add_argument("--write-card", action="store_true", help="write MODEL_CARD.md into the bundle")
    args = parser.parse_args(argv)
    if args.write_card:
        print(write_model_card(args.bundle).read_text())
    else:
        print(json.dumps(evaluate_all(args.bundle), indent=2))


if __name__ == "__main__":
    main()
