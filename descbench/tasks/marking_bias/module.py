"""The marking-bias probe (the red-circle study's risk claim) as a LightningModule.

Purpose: to measure what a marking does to a *model's* beliefs, not to judge people. Each image with a
person box is shown three times — unmarked, with the person circled, and with a circle of the same size
on background that overlaps no person (the control, placed seeded by the image's index) — and CLIP's
probabilities over a list of category phrases (neutral and negative ones) are compared per image.
Nothing that identifies a person is recorded: image ids, boxes and probabilities only.

The probabilities are ``softmax(logit_scale x cos)`` over the phrases (one backbone). Per-image
tables are gathered from every rank in dataset order and summarised on rank 0 by
:func:`descbench.core.marking.bias_probe.summarize_bias` (mean per condition, paired shifts with bootstrap intervals).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import Dataset
from torchmetrics import MeanMetric

from descbench.core.backbone import Backbone
from descbench.core.errors import ConfigError
from descbench.core.marking.bias_probe import (
    CONDITIONS,
    BiasPhrase,
    PersonDataset,
    phrase_probabilities,
    place_control_for,
)
from descbench.core.marking.engine import encode_group, prepare_group
from descbench.core.marking.geometry import Geometry
from descbench.core.marking.visual_prompts import PromptSpec
from descbench.datasets.person_sets import load_bias_phrases
from descbench.shell.config import build
from descbench.tasks.datamodule import gather_rows
from descbench.tasks.rec.module import collate_groups
from descbench.tasks.runner import TaskJob

log = logging.getLogger("descbench")
#: the one marking of the probe (its conditions are unmarked, circled, control)
MARKING = "circle"


class BiasImages(Dataset):
    """Item ``i``: image ``i`` marked three ways (unmarked, person circled, control circled), preprocessed.

    Images where no control circle fits (even shrunk) are left out and counted (``skipped``).
    """

    def __init__(
        self,
        dataset: PersonDataset,
        circle: PromptSpec,
        backbone: Backbone,
        seed: int,
        image_processing: str,
    ) -> None:
        self.dataset, self.circle, self.seed = dataset, circle, seed
        self.preprocess, self.image_size = backbone.preprocess, backbone.image_size
        self.geometry = Geometry(image_processing)
        self.items: list[tuple[int, list[float], float]] = []  # (image index, control box, control scale)
        self.skipped: list[str] = []
        for index, person in enumerate(dataset.images):
            size = person.size or dataset.load_image(person.image_id).size  # COCO gives it: no decode
            placed = place_control_for(person, size, index, seed)
            if placed is None:
                self.skipped.append(person.image_id)
            else:
                self.items.append((index, list(placed[0]), placed[1]))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item: int) -> dict[str, Any]:
        index, control, _ = self.items[item]
        person = self.dataset.images[index]
        image = self.dataset.load_image(person.image_id)
        unmarked = prepare_group(image, [person.target_box], [PromptSpec("none")], [self], self.geometry)
        circled = prepare_group(image, [person.target_box, control], [self.circle], [self], self.geometry)
        return {"item": item, "inputs": [torch.cat([unmarked[0], circled[0]])]}  # [3 conditions, 3, H, W]


class BiasTask(L.LightningModule):
    """Phrase probabilities for the three conditions of every image; the mean circled-minus-unmarked shift
    of the negative phrases is logged as a torchmetrics object."""

    def __init__(self, backbone: Backbone, phrases: Sequence[BiasPhrase]) -> None:
        super().__init__()
        self.backbone = backbone
        self.phrases = list(phrases)
        self.negative_shift = MeanMetric()
        self.text_features: torch.Tensor | None = None
        self._rows: dict[str, list[torch.Tensor]] = {}
        self.probabilities: torch.Tensor | None = None  # [images, conditions, phrases], dataset order

    @torch.no_grad()
    def on_test_start(self) -> None:
        self.text_features = self.backbone.encode_texts([p.text for p in self.phrases]).float().to(self.device)
        self._rows = {"item": [], "probs": []}

    def test_step(self, batch: list[dict[str, Any]], batch_idx: int) -> None:
        negative = torch.tensor([p.kind == "negative" for p in self.phrases], device=self.device)
        for entry in batch:
            (features,) = encode_group(entry["inputs"], [self.backbone], 1)  # [1, 3, D]
            probs = phrase_probabilities(features[0], self.text_features, self.backbone.logit_scale)  # [3, P]
            self._rows["item"].append(torch.tensor([entry["item"]], device=self.device))
            self._rows["probs"].append(probs[None].double())
            if bool(negative.any()):
                shift = (
                    probs[CONDITIONS.index("circled"), negative].sum()
                    - probs[CONDITIONS.index("unmarked"), negative].sum()
                )
                self.negative_shift.update(shift)
        self.log("shift_negative", self.negative_shift, on_step=False, on_epoch=True, batch_size=len(batch))

    def on_test_epoch_end(self) -> None:
        rows = gather_rows(
            {
                "item": torch.cat(self._rows["item"]) if self._rows["item"] else torch.empty(0, device=self.device),
                "probs": torch.cat(self._rows["probs"])
                if self._rows["probs"]
                else torch.empty(0, len(CONDITIONS), len(self.phrases), device=self.device, dtype=torch.double),
            }
        )
        order = torch.argsort(rows["item"])
        self.probabilities = rows["probs"][order].cpu()
        self._rows = {}


class BiasTaskSpec:
    """``task=marking_bias``: the options of ``conf/task/marking_bias.yaml``."""

    def __init__(
        self,
        name: str = "marking_bias",
        phrases: str | None = None,
        image_processing: str = "squash",
        control_seed: int = 0,
        confidence: float = 0.95,
        resamples: int = 10000,
        batch_size: int = 8,
        num_workers: int = 2,
        pin_memory: bool = True,
        num_examples: int = 2,
    ) -> None:
        if not 0 < confidence < 1:
            raise ConfigError(f"task.confidence={confidence!r} must lie between 0 and 1")
        if resamples < 100:
            raise ConfigError(f"task.resamples={resamples!r}: use at least 100 bootstrap resamples")
        self.name, self.phrases, self.image_processing = name, phrases, image_processing
        self.control_seed, self.confidence, self.resamples = control_seed, confidence, resamples
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.num_examples = num_examples
        self.phrase_list = load_bias_phrases(phrases)  # read (and refused) before any model loads

    def check(self, cfg) -> PromptSpec:
        """The marking the probe draws: the configured ``circle`` (its colour and thickness honoured); any other
        visual prompt, or an ensemble, is refused in one line (the probe compares a circled person with a circled
        background patch, and records it as such)."""
        from descbench.shell.checks import build_prompt_specs

        specs = build_prompt_specs(cfg.get("visual_prompt"))
        if len(specs) != 1 or specs[0].name != MARKING:
            asked = ",".join(s.name for s in specs)
            raise ConfigError(
                f"task=marking_bias draws a {MARKING} around the person and around a control patch, but "
                f"visual_prompt={asked} was asked: use visual_prompt={MARKING} (its colour and thickness may change)"
            )
        return specs[0]

    def prepare(self, cfg, backbones: list[Backbone], context) -> TaskJob:
        from descbench.tasks.marking_bias.outputs import write_bias_outputs

        if len(backbones) != 1:
            raise ConfigError("task=marking_bias scores with one backbone: remove task.extra_backbones")
        circle = self.check(cfg)
        phrases = self.phrase_list
        dataset = build(cfg.dataset.builder, _convert_="all").limited(cfg.dataset.get("limit"))
        images = BiasImages(dataset, circle, backbones[0], self.control_seed, self.image_processing)
        if not len(images):
            raise ConfigError(
                f"no image of {dataset.name} has room for a control circle that overlaps no person: "
                "use images with more background"
            )
        module = BiasTask(backbones[0], phrases)
        return TaskJob(
            module=module,
            images=images,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=collate_groups,
            write_outputs=lambda metrics: write_bias_outputs(cfg, context, module, images, circle, self, metrics),
            objects={"dataset": dataset},
        )
