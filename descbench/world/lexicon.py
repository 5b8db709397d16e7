"""The words of the shapes world: attribute values, their synonyms and descriptor cues.

A *cue* is a true-or-false statement about one attribute of an object ("red",
"eight sides", "warm-coloured"), i.e. a set of allowed values of that attribute.
Captions are conjunctions of cues, which is what the multi-positive training loss
and the class descriptors are built from.
"""

from __future__ import annotations

from dataclasses import dataclass

SHAPES = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "diamond",
    "hexagon",
    "octagon",
    "ring",
    "crescent",
    "heart",
    "rectangle",
)
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "white", "black")
PATTERNS = ("plain", "striped", "dotted", "checkered", "outlined")
SIZES = ("small", "large", "unsized")  # "unsized": crop-like canvases, never captioned with a size
HPOS = ("left", "center", "right")
VPOS = ("top", "middle", "bottom")
BACKGROUNDS = ("light", "dark")

#: attribute name -> its values; the order of this dict is the column order of attribute vectors
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": COLOURS,
    "pattern": PATTERNS,
    "size": SIZES,
    "hpos": HPOS,
    "vpos": VPOS,
    "background": BACKGROUNDS,
}
ATTRIBUTE_INDEX = {name: i for i, name in enumerate(ATTRIBUTES)}

