"""Named choices of an option, declared once as an ``Enum`` beside the code that uses them.

A :class:`Choice` is a ``str`` (it compares, hashes, formats and serialises as its value, so results and
cache keys read ``"score_mean"``) and an ``Enum``, which Hydra checks while composing a config whose schema
(derived from a signature) names it: ``task.aggregation=nope`` fails there with the valid values listed.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from descbench.core.errors import ConfigError


class Choice(str, Enum):
    """A choice among named values (subclass with one member per value: ``name = "name"``)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def values(cls) -> list[str]:
        """The valid values, in declaration order."""
        return [m.value for m in cls]

    @classmethod
    def parse(cls, value: Any, key: str) -> Choice:
        """``value`` as a member, or a one-line :class:`ConfigError` naming ``key`` and the valid values
        (for calls that do not come through a composed config: tests, the library API)."""
        try:
            return cls(value.value if isinstance(value, Enum) else value)
        except ValueError:
            raise ConfigError(f"{key}={value!r} is not one of {', '.join(cls.values())}") from None
