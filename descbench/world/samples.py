"""Data sets of the shapes world: named-class classification, its descriptors, and REC.

Every sample is generated from ``numpy.random.default_rng([seed, index])``, so any index
can be built on its own (worker processes, DDP ranks) and always looks the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from descbench.core.errors import DatasetError
from descbench.world import CLASSES_FILE, DESCRIPTOR_FILES
from descbench.world.captions import noun_phrase
from descbench.world.lexicon import COLOURS, PATTERNS, SHAPES
from descbench.world.rendering import Scene, random_spec, render_scene

_ATTRS = {"shape": SHAPES, "colour": COLOURS, "pattern": PATTERNS, "size": ("small", "large")}


@lru_cache(maxsize=1)
def _classes() -> tuple[dict, ...]:
    return tuple(yaml.safe_load(CLASSES_FILE.read_text())["classes"])


def load_classes() -> list[dict]:
    """The classes of ``classes.yaml`` in label order (name, attributes, cues, words, sentences)."""
    return [dict(c) for c in _classes()]


def world_descriptors(detailed: bool = False) -> dict[str, list[str]]:
    """Each class's true descriptors in their fixed order: words (``"red"``) or sentences."""
    key = "sentences" if detailed else "words"
    return {c["name"]: list(c[key]) for c in _classes()}


def load_descriptor_file(detailed: bool = False) -> dict[str, list[str]]:
    """The shipped 8-descriptor file in the published ``{class: [descriptor, ...]}`` format."""
    return json.loads(DESCRIPTOR_FILES[detailed].read_text())


def class_specimen(attributes: dict[str, str], rng: np.random.Generator, attr_prob: float) -> dict[str, str]:
    """Object attributes for one image of a class: each attribute follows the class with ``attr_prob``."""
    spec = random_spec(rng)
    for name in _ATTRS:
        follow = rng.random() < attr_prob
        if follow and name in attributes:
            spec[name] = attributes[name]
    return spec


