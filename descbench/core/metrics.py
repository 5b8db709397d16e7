"""Classification metrics as torchmetrics objects, and the explicit entropy scale (SPEC §2)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from descbench.core.errors import ConfigError

ENTROPY_SCALES = ("minmax", "logit_scale")


def check_entropy_scale(scale: str | float) -> str | float:
    """``minmax``, ``logit_scale`` or a positive number, else a one-line :class:`ConfigError`."""
    if scale in ENTROPY_SCALES:
        return scale
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0:
        return float(scale)
    raise ConfigError(
        f"task.entropy_scale={scale!r} is not a scale: use minmax (scores min-max scaled to [-10, 10]), "
        "logit_scale (the model's temperature) or a positive number"
    )


def scale_scores(scores: Tensor, scale: str | float, logit_scale: float) -> Tensor:
    """Logits used for probabilities, entropy and ECE.

    ``minmax``: each row min-max scaled to [-10, 10] (the convention of the study this project
    follows); ``logit_scale``: the model's learned temperature; a number: a fixed multiplier.
    """
    if scale == "minmax":
        low = scores.min(dim=1, keepdim=True).values
        span = (scores.max(dim=1, keepdim=True).values - low).clamp_min(1e-12)
        return (scores - low) / span * 20.0 - 10.0
    if scale == "logit_scale":
        return scores * logit_scale
    if isinstance(scale, (int, float)) and not isinstance(scale, bool):
        return scores * float(scale)
    raise ValueError(f"unknown entropy scale {scale!r} (entropy_scale=): use minmax, logit_scale or a number")


def entropy_nats(logits: Tensor) -> Tensor:
    """Entropy of softmax(logits) per row, in nats."""
    logp = torch.log_softmax(logits.double(), dim=1)
    return -(logp.exp() * logp).sum(dim=1)


class MeanEntropy(Metric):
    """Mean prediction entropy (nats) of softmax(logits), summed in float64."""

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor) -> None:
        self.total += entropy_nats(logits).sum()
        self.count += logits.shape[0]

    def compute(self) -> Tensor:
        return self.total / self.count.clamp_min(1)


class CalibrationError(Metric):
    """Expected calibration error (L1, equal-width confidence bins), exact under any sample order.

    The same binning as torchmetrics' ``MulticlassCalibrationError`` (a sample with confidence ``p`` falls in
    bin ``bucketize(p, linspace(0, 1, bins + 1), right=True) - 1``), but the per-bin sums are integers (counts,
    correct counts, confidences in fixed point with 2**-40 resolution), so a DDP run that sums them in another
    order gives the same value to the last bit.
    """

    full_state_update = False
    SCALE = 2**40

    def __init__(self, n_bins: int = 15, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_bins = n_bins
        for name in ("count", "correct", "confidence"):
            self.add_state(name, default=torch.zeros(n_bins + 1, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probs: Tensor, target: Tensor) -> None:
        confidence, pred = probs.float().max(dim=1)
        boundaries = torch.linspace(0, 1, self.n_bins + 1, device=probs.device, dtype=confidence.dtype)
        bins = torch.bucketize(confidence, boundaries, right=True) - 1
        fixed = torch.round(confidence.double() * self.SCALE).long()
        self.count.scatter_add_(0, bins, torch.ones_like(bins))
        self.correct.scatter_add_(0, bins, (pred == target).long())
        self.confidence.scatter_add_(0, bins, fixed)

    def compute(self) -> Tensor:
        count = self.count.double()
        used = count > 0
        accuracy = self.correct.double()[used] / count[used]
        confidence = self.confidence.double()[used] / self.SCALE / count[used]
        return ((accuracy - confidence).abs() * count[used]).sum() / count.sum().clamp_min(1)


def build_classification_metrics(num_classes: int, ece_bins: int = 15) -> MetricCollection:
    """top-1, top-5 (top-k capped at the class count), mean per-class accuracy, ECE; updated with probabilities.

    Entropy is a separate :class:`MeanEntropy`, updated with the scaled logits.
    """
    top_k = min(5, num_classes)
    return MetricCollection(
        {
            "top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
            "top5": MulticlassAccuracy(num_classes, top_k=top_k, average="micro"),
            "mean_per_class_acc": MulticlassAccuracy(num_classes, top_k=1, average="macro"),
            "ece": CalibrationError(n_bins=ece_bins),
        },
        compute_groups=False,
    )
