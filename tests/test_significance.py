"""The significance logic on synthetic samples: what is flagged, what is not, and why."""

import numpy as np
import pytest

from bench.significance import (IMPROVEMENT, NO_CHANGE, REGRESSION, RatioInterval,
                                _resampled_medians, bootstrap_medians, ratio_interval, verdict)


def timings(median, n=200, spread=0.05, seed=0):
    """Right-skewed times around ``median``, like a timer's."""
    return (median * np.random.default_rng(seed).lognormal(0, spread, n)).tolist()


def test_a_real_ten_percent_slowdown_is_flagged():
    interval = ratio_interval([timings(1.0, seed=1)], [timings(1.1, seed=2)])
    assert interval.ratio == pytest.approx(1.1, abs=0.02)
    assert 1.0 < interval.low < 1.1 < interval.high
    assert verdict(interval) == REGRESSION


def test_a_ten_percent_speedup_is_an_improvement():
    interval = ratio_interval([timings(1.0, seed=1)], [timings(0.9, seed=2)])
    assert verdict(interval) == IMPROVEMENT


def test_pure_noise_with_the_same_median_is_not_flagged():
    verdicts = [verdict(ratio_interval([timings(1.0, seed=s)], [timings(1.0, seed=100 + s)]))
                for s in range(20)]
    assert verdicts == [NO_CHANGE] * 20


def test_a_two_percent_shift_is_real_but_under_a_five_percent_threshold():
    # tight samples: the 2% shift is significant, and still not a regression
    interval = ratio_interval([timings(1.0, n=2000, spread=0.01, seed=1)],
                              [timings(1.02, n=2000, spread=0.01, seed=2)])
    assert interval.low > 1.0
    assert verdict(interval, threshold=0.05) == NO_CHANGE
    assert verdict(interval, threshold=0.01) == REGRESSION


def test_spread_between_repeats_widens_the_interval():
    # three repeats per side whose medians differ by about 10%: each tight within itself
    base = [timings(m, spread=0.01, seed=i) for i, m in enumerate((0.95, 1.0, 1.05))]
    cand = [timings(m, spread=0.01, seed=10 + i) for i, m in enumerate((0.98, 1.08, 1.12))]
    hierarchical = ratio_interval(base, cand)
    pooled = ratio_interval([sum(base, [])], [sum(cand, [])])
    assert hierarchical.ratio == pytest.approx(1.08, rel=0.005)  # median of the repeat medians
    assert (hierarchical.high - hierarchical.low) > 3 * (pooled.high - pooled.low)
    # blind to the repeats, the same data would be called a regression
    assert verdict(pooled) == REGRESSION and verdict(hierarchical) == NO_CHANGE
    assert (hierarchical.baseline_units, hierarchical.candidate_units) == (3, 3)


def test_verdict_needs_both_the_threshold_and_the_interval():
    assert verdict(RatioInterval(1.2, 0.98, 1.4, 1, 1)) == NO_CHANGE  # interval holds 1
    assert verdict(RatioInterval(1.04, 1.01, 1.07, 1, 1)) == NO_CHANGE  # under 5%
    assert verdict(RatioInterval(1.06, 1.01, 1.1, 1, 1)) == REGRESSION
    assert verdict(RatioInterval(0.94, 0.9, 0.99, 1, 1)) == IMPROVEMENT


@pytest.mark.parametrize("n", [7, 51])
def test_resampled_median_law_matches_resampling_the_values(n):
    rng = np.random.default_rng(3)
    values = np.sort(rng.lognormal(0, 0.5, n))
    drawn = _resampled_medians(values, 100_000, rng)
    brute = np.median(values[rng.integers(0, n, (100_000, n))], axis=1)
    for q in (0.025, 0.25, 0.5, 0.75, 0.975):
        # the same order statistic, or its neighbour where the quantile falls between two
        assert abs(np.searchsorted(values, np.quantile(drawn, q))
                   - np.searchsorted(values, np.quantile(brute, q))) <= 1


def test_one_sample_units_and_reproducibility():
    assert set(bootstrap_medians([[2.0]], 10, np.random.default_rng(0))) == {2.0}
    a = ratio_interval([timings(1.0)], [timings(1.1)], rng=np.random.default_rng(5))
    b = ratio_interval([timings(1.0)], [timings(1.1)], rng=np.random.default_rng(5))
    assert a == b
    with pytest.raises(ValueError):
        ratio_interval([], [[1.0]])
