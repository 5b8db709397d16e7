"""REC without a framework: group expressions by image, mark and encode each candidate once, score, pick.

Each (image, box, visual prompt, backbone) goes through the model once however many expressions
refer to the image: all marked candidates of an image (every prompt) form one batch per backbone.
The texts are encoded once per backbone. The Lightning task reuses these pieces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from descbench.backbone import Backbone
from descbench.rec.markings import PromptSpec, parse_prompt_specs
from descbench.rec.scoring import CORRECT_IOU, draw_negatives, iou_xywh, pick_candidates, score_candidates
from descbench.rec.types import RecDataset, RefExpression

DEFAULT_TEMPLATE = "a photo of {expression}"


@dataclass
class ImageGroup:
    """The expressions of one image: their indices, the image's distinct candidate boxes and,
    per expression, the positions of its own candidates among them."""

    image_id: str
    indices: list[int]
    boxes: list[list[float]]
    candidates: list[list[int]]


@dataclass
class RecPrediction:
    """One expression's outcome."""

    index: int
    image_id: str
    split: str
    expression: str
    chosen_index: int
    chosen_box: list[float]
    gold_box: list[float]
    score: float
    iou: float
    correct: bool
    num_candidates: int


@dataclass
class RecRun:
    """Predictions in dataset order and the encoding counts (per image: forward calls, images encoded)."""

    predictions: list[RecPrediction]
    forward_calls: dict[str, int] = field(default_factory=dict)
    images_encoded: dict[str, int] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return sum(p.correct for p in self.predictions) / max(1, len(self.predictions))


def group_by_image(expressions: Sequence[RefExpression]) -> list[ImageGroup]:
    """Expressions grouped by image (first-seen order), the image's candidate boxes de-duplicated."""
    groups: dict[str, ImageGroup] = {}
    positions: dict[str, dict[tuple[float, ...], int]] = {}
    for i, e in enumerate(expressions):
        group = groups.setdefault(e.image_id, ImageGroup(e.image_id, [], [], []))
        where = positions.setdefault(e.image_id, {})
        own = []
        for box in e.boxes:
            key = tuple(float(v) for v in box)
            if key not in where:
                where[key] = len(group.boxes)
                group.boxes.append(list(key))
            own.append(where[key])
        group.indices.append(i)
        group.candidates.append(own)
    return list(groups.values())


def render_candidates(
    image: Image.Image, boxes: Sequence[Sequence[float]], prompts: Sequence[PromptSpec], input_size: int
) -> list[Image.Image]:
    """Every box marked by every prompt, prompt-major: ``[p0 c0, p0 c1, ..., p1 c0, ...]``."""
    return [spec.apply(image, box, input_size=input_size) for spec in prompts for box in boxes]


def prepare_group(
    image: Image.Image,
    boxes: Sequence[Sequence[float]],
    prompts: Sequence[PromptSpec],
    backbones: Sequence[Backbone],
    geometry: str | None = None,
) -> list[Tensor]:
    """One input batch per backbone: ``[P * C, 3, H, W]`` (marked at that backbone's input size)."""
    batches = []
    for backbone in backbones:
        marked = render_candidates(image, boxes, prompts, backbone.image_size)
        batches.append(torch.stack([backbone.preprocess(m) for m in marked]))
    return batches


@torch.no_grad()
def encode_group(batches: Sequence[Tensor], backbones: Sequence[Backbone], num_prompts: int) -> list[Tensor]:
    """One forward call per backbone; features reshaped to ``[P, C, D]``."""
    features = []
    for batch, backbone in zip(batches, backbones):
        device = next(backbone.parameters()).device
        encoded = backbone.encode_images(batch.to(device))
        features.append(encoded.reshape(num_prompts, -1, encoded.shape[-1]))
    return features


