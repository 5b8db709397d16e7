"""Spatial relations after CLIP scoring (``task.relations=rules``): a word-lexicon parser and ReCLIP's rules.

**Parser** (:func:`parse_relation`): finds the relation words of an expression with the lexicon held as
data (``relations.yaml``; no language model, no download): side relations (left/right, top/bottom and
their synonyms), size relations (bigger/smaller, where closer = bigger and farther = smaller), middle,
ordinals ("the second square from the right", "the last one from the left"), and comparisons with a
second object ("the cup left of the plate", "the lamp above the bed"). It returns the relations, the
ordinal, the *head phrase* (the expression without the relation words and the words that attach them:
"the second square from the right" -> "the square") and, for a comparison, the other object's phrase.

**Resolver** (:func:`resolve_relation`) follows ReCLIP's ``Parse`` method (allenai/reclip,
``methods/parse.py``, ``interpreter.py``, ``lattice.py``) for one entity:

1. ``p_full = softmax(logits of the whole expression)`` over the candidates (``env.filter(caption)``);
2. ``p_head = softmax(logits of the head phrase)`` (ReCLIP: of the head noun chunk); without head
   scores, ``p_head = p_full``;
3. a superlative or comparative (``left``, ``biggest``, ``closer``, the first from a side):
   ``p_i = p_head_i * sum_j p_head_j [i is more <relation> than j]``, normalised (ReCLIP's superlative
   branch: ``meet(p x p, sup).sum(1)``); several relations ("top left") apply in turn;
   a comparison with another object: ``p_i = p_head_i * sum_j p_other_j [i <relation> j]``
   (ReCLIP's relation branch, ``join_reduce(meet(p_other, rel))``);
4. ``final = p_full * p`` (ReCLIP: ``L.meet(probs, ent_probs)``), arg-max with the engine's seeded
   tie-break (ReCLIP: ``np.argmax``, first wins).

The relation predicates are ReCLIP's: left/right compare box centre x, top/bottom centre y,
bigger/smaller box area, strictly (equal keys relate neither way).

Differences from ReCLIP, all recorded here: (a) the parse is a lexicon, not a spaCy dependency parse,
so only the patterns above are found (ReCLIP also nests relations through the parse tree and handles
"between", possessives and a box-area threshold, all off in its defaults except nesting);
(b) the head phrase drops the relation words (ReCLIP scores the noun chunk with them, e.g.
"the left red circle"); (c) ReCLIP has no ordinals beyond the first and no "middle": here
"the k-th from a side" (k >= 2, or the last) and "middle" keep the candidates CLIP finds plausible for
the head phrase -- ``p_head >= plausible * max p_head``, i.e. within ``ln(1 / plausible)`` logits of
the best -- order them by the relation's key and take the k-th (the middle one); when fewer than k
(three, for middle) are plausible the relation cannot apply and CLIP's pick stands; (d) ReCLIP's
``baseline_threshold`` (apply relations only when CLIP is unsure) is infinite by default, i.e. off:
relations always apply, as here.

Scores from the engine are summed cosines; ``scale`` turns them into the logits ReCLIP uses (cosine x
CLIP's logit scale): pass the backbone's logit scale, or 1 when the scores already are logits.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import yaml

from descbench.core.choices import Choice
from descbench.core.errors import ConfigError
from descbench.core.marking.scoring import pick_candidates

LEXICON_FILE = Path(__file__).with_name("relations.yaml")


class Relations(Choice):
    """``task.relations``: CLIP's pick as it is, or ReCLIP-style spatial relations resolved after scoring."""

    none = "none"
    rules = "rules"


#: how a pick came about (:attr:`Resolution.rule`)
RESOLUTION_RULES = ("none", "superlative", "ordinal", "middle", "comparison", "unresolved")
PLAUSIBLE = 0.25  # (c): a candidate is plausible for the head phrase within ln(4) = 1.39 logits of the best
KEYS = ("x", "y", "area")
PREFER = ("low", "high", "middle")


