import open_clip
import pytest
import torch
from torch.nn import functional as F

from descbench.core.backbone import load_backbone
from descbench.core.head import DescriptionHead, ragged_class_index


def slow_reference(images, per_class, aggregation):
    """Per image, per class: mean / max of per-description cosines, or the renormalised mean embedding."""
    out = torch.zeros(len(images), len(per_class), dtype=torch.float64)
    for i, x in enumerate(images):
        for c, embs in enumerate(per_class):
            if aggregation == "embed_mean":
                proto = embs.double().mean(0)
                out[i, c] = float(x.double() @ (proto / proto.norm()))
            else:
                sims = [float(x.double() @ e.double()) for e in embs]
                out[i, c] = sum(sims) / len(sims) if aggregation == "score_mean" else max(sims)
    return out


@pytest.mark.parametrize("aggregation", ["score_mean", "embed_mean", "max"])
def test_head_equals_slow_loop_on_ragged_counts(aggregation):
    gen = torch.Generator().manual_seed(0)
    counts = [1, 4, 2, 7, 3]
    per_class = [F.normalize(torch.randn(n, 16, generator=gen), dim=-1) for n in counts]
    images = F.normalize(torch.randn(6, 16, generator=gen), dim=-1)
    head = DescriptionHead(torch.cat(per_class), ragged_class_index(counts), len(counts), aggregation)
    got = head(images).double()
    assert torch.allclose(got, slow_reference(images, per_class, aggregation), atol=1e-6)


def test_ragged_index_layout():
    assert ragged_class_index([2, 1, 3]).tolist() == [0, 0, 1, 2, 2, 2]


def test_aggregations_rank_classes_differently():
    # class 0: one perfect and one poor description; class 1: two good ones.
    x = torch.tensor([[1.0, 0.0]])
    e = F.normalize(torch.tensor([[1.0, 0.0], [-1.0, 0.2], [0.8, 0.6], [0.8, -0.6]]), dim=-1)
    index = torch.tensor([0, 0, 1, 1])
    by = {a: DescriptionHead(e, index, 2, a)(x).argmax().item() for a in ("score_mean", "max")}
    assert by == {"score_mean": 1, "max": 0}


def test_embed_mean_equals_open_clip_zero_shot_classifier():
    backbone = load_backbone("descbench-tiny", random_init=True, seed=3)
    classes = ["cat", "dog", "rocket"]
    templates = [lambda c: f"a photo of a {c}.", lambda c: f"a drawing of a {c}.", lambda c: f"{c}, which has fur"]
    reference = open_clip.build_zero_shot_classifier(backbone.model, backbone.tokenizer, classes, templates)
    texts = [t(c) for c in classes for t in templates]
    head = DescriptionHead(backbone.encode_texts(texts), ragged_class_index([3, 3, 3]), 3, "embed_mean")
    assert torch.allclose(head.prototypes.T, reference, atol=1e-6)


def test_unknown_aggregation_is_refused():
    with pytest.raises(ValueError, match="task.aggregation='median' is not one of score_mean, embed_mean, max"):
        DescriptionHead(torch.eye(2), torch.tensor([0, 1]), 2, "median")
