"""Yuen's trimmed mean and its standard error, against values worked out by hand and the
ordinary t-test it becomes untrimmed."""

import numpy as np
import pytest

from bench.analyze.judge import paired, t_interval, trimmed_means


def test_estimate_and_standard_error_by_hand():
    # ten rounds: g = 2 dropped at each end, h = 6 kept. Sorted: -0.1 0.15 | 0.2 0.25 0.3
    # 0.35 0.4 0.45 | 0.5 0.6; the trimmed mean 1.95 / 6 = 0.325. Winsorized: 0.2 0.2 0.2
    # 0.25 0.3 0.35 0.4 0.45 0.45 0.45, mean 0.325, squared deviations summing to 0.10625:
    # s_w^2 = 0.10625 / 9, se = sqrt(9 s_w^2 / (6 x 5)) = sqrt(0.10625 / 30)
    d = np.array([[0.5, -0.1, 0.2, 0.3, 0.4, 0.6, 0.25, 0.35, 0.15, 0.45]])
    estimate, se, df, n = trimmed_means(d)
    assert estimate[0] == pytest.approx(0.325)
    assert se[0] == pytest.approx((0.10625 / 30) ** 0.5)
    assert df[0] == 5 and n[0] == 10


def test_untrimmed_it_is_the_paired_t_test():
    rng = np.random.default_rng(2)
    d = rng.normal(0.1, 0.3, (5, 9))
    estimate, se, df, _ = trimmed_means(d, trim=0.0)
    low, high, p = t_interval(estimate, se, df)
    t_low, t_high, t_p = paired(d.mean(axis=1), d.std(axis=1, ddof=1), 9)
    assert estimate == pytest.approx(d.mean(axis=1))
    assert np.vstack([low, high, p]) == pytest.approx(np.vstack([t_low, t_high, t_p]))


def test_each_row_takes_its_own_rounds_and_too_few_give_nothing():
    rng = np.random.default_rng(3)
    full = rng.normal(0.2, 1, 10)
    rows = np.vstack([full, np.r_[full[:7], [np.nan] * 3], [0.3] + [np.nan] * 9,
                      np.r_[full[3:0:-1], [np.nan] * 7]])
    estimate, se, df, n = trimmed_means(rows)
    assert n.tolist() == [10, 7, 1, 3]
    alone = trimmed_means(full[None, :7])
    assert (estimate[1], se[1], df[1]) == pytest.approx((alone[0][0], alone[1][0],
                                                         alone[2][0]))
    # under eight rounds nothing is trimmed: seven give the plain mean with df 6, three
    # with df 2; from eight, g = 1 (h = 6, df 5)
    assert df[1] == 6 and estimate[1] == pytest.approx(full[:7].mean())
    assert df[3] == 2 and estimate[3] == pytest.approx(full[1:4].mean())
    eight = trimmed_means(full[None, :8])
    assert eight[2][0] == 5 and eight[0][0] == pytest.approx(np.sort(full[:8])[1:7].mean())
    assert np.isnan([estimate[2], se[2], df[2]]).all()


def test_one_wild_round_costs_the_trimmed_mean_nothing_and_a_t_test_everything():
    # nine rounds near +10%, one 80% the other way. A t-test's standard deviation swallows
    # them (mean 0.01, sd 0.28: p = 0.91). Trimmed (g = 2): 0.09 0.095 0.1 0.1 0.1 0.105,
    # mean 0.59 / 6; winsorized 0.09 x3 0.095 0.1 x3 0.105 x3, mean 0.098, squared
    # deviations 0.00036: se = sqrt(9 x 0.00004 / 30) = sqrt(0.000012), t = 28
    nine = [0.09, 0.1, 0.11, 0.095, 0.105, 0.1, 0.09, 0.11, 0.1]
    estimate, se, df, _ = trimmed_means(np.array([nine + [-0.8]]))
    assert estimate[0] == pytest.approx(0.59 / 6) and se[0] == pytest.approx(0.000012 ** 0.5)
    _, _, p = t_interval(estimate, se, df)
    t_low, t_high, t_p = paired(np.mean(nine + [-0.8]), np.std(nine + [-0.8], ddof=1), 10)
    assert p[0] < 1e-5 and t_p > 0.9


def test_under_no_change_the_level_holds():
    # normal rounds, no change: about 5% of 4,000 measurements fall under p = 0.05
    rng = np.random.default_rng(4)
    estimate, se, df, _ = trimmed_means(rng.normal(0, 0.05, (4000, 20)))
    _, _, p = t_interval(estimate, se, df)
    assert 0.04 < np.mean(p < 0.05) < 0.06