@dataclass(frozen=True)
class Relation:
    """One relation word of an expression: its name, the key it orders boxes by, the end it prefers."""

    name: str
    key: str
    prefer: str
    word: str


@dataclass(frozen=True)
class ParsedExpression:
    """What the parser found: ``relations`` in order (empty: none), the ``ordinal`` (1 = first from the
    preferred end, k = k-th, -1 = the last; None: no ordinal word) and the relation it counts along
    (``relations[ordinal_index]``), the ``head`` phrase (None: no object is named, e.g. "the left one"),
    and for a comparison the ``other`` object's phrase."""

    text: str
    relations: tuple[Relation, ...] = ()
    ordinal: int | None = None
    ordinal_index: int = 0
    head: str | None = None
    other: str | None = None

    @property
    def has_relation(self) -> bool:
        return bool(self.relations)


@dataclass(frozen=True)
class Lexicon:
    """The word lists of ``relations.yaml``."""

    words: Mapping[str, Relation]
    ordinals: Mapping[str, int]
    binary_markers: frozenset[str]
    prepositions: frozenset[str]
    attach_before: frozenset[str]
    articles: frozenset[str]
    attach_after: frozenset[str]
    frame_nouns: frozenset[str]
    empty_words: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_data(cls, data: Mapping[str, Any], source: str = "lexicon") -> Lexicon:
        """Build from the YAML's mapping; a relation with an unknown key or end is a :class:`ConfigError`."""
        lists = {name: value for name, value in data.items() if isinstance(value, list)}
        lists |= {name: spec["words"] for name, spec in data["relations"].items()} | {
            "ordinals": list(data["ordinals"])
        }
        for name, items in lists.items():
            bad = [w for w in items if not isinstance(w, str)]
            if bad:  # YAML 1.1 reads a bare on/off/yes/no as a boolean
                raise ConfigError(f"{source}: {name} holds {bad[0]!r}, not a word: quote it")
        words: dict[str, Relation] = {}
        for name, spec in data["relations"].items():
            if spec["key"] not in KEYS or spec["prefer"] not in PREFER:
                raise ConfigError(
                    f"{source}: relation {name!r} has key {spec['key']!r} / prefer {spec['prefer']!r}: "
                    f"use a key in {KEYS} and prefer in {PREFER}"
                )
            for word in spec["words"]:
                words[str(word)] = Relation(name, spec["key"], spec["prefer"], str(word))
        word_sets = [name for name in cls.__dataclass_fields__ if name not in ("words", "ordinals")]
        sets = {name: frozenset(str(w) for w in data.get(name, ())) for name in word_sets}
        return cls(words=words, ordinals={str(k): int(v) for k, v in data["ordinals"].items()}, **sets)


@lru_cache(maxsize=1)
def load_lexicon() -> Lexicon:
    """The shipped lexicon (``relations.yaml`` beside this module)."""
    return Lexicon.from_data(yaml.safe_load(LEXICON_FILE.read_text()), str(LEXICON_FILE))


# ---------------------------------------------------------------------------- parser


def _tokens(text: str, lexicon: Lexicon) -> list[str]:
    out = []
    for raw in text.lower().split():
        token = raw.strip(string.punctuation)
        if "-" in token and token.replace("-", "") in lexicon.words:  # "left-most" -> "leftmost"
            token = token.replace("-", "")
        if token:
            out.append(token)
    return out


def _only(tokens: Sequence[str], *allowed: frozenset[str]) -> bool:
    return all(any(t in group for group in allowed) for t in tokens)