RGB = {
    "red": (220, 20, 30),
    "orange": (245, 130, 20),
    "yellow": (250, 225, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "purple": (130, 40, 170),
    "pink": (250, 140, 190),
    "brown": (125, 70, 30),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}
#: the second colour of striped / dotted / checkered objects: fixed per colour so it is learnable
SECOND_COLOUR = {c: ("black" if c in ("white", "yellow", "orange", "pink") else "white") for c in COLOURS}

# Synonyms used in noun phrases of captions.
SHAPE_NOUNS = {
    "circle": ["circle", "disc", "round shape", "circular shape"],
    "square": ["square", "square shape"],
    "triangle": ["triangle", "triangular shape"],
    "star": ["star", "star shape"],
    "cross": ["cross", "plus shape", "cross shape"],
    "diamond": ["diamond", "rhombus", "diamond shape"],
    "hexagon": ["hexagon", "six-sided shape"],
    "octagon": ["octagon", "eight-sided shape"],
    "ring": ["ring", "hoop", "ring shape"],
    "crescent": ["crescent", "crescent shape"],
    "heart": ["heart", "heart shape"],
    "rectangle": ["rectangle", "oblong", "rectangular shape"],
}
COLOUR_ADJ = {c: [c] for c in COLOURS} | {"red": ["red", "scarlet"], "purple": ["purple", "violet"], "white": ["white"]}
PATTERN_ADJ = {
    "plain": ["plain", "solid"],
    "striped": ["striped", "stripy"],
    "dotted": ["dotted", "spotted", "polka-dot"],
    "checkered": ["checkered", "chequered", "checked"],
    "outlined": ["outlined", "outline-only"],
}
PATTERN_WITH = {
    "plain": ["with no pattern", "in a single solid colour"],
    "striped": ["with stripes", "with a striped pattern"],
    "dotted": ["with dots", "with spots", "with a dotted pattern"],
    "checkered": ["with checks", "with a checkered pattern"],
    "outlined": ["drawn as an outline", "with only its outline drawn"],
}
SIZE_ADJ = {"small": ["small", "little", "tiny"], "large": ["large", "big"]}
HPOS_PHRASE = {"left": ["on the left"], "center": ["in the center", "in the middle"], "right": ["on the right"]}
VPOS_PHRASE = {"top": ["at the top"], "middle": ["in the middle"], "bottom": ["at the bottom"]}
BACKGROUND_PHRASE = {
    "light": ["on a light background", "on a pale background"],
    "dark": ["on a dark background", "on a black background"],
}
GENERIC_NOUNS = ["shape", "object", "thing", "figure", "one"]


@dataclass(frozen=True)
class Cue:
    """One descriptor: a set of allowed values of one attribute, in words and as a sentence."""

    key: str
    attr: str
    values: frozenset[str]
    words: tuple[str, ...]  # word-style phrasings, the first is the canonical one
    sentence: str  # "{Name}" is replaced by "A stop sign"

    def render_sentence(self, name: str) -> str:
        article = "An" if name[:1].lower() in "aeiou" else "A"
        return self.sentence.replace("{Name}", f"{article} {name}")


def _cue(key: str, attr: str, values, words, sentence: str) -> Cue:
    return Cue(key, attr, frozenset(values), tuple(words), sentence)


_WARM = ("red", "orange", "yellow", "pink", "brown")
_COOL = ("green", "blue", "purple")
_CORNERED = ("square", "rectangle", "triangle", "star", "cross", "diamond", "hexagon", "octagon")
_CURVED = ("circle", "ring", "crescent", "heart")

CUES: dict[str, Cue] = {
    c.key: c
    for c in [
        *[
            _cue(col, "colour", [col], [col, f"{col} colour"], f"{{Name}} is usually {col} in colour.")
            for col in COLOURS
        ],
        _cue("warm", "colour", _WARM, ["warm-coloured", "a warm colour"], "{Name} has a warm colour."),
        _cue("cool", "colour", _COOL, ["cool-coloured", "a cool colour"], "{Name} has a cool colour."),
        _cue(
            "bright",
            "colour",
            ("yellow", "white", "pink", "orange"),
            ["bright", "a bright colour"],
            "{Name} is brightly coloured.",
        ),
        _cue(
            "darkcol",
            "colour",
            ("black", "brown", "blue", "purple"),
            ["dark-coloured", "a dark colour"],
            "{Name} has a dark colour.",
        ),
        _cue(
            "circle",
            "shape",
            ["circle"],
            ["circular", "a circle shape", "a disc shape"],
            "{Name} is circular in shape.",
        ),
        _cue("square", "shape", ["square"], ["square", "four equal sides"], "{Name} is square in shape."),
        _cue("rectangle", "shape", ["rectangle"], ["rectangular", "oblong"], "{Name} is rectangular in shape."),
        _cue("triangle", "shape", ["triangle"], ["triangular", "three sides"], "{Name} is triangular in shape."),
        _cue("star", "shape", ["star"], ["star-shaped", "five points"], "{Name} is shaped like a star."),
        _cue("cross", "shape", ["cross"], ["cross-shaped", "four arms"], "{Name} is shaped like a cross."),
        _cue(
            "diamond", "shape", ["diamond"], ["diamond-shaped", "a rhombus shape"], "{Name} is shaped like a diamond."
        ),
        _cue("hexagon", "shape", ["hexagon"], ["hexagonal", "six sides"], "{Name} is hexagonal in shape."),
        _cue("octagon", "shape", ["octagon"], ["octagonal", "eight sides"], "{Name} is octagonal in shape."),
        _cue("ring", "shape", ["ring"], ["ring-shaped", "a hole in the middle"], "{Name} is shaped like a ring."),
        _cue(
            "crescent",
            "shape",
            ["crescent"],
            ["crescent-shaped", "a crescent shape"],
            "{Name} is shaped like a crescent.",
        ),
        _cue("heart", "shape", ["heart"], ["heart-shaped", "a heart shape"], "{Name} is shaped like a heart."),
        _cue("round", "shape", ("circle", "ring"), ["round", "a round outline"], "{Name} is round."),
        _cue("curved", "shape", _CURVED, ["curved edges", "no corners"], "{Name} has curved edges."),
        _cue("corners", "shape", _CORNERED, ["corners", "straight edges"], "{Name} has corners and straight edges."),
        _cue(
            "pointed",
            "shape",
            ("triangle", "star", "diamond"),
            ["pointed tips", "sharp points"],
            "{Name} has pointed tips.",
        ),
        _cue("manysided", "shape", ("hexagon", "octagon"), ["many sides"], "{Name} has many sides."),
        _cue("fourcorners", "shape", ("square", "rectangle", "diamond"), ["four corners"], "{Name} has four corners."),
        _cue(
            "plain",
            "pattern",
            ["plain"],
            ["plain", "no pattern", "a solid colour"],
            "{Name} has a plain surface with no pattern.",
        ),
        _cue("striped", "pattern", ["striped"], ["stripes", "striped"], "{Name} is covered in stripes."),
        _cue("dotted", "pattern", ["dotted"], ["spots", "dots", "dotted"], "{Name} is covered in spots."),
        _cue(
            "checkered", "pattern", ["checkered"], ["a checkered pattern", "checks"], "{Name} has a checkered pattern."
        ),
        _cue("outlined", "pattern", ["outlined"], ["an outline", "only an outline"], "{Name} is drawn as an outline."),
        _cue(
            "patterned",
            "pattern",
            ("striped", "dotted", "checkered"),
            ["a pattern", "patterned"],
            "{Name} has a pattern on it.",
        ),
        _cue(
            "filled",
            "pattern",
            ("plain", "striped", "dotted", "checkered"),
            ["filled", "a filled shape"],
            "{Name} is filled in.",
        ),
        _cue("small", "size", ["small"], ["small", "small size"], "{Name} is usually small."),
        _cue("large", "size", ["large"], ["large", "large size"], "{Name} is usually large."),
    ]
}


def cue_mask(cue: Cue) -> tuple[int, int]:
    """(attribute column, bitmask of allowed values) of a cue."""
    values = ATTRIBUTES[cue.attr]
    return ATTRIBUTE_INDEX[cue.attr], sum(1 << values.index(v) for v in cue.values)


def vocabulary_words() -> set[str]:
    """Every word the caption generator can emit (for the class-name leak test)."""
    phrases: list[str] = []
    for table in (
        SHAPE_NOUNS,
        COLOUR_ADJ,
        PATTERN_ADJ,
        PATTERN_WITH,
        SIZE_ADJ,
        HPOS_PHRASE,
        VPOS_PHRASE,
        BACKGROUND_PHRASE,
    ):
        for options in table.values():
            phrases.extend(options)
    phrases.extend(GENERIC_NOUNS)
    for cue in CUES.values():
        phrases.extend(cue.words)
        phrases.append(cue.sentence.replace("{Name}", ""))
    return {w.strip(".,").lower() for p in phrases for w in p.replace("-", " ").split()}
