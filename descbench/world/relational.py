"""The relations world: REC canvases whose expressions can only be resolved by a spatial relation.

Each canvas holds a *group* of two to four identical objects (same shape, colour and pattern) and one or
two distractors of another shape and colour. Every expression names the group's kind and a relation
that singles out one member: "the left red circle", "the biggest star", "the second square from the
right", "the middle heart". Without the relation, the members look alike to CLIP (chance among them:
1 / group size); the distractors are told apart by the noun phrase. Families (``FAMILIES``):

- ``side``: 2 or 3 members spread along x or y; the member at either end ("left", "rightmost",
  "upper", "at the bottom"), and for 3 the second from an end;
- ``ordinal``: 4 members along x; the second from the left or right, the third from the left;
- ``middle``: 3 members along x; the middle one;
- ``size``: 2 or 3 members of different sizes, placed anywhere; "bigger"/"closer", "smallest"/"farthest".

Relation words avoid the world's trained size adjectives ("big", "small", "large", ...) and its trained
position phrases are only some of the phrasings, so the known-answer model cannot answer from words it
learned; the gold answer is computed from the drawn boxes (box centre, area), as the resolver reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from descbench.world.captions import noun_phrase
from descbench.world.lexicon import COLOURS, PATTERNS, SHAPES
from descbench.world.rendering import Scene, random_spec, render_scene

# (relation, rank) -> phrasings; rank counts from the relation's end (1 = the extreme)
TEMPLATES: dict[tuple[str, int], tuple[str, ...]] = {
    ("left", 1): ("the left {np}", "the leftmost {np}", "the {np} on the left"),
    ("right", 1): ("the right {np}", "the rightmost {np}", "the {np} on the right"),
    ("top", 1): ("the top {np}", "the upper {np}", "the {np} at the top"),
    ("bottom", 1): ("the bottom {np}", "the lower {np}", "the {np} at the bottom"),
    ("left", 2): ("the second {np} from the left", "the {np} second from the left"),
    ("right", 2): ("the second {np} from the right", "the {np} second from the right"),
    ("top", 2): ("the second {np} from the top",),
    ("bottom", 2): ("the second {np} from the bottom",),
    ("left", 3): ("the third {np} from the left",),
    ("middle", 1): ("the middle {np}", "the {np} in the middle"),
    ("bigger", 1): ("the bigger {np}", "the larger {np}", "the closer {np}"),
    ("smaller", 1): ("the smaller {np}", "the farther {np}"),
    ("biggest", 1): ("the biggest {np}", "the largest {np}", "the closest {np}"),
    ("smallest", 1): ("the smallest {np}", "the farthest {np}", "the tiniest {np}"),
}
# relation -> (box key, end): which member a (relation, rank) names
ORDER = {
    "left": ("x", "low"),
    "right": ("x", "high"),
    "top": ("y", "low"),
    "bottom": ("y", "high"),
    "middle": ("x", "middle"),
    "bigger": ("area", "high"),
    "smaller": ("area", "low"),
    "biggest": ("area", "high"),
    "smallest": ("area", "low"),
}


@dataclass(frozen=True)
class Family:
    """A kind of canvas: how many members, along which axis (None: anywhere, sizes differ), and the
    (relation, rank) pairs asked on it."""

    members: int
    axis: str | None
    asks: tuple[tuple[str, int], ...]


FAMILIES: dict[str, Family] = {
    "side2x": Family(2, "x", (("left", 1), ("right", 1))),
    "side2y": Family(2, "y", (("top", 1), ("bottom", 1))),
    "side3x": Family(3, "x", (("left", 1), ("right", 1), ("left", 2))),
    "side3y": Family(3, "y", (("top", 1), ("bottom", 1), ("bottom", 2))),
    "ordinal": Family(4, "x", (("left", 2), ("right", 2), ("left", 3))),
    "middle": Family(3, "x", (("middle", 1),)),
    "size2": Family(2, None, (("bigger", 1), ("smaller", 1))),
    "size3": Family(3, None, (("biggest", 1), ("smallest", 1))),
}
MEMBER_PX = {2: (12, 16), 3: (11, 14), 4: (10, 12)}  # side length (px at 64) of identical members, by count
SIZE_STEPS = (10, 14, 18, 22)  # distinct sides for the size family (areas differ by >= 1.5x)
MIN_GAP = 6.0  # px between neighbouring members' centres along the axis / between areas' sides


def _key(box, key: str) -> float:
    x, y, w, h = box
    return {"x": x + w / 2, "y": y + h / 2, "area": w * h}[key]


def answer(boxes: list, members: list[int], relation: str, rank: int) -> int | None:
    """The member named by (relation, rank) among ``members`` (indices into ``boxes``); None if two
    members are too close on the relation's key to tell them apart."""
    key, end = ORDER[relation]
    order = sorted(members, key=lambda i: _key(boxes[i], key))
    values = [_key(boxes[i], key) for i in order]
    gap = MIN_GAP if key != "area" else 1.2  # areas: the next must be 1.2x bigger
    if any((b - a < gap) if key != "area" else (b < gap * a) for a, b in zip(values, values[1:])):
        return None
    if end == "middle":
        return order[len(order) // 2] if len(order) % 2 else None
    if end == "high":
        order.reverse()
    return order[rank - 1]


class ShapesRelations:
    """The relations world's REC set: ``expressions[k]`` = ``{image_id, expression, boxes, gold_index, split,
    family, relation, rank, members}`` (``members``: indices of the identical objects); :attr:`stats` counts
    canvases per family and expressions per group size (``group_of_2`` ...)."""

    def __init__(self, num_canvases: int = 120, seed: int = 11, image_size: int = 64) -> None:
        self.seed, self.image_size = seed, image_size
        self._scenes: dict[str, Scene] = {}
        self.expressions: list[dict] = []
        # canvases per family; expressions per group size (chance among the identical objects: sum of count / size)
        self.stats = {f"family_{name}": 0 for name in FAMILIES} | {f"group_of_{n}": 0 for n in (2, 3, 4)}
        names = list(FAMILIES)
        for k in range(num_canvases):
            image_id = f"shapes-relations-{seed}-{k:05d}"
            family = names[k % len(names)]  # every family equally often
            scene, members, asked = self._build(k, FAMILIES[family])
            self._scenes[image_id] = scene
            self.stats[f"family_{family}"] += 1
            boxes = [list(o.box) for o in scene.objects]
            self.stats[f"group_of_{len(members)}"] += len(asked)
            for text, relation, rank, gold in asked:
                self.expressions.append(
                    {
                        "image_id": image_id,
                        "expression": text,
                        "boxes": boxes,
                        "gold_index": gold,
                        "split": "val",
                        "family": family,
                        "relation": relation,
                        "rank": rank,
                        "members": members,
                    }
                )

    def _build(self, k: int, family: Family) -> tuple[Scene, list[int], list[tuple[str, str, int, int]]]:
        for attempt in range(100):
            rng = np.random.default_rng([self.seed, k, attempt])
            kind = random_spec(rng)
            kind["size"] = "small"
            kind["look"] = int(rng.integers(2**31))  # identical members: same colour jitter, same pattern phase
            specs = [dict(kind) for _ in range(family.members)]
            if family.axis is None:
                sides = sorted(rng.choice(SIZE_STEPS, size=family.members, replace=False).tolist())
                for spec, side in zip(specs, sides):
                    spec["px"] = int(side)
            else:
                px = int(rng.integers(*MEMBER_PX[family.members], endpoint=True))
                self._spread(specs, px, family.axis, rng)
            for _ in range(int(rng.integers(1, 3))):  # distractors: another shape and colour
                other = random_spec(rng)
                other["shape"] = _other(SHAPES, kind["shape"], rng)
                other["colour"] = _other(COLOURS, kind["colour"], rng)
                other["pattern"] = PATTERNS[int(rng.integers(len(PATTERNS)))]
                other["size"] = "small"
                specs.append(other)
            # members first (placed ones must not land on a distractor), then shuffled: not always the first boxes
            scene = render_scene(specs, rng, layout="multi", image_size=self.image_size)
            if len(scene.objects) != len(specs):
                continue  # a distractor found no room: draw the canvas again
            order = rng.permutation(len(specs)).tolist()
            scene.objects = [scene.objects[i] for i in order]
            members = [n for n, i in enumerate(order) if i < family.members]
            boxes = [o.box for o in scene.objects]
            golds = [answer(boxes, members, relation, rank) for relation, rank in family.asks]
            if any(g is None for g in golds):
                continue
            attrs = scene.objects[members[0]].attributes(scene.background, self.image_size)
            asked = []
            for (relation, rank), gold in zip(family.asks, golds):
                phrase, _ = noun_phrase(attrs, rng, {"colour": True, "shape": True})
                options = TEMPLATES[(relation, rank)]
                asked.append((options[int(rng.integers(len(options)))].format(np=phrase), relation, rank, gold))
            return scene, members, asked
        raise RuntimeError(f"relations world: no valid canvas for seed {self.seed}, canvas {k} after 100 attempts")

    def _spread(self, specs: list[dict], px: int, axis: str, rng: np.random.Generator) -> None:
        """Place the members in equal bands along ``axis`` (jittered), anywhere across it."""
        size = self.image_size
        side = round(px * size / 64)
        band = size / len(specs)
        for n, spec in enumerate(specs):
            spec["px"] = px
            along = int(n * band + rng.integers(0, max(1, int(band) - side)))
            across = int(rng.integers(1, size - side - 1))
            spec["at"] = (along, across) if axis == "x" else (across, along)

    def __len__(self) -> int:
        return len(self.expressions)

    def load_image(self, image_id: str) -> Image.Image:
        """The canvas ``image_id`` (an RGB PIL image)."""
        return self._scenes[image_id].image

    def scene(self, image_id: str) -> Scene:
        return self._scenes[image_id]


def _other(values, avoid: str, rng: np.random.Generator) -> str:
    choices = [v for v in values if v != avoid]
    return choices[int(rng.integers(len(choices)))]
