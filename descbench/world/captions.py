"""What is said about the shapes world: noun phrases, captions with the predicates they assert,
and the training examples of the known-answer model (a rendered canvas and one caption of it).

Every function takes a ``numpy.random.Generator``; nothing reads global random state. The pixels
come from :mod:`descbench.world.rendering`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np
from PIL import Image

from descbench.world.lexicon import (
    ATTRIBUTE_INDEX,
    ATTRIBUTES,
    BACKGROUND_PHRASE,
    COLOUR_ADJ,
    CUES,
    GENERIC_NOUNS,
    HPOS_PHRASE,
    PATTERN_ADJ,
    PATTERN_WITH,
    SHAPE_NOUNS,
    SIZE_ADJ,
    VPOS_PHRASE,
    Cue,
    cue_mask,
)
from descbench.world.rendering import DEFAULT_MARKING, MarkingStyle, draw_marking, random_spec, render_scene

Predicate = tuple[int, int]  # (attribute column, bitmask of allowed values)


def attribute_vector(attrs: dict[str, str]) -> list[int]:
    """Attribute values as indices, in ``ATTRIBUTES`` column order."""
    return [values.index(attrs[name]) for name, values in ATTRIBUTES.items()]


def _exact(attr: str, value: str) -> Predicate:
    return ATTRIBUTE_INDEX[attr], 1 << ATTRIBUTES[attr].index(value)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _article(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def true_cues(attrs: dict[str, str]) -> list[Cue]:
    """Every descriptor cue that holds for an object with these attributes."""
    return [c for c in CUES.values() if attrs.get(c.attr) in c.values]


def noun_phrase(attrs: dict[str, str], rng: np.random.Generator, keep: dict[str, bool]) -> tuple[str, list[Predicate]]:
    """A noun phrase naming the kept attributes ("small red striped circle", "red one with dots")."""
    preds: list[Predicate] = []
    adjs: list[str] = []
    tail: list[str] = []
    if keep.get("size"):
        adjs.append(_pick(rng, SIZE_ADJ[attrs["size"]]))
        preds.append(_exact("size", attrs["size"]))
    if keep.get("colour"):
        adjs.append(_pick(rng, COLOUR_ADJ[attrs["colour"]]))
        preds.append(_exact("colour", attrs["colour"]))
    if keep.get("pattern"):
        if rng.random() < 0.65:
            adjs.append(_pick(rng, PATTERN_ADJ[attrs["pattern"]]))
        else:
            tail.append(_pick(rng, PATTERN_WITH[attrs["pattern"]]))
        preds.append(_exact("pattern", attrs["pattern"]))
    if keep.get("shape"):
        noun = _pick(rng, SHAPE_NOUNS[attrs["shape"]])
        preds.append(_exact("shape", attrs["shape"]))
    else:
        noun = _pick(rng, GENERIC_NOUNS)
    if keep.get("hpos"):
        tail.append(_pick(rng, HPOS_PHRASE[attrs["hpos"]]))
        preds.append(_exact("hpos", attrs["hpos"]))
    elif keep.get("vpos"):
        tail.append(_pick(rng, VPOS_PHRASE[attrs["vpos"]]))
        preds.append(_exact("vpos", attrs["vpos"]))
    if keep.get("background"):
        tail.append(_pick(rng, BACKGROUND_PHRASE[attrs["background"]]))
        preds.append(_exact("background", attrs["background"]))
    return " ".join(adjs + [noun] + tail), preds


def make_caption(
    attrs: dict[str, str],
    rng: np.random.Generator,
    pseudo_names: list[str] | None = None,
    *,
    allow_position: bool = True,
) -> tuple[str, list[Predicate]]:
    """A random caption of an object, and the predicates it asserts.

    Kinds: attribute phrases with dropout (``"a small red striped circle"``, ``"red"``),
    descriptor phrases behind a made-up name (``"blick, which has eight sides"``),
    descriptor sentences (``"A blick is usually red in colour."``) and bare cue words.
    ``pseudo_names`` stand in for class names, which never appear in captions.
    """
    sized = attrs["size"] != "unsized"
    u = rng.random()
    if u < 0.5 or not pseudo_names:
        keep = {
            "shape": rng.random() < 0.75,
            "colour": rng.random() < 0.75,
            "pattern": rng.random() < 0.5,
            "size": sized and rng.random() < 0.3,
            "hpos": allow_position and rng.random() < 0.1,
            "vpos": allow_position and rng.random() < 0.06,
            "background": rng.random() < 0.1,
        }
        if not any(keep.values()):
            keep[("colour", "shape", "pattern")[int(rng.integers(3))]] = True
        np_text, preds = noun_phrase(attrs, rng, keep)
        if not keep["shape"] and rng.random() < 0.5:
            # adjectives only: "red", "red and striped", "small red"
            words = []
            if keep["size"]:
                words.append(_pick(rng, SIZE_ADJ[attrs["size"]]))
            if keep["colour"]:
                words.append(_pick(rng, COLOUR_ADJ[attrs["colour"]]))
            if keep["pattern"]:
                words.append(_pick(rng, PATTERN_ADJ[attrs["pattern"]]))
            if words and not (keep["hpos"] or keep["vpos"] or keep["background"]):
                return (" and ".join(words) if len(words) == 2 and rng.random() < 0.5 else " ".join(words)), preds
        template = int(rng.integers(5))
        text = (
            _article(np_text),
            "the " + np_text,
            "a photo of " + _article(np_text),
            "an image of " + _article(np_text),
            np_text,
        )[template]
        return text, preds
    cues = [c for c in true_cues(attrs) if sized or c.attr != "size"]
    cue = _pick(rng, cues)
    preds = [cue_mask(cue)]
    name = _pick(rng, pseudo_names)
    if u < 0.75:
        word = _pick(rng, cue.words)
        if rng.random() < 0.2:
            other = _pick(rng, cues)
            preds.append(cue_mask(other))
            word = f"{word} and {_pick(rng, other.words)}"
        return f"{name}, {_which_clause(word, rng)}", preds
    if u < 0.9:
        return cue.render_sentence(name), preds
    return _pick(rng, cue.words), preds


def _which_clause(word: str, rng: np.random.Generator) -> str:
    """The published "which (is/has)" rule (SPEC §2), sometimes plain "which has" (the faithful
    rule and the waffle control use it), so both are in distribution."""
    first = word.split(maxsplit=1)[0]
    if rng.random() < 0.75:
        if first in ("a", "an", "used"):
            return f"which is {word}"
        if first in ("has", "often", "typically", "may", "can"):
            return f"which {word}"
    return f"which has {word}"


class TrainingExample(NamedTuple):
    """One training sample: the canvas, its caption, the described object's attribute vector, the caption's
    predicates, and whether the canvas carries a marking (an ellipse around the described object)."""

    image: Image.Image
    caption: str
    vector: list[int]
    preds: list[Predicate]
    marked: bool


#: what an unmarked sample of an exact-share recipe is: the shipped recipe's plain kinds (one object anywhere,
#: or one filling the canvas, 4:1), or the marked samples' 2-4-object canvases with no ellipse
FILLERS = ("single", "multi")


@dataclass(frozen=True)
class TrainingRecipe:
    """How training samples are drawn: the emergence study's knobs.

    ``marking_share=None`` is the shipped model's recipe: every sample draws its kind (60 % one object
    anywhere, 15 % one object filling the canvas, 25 % 2-4 objects with the described one marked), so a
    batch holds 25 % marked samples only on average. A number makes the share exact: batch ``k`` of ``B``
    samples holds ``floor((k+1) s B) - floor(k s B)`` marked samples at seeded positions (every batch within
    one sample of ``s B``, the run's total within one sample of ``s`` times the samples seen; ``s = 0``: not
    one marked sample). Its unmarked samples are ``filler``: ``single`` (one object anywhere or filling the
    canvas, 4:1 as in the shipped recipe) or ``multi`` (the marked samples' 2-4-object canvases without the
    ellipse, the caption about a random one of them: the marking then is the only difference).
    """

    marking_share: float | None = None
    marking: MarkingStyle = DEFAULT_MARKING
    filler: str = "single"

    def __post_init__(self) -> None:
        share = self.marking_share
        if share is not None and not (isinstance(share, (int, float)) and 0 <= share <= 1):
            raise ValueError(f"marking_share must be a number from 0 to 1 (0.25 = 25 %), got {share!r}")
        if self.filler not in FILLERS:
            raise ValueError(f"filler must be one of {', '.join(FILLERS)}, got {self.filler!r}")

    def marked_count(self, step: int, batch_size: int) -> int | None:
        """How many samples of batch ``step`` are marked (None: each sample draws its kind)."""
        if self.marking_share is None:
            return None
        share = Fraction(str(self.marking_share)) * batch_size  # exact: 0.005 is 1/200, not a float near it
        return math.floor((step + 1) * share) - math.floor(step * share)

    def facts(self) -> dict:
        """The recipe as the bundle's ``training.json`` records it."""
        return {
            "marking_share": self.marking_share,
            "mark_colour": list(self.marking.colour),
            "mark_widths": list(self.marking.widths),
            "mark_scales": list(self.marking.scales),
            "mark_margins": list(self.marking.margins),
            "filler": self.filler,
        }

    @classmethod
    def from_facts(cls, facts: dict) -> TrainingRecipe:
        """The recipe a bundle's ``training.json`` records (the shipped recipe when it records none)."""
        given = facts.get("recipe")
        if not given:
            return cls()
        style = MarkingStyle(
            colour=tuple(given["mark_colour"]),
            widths=tuple(given["mark_widths"]),
            scales=tuple(given["mark_scales"]),
            margins=tuple(given["mark_margins"]),
        )
        return cls(marking_share=given["marking_share"], marking=style, filler=given["filler"])

    def describe(self) -> str:
        """The data recipe in words, for the model card (the shipped recipe in the card's original words)."""
        if self.marking_share is None and self.marking == DEFAULT_MARKING:
            return (
                "Data recipe (each batch seeded by (seed, step)): 60 % one object anywhere on a light or dark\n"
                "  background; 15 % one object filling the canvas (like a crop of a box, resized); 25 % 2-4 objects\n"
                "  with the described one circled by a thin red ellipse (1-2 px, scale 1.0-1.45 of the box)."
            )
        style = self.marking.describe()
        if self.marking_share is None:
            return (
                "Data recipe (each batch seeded by (seed, step)): each sample draws its kind: 60 % one object\n"
                "  anywhere on a light or dark background; 15 % one object filling the canvas; 25 % 2-4 objects\n"
                f"  with the described one circled by a thin ellipse ({style})."
            )
        share = 100 * self.marking_share
        if self.filler == "single":
            rest = (
                f"{0.8 * (100 - share):g} % one object anywhere on a light or dark background; "
                f"{0.2 * (100 - share):g} % one object filling the canvas"
            )
        else:
            rest = f"{100 - share:g} % 2-4 objects without a marking, the caption about a random one"
        return (
            f"Data recipe (each batch seeded by (seed, step); marking share exact per batch): {share:g} % 2-4\n"
            f"  objects with the described one circled by a thin ellipse ({style}); {rest}."
        )


