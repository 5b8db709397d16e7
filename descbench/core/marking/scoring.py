"""REC scoring rules in pure torch: IoU, negatives, ``subtract``, summed scores, seeded tie-break."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from descbench.core.errors import NegativesError

#: a pick is correct when its IoU with a gold box is above this (ReCLIP and FGVP: ``iou > 0.5``)
CORRECT_IOU = 0.5


def iou_xywh(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU of boxes ``a`` [N, 4] and ``b`` [M, 4] in ``[x, y, w, h]``: [N, M]."""
    a = torch.as_tensor(a, dtype=torch.float64).reshape(-1, 4)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(-1, 4)
    ax1, ay1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = (torch.minimum(ax1[:, None], bx1[None]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp_min(0)
    ih = (torch.minimum(ay1[:, None], by1[None]) - torch.maximum(a[:, None, 1], b[None, :, 1])).clamp_min(0)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(inter))


def gold_reachable(boxes: Sequence[Sequence[float]], gold_boxes: Sequence[Sequence[float]]) -> bool:
    """Whether some candidate has IoU above :data:`CORRECT_IOU` with some gold box: whether any pick can be right.

    The share of expressions for which this holds is the upper bound of a proposal set (with a detector's
    boxes it is below 100 %: every detector run has that ceiling).
    """
    if not boxes or not gold_boxes:
        return False
    return bool((iou_xywh(torch.tensor(boxes), torch.tensor(gold_boxes)) > CORRECT_IOU).any())


def subtract_negatives(scores: Tensor, neg_scores: Tensor) -> Tensor:
    """``scores`` [..., C] minus each candidate's mean score over K negatives ``neg_scores`` [..., C, K]."""
    return scores - neg_scores.mean(dim=-1)


def draw_negatives(expressions: Sequence[str], k: int, seed: int, splits: Sequence[str] | None = None) -> torch.Tensor:
    """For each expression, ``k`` indices of other expressions of its split (another text), drawn without
    replacement with a fixed seed: [E, k]. Raises when a split has fewer than ``k`` available."""
    count = len(expressions)
    splits = list(splits) if splits is not None else ["all"] * count
    if k <= 0:
        return torch.empty(count, 0, dtype=torch.long)
    by_split: dict[str, np.ndarray] = {}
    for split in dict.fromkeys(splits):
        by_split[split] = np.array([i for i in range(count) if splits[i] == split], dtype=np.int64)
    texts = np.array([str(e) for e in expressions], dtype=object)
    out = np.empty((count, k), dtype=np.int64)
    for i in range(count):
        pool = by_split[splits[i]]
        pool = pool[texts[pool] != texts[i]]  # the same text is not a negative
        if len(pool) < k:
            raise NegativesError(
                f"task.negatives={k} but expression {i} ({expressions[i]!r}) has only {len(pool)} other expressions "
                f"in split {splits[i]!r}: lower task.negatives to at most {len(pool)}"
            )
        rng = np.random.default_rng([seed, i])  # per expression: the draw does not depend on the batch or rank
        out[i] = rng.choice(pool, size=k, replace=False)
    return torch.from_numpy(out)


def score_candidates(
    image_features: Sequence[Tensor],
    text_features: Sequence[Tensor],
    negative_features: Sequence[Tensor] | None = None,
    scales: Sequence[float] | None = None,
) -> Tensor:
    """Summed score per candidate for the expressions of one image: [E, C].

    Per backbone ``b``: ``image_features[b]`` [P, C, D_b] (one row per visual prompt and candidate),
    ``text_features[b]`` [E, D_b], and with ``subtract`` ``negative_features[b]`` [E, K, D_b].
    Score = sum over prompts and backbones of ``scales[b]`` x cos(candidate, text) (each backbone's
    logit scale, as the reference implementations combine backbones), minus (``subtract``) the mean
    over the expression's K negatives. Without ``scales`` every backbone weighs 1.
    """
    total = None
    for b, (images, texts) in enumerate(zip(image_features, text_features)):
        images = images.float()
        score = torch.einsum("pcd,ed->ec", images, texts.float())
        if negative_features is not None:
            negs = torch.einsum("pcd,ekd->eck", images, negative_features[b].float())
            score = subtract_negatives(score, negs)
        if scales is not None:
            score = score * float(scales[b])
        total = score if total is None else total + score
    if total is None:
        raise ValueError("score_candidates needs at least one backbone's features")
    return total


def pick_candidates(
    scores: Sequence[Tensor] | Tensor, seed: int, keys: Sequence[int] | None = None, tol: float = 1e-6
) -> list[int]:
    """The arg-max candidate of each row; ties (within ``tol`` of the maximum) broken at random.

    The random choice of row ``r`` uses a generator seeded by ``(seed, keys[r])`` (``keys``: the
    expressions' global indices; default the row numbers), so it is reproducible and does not depend
    on batching or on the DDP rank. Never "first wins", which would measure the data's ordering.
    """
    rows = list(scores) if not isinstance(scores, Tensor) or scores.dim() != 1 else [scores]
    keys = list(range(len(rows))) if keys is None else list(keys)
    picks = []
    for row, key in zip(rows, keys):
        row = row.detach().double().cpu()
        top = row.max()
        tied = torch.nonzero(row >= top - tol * max(1.0, abs(float(top)))).flatten()
        if len(tied) == 1:
            picks.append(int(tied[0]))
            continue
        generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(key))
        picks.append(int(tied[torch.randint(len(tied), (1,), generator=generator)]))
    return picks
