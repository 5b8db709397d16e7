"""Data sets of the shapes world: named-class classification, descriptors and REC."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

CLASSES_FILE = Path(__file__).parent / "classes.yaml"


@lru_cache(maxsize=1)
def _classes() -> tuple[dict, ...]:
    return tuple(yaml.safe_load(CLASSES_FILE.read_text())["classes"])


def load_classes() -> list[dict]:
    """The classes of ``classes.yaml`` in label order (name, attributes, cues, words, sentences)."""
    return [dict(c) for c in _classes()]
