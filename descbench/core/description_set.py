"""The description set every source produces and the scoring head consumes."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from descbench.core.errors import DescriptionError


@dataclass
class DescriptionSet:
    """Per-class descriptors and the exact texts given to the text encoder.

    ``descriptors[i]`` are the raw descriptors of ``classes[i]`` (what a source produced);
    ``texts[i]`` the strings that are encoded (after the "which is/has" formatting or a
    template). Classes are identified by their index: two classes may share a name.

    What a run records, by dict:

    - ``options``: every setting as applied, or why it does not apply (the sweep's axes;
      results.json ``describe.<key>``).
    - ``stats``: what the source produced: scalar or short-list outcomes that results.json
      records but that are not settings (``describe.stats.<key>`` or flat; never a grouping
      key of the report). See :func:`count_stats` for the count keys every source fills.
    - ``meta``: bulk data for inspection, saved in ``descriptions.json`` only (prompts, raw
      answers, per-class key matches).

    What the classification task acts on:

    - ``repetitions``: for a source with random repetitions (``reps > 1``: waffle, swapped,
      shuffled), one complete DescriptionSet per repetition, repetition 0 first, each with
      its own ``options["rep"]`` and ``options["seed"]``. The task evaluates them one by
      one and records each repetition's metrics and their mean and std. The top-level
      texts are those of repetition 0, so code that ignores ``repetitions`` evaluates
      repetition 0. Empty for a deterministic source (use :meth:`all_repetitions`).
    - ``excluded``: indices of classes whose images the task leaves out of the metrics
      (classes whose answer does not have the examples' count, ``describe.exclude_wrong_count=class``;
      the study's own rule, ``point``, marks a whole point instead and excludes no class). An excluded class stays in the label space
      with its texts, so the candidates every image is scored against are unchanged.

    What the text cache acts on:

    - ``ahead``: texts this set does not score but that the same source renders for the other values of
      ``num_desc`` (the descriptors past the first ``num_desc`` of each class, in this set's form). In a
      multirun with the text cache on, the job that encodes texts encodes these too, once, so that the
      other jobs of a ``num_desc`` sweep find every text they need in the cache. Never scored; not part of
      any result.
    """

    source: str
    classes: list[str]
    descriptors: list[list[str]]
    texts: list[list[str]]
    options: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    repetitions: list[DescriptionSet] = field(default_factory=list)
    excluded: list[int] = field(default_factory=list)
    ahead: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (len(self.classes) == len(self.descriptors) == len(self.texts)):
            raise DescriptionError("classes, descriptors and texts must have one entry per class")
        empty = [c for c, t in zip(self.classes, self.texts) if not t]
        if empty:
            raise DescriptionError(f"classes without any text to encode: {empty[:10]}")
        bad = [i for i in self.excluded if not 0 <= i < len(self.classes)]
        if bad:
            raise DescriptionError(f"excluded class indices out of range: {bad[:10]}")

    @property
    def counts(self) -> list[int]:
        """Texts per class (the ragged layout of the description head)."""
        return [len(t) for t in self.texts]

    def all_repetitions(self) -> list[DescriptionSet]:
        """The sets to evaluate: every repetition, or just this set when it has none."""
        return list(self.repetitions) or [self]

    def to_json(self) -> dict[str, Any]:
        """What ``descriptions.json`` in a run dir holds (one entry per class index, names may repeat)."""
        out = {
            "source": self.source,
            "options": self.options,
            "stats": self.stats,
            "classes": [
                {"index": i, "class": c, "descriptors": d, "texts": t}
                for i, (c, d, t) in enumerate(zip(self.classes, self.descriptors, self.texts))
            ],
            "excluded": self.excluded,
            **self.meta,
        }
        if self.repetitions:
            out["repetitions"] = [
                {"options": r.options, "classes": [{"index": i, "texts": t} for i, t in enumerate(r.texts)]}
                for r in self.repetitions
            ]
        return out


def count_stats(
    classes: Sequence[str], descriptors: Sequence[Sequence[str]], num_desc: int | None, fallback: Sequence[int] = ()
) -> dict[str, Any]:
    """The count outcomes every source records.

    ``desc_min``/``desc_mean``/``desc_max``: descriptors actually used per class (0 for a
    class that fell back to a text without descriptor); ``num_short``: classes with fewer
    than ``num_desc`` descriptors (None when the source has no ``num_desc``);
    ``num_fallback``/``fallback_classes``: classes whose text is a fallback (empty list).
    """
    used = [len(d) for d in descriptors]
    return {
        "desc_min": min(used) if used else 0,
        "desc_mean": round(sum(used) / len(used), 4) if used else 0.0,
        "desc_max": max(used) if used else 0,
        "num_short": None if num_desc is None else sum(n < num_desc for n in used),
        "num_fallback": len(fallback),
        "fallback_classes": [classes[i] for i in fallback],
    }


def derangement(n: int, rng: random.Random) -> list[int]:
    """A seeded permutation of ``range(n)`` that moves every index (the ``swapped`` control's assignment)."""
    if n < 2:
        raise DescriptionError("the swapped control needs at least 2 classes")
    while True:
        perm = list(range(n))
        rng.shuffle(perm)
        if all(i != p for i, p in enumerate(perm)):
            return perm
