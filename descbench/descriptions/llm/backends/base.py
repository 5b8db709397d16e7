"""Language-model backends behind one interface (SPEC §3), one file per backend, each registered by name.

A backend turns a prompt into raw text (``generate``) and says what determines that text (``identity``:
backend, model and sampling parameters — the cache key's part besides the prompt; never a secret). Backends
load or connect lazily, so a run whose descriptions are all cached never loads a model or opens a connection.

A backend is one class decorated with :func:`register_backend`; its constructor's signature is its config
(``describe/backend=<name>``: the shell derives the schema from it), so nothing else lists its options.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from descbench.core.errors import ConfigError

#: name -> backend class, filled by :func:`register_backend` as the backend modules are imported
BACKENDS: dict[str, type] = {}


def register_backend(name: str) -> Callable[[type], type]:
    """Class decorator: the backend is selectable as ``describe/backend=<name>``."""

    def register(cls: type) -> type:
        BACKENDS[name] = cls
        cls.backend_name = name
        return cls

    return register


@runtime_checkable
class Backend(Protocol):
    """What :func:`descbench.descriptions.llm.generate.generate_descriptions` needs from a language model."""

    #: True when the answer continues the prompt's open ``"- "`` line (completion style).
    continues_prompt: bool
    #: Largest number of concurrent ``generate`` calls worth making.
    max_concurrency: int

    def generate(self, prompt: str) -> str: ...

    def identity(self) -> dict[str, Any]: ...


def check_number(key: str, value: Any, least: float, *, strict: bool = False, integer: bool = False) -> float:
    """``describe.backend.<key>`` as a number >= ``least`` (> with ``strict``), else a one-line :class:`ConfigError`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (not integer or float(value).is_integer())
    if not ok or value < least or (strict and value == least):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"describe.backend.{key} must be {kind} {'>' if strict else '>='} {least:g}, got {value!r}")
    return float(value)


def shorten(msg: str, n: int = 300) -> str:
    return msg if len(msg) <= n else msg[:n] + "..."
