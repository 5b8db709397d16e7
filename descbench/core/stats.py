"""Intervals and paired tests for the numbers descbench reports (``scipy.stats`` does the statistics).

- a rate (k correct of n): Wilson 95 % interval, ``scipy.stats.binomtest(k, n).proportion_ci("wilson")``;
- a mean over images (entropy, a difference of two runs): percentile bootstrap over images,
  ``scipy.stats.bootstrap``, seeded;
- repetitions of one cell: mean and sample standard deviation (n - 1);
- two runs on the same images: the difference with a paired bootstrap interval (images resampled, the
  pairing kept) and an exact McNemar test (a two-sided binomial test on the discordant images);
- many pairs: Holm's step-down adjustment of their p-values.

A mean difference over several cells on one image list is the bootstrap of the per-image mean
difference: resampling the images of that array resamples the same images in every cell.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats

from descbench.core.measures import CI_HIGH, CI_LOW, CI_METHOD, CONFIDENCE, REPS, STD, companion, measure

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
_BATCH_CELLS = 20_000_000  # scipy's ``batch`` in the reference computation (memory; no effect on the draws)
_GATHER_CELLS = 1_000_000  # resampled values drawn and gathered at once (memory; no effect on the numbers)


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of ``successes / trials`` (no continuity correction); NaNs when ``trials`` is 0."""
    if trials <= 0:
        return math.nan, math.nan
    ci = scipy.stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampling them with replacement, seeded).

    The numbers of ``scipy.stats.bootstrap((values,), np.mean, method="percentile", vectorized=True,
    batch=max(1, _BATCH_CELLS // n), rng=np.random.default_rng(seed))`` to the last bit (a test compares
    them): the same draws from the same generator, the same means, ``scipy.stats.quantile`` of them. scipy
    gathers each batch through a broadcast view (about 20 ns per resampled value, seconds per job at 50,000
    images); here the drawing and the gathering overlap (:func:`bootstrap_means`).
    Fewer than two values give NaNs: one value says nothing about its spread.
    """
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return math.nan, math.nan
    if np.all(data == data[0]):  # every resample has the same mean; scipy would warn about a degenerate set
        return float(data[0]), float(data[0])
    means = bootstrap_means(data, n_resamples, seed)
    alpha = np.asarray((1 - confidence) / 2)
    low, high = scipy.stats.quantile(means, np.stack([alpha, 1 - alpha]), axis=-1)
    return float(low), float(high)


def bootstrap_means(data: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """The means of ``n_resamples`` resamples of ``data`` (1-d), drawn as ``scipy.stats.bootstrap`` draws them.

    scipy draws ``rng.integers(0, n, (batch, n))`` batch after batch. The generator hands out the same indices
    in the same order whatever the sizes of the calls that ask for them (numpy's bounded 32-bit draws keep no
    state between values but the bit generator's own; a test compares with scipy), so the draws here come in
    chunks of about :data:`_GATHER_CELLS` values: the next chunk is drawn in a second thread while this one is
    gathered and averaged, and the job pays for the drawing alone. Drawn as int32 (the same values as int64
    for a range below 2**32, half the memory).
    """
    rng = np.random.default_rng(seed)
    n = data.size
    rows = max(1, _GATHER_CELLS // n)  # each resample's mean is computed alone: chunks do not change it
    means = np.empty(n_resamples)

    def draw(start: int) -> np.ndarray:
        return rng.integers(0, n, (min(rows, n_resamples - start), n), dtype=np.int32)

    with ThreadPoolExecutor(max_workers=1) as pool:  # one draw in flight: the generator is used in order
        pending = pool.submit(draw, 0)
        for start in range(0, n_resamples, rows):
            index = pending.result()
            if start + rows < n_resamples:
                pending = pool.submit(draw, start + rows)
            means[start : start + len(index)] = data[index].mean(axis=-1)
    return means


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample standard deviation (0 for a single value), count)."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std, len(values)


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (cells, not images); NaNs for fewer than two."""
    if len(values) < 2:
        return math.nan, math.nan
    mean, std, n = mean_std(values)
    if std == 0:
        return mean, mean
    low, high = scipy.stats.t.interval(confidence, n - 1, loc=mean, scale=std / math.sqrt(n))
    return float(low), float(high)


@dataclass(frozen=True)
class PairedResult:
    """B against A on the same images: ``delta`` = mean(B) - mean(A) as a fraction, and its test."""

    n: int
    mean_a: float
    mean_b: float
    delta: float
    ci_low: float
    ci_high: float
    only_a: int  # images A gets right and B wrong
    only_b: int  # images B gets right and A wrong
    p_value: float


def _outcomes(correct: Sequence[Any] | np.ndarray, name: str) -> np.ndarray:
    data = np.asarray(correct)
    if data.ndim != 1 or not np.isin(data, (0, 1)).all():
        raise ValueError(f"{name}: expected a 1-d sequence of 0/1 outcomes")
    return data.astype(bool)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: a binomial test of ``only_b`` of the discordant images at 1/2.

    No discordant image means no evidence either way: p = 1.
    """
    discordant = int(only_a) + int(only_b)
    if discordant == 0:
        return 1.0
    return float(scipy.stats.binomtest(int(only_b), discordant, 0.5, alternative="two-sided").pvalue)


def paired_comparison(
    correct_a: Sequence[Any] | np.ndarray,
    correct_b: Sequence[Any] | np.ndarray,
    confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> PairedResult:
    """Δ = accuracy(B) - accuracy(A) of two runs over the same images, in order.

    Interval: percentile bootstrap of the per-image difference (an image is resampled with both of
    its outcomes). Test: exact McNemar on the discordant images.
    """
    a, b = _outcomes(correct_a, "A"), _outcomes(correct_b, "B")
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes need the same images: A has {a.size}, B has {b.size}")
    if a.size == 0:
        raise ValueError("paired outcomes: no images")
    diff = b.astype(float) - a.astype(float)
    low, high = bootstrap_interval(diff, confidence, n_resamples, seed)
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    return PairedResult(
        n=int(a.size),
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        delta=float(diff.mean()),
        ci_low=low,
        ci_high=high,
        only_a=only_a,
        only_b=only_b,
        p_value=mcnemar_exact(only_a, only_b),
    )


def mean_paired_delta(
    pairs: Sequence[tuple[Sequence[Any], Sequence[Any]]],
    confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """Mean Δ over cells that share one image list, with a paired bootstrap interval.

    The mean over cells of mean(B_i - A_i) is the mean over images of the per-image average
    difference, so bootstrapping that array resamples the same images in every cell.
    """
    if not pairs:
        raise ValueError("mean_paired_delta: no pairs")
    diffs = [_outcomes(b, "B").astype(float) - _outcomes(a, "A").astype(float) for a, b in pairs]
    if len({d.size for d in diffs}) != 1:
        raise ValueError("mean_paired_delta: every cell must hold the same images")
    per_image = np.mean(diffs, axis=0)
    low, high = bootstrap_interval(per_image, confidence, n_resamples, seed)
    return float(per_image.mean()), low, high


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (controls the family-wise error rate)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        # the k-th smallest p is multiplied by (m - k); monotone so a larger p never gets a smaller adjustment
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


# --------------------------------------------------------------------------- results.json fields


def rate_fields(key: str, correct: Sequence[Any] | np.ndarray, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``{key.ci_low, key.ci_high, key.ci_method}`` of a rate from its per-sample 0/1 outcomes (Wilson)."""
    outcomes = _outcomes(correct, key)
    low, high = wilson_interval(int(outcomes.sum()), int(outcomes.size), confidence)
    return {companion(key, CI_LOW): low, companion(key, CI_HIGH): high, companion(key, CI_METHOD): "wilson"}


def mean_fields(
    key: str,
    values: Sequence[float] | np.ndarray,
    confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """``{key.ci_low, key.ci_high, key.ci_method}`` of a mean over images (percentile bootstrap, seeded)."""
    low, high = bootstrap_interval(values, confidence, n_resamples, seed)
    return {companion(key, CI_LOW): low, companion(key, CI_HIGH): high, companion(key, CI_METHOD): "bootstrap"}


def repetition_fields(key: str, reps: Sequence[float]) -> dict[str, Any]:
    """``{key: mean, key.reps: [...], key.std: sample std}`` of one measure over a run's repetitions."""
    mean, std, _ = mean_std([float(r) for r in reps])
    return {key: mean, companion(key, REPS): [float(r) for r in reps], companion(key, STD): std}


def interval_fields(
    per_sample: Mapping[str, Sequence[float] | np.ndarray], seed: int = BOOTSTRAP_SEED
) -> dict[str, Any]:
    """The interval companions of several measures from their per-sample values, method by the registry.

    ``{"top1": correct, "entropy": per-image entropy}`` -> Wilson for ``top1`` (a rate), a seeded
    bootstrap over images for ``entropy`` (a mean). A measure without an interval is a ``ValueError``.
    """
    fields: dict[str, Any] = {}
    for key, values in per_sample.items():
        kind = measure(key).kind
        if kind == "rate":
            fields.update(rate_fields(key, values))
        elif kind == "mean":
            fields.update(mean_fields(key, values, seed=seed))
        else:
            raise ValueError(f"{key!r} is a {kind} in descbench.core.measures: it gets no per-sample interval")
    return fields