class ShapesClassification(torch.utils.data.Dataset):
    """Named classes of the shapes world ("stop sign", "ladybird", ...), ``num_per_class`` images each.

    Labels follow ``classes.yaml``; sample ``i`` has label ``i // num_per_class``.
    """

    def __init__(
        self,
        num_per_class: int = 20,
        seed: int = 2024,
        attr_prob: float = 0.8,
        image_size: int = 64,
        transform: Callable | None = None,
    ) -> None:
        self.num_per_class, self.seed, self.attr_prob = num_per_class, seed, attr_prob
        self.image_size, self.transform = image_size, transform
        self.classes: list[str] = [c["name"] for c in _classes()]
        self.targets: list[int] = [i // num_per_class for i in range(len(self))]

    def __len__(self) -> int:
        return self.num_per_class * len(self.classes)

    def scene(self, index: int) -> Scene:
        """The drawn canvas of sample ``index`` with its object and attributes."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        rng = np.random.default_rng([self.seed, index])
        spec = class_specimen(_classes()[index // self.num_per_class]["attributes"], rng, self.attr_prob)
        return render_scene([spec], rng, layout="single", image_size=self.image_size)

    def __getitem__(self, index: int):
        image = self.scene(index).image
        if self.transform is not None:
            image = self.transform(image)
        return image, index // self.num_per_class

    def sample_ids(self) -> list[str]:
        """Stable per-sample ids for caches."""
        return [f"shapes:{self.seed}:{self.attr_prob}:{self.image_size}:{i}" for i in range(len(self))]


# --------------------------------------------------------------------------- REC

_SINGLE = (("colour",), ("shape",), ("pattern",))
_PAIRS = (("colour", "shape"), ("pattern", "shape"), ("colour", "pattern"))


def _unique(target: dict, others: list[dict], attrs: tuple[str, ...]) -> bool:
    return all(any(o[a] != target[a] for a in attrs) for o in others)


def referring_expression(
    target: dict[str, str], others: list[dict[str, str]], rng: np.random.Generator
) -> tuple[str, tuple[str, ...]] | None:
    """An expression naming the fewest attributes that single out ``target`` (None if none does)."""
    groups = [_SINGLE, _PAIRS, (("colour", "shape", "pattern"),)]
    if rng.random() < 0.35:  # people often say more than needed: "the red circle"
        groups = groups[1:]
    for group in groups:
        options = [g for g in group if _unique(target, others, g)]
        if options:
            chosen = options[int(rng.integers(len(options)))]
            phrase, _ = noun_phrase(target, rng, {a: True for a in chosen})
            template = ("the {}", "{}", "the {} in the picture")[int(rng.integers(3))]
            return template.format(phrase), chosen
    return None


#: canvas shapes of the REC set: ``square`` (image_size x image_size) or ``mixed`` (4:3 and 3:4)
ASPECTS = ("square", "mixed")
EDGES = ("left", "right", "top", "bottom")
EDGE_PROB = 0.4  # mixed canvases: chance that an object is placed flush with a long-axis edge
# (long, short) side of a mixed canvas at image_size 64: 4:3, the long side that of the square canvases, objects
# at the same pixel scale. So no geometry shrinks the content: the shipped model never saw downscaled objects,
# and on 85 x 64 canvases every geometry loses 15-20 points to that alone, which would hide the geometry's effect.
MIXED_SIDES = (64, 48)


class ShapesREC:
    """Referring expressions on canvases of 2-4 objects, with gold boxes.

    About half the canvases hold a distractor sharing the target's colour and another
    sharing its shape, so that two attributes are needed to single it out.
    ``expressions[k]``: ``{image_id, expression, boxes (all objects), gold_index, split, attributes,
    canvas (w, h), target_edges}``.

    ``aspect="mixed"``: every canvas is 4:3 or 3:4 (:data:`MIXED_SIDES`: 64 x 48 or 48 x 64 at image_size 64,
    objects at the same pixel scale as on square canvases), and each object is placed flush with one of
    the two edges of the canvas's long axis (where a centre crop cuts) with probability ``EDGE_PROB``;
    ``target_edges`` lists the edges the referred object's box touches, and :attr:`stats` counts canvases
    by orientation and targets at an edge. ``aspect="square"`` draws exactly the canvases of earlier releases.
    """

    def __init__(
        self,
        num_canvases: int = 100,
        seed: int = 7,
        num_objects: tuple[int, int] = (2, 4),
        image_size: int = 64,
        aspect: str = "square",
    ) -> None:
        if aspect not in ASPECTS:
            raise DatasetError(f"dataset.builder.aspect={aspect!r} is not a canvas aspect: use {' or '.join(ASPECTS)}")
        self.seed, self.num_objects, self.image_size, self.aspect = seed, tuple(num_objects), image_size, aspect
        self._scenes: dict[str, Scene] = {}
        self.expressions: list[dict] = []
        self.stats = {"canvases_square": 0, "canvases_landscape": 0, "canvases_portrait": 0, "targets_at_edge": 0}
        prefix = "shapes-rec" if aspect == "square" else f"shapes-rec-{aspect}"
        for k in range(num_canvases):
            image_id = f"{prefix}-{seed}-{k:05d}"
            scene, expressions = self._build(k)
            self._scenes[image_id] = scene
            width, height = scene.size
            self.stats[
                "canvases_" + ("square" if width == height else "landscape" if width > height else "portrait")
            ] += 1
            boxes = [list(o.box) for o in scene.objects]
            for gold, text, attrs in expressions:
                edges = scene.edges(gold)
                self.stats["targets_at_edge"] += bool(edges)
                self.expressions.append(
                    {
                        "image_id": image_id,
                        "expression": text,
                        "boxes": boxes,
                        "gold_index": gold,
                        "split": "val",
                        "attributes": list(attrs),
                        "canvas": [width, height],
                        "target_edges": edges,
                    }
                )

    def _build(self, k: int) -> tuple[Scene, list[tuple[int, str, tuple[str, ...]]]]:
        rng = np.random.default_rng([self.seed, k])
        lo, hi = self.num_objects
        n = int(rng.integers(lo, hi + 1))
        specs = [random_spec(rng) for _ in range(n)]
        if n >= 3 and rng.random() < 0.5:  # object 0 can only be singled out by colour and shape together
            specs[1]["colour"], specs[1]["pattern"] = specs[0]["colour"], specs[0]["pattern"]
            specs[2]["shape"], specs[2]["pattern"] = specs[0]["shape"], specs[0]["pattern"]
        order = rng.permutation(n)
        specs = [specs[i] for i in order]
        canvas = None
        if self.aspect == "mixed":  # drawn only here, so square canvases keep their random stream
            long, short = (round(side * self.image_size / 64) for side in MIXED_SIDES)
            canvas = (long, short) if rng.random() < 0.5 else (short, long)
            edges = EDGES[:2] if canvas[0] > canvas[1] else EDGES[2:]  # the long axis: where a centre crop cuts
            for spec in specs:
                if rng.random() < EDGE_PROB:
                    spec["edge"] = edges[int(rng.integers(len(edges)))]
        scene = render_scene(specs, rng, layout="multi", image_size=self.image_size, canvas_size=canvas)
        attrs = [o.attributes(scene.background, scene.size) for o in scene.objects]
        expressions = []
        for t in rng.permutation(len(attrs)).tolist():  # every object that can be singled out is referred to
            found = referring_expression(attrs[t], [a for i, a in enumerate(attrs) if i != t], rng)
            if found:
                expressions.append((t, *found))
        return scene, expressions

    def __len__(self) -> int:
        return len(self.expressions)

    def load_image(self, image_id: str) -> Image.Image:
        """The canvas ``image_id`` (an RGB PIL image)."""
        return self._scenes[image_id].image

    def scene(self, image_id: str) -> Scene:
        return self._scenes[image_id]

    def export_jsonl(self, path: str | Path) -> Path:
        """Write the JSON-lines REC layout (one line per referred box) and the PNGs next to it.

        Each line also carries ``boxes``: all objects of its canvas (the ground-truth proposals).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for ann_id, e in enumerate(self.expressions):
            file_name = f"{e['image_id']}.png"
            image_path = path.parent / file_name
            if not image_path.exists():
                self.load_image(e["image_id"]).save(image_path)
            box = e["boxes"][e["gold_index"]]
            lines.append(
                json.dumps(
                    {
                        "file_name": file_name,
                        "image_id": e["image_id"],
                        "anns": [{"bbox": [float(v) for v in box], "id": ann_id}],
                        "ann_id": ann_id,
                        "sentences": [{"raw": e["expression"]}],
                        "split": e["split"],
                        "boxes": e["boxes"],
                        "width": e["canvas"][0],
                        "height": e["canvas"][1],
                    }
                )
            )
        path.write_text("\n".join(lines) + "\n")
        return path
