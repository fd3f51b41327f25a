"""The significance logic on synthetic samples: what is flagged, what is not, and why."""

import numpy as np
import pytest

from bench.analyze.significance import (BOOTSTRAP, IMPROVEMENT, NO_CHANGE, REGRESSION, WELCH,
                                        RatioInterval, adjust, ratio_interval,
                                        resampled_medians, student_t_cdf,
                                        student_t_quantile, verdict)


def timings(median, n=200, spread=0.05, seed=0):
    """Right-skewed times around ``median``, like a timer's."""
    return (median * np.random.default_rng(seed).lognormal(0, spread, n)).tolist()


def test_a_real_ten_percent_slowdown_is_flagged():
    interval = ratio_interval([timings(1.0, seed=1)], [timings(1.1, seed=2)])
    assert interval.method == BOOTSTRAP
    assert interval.ratio == pytest.approx(1.1, abs=0.02)
    assert 1.0 < interval.low < 1.1 < interval.high and interval.p_value < 0.001
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
    assert interval.low > 1.0 and interval.p_value < 0.05
    assert verdict(interval, threshold=0.05) == NO_CHANGE
    assert verdict(interval, threshold=0.01) == REGRESSION


def test_spread_between_repeats_widens_the_interval():
    # three repeats per side whose medians differ by about 10%, each tight within itself
    base = [timings(m, spread=0.01, seed=i) for i, m in enumerate((0.95, 1.0, 1.05))]
    cand = [timings(m, spread=0.01, seed=10 + i) for i, m in enumerate((0.98, 1.08, 1.12))]
    repeats = ratio_interval(base, cand)
    pooled = ratio_interval([sum(base, [])], [sum(cand, [])])
    assert repeats.method == WELCH and (repeats.baseline_units, repeats.candidate_units) == (3, 3)
    assert repeats.ratio == pytest.approx(1.08, rel=0.005)  # median of the repeat medians
    assert (repeats.high - repeats.low) > 3 * (pooled.high - pooled.low)
    # blind to the repeats, the same samples would be called a regression
    assert verdict(pooled) == REGRESSION and verdict(repeats) == NO_CHANGE


def test_welch_interval_by_hand():
    # log medians: baseline 0, 0.1, 0.2 (mean 0.1, var 0.01); candidate 0.3, 0.4 (mean 0.35,
    # var 0.005); se^2 = 0.01/3 + 0.005/2; Welch-Satterthwaite df = se^4 / sum((v/n)^2/(n-1))
    base = [[np.exp(x)] for x in (0.0, 0.1, 0.2)]
    cand = [[np.exp(x)] for x in (0.3, 0.4)]
    se2 = 0.01 / 3 + 0.005 / 2
    df = se2 ** 2 / ((0.01 / 3) ** 2 / 2 + (0.005 / 2) ** 2 / 1)
    t = student_t_quantile(0.975, df)
    got = ratio_interval(base, cand)
    # the headline ratio is of the medians of the repeat medians; the interval, of log means
    assert got.ratio == pytest.approx((np.exp(0.3) + np.exp(0.4)) / 2 / np.exp(0.1))
    assert (got.low, got.high) == pytest.approx((np.exp(0.25 - t * se2 ** 0.5),
                                                 np.exp(0.25 + t * se2 ** 0.5)))
    assert got.p_value == pytest.approx(2 * (1 - student_t_cdf(0.25 / se2 ** 0.5, df)))


def test_a_lone_unit_borrows_the_spread_of_the_other_side():
    base = [[np.exp(x)] for x in (0.0, 0.1, 0.2)]
    got = ratio_interval(base, [[np.exp(0.3)]])
    se = (0.01 * (1 / 3 + 1)) ** 0.5  # the baseline's variance, for both sides; df = 2
    t = student_t_quantile(0.975, 2)
    assert (got.low, got.high) == pytest.approx((np.exp(0.2 - t * se), np.exp(0.2 + t * se)))


def test_student_t_against_known_values():
    assert student_t_quantile(0.975, 1) == pytest.approx(12.7062047, rel=1e-6)
    assert student_t_quantile(0.975, 2) == pytest.approx(4.3026527, rel=1e-6)
    assert student_t_quantile(0.975, 30) == pytest.approx(2.0422725, rel=1e-6)
    assert student_t_cdf(2.0, 1) == pytest.approx(0.5 + np.arctan(2.0) / np.pi)
    assert student_t_cdf(-2.0, 2) == pytest.approx(0.5 - 1 / 6 ** 0.5)


def test_benjamini_hochberg_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 -> p * 4 / rank = 0.04, 0.06, 0.0533, 2 -> running minimum
    assert adjust([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert adjust([]) == []


def test_many_noisy_measurements_flag_nothing_once_adjusted():
    # 200 measurements of no change, three repeats a side that wander by 8%: at 95% each,
    # about one in twenty intervals misses 1; the adjusted q-values call none of them
    rng = np.random.default_rng(7)
    intervals = [ratio_interval([[m] for m in rng.lognormal(0, 0.08, 3)],
                                [[m] for m in rng.lognormal(0, 0.08, 3)])
                 for _ in range(200)]
    raw = [verdict(i, threshold=0.0) for i in intervals]
    assert raw.count(NO_CHANGE) < 195
    q = adjust([i.p_value for i in intervals])
    assert {verdict(i, 0.0, qi) for i, qi in zip(intervals, q)} == {NO_CHANGE}


def test_verdict_needs_the_threshold_the_interval_and_the_q_value():
    assert verdict(RatioInterval(1.2, 0.98, 1.4, 0.1, 1, 1, WELCH)) == NO_CHANGE  # holds 1
    assert verdict(RatioInterval(1.04, 1.01, 1.07, 0.01, 1, 1, WELCH)) == NO_CHANGE  # under 5%
    assert verdict(RatioInterval(1.06, 1.01, 1.1, 0.01, 1, 1, WELCH)) == REGRESSION
    assert verdict(RatioInterval(1.06, 1.01, 1.1, 0.01, 1, 1, WELCH), q_value=0.2) == NO_CHANGE
    assert verdict(RatioInterval(0.94, 0.9, 0.99, 0.01, 1, 1, WELCH)) == IMPROVEMENT


@pytest.mark.parametrize("n", [7, 51])
def test_resampled_median_law_matches_resampling_the_values(n):
    rng = np.random.default_rng(3)
    values = np.sort(rng.lognormal(0, 0.5, n))
    drawn = resampled_medians(values, 100_000, rng)
    brute = np.median(values[rng.integers(0, n, (100_000, n))], axis=1)
    for q in (0.025, 0.25, 0.5, 0.75, 0.975):
        # the same order statistic, or its neighbour where the quantile falls between two
        assert abs(np.searchsorted(values, np.quantile(drawn, q))
                   - np.searchsorted(values, np.quantile(brute, q))) <= 1


def test_one_sample_units_and_reproducibility():
    assert set(resampled_medians(np.array([2.0]), 10, np.random.default_rng(0))) == {2.0}
    a = ratio_interval([timings(1.0)], [timings(1.1)], rng=np.random.default_rng(5))
    b = ratio_interval([timings(1.0)], [timings(1.1)], rng=np.random.default_rng(5))
    assert a == b
    with pytest.raises(ValueError):
        ratio_interval([], [[1.0]])
