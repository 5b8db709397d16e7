"""Named choices and number ranges of options, declared once in the signature of the code that uses them.

A :class:`Choice` is a ``str`` (it compares, hashes, formats and serialises as its value, so results and
cache keys read ``"score_mean"``) and an ``Enum``, which Hydra checks while composing a config whose schema
(derived from a signature) names it: ``task.aggregation=nope`` fails there with the valid values listed.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Range:
    """The bounds of a number, written in its annotation: ``thickness: Annotated[float, Range(gt=0)] = 2``.

    Hydra checks the type while composing; :func:`check_value` checks the bounds (the shell checks every option
    of a built config node against the signature of what it builds, before anything loads).
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    integer: bool = False

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is out of range (None when it is in)."""
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number or (self.integer and not float(value).is_integer()):
            kind = "an integer" if self.integer else "a finite number"
            return f"must be {kind}{self._bounds()}"
        if (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
        ):
            return f"must be {'an integer' if self.integer else 'a number'}{self._bounds()}"
        return None

    def _bounds(self) -> str:
        parts = [f">= {self.ge:g}" if self.ge is not None else "", f"> {self.gt:g}" if self.gt is not None else ""]
        parts.append(f"<= {self.le:g}" if self.le is not None else "")
        shown = " and ".join(p for p in parts if p)
        return f" {shown}" if shown else ""


def _unwrap(hint: Any) -> tuple[Any, list[Any]]:
    """``(base type, metadata)`` of an annotation: ``Annotated`` metadata collected, ``X | None`` reduced to X."""
    metadata: list[Any] = []
    while True:
        if typing.get_origin(hint) is typing.Annotated:
            metadata += list(hint.__metadata__)
            hint = typing.get_args(hint)[0]
            continue
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
            hint = args[0]
            continue
        return hint, metadata


def check_value(key: str, value: Any, hint: Any) -> Any:
    """``value`` checked against what its annotation declares, or one :class:`ConfigError` line naming ``key``:
    a :class:`Choice` (returned as the member), metadata with a ``problem(value)`` method (a :class:`Range`, a
    colour check...). ``None`` passes: whether an option may be left out is the type's business."""
    if value is None:
        return value
    base, metadata = _unwrap(hint)
    if isinstance(base, type) and issubclass(base, Choice):
        return base.parse(value, key)
    for meta in metadata:
        problem = getattr(meta, "problem", None)
        text = problem(value) if callable(problem) else None
        if text:
            raise ConfigError(f"{key}={value!r} {text}")
    return value


def check_arguments(fn: Any, arguments: typing.Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Every argument of ``fn`` in ``arguments`` checked against its annotation (keys named ``prefix.<name>``)."""
    hints = typing.get_type_hints(fn, include_extras=True)
    return {k: check_value(f"{prefix}.{k}", v, hints[k]) if k in hints else v for k, v in arguments.items()}


#: common ranges
Positive = Range(gt=0)
NonNegative = Range(ge=0)
Count = Range(ge=1, integer=True)
Natural = Range(ge=0, integer=True)
