"""A cheap ImageNet-sized classification set for the scale benchmark: 1,000 classes of small procedurally
drawn JPEGs in the ImageFolder layout, with a class-name file and a ``{"words", "sentences"}`` descriptor
file (seven of each per class) that ``describe=world`` reads, as ImageNet with descriptors would be read.

The images are 32 px: what the benchmark measures is the per-job path after the image features are cached,
which does not depend on the pictures; the files are still listed and fingerprinted by every job, as the
files of a real set would be.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = ["red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "brown", "grey"]
PATTERNS = ["striped", "spotted", "checked", "plain", "speckled", "ringed", "banded", "mottled", "zigzag", "wavy"]
OBJECTS = ["kite", "shell", "lamp", "beetle", "vase", "leaf", "drum", "fish", "cap", "stone"]
SIDE = 32


def class_names(count: int) -> list[str]:
    """``count`` distinct names (colour, pattern, object), at most 1,000."""
    names = [f"{c} {p} {o}" for o in OBJECTS for p in PATTERNS for c in COLOURS]
    if count > len(names):
        raise ValueError(f"at most {len(names)} classes")
    return names[:count]


def descriptors(name: str) -> dict[str, list[str]]:
    """Seven word-style descriptors and seven sentences of one class (each names something of the class)."""
    colour, pattern, thing = name.split()
    words = [
        f"a {colour} body",
        f"a {pattern} surface",
        f"the outline of a {thing}",
        f"{colour} and {pattern} markings",
        f"a small {thing} shape",
        "a smooth edge",
        f"a {colour} centre",
    ]
    sentences = [
        f"A photo of a {name}, a {thing} with a {pattern} {colour} surface.",
        f"The {name} is mostly {colour} with {pattern} markings.",
        f"A {thing} whose surface is {pattern} and coloured {colour}.",
        f"This {name} has the outline of a {thing} seen from the front.",
        f"Its {pattern} pattern covers the whole {thing}.",
        f"The edges of the {name} are smooth and rounded.",
        f"Near its centre the {name} is a deeper {colour}.",
    ]
    return {"words": words, "sentences": sentences}


def write_scale_set(root: Path, classes: int, per_class: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """``classes`` x ``per_class`` JPEGs under ``root/images/<class folder>/``; returns (image folder, class-name
    file, descriptor file). Reuses a folder that already holds the same set (the files are not rewritten, so
    a cache made earlier stays valid)."""
    root = Path(root)
    folder, names_file, notes_file = root / "images", root / "class_names.tsv", root / "descriptors.json"
    stamp = root / "complete.json"
    spec = {"classes": classes, "per_class": per_class, "seed": seed, "side": SIDE}
    if stamp.is_file() and json.loads(stamp.read_text()) == spec:
        return folder, names_file, notes_file
    names = class_names(classes)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    for c in range(len(names)):
        sub = folder / f"c{c:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        colour = np.array([(c * 37) % 256, (c * 91) % 256, (c * 53) % 256], np.float32)
        angle, frequency = (c // 7) % 8 * np.pi / 8, 0.2 + 0.1 * (c % 7)
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * frequency)[..., None]
        noise = rng.normal(0.0, 14.0, (per_class, SIDE, SIDE, 3)).astype(np.float32)
        pictures = np.clip(colour * (0.6 + 0.4 * wave) + noise, 0, 255).astype(np.uint8)
        for i, picture in enumerate(pictures):
            Image.fromarray(picture).save(sub / f"{i:05d}.jpg", quality=90)
    names_file.write_text("".join(f"c{c:04d}\t{name}\n" for c, name in enumerate(names)))
    table = {name: descriptors(name) for name in names}
    notes = {kind: {name: table[name][kind] for name in names} for kind in ("words", "sentences")}
    notes_file.write_text(json.dumps(notes))
    stamp.write_text(json.dumps(spec))
    return folder, names_file, notes_file
