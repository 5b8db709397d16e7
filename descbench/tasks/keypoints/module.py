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
:mod:`descbench.core.marking.points`; the running accuracy is also logged as a torchmetrics object.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.utils.data import Dataset
from torchmetrics import MeanMetric

from descbench.core.backbone import Backbone
from descbench.core.description_text import check_template
from descbench.core.errors import ConfigError
from descbench.core.marking.engine import encode_group, prepare_group
from descbench.core.marking.geometry import Geometry
from descbench.core.marking.points import (
    DEFAULT_ALPHA,
    RADIUS_UNITS,
    KeypointDataset,
    localization_outcomes,
    localization_queries,
    naming_queries,
    pck_threshold,
    point_box,
    point_distance,
    summarize_localization,
    summarize_naming,
)
from descbench.core.marking.scoring import pick_candidates, score_candidates
from descbench.core.marking.visual_prompts import PromptSpec
from descbench.shell.config import build
from descbench.tasks.datamodule import gather_rows
from descbench.tasks.rec.module import Preprocessor, collate_groups
from descbench.tasks.runner import TaskJob

log = logging.getLogger("descbench")
MODES = ("localization", "naming")


class KeypointImages(Dataset):
    """Item ``i``: instance ``i`` with its candidate points marked and preprocessed, one batch per backbone."""

    def __init__(
        self,
        dataset: KeypointDataset,
        prompts: Sequence[PromptSpec],
        backbones: Sequence[Backbone],
        radius: float,
        radius_unit: str,
        image_processing: str,
    ) -> None:
        self.dataset = dataset
        self.prompts = list(prompts)
        self.preprocessors = [Preprocessor(b) for b in backbones]
        self.radius, self.radius_unit, self.image_processing = radius, radius_unit, image_processing
        self.geometry = Geometry(image_processing)
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
                resize=self.image_processing,
            )
            for part in self.candidates[index]
        ]

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self.dataset.load_image(self.dataset.instances[index].image_id)
        batches = []
        for pre in self.preprocessors:
            boxes = self.point_boxes(index, image.size, pre.image_size)
            batches.extend(prepare_group(image, boxes, self.prompts, [pre], self.geometry))
        return {"instance": index, "inputs": batches}


class KeypointTask(L.LightningModule):
    """Scores each instance's marked keypoints against part texts; accuracy as a torchmetrics object."""

    def __init__(
        self,
        backbones: Sequence[Backbone],
        dataset: KeypointDataset,
        candidates: Sequence[tuple[str, ...]],
        prompts: Sequence[PromptSpec],
        mode: str = "localization",
        template: str = "a photo of the {part} of a {category}",
        alpha: float = DEFAULT_ALPHA,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.backbones = nn.ModuleList(backbones)
        self.dataset = dataset
        self.candidates = list(candidates)
        self.prompts = list(prompts)
        self.mode, self.template, self.alpha, self.seed = mode, template, alpha, seed
        self.accuracy = MeanMetric()
        # query ids in dataset order: localisation asks every visible part, naming every visible point
        self.queries = localization_queries(dataset) if mode == "localization" else naming_queries(dataset)
        self.first_query = []
        start = 0
        for candidates in self.candidates:
            self.first_query.append(start)
            start += len(candidates)
        self.texts: dict[tuple[str, str], int] = {}
        self.text_features: list[torch.Tensor] = []
        self._rows: dict[str, list[torch.Tensor]] = {}
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
        self._rows = {"query": [], "choice": []}

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
            correct = torch.tensor(
                [self._correct(index, q, pick) for q, pick in enumerate(picks)], device=self.device, dtype=torch.float
            )
            self.accuracy.update(correct)
            self._rows["query"].append(torch.tensor(keys, device=self.device))
            self._rows["choice"].append(torch.tensor(picks, device=self.device))
        name = "pck" if self.mode == "localization" else "acc"
        self.log(name, self.accuracy, on_step=False, on_epoch=True, batch_size=len(batch))

    def _correct(self, index: int, query: int, pick: int) -> bool:
        instance = self.dataset.instances[index]
        candidates = self.candidates[index]
        if self.mode == "localization":
            gold = instance.keypoints[candidates[query]]
            chosen = instance.keypoints[candidates[pick]]
            return point_distance(chosen, gold) <= pck_threshold(instance.box, self.alpha)
        return self.dataset.parts_for(instance.category)[pick] == candidates[query]

    def on_test_epoch_end(self) -> None:
        # every rank's (query, choice) rows, in query order: the summary is computed from all of them
        rows = gather_rows(
            {k: torch.cat(v) if v else torch.empty(0, device=self.device) for k, v in self._rows.items()}
        )
        order = torch.argsort(rows["query"])
        self.choices = rows["choice"][order].long().cpu().tolist()
        self._rows = {}

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


class KeypointTaskSpec:
    """``task=keypoints``: the options of ``conf/task/keypoints.yaml``."""

    def __init__(
        self,
        name: str = "keypoints",
        mode: str = "localization",
        template: str = "a photo of the {part} of a {category}",
        radius: float = 0.25,
        radius_unit: str = "box",
        alpha: float = DEFAULT_ALPHA,
        image_processing: str = "squash",
        extra_backbones: Sequence[Any] = (),
        batch_size: int = 8,
        num_workers: int = 2,
        pin_memory: bool = True,
        num_examples: int = 8,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"task.mode={mode!r}: use one of {', '.join(MODES)}")
        if radius_unit not in RADIUS_UNITS:
            raise ConfigError(f"task.radius_unit={radius_unit!r}: use one of {', '.join(RADIUS_UNITS)}")
        if not radius > 0:
            raise ConfigError(f"task.radius={radius!r} must be a positive number")
        if not alpha > 0:
            raise ConfigError(f"task.alpha={alpha!r} must be a positive number (PCK@alpha)")
        for field in ("{part}", "{category}"):
            if field not in template:
                raise ConfigError(f"task.template={template!r} must contain {field}")
        check_template(template, fields=("part", "category"), required="part", key="task.template")
        if not math.isfinite(alpha) or not math.isfinite(radius):
            raise ConfigError(f"task.alpha={alpha!r} and task.radius={radius!r} must be finite numbers")
        self.name, self.mode, self.template = name, mode, template
        self.radius, self.radius_unit, self.alpha = float(radius), radius_unit, float(alpha)
        self.image_processing = image_processing
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.num_examples = num_examples

    def prepare(self, cfg, backbones: list[Backbone], context) -> TaskJob:
        from descbench.shell.checks import build_prompt_specs
        from descbench.tasks.keypoints.outputs import write_keypoint_outputs

        prompts = build_prompt_specs(cfg.get("visual_prompt"))
        dataset = build(cfg.dataset.builder, _convert_="all").limited(cfg.dataset.get("limit"))
        images = KeypointImages(dataset, prompts, backbones, self.radius, self.radius_unit, self.image_processing)
        module = KeypointTask(
            backbones,
            dataset,
            images.candidates,
            prompts,
            mode=self.mode,
            template=self.template,
            alpha=self.alpha,
            seed=cfg.seed,
        )
        return TaskJob(
            module=module,
            images=images,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=collate_groups,
            write_outputs=lambda metrics: write_keypoint_outputs(cfg, context, module, images, self, metrics),
            objects={"dataset": dataset},
        )
