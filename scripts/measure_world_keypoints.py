"""Measure the shipped known-answer model on the shapes world's keypoints (PCK vs chance, naming).

Uses the product's pieces only: ``build_backbone``, ``descbench.keypoints`` (queries, ``point_box``,
PCK, naming summaries), ``descbench.rec.markings.apply_visual_prompt`` and ``pick_candidates``.

    PYTHONPATH=. python scripts/measure_world_keypoints.py --design figures --radius 0.2 --unit box
"""

from __future__ import annotations

import argparse
import json

import torch

import descbench.world
from descbench.backbone import build_backbone
from descbench.keypoints import (
    localization_outcomes,
    localization_queries,
    naming_queries,
    point_box,
    summarize_localization,
    summarize_naming,
)
from descbench.rec.markings import apply_visual_prompt
from descbench.rec.scoring import pick_candidates
from descbench.world.datasets import load_shapes_keypoints


@torch.no_grad()
def measure(args: argparse.Namespace) -> dict:
    backbone = build_backbone("local-dir:" + str(descbench.world.BUNDLE_DIR))
    data = load_shapes_keypoints(design=args.design, num_instances=args.num, seed=args.seed)
    size = backbone.image_size

    def encode(image, point, instance):
        box = point_box(point, args.radius, args.unit, instance.box, image.size, size)
        marked = apply_visual_prompt(args.prompt, image, box, input_size=size)
        return backbone.encode_images(backbone.preprocess(marked)[None])[0]

    def text(part, category):
        return args.template.format(part=part, category=category)

    # localisation
    queries = localization_queries(data)
    picks = []
    for q_index, query in enumerate(queries):
        instance = data.instances[query.instance]
        image = data.load_image(instance.image_id)
        feats = torch.stack([encode(image, instance.keypoints[c], instance) for c in query.candidates])
        scores = feats @ backbone.encode_texts([text(query.part, instance.category)])[0]
        picks.append(pick_candidates([scores], args.seed, keys=[q_index])[0])
    loc = summarize_localization(localization_outcomes(data, queries, picks, args.alpha), args.alpha)

    # naming
    nq = naming_queries(data)
    gold, predicted, labels = [], [], []
    for q_index, query in enumerate(nq):
        instance = data.instances[query.instance]
        image = data.load_image(instance.image_id)
        feat = encode(image, instance.keypoints[query.part], instance)
        scores = backbone.encode_texts([text(label, instance.category) for label in query.labels]) @ feat
        pick = pick_candidates([scores], args.seed, keys=[q_index])[0]
        gold.append(query.part)
        predicted.append(query.labels[pick])
        labels.append(query.labels)
    naming = summarize_naming(gold, predicted, labels, data.mirror)
    return {"setting": vars(args), "localization": loc, "naming": naming}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", default="figures")
    parser.add_argument("--num", type=int, default=96)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--radius", type=float, default=0.2)
    parser.add_argument("--unit", default="box")
    parser.add_argument("--prompt", default="circle")
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--template", default="a photo of the {part} of a {category}")
    parser.add_argument("--full", action="store_true", help="print per-part numbers too")
    args = parser.parse_args()
    result = measure(args)
    if not args.full:
        for key in ("localization", "naming"):
            result[key] = {k: v for k, v in result[key].items() if k.count(".") == 0 or k.startswith("data.")}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
