"""The description set every source produces and the scoring head consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from descbench.errors import DescriptionError


@dataclass
class DescriptionSet:
    """Per-class descriptors and the exact texts given to the text encoder.

    ``descriptors[i]`` are the raw descriptors of ``classes[i]`` (what a source produced);
    ``texts[i]`` the strings that are encoded (after the "which is/has" formatting or a
    template). ``options`` records every option as applied, or why it does not apply;
    ``meta`` holds what is saved for inspection (prompts, raw answers, fallbacks).
    """

    source: str
    classes: list[str]
    descriptors: list[list[str]]
    texts: list[list[str]]
    options: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (len(self.classes) == len(self.descriptors) == len(self.texts)):
            raise DescriptionError("classes, descriptors and texts must have one entry per class")
        empty = [c for c, t in zip(self.classes, self.texts) if not t]
        if empty:
            raise DescriptionError(f"classes without any text to encode: {empty[:10]}")

    @property
    def counts(self) -> list[int]:
        return [len(t) for t in self.texts]

    def to_json(self) -> dict[str, Any]:
        """What ``descriptions.json`` in a run dir holds."""
        return {
            "source": self.source,
            "options": self.options,
            "classes": {
                c: {"descriptors": d, "texts": t} for c, d, t in zip(self.classes, self.descriptors, self.texts)
            },
            **self.meta,
        }
