"""The significance logic on made-up numbers: intervals, p-values and verdicts by hand."""

import math

import numpy as np
import pytest

from bench.analyze.judge import (IMPROVEMENT, NO_CHANGE, REGRESSION, adjust, drift,
                                 paired, t_interval, verdict, welch)
from bench.analyze.t_distribution import student_t_cdf, student_t_quantile


def test_welch_interval_by_hand():
    # log medians: baseline 0, 0.1, 0.2 (mean 0.1, var 0.01); candidate 0.3, 0.4 (mean 0.35,
    # var 0.005); se^2 = 0.01/3 + 0.005/2; Welch-Satterthwaite df = se^4 / sum((v/n)^2/(n-1))
    se2 = 0.01 / 3 + 0.005 / 2
    df = se2 ** 2 / ((0.01 / 3) ** 2 / 2 + (0.005 / 2) ** 2 / 1)
    t = student_t_quantile(0.975, df)
    diff, low, high, p = welch(0.1, 0.01, 3, 0.35, 0.005, 2)
    assert diff == pytest.approx(0.25)
    assert (low, high) == pytest.approx((0.25 - t * se2 ** 0.5, 0.25 + t * se2 ** 0.5))
    assert p == pytest.approx(2 * (1 - student_t_cdf(0.25 / se2 ** 0.5, df)))
    with pytest.raises(ValueError):
        welch(0.1, 0.0, 1, 0.2, 0.01, 3)  # a lone unit: the drift test's case


def test_spread_between_repeats_widens_the_welch_interval():
    # the same 8% shift, repeats that agree within 0.5% against repeats 5% apart
    tight = welch(0.0, 0.005 ** 2, 3, math.log(1.08), 0.005 ** 2, 3)
    loose = welch(0.0, 0.05 ** 2, 3, math.log(1.08), 0.05 ** 2, 3)
    assert tight[3] < 0.001 < 0.05 < loose[3]
    assert (loose[2] - loose[1]) == pytest.approx(10 * (tight[2] - tight[1]))


def test_t_interval_with_no_spread_and_with_nothing_known():
    assert t_interval(0.0, 0.0, 3)[2] == 1.0  # identical, with nothing to blur them: no change
    low, high, p = t_interval(0.2, 0.0, 3)
    assert (low, high, p) == (0.2, 0.2, 0.0)
    assert np.isnan(t_interval(0.2, np.nan, 3)[2])


def test_student_t_against_known_values():
    assert student_t_quantile(0.975, 1) == pytest.approx(12.7062047, rel=1e-6)
    assert student_t_quantile(0.975, 2) == pytest.approx(4.3026527, rel=1e-6)
    assert student_t_quantile(0.975, 30) == pytest.approx(2.0422725, rel=1e-6)
    assert list(student_t_quantile(0.975, np.array([1.0, 2.0, 30.0]))) == pytest.approx(
        [12.7062047, 4.3026527, 2.0422725], rel=1e-6)
    assert student_t_cdf(2.0, 1) == pytest.approx(0.5 + np.arctan(2.0) / np.pi)
    assert student_t_cdf(-2.0, 2) == pytest.approx(0.5 - 1 / 6 ** 0.5)


def test_benjamini_hochberg_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 -> p * 4 / rank = 0.04, 0.06, 0.0533, 2 -> running minimum
    assert list(adjust([0.01, 0.04, 0.03, 0.5])) == pytest.approx([0.04, 0.16 / 3, 0.16 / 3,
                                                                   0.5])
    assert len(adjust([])) == 0
    # a NaN (nothing tested) is left out of the count: 0.01 * 2 / 1, 0.04 * 2 / 2
    q = adjust([0.01, np.nan, 0.04])
    assert q[0] == pytest.approx(0.02) and np.isnan(q[1]) and q[2] == pytest.approx(0.04)


def test_many_noisy_measurements_flag_nothing_once_adjusted():
    # 200 measurements of no change, three repeats a side that wander by 8%: at 95% each,
    # about one in twenty intervals misses 1; the adjusted q-values call none of them
    rng = np.random.default_rng(7)
    base, cand = rng.normal(0, 0.08, (200, 3)), rng.normal(0, 0.08, (200, 3))
    diff, low, high, p = welch(base.mean(1), base.var(1, ddof=1), 3,
                               cand.mean(1), cand.var(1, ddof=1), 3)
    raw = verdict(np.exp(diff), np.exp(low), np.exp(high), 0.0, threshold=0.0)
    assert list(raw).count(NO_CHANGE) < 195
    called = verdict(np.exp(diff), np.exp(low), np.exp(high), adjust(p), threshold=0.0)
    assert set(called) == {NO_CHANGE}


