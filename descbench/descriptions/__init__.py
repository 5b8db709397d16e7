"""Description sources: what texts represent each class."""

from descbench.core.description_set import DescriptionError, DescriptionSet

__all__ = ["DescriptionSet", "DescriptionError"]
