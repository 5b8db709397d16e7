"""Description sources: what texts represent each class."""

from descbench.descriptions.types import DescriptionSet, DescriptionError

__all__ = ["DescriptionSet", "DescriptionError"]
