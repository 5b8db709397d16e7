"""What is said about the shapes world: noun phrases, captions with the predicates they assert,
and the training examples of the known-answer model (a rendered canvas and one caption of it).

Every function takes a ``numpy.random.Generator``; nothing reads global random state. The pixels
come from :mod:`descbench.world.rendering`.
"""

from __future__ import annotations

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
from descbench.world.rendering import random_spec, render_scene

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


def sample_training_example(
    rng: np.random.Generator, pseudo_names: list[str], image_size: int = 64
) -> tuple[Image.Image, str, list[int], list[Predicate]]:
    """One (image, caption, target attribute vector, caption predicates) for training.

    Recipe: 60 % one object anywhere, 15 % one object filling the canvas (crop-like),
    25 % 2-4 objects with the described one circled in red.
    """
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
            image_size=image_size,
        )
        target, allow_pos = (scene.marked if scene.marked is not None else 0), False
    attrs = scene.objects[target].attributes(scene.background, image_size)
    caption, preds = make_caption(attrs, rng, pseudo_names, allow_position=allow_pos)
    return scene.image, caption, attribute_vector(attrs), preds