def parse_relation(expression: str, lexicon: Lexicon | None = None) -> ParsedExpression:
    """The relations, ordinal, head phrase and compared object of ``expression`` (see the module docstring)."""
    lex = lexicon or load_lexicon()
    tokens = _tokens(expression, lex)
    found = [i for i, t in enumerate(tokens) if t in lex.words]
    if not found:
        return ParsedExpression(expression, head=_head(tokens, lex))
    drop: set[int] = set()
    attached_by: dict[int, str] = {}
    for i in found:
        drop.add(i)
        start = i  # the preposition (+ articles) that attaches the relation: "from the", "on the", "in the"
        while start > 0 and tokens[start - 1] in lex.articles:
            start -= 1
        if start > 0 and tokens[start - 1] in lex.attach_before:
            attached_by[i] = tokens[start - 1]
            drop.update(range(start - 1, i))
        end = i + 1  # the nouns that attach it after: "side", "half", "most"
        while end < len(tokens) and tokens[end] in lex.attach_after:
            end += 1
        drop.update(range(i + 1, end))
        rest = tokens[end:]
        # what follows "of"/"than", or a preposition-like relation word ("above the bed")
        obj = rest[1:] if rest and rest[0] in lex.binary_markers else rest if tokens[i] in lex.prepositions else []
        if obj and _only(obj, lex.articles, lex.frame_nouns):  # "the top of the picture": the frame
            drop.update(range(end, len(tokens)))
        elif obj:  # a comparison with a second object: "left of the plate", "bigger than the cup"
            head = [t for k, t in enumerate(tokens[:i]) if k not in drop]
            return ParsedExpression(
                expression, relations=(lex.words[tokens[i]],), head=_head(head, lex), other=" ".join(obj)
            )
    ordinal, ordinal_index = None, 0
    ordinals = [i for i, t in enumerate(tokens) if t in lex.ordinals and i not in drop]
    if ordinals:
        k = ordinals[0]
        drop.add(k)
        target = next((i for i in found if i > k), found[0])  # the relation the ordinal counts along
        ordinal, ordinal_index = lex.ordinals[tokens[k]], found.index(target)
        if ordinal == -1 and attached_by.get(target) != "from":
            ordinal = 1  # "the last one on the right" is the rightmost; "the last from the left" the far end
    head = [t for k, t in enumerate(tokens) if k not in drop]
    return ParsedExpression(
        expression,
        relations=tuple(lex.words[tokens[i]] for i in found),
        ordinal=ordinal,
        ordinal_index=ordinal_index,
        head=_head(head, lex),
    )


def _head(tokens: Sequence[str], lex: Lexicon) -> str | None:
    if _only(tokens, lex.articles, lex.empty_words):
        return None
    return " ".join(tokens)


# ---------------------------------------------------------------------------- resolver


@dataclass(frozen=True)
class Resolution:
    """The resolver's outcome for one expression.

    ``index``: the chosen candidate; ``baseline``: CLIP's pick without relations (same tie-break);
    ``changed``: the relation changed the pick; ``rule``: ``none`` (no relation parsed), ``superlative``,
    ``ordinal``, ``middle``, ``comparison``, or ``unresolved`` (a relation was parsed but could not apply:
    too few plausible candidates, or a comparison without the other object's scores); ``probs``: the
    final distribution over the candidates."""

    index: int
    baseline: int
    changed: bool
    rule: str
    probs: list[float]


def box_keys(boxes: Sequence[Sequence[float]]) -> dict[str, torch.Tensor]:
    """Per box: centre x, centre y, area (``[x, y, w, h]`` boxes)."""
    b = torch.as_tensor([[float(v) for v in box] for box in boxes], dtype=torch.float64).reshape(-1, 4)
    return {"x": b[:, 0] + b[:, 2] / 2, "y": b[:, 1] + b[:, 3] / 2, "area": b[:, 2] * b[:, 3]}


