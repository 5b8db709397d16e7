"""Spatial relations after CLIP scoring: the lexicon parser and ReCLIP's resolver rules on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from descbench.core.errors import ConfigError
from descbench.core.marking.relations import (
    LEXICON_FILE,
    Lexicon,
    Relations,
    load_lexicon,
    parse_relation,
    resolve_relation,
)
from descbench.core.marking.scoring import pick_candidates

# ---------------------------------------------------------------------------- parser

PARSES = [
    # expression, relation names, ordinal, head, other
    ("the left red circle", ["left"], None, "the red circle", None),
    ("the red circle on the left", ["left"], None, "the red circle", None),
    ("the red circle on the left side of the picture", ["left"], None, "the red circle", None),
    ("Left-most dog.", ["left"], None, "dog", None),
    ("the rightmost star", ["right"], None, "the star", None),
    ("the upper square", ["top"], None, "the square", None),
    ("the square at the bottom", ["bottom"], None, "the square", None),
    ("the lower blue heart", ["bottom"], None, "the blue heart", None),
    ("the biggest star", ["bigger"], None, "the star", None),
    ("the larger one", ["bigger"], None, None, None),
    ("the closer car", ["bigger"], None, "the car", None),
    ("the farthest car", ["smaller"], None, "the car", None),
    ("the little dog", ["smaller"], None, "the dog", None),
    ("the middle circle", ["middle"], None, "the circle", None),
    ("the circle in the center", ["middle"], None, "the circle", None),
    ("the second square from the right", ["right"], 2, "the square", None),
    ("the square second from the left", ["left"], 2, "the square", None),
    ("the third from the left", ["left"], 3, None, None),
    ("the last square from the left", ["left"], -1, "the square", None),
    ("the last one on the right", ["right"], 1, None, None),
    ("the top left circle", ["top", "left"], None, "the circle", None),
    ("the circle at the top of the image", ["top"], None, "the circle", None),
    ("the cup to the left of the plate", ["left"], None, "the cup", "the plate"),
    ("the lamp above the bed", ["top"], None, "the lamp", "the bed"),
    ("the star on top of the circle", ["top"], None, "the star", "the circle"),
    ("the dog bigger than the cat", ["bigger"], None, "the dog", "the cat"),
    ("the man in red", [], None, "the man in red", None),
    ("a red striped circle", [], None, "a red striped circle", None),
    ("", [], None, None, None),
]


@pytest.mark.parametrize(("text", "names", "ordinal", "head", "other"), PARSES)
def test_parser_table(text, names, ordinal, head, other):
    parsed = parse_relation(text)
    assert [r.name for r in parsed.relations] == names
    assert (parsed.ordinal, parsed.head, parsed.other) == (ordinal, head, other)
    assert parsed.has_relation == bool(names)


def test_ordinal_counts_along_the_relation_after_it():
    parsed = parse_relation("the top square second from the right")
    assert [r.name for r in parsed.relations] == ["top", "right"]
    assert (parsed.ordinal, parsed.ordinal_index) == (2, 1)


def test_lexicon_is_data_and_each_word_has_one_relation():
    data = yaml.safe_load(LEXICON_FILE.read_text())
    words = [w for spec in data["relations"].values() for w in spec["words"]]
    assert len(words) == len(set(words)), "a word in two relations"
    assert set(load_lexicon().words) == set(words)
    assert "on" in load_lexicon().attach_before  # quoted in the YAML (a bare on is a boolean)


def test_lexicon_errors_name_the_problem():
    data = yaml.safe_load(LEXICON_FILE.read_text())
    with pytest.raises(ConfigError, match=r"lex.yaml: attach_before holds True, not a word: quote it"):
        Lexicon.from_data({**data, "attach_before": ["from", True]}, "lex.yaml")
    bad = {**data, "relations": {"left": {"key": "width", "prefer": "low", "words": ["left"]}}}
    with pytest.raises(ConfigError, match=r"relation 'left' has key 'width' / prefer 'low'"):
        Lexicon.from_data(bad, "lex.yaml")
    with pytest.raises(ConfigError, match=r"task.relations='spacy' is not one of none, rules"):
        Relations.parse("spacy", "task.relations")
    assert Relations.parse("rules", "task.relations") == "rules"


# ---------------------------------------------------------------------------- resolver

# three candidates: two identical red circles (left at x=0, right at x=50) and a blue square on the far right
BOXES = [[0, 10, 10, 10], [50, 10, 10, 10], [70, 40, 20, 20]]


def softmax(values):
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def test_superlative_by_hand():
    """ReCLIP's rule: p_i * sum_j p_j [i left of j], then times p_full, normalised."""
    scores = [2.0, 2.5, -1.0]  # CLIP slightly prefers the right circle for "the left red circle"
    head = [1.0, 1.2, -3.0]
    out = resolve_relation(parse_relation("the left red circle"), BOXES, scores, head)
    ph, pf = softmax(head), softmax(scores)
    sup = [ph[0] * (ph[1] + ph[2]), ph[1] * ph[2], 0.0]
    sup = [v / sum(sup) for v in sup]
    final = [a * b for a, b in zip(pf, sup)]
    final = [v / sum(final) for v in final]
    assert out.probs == pytest.approx(final, rel=1e-12)
    assert (out.index, out.baseline, out.changed, out.rule) == (0, 1, True, "superlative")
    right = resolve_relation(parse_relation("the right red circle"), BOXES, scores, head)
    # the square is further right than both circles, but its head score ("red circle") keeps it out
    sup = [0.0, ph[1] * ph[0], ph[2] * (ph[0] + ph[1])]
    final = [a * b / sum(sup) for a, b in zip(pf, sup)]
    assert right.probs == pytest.approx([v / sum(final) for v in final], rel=1e-12)
    assert (right.index, right.changed) == (1, False)


