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

from descbench.core.backbone import Backbone
from descbench.core.marking.bias_probe import (
    CONDITIONS,
    BiasPhrase,
    PersonDataset,
    phrase_probabilities,
    place_control_for,
)
from descbench.core.marking.engine import encode_group
from descbench.core.marking.geometry import Geometry
from descbench.core.marking.visual_prompts import PromptSpec
from descbench.tasks.datamodule import RowCollector
from descbench.tasks.marking import MarkedImages

log = logging.getLogger("descbench")
#: the one marking of the probe (its conditions are unmarked, circled, control)
MARKING = "circle"


class BiasImages(MarkedImages):
    """Item ``i``: image ``i`` shown three ways (unmarked, the person marked, the control marked), preprocessed.

    Images where no control region fits (even shrunk) are left out and counted (``skipped``).
    """

    def __init__(
        self, dataset: PersonDataset, marking: PromptSpec, backbone: Backbone, seed: int, geometry: Geometry
    ) -> None:
        super().__init__(dataset, [marking], [backbone], geometry)
        self.marking, self.seed = marking, seed
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
        (unmarked,) = self.mark(image, [person.target_box], prompts=[PromptSpec("none")])
        (marked,) = self.mark(image, [person.target_box, control])
        return {"item": item, "inputs": [torch.cat([unmarked, marked])]}  # [3 conditions, 3, H, W]


class BiasTask(L.LightningModule):
    """Phrase probabilities for the three conditions of every image, gathered in dataset order; the job's
    writer summarises them once (:func:`~descbench.core.marking.bias_probe.summarize_bias`)."""

    def __init__(self, backbone: Backbone, phrases: Sequence[BiasPhrase]) -> None:
        super().__init__()
        self.backbone = backbone
        self.phrases = list(phrases)
        self.text_features: torch.Tensor | None = None
        self.rows: RowCollector | None = None
        self.probabilities: torch.Tensor | None = None  # [images, conditions, phrases], dataset order

    @torch.no_grad()
    def on_test_start(self) -> None:
        self.text_features = self.backbone.encode_texts([p.text for p in self.phrases]).float().to(self.device)
        conditions = (len(CONDITIONS), len(self.phrases))
        self.rows = RowCollector({"item": ((), torch.long), "probs": (conditions, torch.double)})

    def test_step(self, batch: list[dict[str, Any]], batch_idx: int) -> None:
        for entry in batch:
            (features,) = encode_group(entry["inputs"], [self.backbone], 1)  # [1, 3, D]
            probs = phrase_probabilities(features[0], self.text_features, self.backbone.logit_scale)  # [3, P]
            self.rows.add(item=torch.tensor([entry["item"]], device=self.device), probs=probs[None].double())

    def on_test_epoch_end(self) -> None:
        self.probabilities = self.rows.collect(self.device, order_by="item")["probs"]
