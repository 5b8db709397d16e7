"""Datasets: each builder returns an :class:`EvalDataset` (samples + class names + optional descriptors)."""

from descbench.datasets.base import DatasetError, EvalDataset

__all__ = ["DatasetError", "EvalDataset"]
