"""The first ``count`` items of a data set held as one list attribute (``dataset.limit`` of REC, keypoints, people)."""

from __future__ import annotations

import copy
from typing import TypeVar

from descbench.core.errors import DatasetError

T = TypeVar("T")


def keep_first(dataset: T, attribute: str, count: int | None) -> T:
    """``dataset`` itself when ``count`` is None or covers it, else a shallow copy whose list ``attribute``
    keeps its first ``count`` items; ``count < 1`` is a one-line error."""
    items = getattr(dataset, attribute)
    if count is None:
        return dataset
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise DatasetError(f"dataset.limit must be null or an integer >= 1, got {count!r}")
    if count >= len(items):
        return dataset
    subset = copy.copy(dataset)
    setattr(subset, attribute, items[:count])
    return subset
