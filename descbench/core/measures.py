"""Every measurement key a job writes, declared once: the keys every task writes here, each task's own in
its :class:`~descbench.tasks.definition.TaskDefinition` (registered through :func:`register_measures`).

The job-output writers, the printed end-of-run table, the report and the W&B dashboard read this
registry; nothing keeps a second list. A ``results.json`` key is one of:

- a **measure** declared by a task or below (``top1``, ``acc.<split>``, ``bias.<phrase>.<condition>.prob``, ...);
- a **companion** of a measure: ``<measure>.<suffix>`` with a suffix from :data:`SUFFIXES`
  (its interval, its repetitions, the published number it is compared with);
- an **option**: anything else. Options are open-ended (every config key a job records), so
  they are not listed; a key that is not declared here is an option, the setting that produced
  the numbers. A measurement that is missing here would therefore become a grouping option of the
  report: the report warns when an undeclared key with a fractional number is used to group runs.

Pattern keys hold ``<name>`` placeholders that match one dotted segment (``acc.<split>`` matches
``acc.val`` but not ``acc.val.ci_low``, which is a companion of ``acc.val``). Companion suffixes are
reserved words: no split, part or phrase may be named ``ci_low``, ``std``, ``reps`` ...

Interval naming scheme (written by the job outputs, read by the report and the dashboard)::

    top1                 0.6208      the measure (a fraction for rates)
    top1.ci_low          0.5760      lower end of its 95 % interval (same unit as the measure)
    top1.ci_high         0.6640      upper end
    top1.ci_method       "wilson"    how: "wilson" (rates: k of n) | "bootstrap" (means over images)
    top1.reps            [...]       per-repetition values (when the run repeats a random control)
    top1.std             0.004       sample std over the repetitions (the measure is then their mean)
    num_reps             3           how many repetitions the run made
    top1.published       62.97       a published number whose setting this run matches (percent)
    top1.published.delta -0.89       ours - published, in points
    top1.published.source "Menon & Vondrick ..."
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

Kind = Literal["rate", "mean", "statistic", "reference", "count", "derived", "bookkeeping", "table"]

CI_LOW, CI_HIGH, CI_METHOD = "ci_low", "ci_high", "ci_method"
REPS, STD = "reps", "std"
PUBLISHED, PUBLISHED_DELTA, PUBLISHED_SOURCE = "published", "published.delta", "published.source"
# What may follow a measure's key; longest first so that ``published.delta`` wins over ``published``.
SUFFIXES = (PUBLISHED_DELTA, PUBLISHED_SOURCE, PUBLISHED, CI_LOW, CI_HIGH, CI_METHOD, REPS, STD)
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Measure:
    """One measurement key (or key pattern) of ``results.json``.

    ``kind``: ``rate`` (a proportion of per-sample 0/1 outcomes: Wilson interval, McNemar-pairable),
    ``mean`` (a mean of per-sample values: bootstrap interval over images), ``statistic`` (measured but not
    a per-sample mean, e.g. ECE, mean per-class accuracy: no interval is written), ``reference`` (a chance level),
    ``count`` (sizes and statistics of the data), ``derived`` (follows an option, e.g. ``top5_k``),
    ``bookkeeping`` (who/what/when: ``seed``, ``overrides``), ``table`` (a mapping, e.g. per class).
    ``percent``: shown x100.
    """

    key: str
    kind: Kind
    display: str
    direction: Literal["higher", "lower"] | None = None
    percent: bool = False
    digits: int = 2
    description: str = ""

    @property
    def has_interval(self) -> bool:
        """Whether the job writes ``<key>.ci_low``/``.ci_high`` for it."""
        return self.kind in ("rate", "mean")

    @property
    def interval_method(self) -> str | None:
        """How that interval is computed: Wilson for rates, a bootstrap over images for means."""
        return {"rate": "wilson", "mean": "bootstrap"}.get(self.kind)

    @property
    def is_pattern(self) -> bool:
        return "<" in self.key


#: the keys every task writes
SHARED: tuple[Measure, ...] = (
    Measure("num_reps", "count", "repetitions"),
    Measure("task", "bookkeeping", "task"),
    Measure("task_module", "bookkeeping", "the module that defines the task"),
    Measure("seed", "bookkeeping", "seed", description="repetitions differ only by it"),
    Measure("overrides", "bookkeeping", "overrides"),
    Measure("note", "bookkeeping", "note"),
    Measure("num_images", "count", "images"),
)
#: task name -> its measures (:func:`register_measures`)
TASK_MEASURES: dict[str, tuple[Measure, ...]] = {}


def register_measures(task: str, measures: tuple[Measure, ...]) -> None:
    """Declare the measures of ``task`` (its definition does, when the task registers)."""
    TASK_MEASURES[task] = tuple(measures)
    _index.cache_clear()


def all_measures() -> tuple[Measure, ...]:
    """The shared measures, then every registered task's, each key once (the first declaration wins)."""
    seen: dict[str, Measure] = {}
    for m in (*SHARED, *(m for ms in TASK_MEASURES.values() for m in ms)):
        seen.setdefault(m.key, m)
    return tuple(seen.values())