def preference(relation: Relation, keys: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``R[i, j] = 1`` when box i is strictly more <relation> than box j (lower/higher key)."""
    key = keys[relation.key]
    if relation.prefer == "low":
        return (key[:, None] < key[None, :]).double()
    return (key[:, None] > key[None, :]).double()


def _normalised(p: torch.Tensor) -> torch.Tensor | None:
    total = p.sum()
    return p / total if total > 0 else None


def _ranked(relation: Relation, p: torch.Tensor, keys, plausible: float, ordinal: int) -> int | None:
    """The ``ordinal``-th plausible candidate from the relation's preferred end (or the middle one)."""
    candidates = torch.nonzero(p >= plausible * p.max()).flatten().tolist()
    key = keys[relation.key]
    order = sorted(candidates, key=lambda i: (float(key[i]), i))
    if relation.prefer == "middle":
        if len(order) < 3:
            return None
        if len(order) % 2:
            return order[len(order) // 2]
        mean = sum(float(key[i]) for i in order) / len(order)
        a, b = order[len(order) // 2 - 1], order[len(order) // 2]
        return a if abs(float(key[a]) - mean) <= abs(float(key[b]) - mean) else b
    if relation.prefer == "high":
        order.reverse()
    if ordinal == -1:
        return order[-1] if len(order) >= 2 else None
    return order[ordinal - 1] if ordinal <= len(order) else None


def resolve_relation(
    parsed: ParsedExpression,
    boxes: Sequence[Sequence[float]],
    scores: torch.Tensor | Sequence[float],
    head_scores: torch.Tensor | Sequence[float] | None = None,
    other_scores: torch.Tensor | Sequence[float] | None = None,
    *,
    scale: float = 1.0,
    plausible: float = PLAUSIBLE,
    seed: int = 0,
    key: int = 0,
) -> Resolution:
    """Pick a candidate for ``parsed`` from the CLIP ``scores`` of the whole expression, of its head phrase
    (``head_scores``) and of the compared object (``other_scores``), one per box; see the module docstring.

    ``seed``/``key`` seed the tie-break as the engine's (``key``: the expression's index).
    """
    raw = torch.as_tensor(scores, dtype=torch.float64).flatten()
    if len(raw) != len(boxes):
        raise ValueError(f"{len(raw)} scores for {len(boxes)} boxes")
    baseline = pick_candidates(raw, seed, keys=[key])[0]  # exactly the engine's pick (same scores, same tie rule)
    logits = raw * scale
    p_full = logits.softmax(0)

    def result(p: torch.Tensor | None, rule: str) -> Resolution:
        final = _normalised(p_full * p) if p is not None else None
        if final is None:
            return Resolution(
                baseline, baseline, False, "unresolved" if parsed.has_relation else "none", p_full.tolist()
            )
        index = pick_candidates(final, seed, keys=[key])[0]
        return Resolution(index, baseline, index != baseline, rule, final.tolist())

    if not parsed.has_relation or len(boxes) < 2:
        return result(None, "none")
    p = (
        p_full
        if head_scores is None
        else (torch.as_tensor(head_scores, dtype=torch.float64).flatten() * scale).softmax(0)
    )
    keys = box_keys(boxes)
    if parsed.other is not None:
        if other_scores is None:
            return result(None, "unresolved")
        p_other = (torch.as_tensor(other_scores, dtype=torch.float64).flatten() * scale).softmax(0)
        relation = preference(parsed.relations[0], keys)
        return result(_normalised(p * (relation * p_other[None, :]).sum(1)), "comparison")
    rule = "superlative"
    for n, relation in enumerate(parsed.relations):
        ordinal = parsed.ordinal if parsed.ordinal is not None and n == parsed.ordinal_index else 1
        if relation.prefer == "middle" or ordinal != 1:
            chosen = _ranked(relation, p, keys, plausible, ordinal)
            if chosen is None:
                return result(None, "unresolved")
            p = torch.zeros_like(p)
            p[chosen] = 1.0
            rule = "middle" if relation.prefer == "middle" else "ordinal"
        else:
            p = _normalised(p * (preference(relation, keys) * p[None, :]).sum(1))
            if p is None:
                return result(None, "unresolved")
    return result(p, rule)
