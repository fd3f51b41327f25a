"""Wilcoxon's signed-rank test and the Hodges-Lehmann estimate, against values worked out by
hand, published tables, and every sign pattern counted."""

import itertools

import numpy as np
import pytest

from bench.analyze.significance import paired
from bench.analyze.signed_rank import critical, null_counts, signed_rank


def test_the_null_distribution_counts_every_sign_pattern():
    # ranks 1, 2, 3 signed every way: W+ = 0, 1, 2, 3, 3, 4, 5, 6
    assert null_counts(3).tolist() == [1, 1, 1, 2, 1, 1, 1]
    for n in (5, 9):
        sums = [sum(r for r, s in zip(range(1, n + 1), signs) if s)
                for signs in itertools.product((0, 1), repeat=n)]
        assert null_counts(n).tolist() == np.bincount(sums).tolist()


def test_critical_values_match_the_published_table():
    # two-sided 5%: reject at T <= 0 for n = 6, 2 for 7, 3 for 8, 5 for 9, 8 for 10, 25 for
    # 15, 52 for 20 (the usual table of Wilcoxon's T); under six rounds nothing can
    assert [critical(n) for n in (6, 7, 8, 9, 10, 15, 20)] == [0, 2, 3, 5, 8, 25, 52]
    assert critical(5) is None


def test_estimate_interval_and_p_by_hand():
    # |d| ranks 5, 1, 2, 3, 4, 6: every rank but 1 positive, W+ = 20 of 21; P(W+ >= 20) =
    # P(W+ <= 1) = 2 / 64, two-sided 4 / 64. The 21 Walsh averages sorted: -0.1, 0.05, 0.1,
    # 0.15, 0.2, 0.2, 0.25, 0.25, 0.3, 0.3, 0.35 (the 11th, the median), ...; with n = 6 the
    # interval is the whole range of them, -0.1 to 0.6
    d = np.array([[0.5, -0.1, 0.2, 0.3, 0.4, 0.6]])
    estimate, low, high, p, n = signed_rank(d)
    assert estimate[0] == pytest.approx(0.35)
    assert (low[0], high[0]) == pytest.approx((-0.1, 0.6))
    assert p[0] == pytest.approx(4 / 64) and n[0] == 6


def test_each_row_takes_its_own_rounds_and_too_few_give_nothing():
    rng = np.random.default_rng(3)
    full = rng.normal(0.2, 1, 10)
    rows = np.vstack([full, np.r_[full[:7], [np.nan] * 3], [0.3, np.nan] + [np.nan] * 8,
                      np.r_[full[:4], [np.nan] * 6]])
    estimate, low, high, p, n = signed_rank(rows)
    assert n.tolist() == [10, 7, 1, 4]
    alone = signed_rank(full[None, :7])
    assert (estimate[1], low[1], high[1], p[1]) == pytest.approx(
        (alone[0][0], alone[1][0], alone[2][0], alone[3][0]))
    assert np.isnan([estimate[2], p[2], low[3], high[3]]).all() and not np.isnan(p[3])
    # a p-value from every sign pattern of the ten rounds
    ranks = np.argsort(np.argsort(np.abs(full))) + 1
    w = ranks[full > 0].sum()
    sums = np.array([sum(r for r, s in zip(range(1, 11), signs) if s)
                     for signs in itertools.product((0, 1), repeat=10)])
    assert p[0] == pytest.approx(min(1, 2 * min((sums <= w).mean(), (sums >= w).mean())))


def test_the_interval_excludes_zero_exactly_when_the_test_rejects():
    rng = np.random.default_rng(5)
    d = rng.normal(0.4, 1, (400, 10))
    _, low, high, p, _ = signed_rank(d)
    assert ((low > 0) | (high < 0)).tolist() == (p <= 0.05).tolist()


def test_one_wild_round_costs_a_rank_where_it_costs_a_t_test_everything():
    # nine rounds near +10%, one 80% the other way. A t-test's standard deviation swallows
    # them (mean 0.01, sd 0.28: p = 0.91); ranks see nine of ten rounds one way, the wild
    # one with the largest rank: W+ = 1 + ... + 9 = 45 of 55, and P(W+ >= 45) = P(W+ <= 10)
    # = 43 / 1024 (the subsets of 1..10 summing to at most 10), two-sided 86 / 1024
    nine = [0.09, 0.1, 0.11, 0.095, 0.105, 0.1, 0.09, 0.11, 0.1]
    estimate, low, high, p, _ = signed_rank(np.array([nine + [-0.8]]))
    assert estimate[0] == pytest.approx(0.1) and p[0] == pytest.approx(86 / 1024)
    t_low, t_high, t_p = paired(np.mean(nine + [-0.8]), np.std(nine + [-0.8], ddof=1), 10)
    assert t_p > 0.9 and t_high - t_low > 10 * (high[0] - 0.1)
    # two more rounds like the nine: 11 of 12 one way, p = 2 * 70 / 4096, and the interval
    # (from the 14th Walsh average, 0.09) now excludes no change
    estimate, low, high, p, _ = signed_rank(np.array([nine + [-0.8, 0.1, 0.1]]))
    assert p[0] == pytest.approx(140 / 4096) and low[0] == pytest.approx(0.09)