def sample_training_example(
    rng: np.random.Generator,
    pseudo_names: list[str],
    image_size: int = 64,
    *,
    kind: str | None = None,
    marking: MarkingStyle = DEFAULT_MARKING,
    filler: str = "single",
) -> TrainingExample:
    """One training sample.

    ``kind=None`` draws the kind as the shipped recipe does: 60 % one object anywhere, 15 % one object
    filling the canvas (crop-like), 25 % 2-4 objects with the described one circled. ``kind="marked"``
    always marks the described object (of the objects that found a place); ``kind="unmarked"`` draws a
    ``filler`` sample (see :class:`TrainingRecipe`).
    """
    if kind is None:
        u = rng.random()
        if u < 0.6:
            scene = render_scene([random_spec(rng)], rng, layout="single", image_size=image_size)
            target, allow_pos = 0, True
        elif u < 0.75:
            scene = render_scene([random_spec(rng)], rng, layout="crop", image_size=image_size)
            target, allow_pos = 0, False
        else:
            n = int(rng.integers(2, 5))
            scene = render_scene(
                [random_spec(rng) for _ in range(n)],
                rng,
                layout="multi",
                marked=int(rng.integers(n)),
                marking=marking,
                image_size=image_size,
            )
            target, allow_pos = (scene.marked if scene.marked is not None else 0), False
    elif kind == "marked" or (kind == "unmarked" and filler == "multi"):
        n = int(rng.integers(2, 5))
        scene = render_scene([random_spec(rng) for _ in range(n)], rng, layout="multi", image_size=image_size)
        target, allow_pos = int(rng.integers(len(scene.objects))), False
        if kind == "marked":
            scene.image = draw_marking(scene.image, scene.objects[target].box, **marking.draw(rng))
            scene.marked = target
    elif kind == "unmarked":
        layout = "single" if rng.random() < 0.8 else "crop"
        scene = render_scene([random_spec(rng)], rng, layout=layout, image_size=image_size)
        target, allow_pos = 0, layout == "single"
    else:
        raise ValueError(f"kind must be None, 'marked' or 'unmarked', got {kind!r}")
    attrs = scene.objects[target].attributes(scene.background, image_size)
    caption, preds = make_caption(attrs, rng, pseudo_names, allow_position=allow_pos)
    return TrainingExample(scene.image, caption, attribute_vector(attrs), preds, scene.marked is not None)


def draw_training_batch(
    seed: int, step: int, batch_size: int, pseudo_names: list[str], recipe: TrainingRecipe, image_size: int = 64
) -> list[TrainingExample]:
    """Batch ``step`` of a training run, drawn from ``numpy.random.default_rng([seed, step])`` alone."""
    rng = np.random.default_rng([seed, step])
    count = recipe.marked_count(step, batch_size)
    if count is None:
        kinds: list[str | None] = [None] * batch_size
    else:
        marked = set(rng.permutation(batch_size)[:count].tolist())
        kinds = ["marked" if i in marked else "unmarked" for i in range(batch_size)]
    return [
        sample_training_example(rng, pseudo_names, image_size, kind=kind, marking=recipe.marking, filler=recipe.filler)
        for kind in kinds
    ]