class TextBank:
    """The expressions' texts encoded once per backbone, and each expression's negatives."""

    def __init__(
        self,
        expressions: Sequence[RefExpression],
        backbones: Sequence[Backbone],
        template: str = DEFAULT_TEMPLATE,
        negatives: int = 0,
        seed: int = 0,
        encoders: Sequence[Any] | None = None,
        device: torch.device | str | None = None,
        lowercase: bool = False,
    ) -> None:
        try:
            texts = [
                template.format(expression=e.expression.lower() if lowercase else e.expression) for e in expressions
            ]
        except (KeyError, IndexError) as err:
            raise ValueError(
                f"text template {template!r} must contain {{expression}} and no other field (task.template)"
            ) from err
        unique = list(dict.fromkeys(texts))
        row = {t: i for i, t in enumerate(unique)}
        self.template = template
        self.scales = [float(b.logit_scale) for b in backbones]
        self.texts = texts
        self.text_index = torch.tensor([row[t] for t in texts], dtype=torch.long)
        encoders = encoders or [b.encode_texts for b in backbones]
        with torch.no_grad():
            self.features = [
                encode(unique).float().to(device if device is not None else next(b.parameters()).device)
                for encode, b in zip(encoders, backbones)
            ]
        self.negatives = (
            draw_negatives([e.expression for e in expressions], negatives, seed, [e.split for e in expressions])
            if negatives
            else None
        )

    def for_expressions(self, indices: Sequence[int]) -> tuple[list[Tensor], list[Tensor] | None]:
        """Per backbone: text features [E, D] and (with negatives) negative features [E, K, D]."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        texts = [f[self.text_index[idx].to(f.device)] for f in self.features]
        if self.negatives is None:
            return texts, None
        neg_rows = self.text_index[self.negatives[idx]]  # [E, K]
        return texts, [f[neg_rows.to(f.device)] for f in self.features]


def score_group(group: ImageGroup, image_features: Sequence[Tensor], bank: TextBank) -> list[Tensor]:
    """Summed scores of each expression of ``group`` over its own candidates."""
    texts, negs = bank.for_expressions(group.indices)
    scores = score_candidates(image_features, texts, negs, bank.scales)  # [E, all boxes of the image]
    return [scores[e, own] for e, own in enumerate(group.candidates)]


def predict_group(
    group: ImageGroup, scores: Sequence[Tensor], expressions: Sequence[RefExpression], seed: int
) -> list[RecPrediction]:
    """Arg-max candidate (seeded tie-break keyed by the expression's index), IoU with gold, correct above 0.5."""
    picks = pick_candidates(scores, seed, keys=group.indices)
    return [
        make_prediction(e_index, expressions[e_index], pick, float(row[pick]))
        for e_index, row, pick in zip(group.indices, scores, picks)
    ]


def make_prediction(index: int, e: RefExpression, pick: int, score: float) -> RecPrediction:
    """The outcome of choosing candidate ``pick`` for ``e``: IoU with the best-matching gold box, correct when
    above :data:`CORRECT_IOU` (the reference implementations' ``iou > 0.5``)."""
    chosen = [float(v) for v in e.boxes[pick]]
    iou = float(iou_xywh(torch.tensor([chosen]), torch.tensor(e.gold_boxes)).max())
    return RecPrediction(
        index=index,
        image_id=e.image_id,
        split=e.split,
        expression=e.expression,
        chosen_index=pick,
        chosen_box=chosen,
        gold_box=list(e.gold_box),
        score=score,
        iou=iou,
        correct=iou > CORRECT_IOU,
        num_candidates=len(e.boxes),
    )


def run_rec(
    dataset: RecDataset,
    backbones: Sequence[Backbone],
    prompts: Any,
    template: str = DEFAULT_TEMPLATE,
    subtract: bool = False,
    negatives: int = 10,
    seed: int = 0,
) -> RecRun:
    """Evaluate ``dataset``: predictions in dataset order plus per-image encoding counts."""
    specs = parse_prompt_specs(prompts)
    expressions = dataset.expressions
    bank = TextBank(expressions, backbones, template, negatives if subtract else 0, seed)
    run = RecRun(predictions=[])
    for group in group_by_image(expressions):
        image = dataset.load_image(group.image_id)
        batches = prepare_group(image, group.boxes, specs, backbones)
        features = encode_group(batches, backbones, len(specs))
        run.forward_calls[group.image_id] = len(batches)
        run.images_encoded[group.image_id] = sum(len(b) for b in batches)
        run.predictions.extend(predict_group(group, score_group(group, features, bank), expressions, seed))
    run.predictions.sort(key=lambda p: p.index)
    return run
