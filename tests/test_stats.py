"""descbench.core.stats: intervals and paired tests against hand-computed values and exact enumerations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from descbench.core import stats

Z = 1.959963984540054  # the 97.5 % point of the standard normal


def exact_bootstrap_quantiles(statistic, n: int, quantiles=(0.025, 0.975)) -> tuple[list[float], float]:
    """The slow reference: every one of the n**n equally likely resamples of n images, enumerated.

    Returns the exact quantiles of the statistic's bootstrap distribution and the smallest distance
    between a quantile level and a jump of its CDF (a Monte Carlo bootstrap lands on the exact atom
    when that margin is many standard errors wide).
    """
    values = np.array([statistic(np.array(idx)) for idx in itertools.product(range(n), repeat=n)])
    atoms, counts = np.unique(np.round(values, 12), return_counts=True)
    cdf = np.cumsum(counts) / counts.sum()
    found, margin = [], 1.0
    for q in quantiles:
        i = int(np.searchsorted(cdf, q))
        found.append(float(atoms[i]))
        margin = min(margin, abs(cdf[i] - q), abs(q - (cdf[i - 1] if i else 0.0)))
    return found, margin


def test_wilson_interval_equals_the_hand_formula():
    k, n = 7, 10
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    low, high = stats.wilson_interval(k, n)
    assert low == pytest.approx(centre - half, abs=1e-12) and high == pytest.approx(centre + half, abs=1e-12)
    assert (round(low, 6), round(high, 6)) == (0.396778, 0.892209)
    # 0 of 10: the interval starts at exactly 0 and ends at z^2 / (n + z^2)
    low, high = stats.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(Z**2 / (10 + Z**2), abs=1e-12)
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))


def test_bootstrap_interval_of_a_mean_equals_the_exact_bootstrap_distribution():
    values = [1, 0, 1, 1, 0, 1]
    (low_exact, high_exact), margin = exact_bootstrap_quantiles(lambda idx: np.mean(np.array(values)[idx]), 6)
    assert margin > 0.005  # the reference quantiles sit well inside their atoms
    assert stats.bootstrap_interval(values) == pytest.approx((low_exact, high_exact), abs=1e-12)
    assert (low_exact, high_exact) == pytest.approx((1 / 3, 1.0))
    # seeded: the same call gives the same interval
    assert stats.bootstrap_interval([0.1, 0.5, 0.2, 0.9], seed=3) == stats.bootstrap_interval(
        [0.1, 0.5, 0.2, 0.9], seed=3
    )
    assert stats.bootstrap_interval([0.4, 0.4, 0.4]) == (0.4, 0.4)
    assert all(math.isnan(v) for v in stats.bootstrap_interval([0.4]))


# A hand-made prediction pair over 6 images: A right on images 1 and 4, B right on all but image 4.
A = [0, 1, 0, 0, 1, 0]
B = [1, 1, 1, 1, 0, 1]


def test_paired_comparison_on_a_hand_made_pair():
    result = stats.paired_comparison(A, B)
    assert (result.n, result.only_a, result.only_b) == (6, 1, 4)
    assert result.mean_a == pytest.approx(2 / 6) and result.mean_b == pytest.approx(5 / 6)
    assert result.delta == pytest.approx(3 / 6)
    # exact McNemar: 4 of the 5 discordant images favour B; two-sided P = 2 * P(X <= 1 | 5, 1/2) = 2 * 6/32
    assert result.p_value == pytest.approx(12 / 32, abs=1e-12)
    # the paired bootstrap resamples images with both outcomes: the exact distribution of mean(B - A)
    diff = np.array(B) - np.array(A)
    (low, high), margin = exact_bootstrap_quantiles(lambda idx: diff[idx].mean(), 6)
    assert margin > 0.005
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=1e-12)
    assert (low, high) == pytest.approx((-1 / 6, 1.0))


def test_paired_comparison_edge_cases():
    agree = stats.paired_comparison([1, 0, 1, 1], [1, 0, 1, 1])
    assert (agree.delta, agree.ci_low, agree.ci_high, agree.only_a, agree.only_b) == (0.0, 0.0, 0.0, 0, 0)
    assert agree.p_value == 1.0  # no discordant image: no evidence either way
    disagree = stats.paired_comparison([1] * 10, [0] * 10)
    assert (disagree.delta, disagree.ci_low, disagree.ci_high) == (-1.0, -1.0, -1.0)
    assert (disagree.only_a, disagree.only_b) == (10, 0)
    assert disagree.p_value == pytest.approx(2 / 2**10, abs=1e-15)  # 2 * 0.5**10
    with pytest.raises(ValueError, match="A has 2, B has 3"):
        stats.paired_comparison([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="0/1 outcomes"):
        stats.paired_comparison([1, 2], [1, 0])


def test_mcnemar_exact_values():
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(1, 6) == pytest.approx(2 * (1 + 7) / 2**7)  # 0.125
    assert stats.mcnemar_exact(6, 1) == stats.mcnemar_exact(1, 6)
    assert stats.mcnemar_exact(3, 3) == 1.0


def test_mean_paired_delta_resamples_the_same_images_in_every_cell():
    cells = [([1, 0, 1, 0, 1], [1, 1, 1, 1, 0]), ([0, 0, 1, 1, 1], [1, 0, 1, 1, 1])]
    arrays = [(np.array(a), np.array(b)) for a, b in cells]

    def mean_over_cells(idx):  # the slow reference: each cell's Δ on the same resampled images, averaged
        return np.mean([b[idx].mean() - a[idx].mean() for a, b in arrays])

    (low, high), margin = exact_bootstrap_quantiles(mean_over_cells, 5)
    assert margin > 0.005
    mean, ci_low, ci_high = stats.mean_paired_delta(cells)
    assert mean == pytest.approx((1 / 5 + 1 / 5) / 2)
    assert (ci_low, ci_high) == pytest.approx((low, high), abs=1e-12)
    with pytest.raises(ValueError, match="same images"):
        stats.mean_paired_delta([([1, 0], [0, 1]), ([1], [1])])


def test_holm_adjustment_by_hand():
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm([0.2]) == [0.2]


def test_t_interval_and_mean_std_by_hand():
    t_975_2 = 4.302652729911275  # Student t, 2 degrees of freedom
    low, high = stats.t_interval([1.0, 2.0, 3.0])
    assert (low, high) == pytest.approx((2 - t_975_2 / math.sqrt(3), 2 + t_975_2 / math.sqrt(3)))
    assert stats.mean_std([0.5, 0.7]) == pytest.approx((0.6, math.sqrt(0.02), 2))
    assert stats.mean_std([0.5]) == (0.5, 0.0, 1)


def test_results_fields_use_the_registry_naming():
    fields = stats.rate_fields("top1", [1, 1, 1, 0, 0, 1, 1, 0, 1, 1])
    assert list(fields) == ["top1.ci_low", "top1.ci_high", "top1.ci_method"]
    assert (fields["top1.ci_low"], fields["top1.ci_high"]) == stats.wilson_interval(7, 10)
    assert fields["top1.ci_method"] == "wilson"
    assert stats.mean_fields("entropy", [1.0, 1.0])["entropy.ci_method"] == "bootstrap"
    reps = stats.repetition_fields("top1", [0.5, 0.6, 0.7])
    assert reps == {"top1": pytest.approx(0.6), "top1.reps": [0.5, 0.6, 0.7], "top1.std": pytest.approx(0.1)}


def test_interval_fields_choose_the_method_from_the_registry():
    from descbench.tasks.definition import load_tasks

    load_tasks()  # the tasks register their measures (top1, acc.<split>) when their packages load
    correct, entropy = [1, 0, 1, 1], [0.5, 0.7, 0.6, 0.9]
    fields = stats.interval_fields({"top1": correct, "acc.val": correct, "entropy": entropy})
    assert fields["top1.ci_method"] == fields["acc.val.ci_method"] == "wilson"
    assert (fields["acc.val.ci_low"], fields["acc.val.ci_high"]) == stats.wilson_interval(3, 4)
    assert fields["entropy.ci_method"] == "bootstrap"
    assert (fields["entropy.ci_low"], fields["entropy.ci_high"]) == stats.bootstrap_interval(entropy)
    with pytest.raises(ValueError, match="'ece' is a statistic in descbench.core.measures"):
        stats.interval_fields({"ece": [0.1, 0.2]})
    with pytest.raises(KeyError, match="not a declared measure"):
        stats.interval_fields({"colour": [1, 0]})


@pytest.mark.parametrize("n", [5, 1000, 25_000])
def test_bootstrap_interval_is_scipys_to_the_last_bit(n):
    # the chunked gather draws the very indices scipy.stats.bootstrap draws (same generator, same batch sizes)
    import scipy.stats

    values = np.random.default_rng(n).random(n)
    result = scipy.stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=stats.BOOTSTRAP_RESAMPLES,
        batch=max(1, stats._BATCH_CELLS // n),
        vectorized=True,
        method="percentile",
        rng=np.random.default_rng(stats.BOOTSTRAP_SEED),
    )
    expected = (float(result.confidence_interval.low), float(result.confidence_interval.high))
    assert stats.bootstrap_interval(values) == expected
