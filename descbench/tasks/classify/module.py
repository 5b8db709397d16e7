"""Classification by description as a LightningModule."""

from __future__ import annotations

import logging
from collections.abc import Callable

import lightning as L
import torch
from torch import nn

from descbench.core.backbone import Backbone
from descbench.core.description_set import DescriptionSet
from descbench.core.head import Aggregation, DescriptionHead, ragged_class_index
from descbench.core.metrics import (
    ClassAccuracy,
    MeanEntropy,
    Probs,
    build_classification_metrics,
    entropy_nats,
    scale_scores,
)
from descbench.tasks.datamodule import RowCollector

log = logging.getLogger("descbench")


class ClassificationTask(L.LightningModule):
    """Scores each test batch against the description head; metrics are torchmetrics objects.

    The description set is given before the test loop (:meth:`set_descriptions`; the runner builds it,
    rank 0 first). A set with repetitions (a random control with ``reps > 1``) gets one head and one
    set of metric objects per repetition, all scored on the same image features. Images of excluded
    classes (the study's wrong-count rule) are left out of every metric; the classes stay candidates.
    Batches are ``(images, labels, indices)``, or ``(features, labels, indices)`` when the image
    features come from the cache (``features_input=True``).
    """

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        aggregation: Aggregation,
        entropy_scale: str | float,
        features_input: bool = False,
        keep_features: bool = False,
        text_encoder: Callable[[list[str]], torch.Tensor] | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes
        self.aggregation = aggregation
        self.entropy_scale = entropy_scale
        self.features_input = features_input
        self.keep_features = keep_features
        self.text_encoder = text_encoder
        self.channels_last = channels_last
        self.descriptions: DescriptionSet | None = None
        self.heads: list[DescriptionHead] = []
        self.rows: RowCollector | None = None
        self.predictions: dict[str, torch.Tensor] | None = None
        self.per_class_acc: list[list[float]] | None = None

    def set_descriptions(self, descriptions: DescriptionSet) -> None:
        """The description set to score against, and one set of metric objects per repetition."""
        self.descriptions = descriptions
        reps = len(descriptions.all_repetitions())
        self.metrics = nn.ModuleList([build_classification_metrics(self.num_classes) for _ in range(reps)])
        self.per_class = nn.ModuleList([ClassAccuracy(self.num_classes, average="none") for _ in range(reps)])
        self.entropy = nn.ModuleList([MeanEntropy() for _ in range(reps)])
        included = torch.ones(self.num_classes, dtype=torch.bool)
        included[list(descriptions.excluded)] = False
        self.register_buffer("included", included, persistent=False)

    @property
    def num_reps(self) -> int:
        return len(self.metrics)

    def metric_name(self, rep: int, name: str) -> str:
        """``top1`` for a single set; ``rep2.top1`` for repetition 2 of several."""
        return name if self.num_reps == 1 else f"rep{rep}.{name}"

    @torch.no_grad()
    def on_test_start(self) -> None:
        # The text side once, on the device, batched; a ragged layout (flat rows + class index).
        encode = self.text_encoder or self.backbone.encode_texts
        self.heads = []
        for rep in self.descriptions.all_repetitions():
            embeddings = encode([t for texts in rep.texts for t in texts]).to(self.device)
            index = ragged_class_index(rep.counts, device=self.device)
            self.heads.append(DescriptionHead(embeddings, index, len(rep.classes), self.aggregation))
        reps, k = len(self.heads), min(5, self.num_classes)
        columns = {
            "index": ((), torch.long),
            "label": ((), torch.long),
            "evaluated": ((), torch.bool),
            "pred": ((reps,), torch.long),
            "top5": ((reps, k), torch.long),
            "confidence": ((reps,), torch.float),
            "entropy": ((reps,), torch.double),  # entropy_nats works in float64
        }
        if self.keep_features:
            columns["features"] = ((self.backbone.embed_dim,), torch.float)
        self.rows = RowCollector(columns)

    def test_step(self, batch, batch_idx: int) -> None:
        inputs, labels, indices = batch
        if self.features_input:
            features = inputs.float()
        else:
            if self.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            features = self.backbone.encode_images(inputs)
        evaluated = self.included[labels]
        preds, top5s, confidences, entropies = [], [], [], []
        for r, head in enumerate(self.heads):
            scores = head(features)
            logits = scale_scores(scores, self.entropy_scale, self.backbone.logit_scale)
            probs = Probs(logits.float().softmax(dim=1))  # max and top-k once for every metric of the batch
            entropy = entropy_nats(logits)
            if bool(evaluated.all()):  # no excluded class: no copies of the [batch, classes] scores
                self.metrics[r].update(probs, labels)
                self.entropy[r].update(entropy)
                self.per_class[r].update(probs, labels)
            else:
                kept = Probs(probs.probs[evaluated])
                self.metrics[r].update(kept, labels[evaluated])
                self.entropy[r].update(entropy[evaluated])
                self.per_class[r].update(kept, labels[evaluated])
            top = scores.topk(min(5, scores.shape[1]), dim=1).indices
            preds.append(top[:, 0])
            top5s.append(top)
            confidences.append(probs.confidence)
            entropies.append(entropy)
        rows = {
            "index": indices,
            "label": labels,
            "evaluated": evaluated,
            "pred": torch.stack(preds, dim=1),  # [B, reps]
            "top5": torch.stack(top5s, dim=1),  # [B, reps, k]
            "confidence": torch.stack(confidences, dim=1),
            "entropy": torch.stack(entropies, dim=1),
        }
        if self.keep_features:
            rows["features"] = features.float()
        self.rows.add(**rows)

    def on_test_epoch_end(self) -> None:
        # logged here, not per step, so that every rank (one whose share is empty too) syncs every metric
        for r in range(self.num_reps):
            self.log_dict({self.metric_name(r, k): m for k, m in self.metrics[r].items()}, on_step=False, on_epoch=True)
            self.log(self.metric_name(r, "entropy"), self.entropy[r], on_step=False, on_epoch=True)
        # The logged metric objects are computed (synced across ranks) by Lightning.
        self.per_class_acc = []
        for metric in self.per_class:
            self.per_class_acc.append(metric.compute().tolist())
            metric.reset()
        self.predictions = self.rows.collect(self.device, order_by="index")
