"""The description head: ragged per-class description embeddings -> class scores (SPEC §2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from descbench.core.choices import Choice


class Aggregation(Choice):
    """How a class's description scores become its score: the mean cosine over its descriptions (Menon &
    Vondrick), the cosine with the renormalised mean embedding (the CuPL/open_clip prototype), or the best."""

    score_mean = "score_mean"
    embed_mean = "embed_mean"
    max = "max"


def ragged_class_index(counts: Sequence[int], device: torch.device | None = None) -> torch.Tensor:
    """Class index of every row of a flat description matrix: counts [2, 1] -> [0, 0, 1]."""
    return torch.repeat_interleave(torch.arange(len(counts), device=device), torch.as_tensor(counts, device=device))


class DescriptionHead(nn.Module):
    """Scores images against a ragged set of description embeddings.

    ``embeddings`` is ``[T, D]`` (L2-normalised, all descriptions of all classes, flat) and
    ``class_index`` is ``[T]``. ``score_mean`` averages per-description cosine similarities
    per class, ``embed_mean`` scores against the renormalised mean embedding of each class,
    ``max`` takes the best description. Scores are cosine similarities (no temperature).
    """

    def __init__(
        self, embeddings: torch.Tensor, class_index: torch.Tensor, num_classes: int, aggregation: Aggregation
    ) -> None:
        super().__init__()
        aggregation = Aggregation.parse(aggregation, "task.aggregation")
        counts = torch.bincount(class_index, minlength=num_classes)
        if bool((counts == 0).any()):
            raise ValueError(f"classes without descriptions: {torch.nonzero(counts == 0).flatten().tolist()[:10]}")
        self.aggregation = aggregation
        self.num_classes = num_classes
        self.register_buffer("embeddings", embeddings.float(), persistent=False)
        self.register_buffer("class_index", class_index.long(), persistent=False)
        self.register_buffer("counts", counts.float(), persistent=False)
        if aggregation == "embed_mean":
            summed = torch.zeros(num_classes, embeddings.shape[1], dtype=torch.float32, device=embeddings.device)
            summed.index_add_(0, self.class_index, self.embeddings)
            self.register_buffer("prototypes", F.normalize(summed, dim=-1), persistent=False)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        image_features = image_features.float()
        if self.aggregation == "embed_mean":
            return image_features @ self.prototypes.T
        sims = image_features @ self.embeddings.T  # [B, T]
        index = self.class_index.expand_as(sims)
        if self.aggregation == "score_mean":
            out = torch.zeros(sims.shape[0], self.num_classes, dtype=sims.dtype, device=sims.device)
            return out.scatter_add_(1, index, sims) / self.counts
        out = torch.full((sims.shape[0], self.num_classes), float("-inf"), dtype=sims.dtype, device=sims.device)
        return out.scatter_reduce_(1, index, sims, reduce="amax")
