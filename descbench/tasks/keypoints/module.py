"""Keypoint localisation and naming by marking points (the red-circle study's keypoint claims) as a LightningModule.

One item per annotated instance: every visible keypoint of the instance is a candidate, marked in turn
(a circle of ``radius`` around it, or a crop of that box, or nothing) on the original image, encoded once
per (visual prompt, backbone) in one batch. Texts are ``template`` filled with each part name and the
category, encoded once per backbone. Scores are cosine x logit scale, summed over markings and backbones
(the REC engine's :func:`descbench.core.marking.scoring.score_candidates`).

- ``mode=localization``: for each visible part, the arg-max candidate (ties broken at random, seeded by
  the query's global index, so DDP changes nothing); correct within ``alpha * max(box w, h)`` (PCK).
- ``mode=naming``: each marked keypoint classified among its category's part names (arg-max text).

Per-query outcomes are gathered from every rank in dataset order and summarised on rank 0 by
:mod:`descbench.core.marking.points` — the one computation of every number the job reports.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from descbench.core.backbone import Backbone
from descbench.core.marking.engine import encode_group
from descbench.core.marking.geometry import Geometry
from descbench.core.marking.points import (
    KeypointDataset,
    KeypointMode,
    RadiusUnit,
    localization_outcomes,
    localization_queries,
    naming_queries,
    point_box,
    summarize_localization,
    summarize_naming,
)
from descbench.core.marking.scoring import pick_candidates, score_candidates
from descbench.core.marking.visual_prompts import PromptSpec
from descbench.tasks.datamodule import RowCollector
from descbench.tasks.marking import MarkedImages

log = logging.getLogger("descbench")


class KeypointImages(MarkedImages):
    """Item ``i``: instance ``i`` with its candidate points marked and preprocessed, one batch per backbone."""

    def __init__(
        self,
        dataset: KeypointDataset,
        prompts: Sequence[PromptSpec],
        backbones: Sequence[Backbone],
        radius: float,
        radius_unit: RadiusUnit,
        geometry: Geometry,
    ) -> None:
        super().__init__(dataset, prompts, backbones, geometry)
        self.radius, self.radius_unit = radius, radius_unit
        self.candidates = [
            tuple(i.visible_parts(dataset.parts_for(i.category))) for i in dataset.instances
        ]  # every visible keypoint, in the category's part order

    def __len__(self) -> int:
        return len(self.dataset.instances)

    def point_boxes(self, index: int, image_size: tuple[int, int], input_size: int) -> list[list[float]]:
        instance = self.dataset.instances[index]
        return [
            point_box(
                instance.keypoints[part],
                self.radius,
                self.radius_unit,
                instance_box=instance.box,
                image_size=image_size,
                input_size=input_size,
                resize=self.geometry.mode,
            )
            for part in self.candidates[index]
        ]

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self.dataset.load_image(self.dataset.instances[index].image_id)
        batches = []
        for pre in self.preprocessors:  # the circle's radius may depend on the backbone's input size
            batches += self.mark(image, self.point_boxes(index, image.size, pre.image_size), preprocessors=[pre])
        return {"instance": index, "inputs": batches}


class KeypointTask(L.LightningModule):
    """Scores each instance's marked keypoints against part texts; the choices of every query are gathered in
    query order, and the job's writer summarises them once (:meth:`summary`)."""

    def __init__(
        self,
        backbones: Sequence[Backbone],
        dataset: KeypointDataset,
        candidates: Sequence[tuple[str, ...]],
        prompts: Sequence[PromptSpec],
        mode: KeypointMode,
        template: str,
        alpha: float,
        seed: int,
    ) -> None:
        super().__init__()
        self.backbones = nn.ModuleList(backbones)
        self.dataset = dataset
        self.candidates = list(candidates)
        self.prompts = list(prompts)
        self.mode, self.template, self.alpha, self.seed = mode, template, alpha, seed
        # query ids in dataset order: localisation asks every visible part, naming every visible point
        self.queries = localization_queries(dataset) if mode == "localization" else naming_queries(dataset)
        self.first_query = []
        start = 0
        for candidates in self.candidates:
            self.first_query.append(start)
            start += len(candidates)
        self.texts: dict[tuple[str, str], int] = {}
        self.text_features: list[torch.Tensor] = []
        self.rows: RowCollector | None = None
        self.choices: list[int] | None = None

    @torch.no_grad()
    def on_test_start(self) -> None:
        # every (category, part) text once per backbone, on the device
        pairs = []
        for instance in self.dataset.instances:
            for part in self.dataset.parts_for(instance.category):
                pairs.append((instance.category, part))
        pairs = list(dict.fromkeys(pairs))
        self.texts = {pair: i for i, pair in enumerate(pairs)}
        strings = [self.template.format(part=part, category=category) for category, part in pairs]
        self.text_features = [b.encode_texts(strings).float().to(self.device) for b in self.backbones]
        self.rows = RowCollector({"query": ((), torch.long), "choice": ((), torch.long)})

    def test_step(self, batch: list[dict[str, Any]], batch_idx: int) -> None:
        scales = [b.logit_scale for b in self.backbones]
        for item in batch:
            index = item["instance"]
            instance = self.dataset.instances[index]
            candidates = self.candidates[index]
            features = encode_group(item["inputs"], list(self.backbones), len(self.prompts))  # [P, C, D] each
            if self.mode == "localization":
                rows = [self.texts[(instance.category, part)] for part in candidates]
                texts = [f[rows] for f in self.text_features]
                scores = score_candidates(features, texts, scales=scales)  # [queries (parts), candidates]
            else:
                labels = self.dataset.parts_for(instance.category)
                rows = [self.texts[(instance.category, part)] for part in labels]
                texts = [f[rows] for f in self.text_features]
                scores = score_candidates(features, texts, scales=scales).T  # [queries (points), labels]
            keys = [self.first_query[index] + q for q in range(len(candidates))]
            picks = pick_candidates(scores, self.seed, keys=keys)
            self.rows.add(
                query=torch.tensor(keys, device=self.device, dtype=torch.long),
                choice=torch.tensor(picks, device=self.device, dtype=torch.long),
            )

    def on_test_epoch_end(self) -> None:
        # every rank's (query, choice) rows, in query order: the summary is computed from all of them
        self.choices = self.rows.collect(self.device, order_by="query")["choice"].tolist()

    def summary(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """``(results keys, one record per query)`` from the gathered choices."""
        if self.mode == "localization":
            outcomes = localization_outcomes(self.dataset, self.queries, self.choices, self.alpha)
            records = [
                {
                    "index": o.query,
                    "image_id": self.dataset.instances[q.instance].image_id,
                    "instance": q.instance,
                    "category": self.dataset.instances[q.instance].category,
                    "part": o.part,
                    "chosen": o.chosen,
                    "distance": o.distance,
                    "threshold": o.threshold,
                    "correct": int(o.correct),
                    "chance": o.chance,
                    "num_candidates": o.num_candidates,
                }
                for q, o in zip(self.queries, outcomes)
            ]
            return summarize_localization(outcomes, self.alpha), records
        predicted = [q.labels[c] for q, c in zip(self.queries, self.choices)]
        results = summarize_naming(
            [q.part for q in self.queries], predicted, [q.labels for q in self.queries], self.dataset.mirror
        )
        records = [
            {
                "index": i,
                "image_id": self.dataset.instances[q.instance].image_id,
                "instance": q.instance,
                "category": self.dataset.instances[q.instance].category,
                "part": q.part,
                "chosen": p,
                "correct": int(p == q.part),
                "correct_lr_merged": int(p == q.part or self.dataset.mirror.get(q.part) == p),
                "num_labels": len(q.labels),
            }
            for i, (q, p) in enumerate(zip(self.queries, predicted))
        ]
        return results, records
