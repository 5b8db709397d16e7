"""REC scoring against slow reference loops; seeded tie-break; negatives; the engine's encode counts."""

import pytest
import torch
from torch.nn import functional as F

from descbench.core.backbone import build_backbone
from descbench.core.marking.engine import group_by_image, run_rec
from descbench.core.marking.geometry import render_marked_input
from descbench.core.marking.scoring import (
    NegativesError,
    draw_negatives,
    iou_xywh,
    pick_candidates,
    score_candidates,
    subtract_negatives,
)
from descbench.core.marking.visual_prompts import parse_prompt_specs
from descbench.datasets.collages import load_collages


def test_iou_hand_computed():
    a = torch.tensor([[0.0, 0, 2, 2], [10, 10, 1, 1]])
    b = torch.tensor([[1.0, 1, 2, 2], [0, 0, 2, 2], [5, 5, 1, 1]])
    expected = torch.tensor([[1 / 7, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(iou_xywh(a, b), expected)
    assert iou_xywh([[0, 0, 4, 2]], [[0, 0, 2, 2]]).item() == pytest.approx(0.5)


def test_subtract_negatives_hand_computed():
    scores = torch.tensor([[1.0, 2.0]])
    negs = torch.tensor([[[0.5, 1.5], [1.0, 3.0]]])  # candidate 0: mean 1, candidate 1: mean 2
    assert torch.equal(subtract_negatives(scores, negs), torch.tensor([[0.0, 0.0]]))


def reference_scores(images, texts, negs, scales=None):
    """Per expression, per candidate, per marking (and backbone), plain Python sums in float64."""
    num_e, num_c = texts[0].shape[0], images[0].shape[1]
    out = torch.zeros(num_e, num_c, dtype=torch.float64)
    for e in range(num_e):
        for c in range(num_c):
            total = 0.0
            for b in range(len(images)):
                weight = 1.0 if scales is None else scales[b]
                for p in range(images[b].shape[0]):
                    v = images[b][p, c].double()
                    total += weight * float(v @ texts[b][e].double())
                    if negs is not None:
                        k = negs[b].shape[1]
                        total -= weight * sum(float(v @ negs[b][e, j].double()) for j in range(k)) / k
            out[e, c] = total
    return out


@pytest.mark.parametrize("subtract", [False, True])
def test_scores_equal_the_slow_loop(subtract):
    g = torch.Generator().manual_seed(0)
    dims = [16, 24]  # two backbones with different widths
    images = [F.normalize(torch.randn(3, 5, d, generator=g), dim=-1) for d in dims]  # 3 prompts, 5 candidates
    texts = [F.normalize(torch.randn(4, d, generator=g), dim=-1) for d in dims]  # 4 expressions
    negs = [F.normalize(torch.randn(4, 6, d, generator=g), dim=-1) for d in dims] if subtract else None
    fast = score_candidates(images, texts, negs)
    assert fast.shape == (4, 5)
    assert torch.allclose(fast.double(), reference_scores(images, texts, negs), atol=1e-6)
    # backbones combined with their logit scales (cosine x scale, summed), as the reference implementations
    scaled = score_candidates(images, texts, negs, scales=[100.0, 30.0])
    assert torch.allclose(scaled.double(), reference_scores(images, texts, negs, [100.0, 30.0]), atol=1e-4)


def test_ties_are_spread_and_reproducible():
    scores = torch.zeros(400, 4)
    picks = pick_candidates(scores, seed=3)
    counts = torch.bincount(torch.tensor(picks), minlength=4)
    assert (counts > 60).all(), counts  # not "first wins"
    assert picks == pick_candidates(scores, seed=3)
    assert picks != pick_candidates(scores, seed=4)
    # a row's pick depends on its key, not on its position in the batch (DDP-safe)
    keys = list(range(400))[::-1]
    assert pick_candidates(scores, seed=3, keys=keys) == picks[::-1]
    # only tied maxima are eligible; a clear maximum is always taken
    partial = torch.tensor([[0.0, 1.0, 1.0, 0.5]] * 100)
    assert set(pick_candidates(partial, seed=0)) == {1, 2}
    assert pick_candidates([torch.tensor([0.1, 0.9, 0.3]), torch.tensor([2.0])], seed=0) == [1, 0]


def test_negatives_come_from_the_split_and_are_seeded():
    texts = ["a", "b", "c", "a", "d", "e", "f"]
    splits = ["val", "val", "val", "val", "testA", "testA", "testA"]
    neg = draw_negatives(texts, 2, seed=0, splits=splits)
    assert neg.shape == (7, 2)
    for i, row in enumerate(neg.tolist()):
        assert len(set(row)) == 2 and i not in row
        assert all(splits[j] == splits[i] and texts[j] != texts[i] for j in row)
    assert torch.equal(neg, draw_negatives(texts, 2, seed=0, splits=splits))
    with pytest.raises(
        NegativesError, match=r"task.negatives=3 but expression 0 \('a'\) has only 2 other expressions in split 'val'"
    ):
        draw_negatives(texts, 3, seed=0, splits=splits)


@pytest.fixture(scope="module")
def tiny_pair():
    return [build_backbone("descbench-tiny", random_init=True, seed=s) for s in (0, 1)]


@pytest.fixture(scope="module")
def collages():
    return load_collages(num_canvases=6, seed=1, canvas_size=160)


def count_forwards(backbone, log):
    return backbone.model.visual.register_forward_hook(lambda m, inputs, out: log.append(inputs[0].shape[0]))


def test_engine_encodes_each_candidate_once(tiny_pair, collages):
    prompts = ["circle", "blur_outside", {"name": "crop"}]
    logs = [[], []]
    hooks = [count_forwards(b, log) for b, log in zip(tiny_pair, logs)]
    text_calls = []
    originals = [b.encode_texts for b in tiny_pair]
    for b, original in zip(tiny_pair, originals):
        b.encode_texts = lambda texts, _o=original: text_calls.append(len(texts)) or _o(texts)
    try:
        run = run_rec(collages, tiny_pair, prompts, subtract=True, negatives=3, seed=0)
    finally:
        for hook in hooks:
            hook.remove()
        for b in tiny_pair:
            del b.encode_texts
    groups = group_by_image(collages.expressions)
    assert any(len(g.indices) > 1 for g in groups)  # several expressions share an image
    for log in logs:  # one forward call per (image, backbone) holding candidates x prompts
        assert log == [len(g.boxes) * len(prompts) for g in groups]
    for g in groups:
        assert run.forward_calls[g.image_id] == 2
        assert run.images_encoded[g.image_id] == len(g.boxes) * len(prompts) * 2
    assert len(text_calls) == 2  # the texts once per backbone
    assert len(run.predictions) == len(collages)
    assert [p.index for p in run.predictions] == list(range(len(collages)))


def test_engine_equals_a_slow_loop(tiny_pair, collages):
    prompts = parse_prompt_specs([{"name": "circle", "thickness": 2}, "crop"])
    run = run_rec(collages, tiny_pair, prompts, template="a photo of {expression}", subtract=True, negatives=3, seed=5)
    expressions = collages.expressions
    neg = draw_negatives([e.expression for e in expressions], 3, 5, [e.split for e in expressions])
    correct = 0
    with torch.no_grad():
        for i, e in enumerate(expressions):
            image = collages.load_image(e.image_id)
            scores = []
            for box in e.boxes:
                total = 0.0
                for b in tiny_pair:
                    text = b.encode_texts([f"a photo of {e.expression}"])[0]
                    negs = b.encode_texts([f"a photo of {expressions[j].expression}" for j in neg[i].tolist()])
                    for spec in prompts:
                        # the default geometry (squash), itself checked against open_clip's transforms
                        marked = b.preprocess(render_marked_input(image, box, spec, b.image_size))[None]
                        v = b.encode_images(marked)[0]
                        total += b.logit_scale * (float(v @ text) - float((negs @ v).mean()))
                scores.append(total)
            p = run.predictions[i]
            assert p.score == pytest.approx(max(scores), abs=1e-3)
            assert scores[p.chosen_index] == pytest.approx(max(scores), abs=1e-3)
            iou = iou_xywh([e.boxes[p.chosen_index]], [e.gold_box]).item()
            assert p.iou == pytest.approx(iou) and p.correct == (iou > 0.5)
            correct += p.correct
    assert run.accuracy == pytest.approx(correct / len(expressions))