def test_verdict_needs_the_threshold_the_interval_and_the_q_value():
    assert verdict(1.2, 0.98, 1.4, 0.01) == NO_CHANGE  # the interval holds 1
    assert verdict(1.04, 1.01, 1.07, 0.01) == NO_CHANGE  # under 5%
    assert verdict(1.06, 1.01, 1.1, 0.01) == REGRESSION
    assert verdict(1.06, 1.01, 1.1, 0.2) == NO_CHANGE  # not significant among many
    assert verdict(1.06, 1.01, 1.1, np.nan) == NO_CHANGE  # nothing tested
    assert verdict(0.94, 0.9, 0.99, 0.01) == IMPROVEMENT
    assert list(verdict([1.06, 0.94], [1.01, 0.9], [1.1, 0.99], [0.01, 0.01])) == [
        REGRESSION, IMPROVEMENT]


def test_drift_judges_the_departure_from_the_phase_s_median_by_hand():
    # one phase: median 0.02; |d - 0.02| = 0.02, 0.01, 0, 0.01, 0.48 -> MAD 0.01
    d = [0.0, 0.01, 0.02, 0.03, 0.5]
    got = drift(d + [0.3, 0.3, 0.3], ["f"] * 5 + ["b"] * 3, np.zeros(8))
    spread = 1.4826 * 0.01
    assert got["shift"][:5] == pytest.approx([0.02] * 5)
    assert got["spread"][:5] == pytest.approx([spread] * 5)
    assert got["departure"][:5] == pytest.approx([-0.02, -0.01, 0.0, 0.01, 0.48])
    df = 0.37 * 4  # a MAD is worth 37% of the values of a standard deviation
    assert got["df"][:5] == pytest.approx([df] * 5)
    assert got["p"][4] == pytest.approx(2 * (1 - student_t_cdf(0.48 / spread, df)))
    t = student_t_quantile(0.975, df)
    assert (got["low"][4], got["high"][4]) == pytest.approx((0.48 - t * spread,
                                                             0.48 + t * spread))
    # the other phase moved all together: its own shift, nothing departs from it
    assert got["shift"][5:] == pytest.approx([0.3] * 3) and list(got["p"][5:]) == [1.0] * 3
    assert list(got["df"][5:]) == [1.0] * 3  # 0.37 * 2 is under one degree of freedom


def test_drift_counts_degrees_of_freedom_in_windows_timed_together():
    # ten measurements in five windows of two (each pair timed together drifts together):
    # the same shift and spread as without windows, but 0.37 x (5 - 1) degrees of freedom
    # in place of 0.37 x (10 - 1)
    d = [0.0, 0.0, 0.01, 0.01, 0.02, 0.02, 0.03, 0.03, 0.5, 0.5]
    window = ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"]
    alone, together = drift(d, ["f"] * 10, np.zeros(10)), drift(d, ["f"] * 10, np.zeros(10),
                                                                  window)
    for key in ("shift", "spread", "departure", "se"):
        assert together[key] == pytest.approx(alone[key])
    assert alone["df"] == pytest.approx([0.37 * 9] * 10)
    assert together["df"] == pytest.approx([0.37 * 4] * 10)
    # median 0.02, |d - 0.02| sorted 0, 0, .01, .01, .01, .01, .02, .02, .48, .48: MAD 0.01
    t = 0.48 / (1.4826 * 0.01)
    assert together["p"][8] == pytest.approx(2 * (1 - student_t_cdf(t, 0.37 * 4)))
    assert together["p"][8] > alone["p"][8]
    # windows are counted per phase: a window spanning two phases counts in each
    both = drift(d + [0.3] * 4, ["f"] * 10 + ["b"] * 4, np.zeros(14),
                 window + ["a", "b", "c", "d"])
    assert list(both["df"][10:]) == [max(1.0, 0.37 * 3)] * 4


def test_drift_adds_each_measurement_s_own_noise_to_the_spread_between_runs():
    # the spread holds the typical within-run variance (the median, 1e-4) already; what
    # remains is between runs, 0.014826^2 - 1e-4, and each measurement adds its own back
    d = [0.0, 0.01, 0.02, 0.03, 0.5]
    within = np.array([0.0, 0.0, 1e-4, 4e-4, 9e-4])
    got = drift(d, ["f"] * 5, within)
    between = (1.4826 * 0.01) ** 2 - 1e-4
    assert got["se"] == pytest.approx(np.sqrt(between + within))
    # within-run noise above the spread leaves nothing between runs, never a negative share
    assert drift(d, ["f"] * 5, np.full(5, 1.0))["se"] == pytest.approx([1.0] * 5)


def test_paired_t_by_hand():
    # per-round log-ratios 0.1, 0.12, 0.08: mean 0.1, sd 0.02, se 0.02 / sqrt(3), df 2; for
    # two degrees of freedom P(|T| > t) = 1 - t / sqrt(2 + t^2)
    se = 0.02 / 3 ** 0.5
    low, high, p = paired(0.1, 0.02, 3)
    assert (low, high) == pytest.approx((0.1 - 4.3026527 * se, 0.1 + 4.3026527 * se))
    t = 0.1 / se
    assert p == pytest.approx(1 - t / (2 + t * t) ** 0.5)
    assert np.isnan(paired(0.1, np.nan, 1)[2])  # one round: nothing to test