@dataclass(frozen=True)
class Resolved:
    """A results key read through the registry: its measure and, for a companion, the suffix."""

    key: str
    measure: Measure
    stem: str  # the measure's concrete key (``acc.val`` for ``acc.val.ci_low``)
    suffix: str | None = None


def _pattern(key: str) -> re.Pattern[str]:
    parts = re.split(r"(<[a-z_]+>)", key)
    return re.compile("".join("[^.]+" if p.startswith("<") else re.escape(p) for p in parts) + r"\Z")


@cache
def _index() -> tuple[dict[str, Measure], tuple[tuple[re.Pattern[str], Measure], ...]]:
    measures = all_measures()
    exact = {m.key: m for m in measures if not m.is_pattern}
    patterns = tuple((_pattern(m.key), m) for m in measures if m.is_pattern)
    return exact, patterns


def _measure_of(key: str) -> Measure | None:
    exact, patterns = _index()
    if key in exact:
        return exact[key]
    for pattern, measure in patterns:
        if pattern.match(key):
            return measure
    return None


def resolve(key: str) -> Resolved | None:
    """The declared measure behind ``key`` (itself or a companion), or ``None`` for an option."""
    for suffix in SUFFIXES:
        if key.endswith("." + suffix):
            stem = key[: -len(suffix) - 1]
            measure = _measure_of(stem)
            if measure is not None:
                return Resolved(key, measure, stem, suffix)
    measure = _measure_of(key)
    return Resolved(key, measure, key) if measure is not None else None


def is_declared(key: str) -> bool:
    """Whether ``key`` is a measure or a companion of one (never a grouping option)."""
    return resolve(key) is not None


def is_option(key: str, value: Any = None) -> bool:
    """An option: a key the registry does not declare, holding a plain value (not a table)."""
    return not is_declared(key) and not isinstance(value, Mapping)


def is_measurement(key: str) -> bool:
    """A measured value itself (a rate or a mean; not its companions, counts or bookkeeping)."""
    found = resolve(key)
    return found is not None and found.suffix is None and found.measure.kind in ("rate", "mean", "statistic")


def measure(key: str) -> Measure:
    """The measure declared for ``key``; ``KeyError`` naming the key when there is none."""
    found = resolve(key)
    if found is None:
        raise KeyError(f"{key!r} is not a declared measure (descbench.core.measures.MEASURES)")
    return found.measure


def measures_of(task: str, kinds: tuple[str, ...] = ("rate", "mean", "statistic")) -> list[Measure]:
    """The declared measures of one task, of the given kinds, in declaration order."""
    return [m for m in TASK_MEASURES.get(task, ()) if m.kind in kinds]


def companion(key: str, suffix: str) -> str:
    """``companion("top1", "ci_low")`` -> ``"top1.ci_low"``: the one spelling of every companion key."""
    if suffix not in SUFFIXES:
        raise ValueError(f"unknown companion suffix {suffix!r}: use one of {', '.join(SUFFIXES)}")
    return f"{key}.{suffix}"


def interval_of(results: Mapping[str, Any], key: str) -> tuple[float, float] | None:
    """The recorded ``(ci_low, ci_high)`` of ``key`` in a run's results, or ``None``."""
    low, high = results.get(companion(key, CI_LOW)), results.get(companion(key, CI_HIGH))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        return float(low), float(high)
    return None


def format_value(key: str, value: float, interval: tuple[float, float] | None = None) -> str:
    """``62.08 [57.60, 66.40]``: a measure in its display unit, with its interval when given."""
    m = measure(key)
    scale = 100.0 if m.percent else 1.0
    text = f"{value * scale:.{m.digits}f}"
    if interval is not None:
        text += f" [{interval[0] * scale:.{m.digits}f}, {interval[1] * scale:.{m.digits}f}]"
    return text


#: words a split, part or phrase name may not be: they would read as a companion of the measure (``pck.ci_low``)
RESERVED_NAMES = tuple(dict.fromkeys(suffix.split(".")[0] for suffix in SUFFIXES))


def name_segment_problem(name: object) -> str | None:
    """Why ``name`` cannot be one segment of a result key (``pck.<part>``, ``acc.<split>``), or None when it can.

    A name with a ``.`` would split into two segments; a reserved word (``ci_low``, ``std``, ...) would overwrite
    or be read as the interval, repetitions or published number of the overall measure.
    """
    if not isinstance(name, str) or not name.strip():
        return "is empty"
    if "." in name:
        return "holds a '.'"
    if name in RESERVED_NAMES:
        return f"is a reserved result-key word ({', '.join(RESERVED_NAMES)})"
    return None
