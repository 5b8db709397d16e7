"""REC without a framework: group expressions by image, mark and encode each candidate once, score, pick.

Each (image, box, visual prompt, backbone) goes through the model once however many expressions
refer to the image: all marked candidates of an image (every prompt) form one batch per backbone.
The texts are encoded once per backbone. The Lightning task reuses these pieces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from descbench.core.backbone import Backbone
from descbench.core.marking.expressions import RecDataset, RefExpression
from descbench.core.marking.geometry import Geometry, render_marked_input
from descbench.core.marking.relations import Relations, Resolution, parse_relation, resolve_relation
from descbench.core.marking.scoring import CORRECT_IOU, draw_negatives, iou_xywh, pick_candidates, score_candidates
from descbench.core.marking.visual_prompts import PromptSpec, parse_prompt_specs

EXPRESSION_TEMPLATE = "a photo of {expression}"
DEFAULT_GEOMETRY = Geometry()


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
    resolutions: dict[int, Resolution] = field(default_factory=dict)
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
    image: Image.Image,
    boxes: Sequence[Sequence[float]],
    prompts: Sequence[PromptSpec],
    input_size: int,
    geometry: Geometry = DEFAULT_GEOMETRY,
) -> list[Image.Image]:
    """Every box marked by every prompt, prompt-major: ``[p0 c0, p0 c1, ..., p1 c0, ...]``, each the model's
    ``input_size`` x ``input_size`` input under ``geometry`` (the marking drawn at input resolution)."""
    return [render_marked_input(image, box, spec, input_size, geometry) for spec in prompts for box in boxes]


def prepare_group(
    image: Image.Image,
    boxes: Sequence[Sequence[float]],
    prompts: Sequence[PromptSpec],
    backbones: Sequence[Backbone],
    geometry: Geometry = DEFAULT_GEOMETRY,
) -> list[Tensor]:
    """One input batch per backbone: ``[P * C, 3, H, W]`` (marked at that backbone's input size).

    The backbone's own preprocessing only normalises: its resize and centre crop leave the square
    ``H`` x ``W`` input the geometry made unchanged.
    """
    batches = []
    for backbone in backbones:
        marked = render_candidates(image, boxes, prompts, backbone.image_size, geometry)
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


def draw_expression_negatives(expressions: Sequence[RefExpression], k: int, seed: int) -> Tensor:
    """For each expression, ``k`` other expressions of its split (seeded per expression): ``[E, k]`` indices."""
    return draw_negatives([e.expression for e in expressions], k, seed, [e.split for e in expressions])


class TextBank:
    """The expressions' texts encoded once per backbone, and each expression's negatives."""

    def __init__(
        self,
        expressions: Sequence[RefExpression],
        backbones: Sequence[Backbone],
        template: str = EXPRESSION_TEMPLATE,
        negatives: int | Tensor = 0,
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
        if isinstance(negatives, Tensor):  # drawn already (the task draws them before any encoding)
            self.negatives = negatives
        else:
            self.negatives = draw_expression_negatives(expressions, negatives, seed) if negatives else None

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


class RelationBanks:
    """For ``relations=rules``: each expression parsed, and the texts of its head phrase and of the other
    object of a comparison encoded once per backbone (no negatives: head phrases repeat)."""

    def __init__(
        self,
        expressions: Sequence[RefExpression],
        backbones: Sequence[Backbone],
        template: str = EXPRESSION_TEMPLATE,
        encoders: Sequence[Any] | None = None,
        device: torch.device | str | None = None,
        lowercase: bool = False,
    ) -> None:
        self.parsed = [parse_relation(e.expression) for e in expressions]
        heads = [replace(e, expression=p.head or e.expression) for e, p in zip(expressions, self.parsed)]
        self.head = TextBank(heads, backbones, template, encoders=encoders, device=device, lowercase=lowercase)
        self.other = None
        if any(p.other for p in self.parsed):
            others = [replace(e, expression=p.other or e.expression) for e, p in zip(expressions, self.parsed)]
            self.other = TextBank(others, backbones, template, encoders=encoders, device=device, lowercase=lowercase)


def resolve_group(
    group: ImageGroup,
    image_features: Sequence[Tensor],
    scores: Sequence[Tensor],
    expressions: Sequence[RefExpression],
    relations: RelationBanks,
    seed: int,
) -> list[tuple[RecPrediction, Resolution]]:
    """The relation resolver after CLIP scoring for every expression of ``group``: its prediction and how
    the pick came about (``Resolution.baseline`` is the pick without relations, same tie-break)."""
    head = score_group(group, image_features, relations.head)
    other = score_group(group, image_features, relations.other) if relations.other is not None else None
    out = []
    for k, e_index in enumerate(group.indices):
        parsed = relations.parsed[e_index]
        e = expressions[e_index]
        other_scores = other[k] if other is not None and parsed.other else None
        # the scores are already logit scale x cosine: the resolver's softmax takes them as they are
        r = resolve_relation(parsed, e.boxes, scores[k], head[k], other_scores, scale=1.0, seed=seed, key=e_index)
        out.append((make_prediction(e_index, e, r.index, float(scores[k][r.index])), r))
    return out


def run_rec(
    dataset: RecDataset,
    backbones: Sequence[Backbone],
    prompts: Any,
    template: str = EXPRESSION_TEMPLATE,
    subtract: bool = False,
    negatives: int = 10,
    seed: int = 0,
    geometry: Geometry = DEFAULT_GEOMETRY,
    relations: Relations = Relations.none,
) -> RecRun:
    """Evaluate ``dataset``: predictions in dataset order plus per-image encoding counts."""
    specs = parse_prompt_specs(prompts)
    expressions = dataset.expressions
    bank = TextBank(expressions, backbones, template, negatives if subtract else 0, seed)
    banks = (
        RelationBanks(expressions, backbones, template) if Relations.parse(relations, "relations") == "rules" else None
    )
    run = RecRun(predictions=[])
    for group in group_by_image(expressions):
        image = dataset.load_image(group.image_id)
        batches = prepare_group(image, group.boxes, specs, backbones, geometry)
        features = encode_group(batches, backbones, len(specs))
        run.forward_calls[group.image_id] = len(batches)
        run.images_encoded[group.image_id] = sum(len(b) for b in batches)
        scores = score_group(group, features, bank)
        if banks is None:
            run.predictions.extend(predict_group(group, scores, expressions, seed))
        else:
            for prediction, resolution in resolve_group(group, features, scores, expressions, banks, seed):
                run.predictions.append(prediction)
                run.resolutions[prediction.index] = resolution
    run.predictions.sort(key=lambda p: p.index)
    return run