def test_without_head_scores_the_expression_scores_serve_as_head():
    scores = [1.0, 1.0, 1.0]
    out = resolve_relation(parse_relation("the left one"), BOXES, scores)
    # p = 1/3 each: 1/3 * 2/3 for the leftmost, 1/3 * 1/3 for the middle, 0 for the rightmost
    assert out.index == 0 and out.probs == pytest.approx([2 / 3, 1 / 3, 0.0])


def test_scale_turns_cosines_into_logits():
    cos = [0.20, 0.25, 0.10]
    a = resolve_relation(parse_relation("the left circle"), BOXES, cos, scale=100.0)
    b = resolve_relation(parse_relation("the left circle"), BOXES, [20.0, 25.0, 10.0])
    assert a.probs == pytest.approx(b.probs, rel=1e-9) and a.index == b.index


def test_size_relations_use_area():
    boxes = [[0, 0, 10, 10], [20, 0, 14, 14], [40, 0, 5, 30]]  # areas 100, 196, 150
    flat = [0.0, 0.0, 0.0]
    assert resolve_relation(parse_relation("the biggest star"), boxes, flat).index == 1
    assert resolve_relation(parse_relation("the closer star"), boxes, flat).index == 1
    assert resolve_relation(parse_relation("the smallest star"), boxes, flat).index == 0
    assert resolve_relation(parse_relation("the farther star"), boxes, flat).index == 0
    assert resolve_relation(parse_relation("the top star"), boxes, flat).index == 0  # y centres 5, 7, 15
    assert resolve_relation(parse_relation("the bottom star"), boxes, flat).index == 2


# four identical squares in a row, and a distractor (low head score) on the far left
ROW = [[100, 0, 10, 10], [10, 0, 10, 10], [70, 0, 10, 10], [40, 0, 10, 10], [0, 50, 8, 8]]
ROW_HEAD = [3.0, 3.1, 2.9, 3.0, -4.0]


@pytest.mark.parametrize(
    ("text", "gold"),
    [
        ("the second square from the right", 2),  # x order of the squares: 1 (10), 3 (40), 2 (70), 0 (100)
        ("the second square from the left", 3),
        ("the third square from the left", 2),
        ("the last square from the left", 0),
        ("the first square from the left", 1),
    ],
)
def test_ordinals_count_the_plausible_candidates(text, gold):
    out = resolve_relation(parse_relation(text), ROW, ROW_HEAD, ROW_HEAD)
    assert out.index == gold
    assert out.rule == ("superlative" if "first" in text else "ordinal")


