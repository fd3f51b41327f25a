import math

import pytest

from bench.measure.stats import median_ci_ranks, summarize


def test_summary_by_hand():
    # sorted: 1 1 2 3 4 5 6 9; q1 at position 1.75 -> 1 + 0.75 * (2 - 1) = 1.75;
    # median (3 + 4) / 2; q3 at position 5.25 -> 5 + 0.25 * (6 - 5) = 5.25
    s = summarize([3, 1, 4, 1, 5, 9, 2, 6])
    assert (s.n, s.median, s.q1, s.q3, s.iqr) == (8, 3.5, 1.75, 5.25, 3.5)
    assert s.mean == 31 / 8
    # sum of squared deviations from 3.875 is 52.875; / 7
    assert s.std == pytest.approx(math.sqrt(52.875 / 7))
    assert (s.min, s.max) == (1, 9)
    assert s.noisy  # IQR is 100% of the median


def test_ci_ranks_by_hand():
    # n = 10: 2 * P(B <= 1) = 2 * 11/1024 = 2.1% <= 5%, and 2 * P(B <= 2) = 2 * 56/1024 = 10.9%
    assert median_ci_ranks(10) == (2, 9)
    # n = 5: even the full range covers only 1 - 2/32 = 93.75%
    assert median_ci_ranks(5) == (1, 5)
    # n = 6: the full range covers 1 - 2/64 = 96.9%; ranks 2..5 only 78%
    assert median_ci_ranks(6) == (1, 6)
    # the textbook pair for n = 100
    assert median_ci_ranks(100) == (40, 61)
    # normal approximation beyond 300: 500 -+ 1.96 * sqrt(1000) / 2 = 500 -+ 30.99
    assert median_ci_ranks(1000) == (469, 532)


def test_ci_and_noise_from_the_ranks():
    values = [10.0 + i / 10 for i in range(10)]  # 10.0 .. 10.9
    s = summarize(values)
    assert (s.ci_low, s.ci_high) == (10.1, 10.8)
    assert s.rel_ci == pytest.approx((10.8 - 10.1) / 2 / 10.45)
    assert not s.noisy  # IQR 0.45 of 10.45


def test_single_sample():
    s = summarize([2.5])
    assert (s.n, s.median, s.iqr, s.std, s.ci_low, s.ci_high) == (1, 2.5, 0, 0, 2.5, 2.5)


def test_no_samples_is_an_error():
    with pytest.raises(ValueError):
        summarize([])
