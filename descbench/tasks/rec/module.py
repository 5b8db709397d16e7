"""Referring expressions with visual prompts as a LightningModule (the core lives in ``descbench.core.marking``).

The test set is the list of images, each item carrying all its expressions and candidates: the
DataLoader workers mark and preprocess every (candidate, visual prompt) per backbone, ``test_step``
encodes them in one batch per (image, backbone), scores every expression of the image and picks
its candidate (seeded tie-break keyed by the expression's index, so DDP changes nothing).

With ``cache.features`` the candidate features are kept on disk per (backbone, visual prompt): a
later job over the same data (another template, ``subtract``, seed, or an ensemble of cached prompts)
reads them instead of opening and encoding any image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from torchmetrics import MeanMetric

from descbench.core.backbone import Backbone
from descbench.core.marking.engine import (
    DEFAULT_GEOMETRY,
    ImageGroup,
    RecPrediction,
    RelationBanks,
    TextBank,
    draw_expression_negatives,
    encode_group,
    group_by_image,
    make_prediction,
    predict_group,
    resolve_group,
    score_group,
)
from descbench.core.marking.expressions import RecDataset
from descbench.core.marking.geometry import Geometry
from descbench.core.marking.relations import RESOLUTION_RULES, Relations
from descbench.core.marking.visual_prompts import PromptSpec
from descbench.tasks.datamodule import RowCollector
from descbench.tasks.marking import MarkedImages

log = logging.getLogger("descbench")


class RecImageDataset(MarkedImages):
    """Item ``i``: image group ``i`` with one marked, preprocessed batch ``[P * C, 3, H, W]`` per backbone."""

    def __init__(
        self,
        dataset: RecDataset,
        prompts: Sequence[PromptSpec],
        backbones: Sequence[Backbone],
        geometry: Geometry = DEFAULT_GEOMETRY,
    ) -> None:
        super().__init__(dataset, prompts, backbones, geometry)
        self.groups = group_by_image(dataset.expressions)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> dict[str, Any]:
        group = self.groups[index]
        return {"group": index, "inputs": self.mark(self.dataset.load_image(group.image_id), group.boxes)}


class RecFeatureDataset(Dataset):
    """Item ``i``: image group ``i`` with its cached features ``[P, C, D]`` per backbone (no image is opened)."""

    def __init__(self, features: Sequence[Tensor], offsets: Tensor) -> None:
        self.features = list(features)  # per backbone [P, N, D], rows = every candidate in group order
        self.offsets = offsets.long()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> dict[str, Any]:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        # contiguous, as the forward's output is: the scores are then bit-identical to a cold run
        return {"group": index, "features": [f[:, start:end].contiguous() for f in self.features]}


def group_offsets(groups: Sequence[ImageGroup]) -> Tensor:
    """``[G + 1]`` row offsets of each group's candidates in the flat, group-ordered layout."""
    counts = torch.tensor([len(g.boxes) for g in groups], dtype=torch.long)
    return torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])