def test_middle_and_too_few_plausible_candidates():
    three = [[0, 0, 10, 10], [30, 0, 10, 10], [60, 0, 10, 10], [90, 40, 10, 10]]
    head = [2.0, 2.0, 2.0, -5.0]
    assert resolve_relation(parse_relation("the middle square"), three, head, head).index == 1
    # the fourth square is implausible (p < 0.25 max): only 3 plausible, no fourth from the left
    scores = [2.0, 2.2, 2.1, -5.0]
    out = resolve_relation(parse_relation("the fourth square from the left"), three, scores, head)
    assert (out.rule, out.index, out.changed) == ("unresolved", out.baseline, False)
    assert out.baseline == 1  # CLIP's own pick stands
    # plausible: p_head >= 0.25 * max, i.e. within ln 4 = 1.386 logits of the best
    second = parse_relation("the second square from the left")  # x centres 5, 35, 65, 95
    assert resolve_relation(second, three, head, [2.0, 0.7, 2.0, 2.0]).index == 1  # 1.3 logits below: plausible
    assert resolve_relation(second, three, head, [2.0, 0.5, 2.0, 2.0]).index == 2  # 1.5 below: out, 2 is second


def test_comparison_with_another_object():
    """ReCLIP's relation branch: p_head_i * sum_j p_other_j [i left of j]."""
    boxes = [[0, 0, 10, 10], [40, 0, 10, 10], [80, 0, 10, 10]]  # cup, plate, cup
    expr = parse_relation("the cup to the right of the plate")
    scores, head, other = [1.0, 0.0, 1.0], [2.0, -2.0, 2.0], [-3.0, 3.0, -3.0]
    out = resolve_relation(expr, boxes, scores, head, other)
    ph, po, pf = softmax(head), softmax(other), softmax(scores)
    rel = [ph[0] * 0.0, ph[1] * po[0], ph[2] * (po[0] + po[1])]
    rel = [v / sum(rel) for v in rel]
    final = [a * b for a, b in zip(pf, rel)]
    assert out.probs == pytest.approx([v / sum(final) for v in final], rel=1e-12)
    assert (out.index, out.rule) == (2, "comparison")
    assert resolve_relation(expr, boxes, scores, head).rule == "unresolved"  # no scores for "the plate"


def test_no_relation_keeps_clips_pick_with_the_engines_tie_break():
    scores = torch.tensor([0.3, 0.3, 0.1])
    for key in range(6):
        out = resolve_relation(parse_relation("the red circle"), BOXES, scores, seed=4, key=key)
        assert out.index == out.baseline == pick_candidates(scores, 4, keys=[key])[0]
        assert (out.changed, out.rule) == (False, "none")


def test_ties_after_the_rule_are_broken_by_the_seeded_tie_break():
    boxes = [[0, 0, 10, 10], [0, 40, 10, 10], [50, 20, 10, 10]]  # 0 and 1 share the leftmost centre x
    picks = {
        resolve_relation(parse_relation("the left one"), boxes, [0.0, 0.0, 0.0], seed=1, key=k).index for k in range(20)
    }
    assert picks == {0, 1}


def reclip_reference(boxes, full, head, relation):
    """ReCLIP's lattice, written out with loops: superlative, then meet with the full expression."""
    n = len(boxes)
    centre = [b[0] + b[2] / 2 for b in boxes]
    sup = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            sup[i, j] = centre[i] < centre[j] if relation == "left" else centre[i] > centre[j]
    p_head = np.exp(head - head.max()) / np.exp(head - head.max()).sum()
    p_full = np.exp(full - full.max()) / np.exp(full - full.max()).sum()
    probs = (np.expand_dims(p_head, 1) * np.expand_dims(p_head, 0) * sup).sum(axis=1)
    probs = probs / probs.sum()
    out = p_full * probs
    return out / out.sum()


@pytest.mark.parametrize("seed", range(5))
def test_superlative_equals_a_loop_reference_of_reclips_lattice(seed):
    rng = np.random.default_rng(seed)
    boxes = rng.uniform(0, 100, (6, 4)).tolist()
    full, head = rng.normal(0, 2, 6), rng.normal(0, 2, 6)
    for relation in ("left", "right"):
        out = resolve_relation(parse_relation(f"the {relation} dog"), boxes, full, head)
        assert out.probs == pytest.approx(reclip_reference(boxes, full, head, relation).tolist(), rel=1e-9)
