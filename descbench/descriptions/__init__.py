"""Description sources: what texts represent each class."""

from descbench.descriptions.types import DescriptionError, DescriptionSet

__all__ = ["DescriptionSet", "DescriptionError"]