class RecTask(L.LightningModule):
    """Scores batches of image groups; accuracy overall and per split as torchmetrics objects."""

    def __init__(
        self,
        backbones: Sequence[Backbone],
        dataset: RecDataset,
        groups: Sequence[ImageGroup],
        prompts: Sequence[PromptSpec],
        template: str,
        subtract: bool,
        negatives: int,
        seed: int,
        text_encoders: Sequence[Callable[[list[str]], torch.Tensor]] | None,
        lowercase: bool,
        relations: Relations,
        geometry_key: str,
        keep_features: bool = False,
    ) -> None:
        super().__init__()
        self.lowercase = lowercase
        self.geometry_key = geometry_key
        self.relations = Relations.parse(relations, "task.relations")
        self.relation_banks: RelationBanks | None = None
        self.backbones = nn.ModuleList(backbones)
        self.dataset = dataset
        self.groups = list(groups)
        self.prompts = list(prompts)
        self.template = template
        self.subtract = subtract
        self.negatives = negatives
        self.seed = seed
        # drawn once, before any encoding (too many asked for a split is an error now, not after the images)
        self.negative_index = draw_expression_negatives(dataset.expressions, negatives, seed) if subtract else None
        self.text_encoders = text_encoders
        self.keep_features = keep_features
        self.splits = dataset.splits
        self.accuracy = MeanMetric()
        # a list, not a ModuleDict keyed by split: a split may be called "train", a Module attribute
        self.split_accuracy = nn.ModuleList([MeanMetric() for _ in self.splits])
        # with relations: the same accuracies of CLIP's own picks (the resolver's baseline)
        self.baseline_accuracy = MeanMetric()
        self.split_baseline_accuracy = nn.ModuleList([MeanMetric() for _ in self.splits])
        self.resolutions: dict[int, dict[str, Any]] = {}
        self.bank: TextBank | None = None
        self.rows: RowCollector | None = None
        self.feature_rows: RowCollector | None = None
        self.predictions: list[RecPrediction] | None = None
        # with keep_features: per backbone [N, P, D], every candidate of every group in group order (all ranks)
        self.candidate_features: list[Tensor] | None = None
        self._gather_features = False

    @torch.no_grad()
    def on_test_start(self) -> None:
        # The text side once, on the device: every expression's text and its negatives, per backbone.
        self.bank = TextBank(
            self.dataset.expressions,
            list(self.backbones),
            self.template,
            self.negative_index if self.subtract else 0,
            self.seed,
            encoders=self.text_encoders,
            device=self.device,
            lowercase=self.lowercase,
        )
        if self.relations == "rules":
            self.relation_banks = RelationBanks(
                self.dataset.expressions,
                list(self.backbones),
                self.template,
                encoders=self.text_encoders,
                device=self.device,
                lowercase=self.lowercase,
            )
        long, real = ((), torch.long), ((), torch.float)
        self.rows = RowCollector({"index": long, "chosen": long, "score": real, "baseline": long, "rule": long})
        # every rank takes part in the gather if any rank computes (a file written between two ranks'
        # look-ups must not leave one rank waiting in a collective the others skip)
        self._gather_features = self.trainer.strategy.reduce_boolean_decision(self.keep_features, all=False)
        widths = [(len(self.prompts), text.shape[-1]) for text in self.bank.features]
        self.feature_rows = RowCollector(
            {"group": long, **{f"features.{b}": (width, torch.float) for b, width in enumerate(widths)}}
        )

    def test_step(self, batch: list[dict[str, Any]], batch_idx: int) -> None:
        expressions = self.dataset.expressions
        for item in batch:
            group = self.groups[item["group"]]
            if "features" in item:  # cached: [P, C, D] per backbone
                features = [f.to(self.device) for f in item["features"]]
            else:
                features = encode_group(item["inputs"], list(self.backbones), len(self.prompts))
            if self._gather_features:  # rows = candidates: [C, P, D]
                self.feature_rows.add(
                    group=torch.full((len(group.boxes),), item["group"], device=self.device),
                    **{f"features.{b}": f.transpose(0, 1).contiguous() for b, f in enumerate(features)},
                )
            scores = score_group(group, features, self.bank)
            if self.relation_banks is None:
                predictions = predict_group(group, scores, expressions, self.seed)
                baselines = [p.chosen_index for p in predictions]
                rules = [0] * len(predictions)
            else:
                resolved = resolve_group(group, features, scores, expressions, self.relation_banks, self.seed)
                predictions = [p for p, _ in resolved]
                baselines = [r.baseline for _, r in resolved]
                rules = [RESOLUTION_RULES.index(r.rule) for _, r in resolved]
                baseline_correct = torch.tensor(
                    [
                        float(make_prediction(p.index, expressions[p.index], b, 0.0).correct)
                        for p, b in zip(predictions, baselines)
                    ],
                    device=self.device,
                )
                self._update_split_metrics(
                    self.baseline_accuracy, self.split_baseline_accuracy, predictions, baseline_correct
                )
            correct = torch.tensor([float(p.correct) for p in predictions], device=self.device)
            self._update_split_metrics(self.accuracy, self.split_accuracy, predictions, correct)
            self.rows.add(
                index=torch.tensor([p.index for p in predictions], device=self.device),
                chosen=torch.tensor([p.chosen_index for p in predictions], device=self.device),
                score=torch.tensor([p.score for p in predictions], device=self.device),
                baseline=torch.tensor(baselines, device=self.device),
                rule=torch.tensor(rules, device=self.device),
            )

    def _update_split_metrics(
        self, overall: MeanMetric, per_split: nn.ModuleList, predictions, correct: Tensor
    ) -> None:
        overall.update(correct)
        splits = [p.split for p in predictions]
        for split in dict.fromkeys(splits):
            mask = torch.tensor([s == split for s in splits], device=self.device)
            per_split[self.splits.index(split)].update(correct[mask])

    def on_test_epoch_end(self) -> None:
        # every rank logs every metric here (one whose share is empty too): they are synced at epoch end
        self.log("acc", self.accuracy, on_step=False, on_epoch=True)
        for split, metric in zip(self.splits, self.split_accuracy):
            self.log(f"acc.{split}", metric, on_step=False, on_epoch=True)
        if self.relation_banks is not None:
            self.log("acc_no_relations", self.baseline_accuracy, on_step=False, on_epoch=True)
            for split, metric in zip(self.splits, self.split_baseline_accuracy):
                self.log(f"acc_no_relations.{split}", metric, on_step=False, on_epoch=True)
        # Per-expression rows from every rank, in dataset order (no padding: each expression once).
        rows = self.rows.collect(self.device, order_by="index")
        expressions = self.dataset.expressions
        self.predictions = [
            make_prediction(i, expressions[i], chosen, score)
            for i, chosen, score in zip(
                rows["index"].long().tolist(), rows["chosen"].long().tolist(), rows["score"].tolist()
            )
        ]
        self.resolutions = {
            i: {"baseline": b, "rule": RESOLUTION_RULES[r], "changed": b != c}
            for i, b, r, c in zip(
                rows["index"].long().tolist(),
                rows["baseline"].long().tolist(),
                rows["rule"].long().tolist(),
                rows["chosen"].long().tolist(),
            )
        }
        if self._gather_features:
            # every rank's kept candidate features, per backbone [N, P, D] in group order (a group's candidates
            # are contiguous on one rank: a stable sort by group keeps their order)
            flat = self.feature_rows.collect(self.device, order_by="group", stable=True)
            self.candidate_features = [flat[f"features.{b}"] for b in range(len(self.backbones))]
