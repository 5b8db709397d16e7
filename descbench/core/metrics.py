"""Classification metrics as torchmetrics objects, and the explicit entropy scale (SPEC §2).

The accuracies keep integer counts (per class where needed) and compute the values torchmetrics'
``MulticlassAccuracy`` computes (the same float32 divisions; tests compare them): its update builds a C x C
confusion matrix or C-wide one-hot tensors per batch, seconds per job on a 1,000-class set, where counting
is O(batch). Integer states also make the values exact under DDP whatever the order of the sums.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from descbench.core.errors import ConfigError

ENTROPY_SCALES = ("minmax", "logit_scale")


class Probs:
    """One batch's class probabilities with what the metrics read from them, each computed once.

    ``probs.max(dim=1)`` gives the confidence and the top-1 class (the first of equal maxima, as ``argmax``);
    ``topk`` is computed on the first request for each ``k``. The metrics accept it or a plain
    ``[batch, classes]`` tensor (wrapped here); on 1,000 classes each avoided pass over the batch is a few ms.
    """

    def __init__(self, probs: Tensor) -> None:
        self.probs = probs
        self.confidence, self.pred = probs.max(dim=1)
        self._top: dict[int, Tensor] = {}

    @classmethod
    def of(cls, probs: Tensor | Probs) -> Probs:
        return probs if isinstance(probs, Probs) else cls(probs)

    def topk(self, k: int) -> Tensor:
        """``probs.topk(k, dim=1).indices`` (``pred[:, None]`` for k = 1, as ``argmax``)."""
        if k == 1:
            return self.pred[:, None]
        if k not in self._top:
            self._top[k] = self.probs.topk(k, dim=1).indices
        return self._top[k]


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
    """Mean prediction entropy (nats), summed in float64; updated with each sample's :func:`entropy_nats`
    (computed once by the caller, who also keeps it per sample)."""

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, entropies: Tensor) -> None:
        self.total += entropies.double().sum()
        self.count += entropies.shape[0]

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

    def update(self, probs: Tensor | Probs, target: Tensor) -> None:
        scored = Probs.of(probs)
        confidence, pred = scored.confidence.float(), scored.pred
        boundaries = torch.linspace(0, 1, self.n_bins + 1, device=confidence.device, dtype=confidence.dtype)
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


def _divide(num: Tensor, denom: Tensor) -> Tensor:
    """``num / denom`` in float32, 0 where ``denom`` is 0 (torchmetrics' ``_safe_divide``)."""
    num, denom = num.float(), denom.float()
    return torch.where(denom != 0, num / denom, torch.zeros((), dtype=num.dtype, device=num.device))


class ClassAccuracy(Metric):
    """Top-1 accuracy of ``probs.argmax(dim=1)`` from per-class counts: ``micro`` (share of samples right),
    ``macro`` (the mean of the per-class accuracies over the classes that occur as a label or a prediction, as
    torchmetrics' ``average="macro"``) or ``none`` (one accuracy per class, 0 for a class without samples)."""

    full_state_update = False

    def __init__(self, num_classes: int, average: str = "micro", **kwargs) -> None:
        super().__init__(**kwargs)
        if average not in ("micro", "macro", "none"):
            raise ValueError(f"average must be micro, macro or none, got {average!r}")
        self.num_classes, self.average = num_classes, average
        for name in ("support", "correct", "predicted"):
            self.add_state(name, default=torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probs: Tensor | Probs, target: Tensor) -> None:
        pred = Probs.of(probs).pred
        self.support += torch.bincount(target, minlength=self.num_classes)
        self.correct += torch.bincount(target[pred == target], minlength=self.num_classes)
        self.predicted += torch.bincount(pred, minlength=self.num_classes)

    def compute(self) -> Tensor:
        if self.average == "micro":
            return _divide(self.correct.sum(), self.support.sum())
        score = _divide(self.correct, self.support)
        if self.average == "none":
            return score
        wrong_predictions = self.predicted - self.correct
        weights = torch.ones_like(score)
        weights[self.support + wrong_predictions == 0] = 0.0  # neither a label nor a prediction
        return _divide(weights * score, weights.sum(-1, keepdim=True)).sum(-1)


class TopKAccuracy(Metric):
    """Share of samples whose label is among the ``k`` highest probabilities (``probs.topk``, as torchmetrics)."""

    full_state_update = False

    def __init__(self, k: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.k = k
        self.add_state("correct", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probs: Tensor | Probs, target: Tensor) -> None:
        top = Probs.of(probs).topk(self.k)
        self.correct += (top == target[:, None]).any(dim=1).sum()
        self.total += target.shape[0]

    def compute(self) -> Tensor:
        return _divide(self.correct, self.total)


def build_classification_metrics(num_classes: int, ece_bins: int = 15) -> MetricCollection:
    """top-1, top-5 (top-k capped at the class count), mean per-class accuracy, ECE; updated with probabilities.

    Entropy is a separate :class:`MeanEntropy`, updated with per-sample entropies.
    """
    return MetricCollection(
        {
            "top1": ClassAccuracy(num_classes, average="micro"),
            "top5": TopKAccuracy(min(5, num_classes)),
            "mean_per_class_acc": ClassAccuracy(num_classes, average="macro"),
            "ece": CalibrationError(n_bins=ece_bins),
        },
        compute_groups=False,
    )
