"""Verdicts that stop when decided: the planned looks, the error budget spent over them, the
verdict boundaries, and the error rate with stopping included, checked by hand and by
simulation."""

import math

import numpy as np
import pytest
from scipy.stats import t as scipy_t

from bench.analyze.judge import FASTER, SAME, SLOWER, UNDECIDED
from bench.analyze.judge import band_verdict as verdict_of
from bench.analyze.sequential import (Plan, final_look, in_run_plan, judge_rounds,
                                      rounds_to_decide)


def test_the_in_run_looks_come_at_a_quarter_more_rounds_each():
    # 10, then ceil(10 x 1.25) = 13, ceil(13 x 1.25) = 17, ... twelve looks
    assert in_run_plan(10).rounds() == [10, 13, 17, 22, 28, 35, 44, 55, 69, 87, 109, 137]
    # growth 1 (the paired rounds'): a look every round
    assert Plan(first=3, looks=4, alpha=0.01, alpha_same=0.1).rounds() == [3, 4, 5, 6]


def test_the_budget_is_spent_in_full_over_the_looks_and_no_more():
    plan = in_run_plan(10)
    levels = [plan.level(k) for k in range(1, 13)]
    assert sum(levels) == pytest.approx(0.05, abs=1e-15)
    # Pocock-type: alpha ln(1 + (e - 1) t) at t = k / 12
    assert levels[0] == pytest.approx(0.05 * math.log(1 + (math.e - 1) / 12))
    assert levels[11] == pytest.approx(0.05 * (1 - math.log(1 + (math.e - 1) * 11 / 12)))
    # spending more early: every later look gets less than the first
    assert all(level < levels[0] for level in levels[1:])
    assert plan.level(0) == 0 and plan.level(13) == 0
    same = Plan(first=3, looks=5, alpha=0.01, alpha_same=0.2)
    assert sum(same.level(k, same=True) for k in range(1, 6)) == pytest.approx(0.2)


@pytest.mark.parametrize("rounds, look", [(10, 1), (13, 2), (12, 2), (11, 2), (137, 12),
                                          (500, 12), (3, 1)])
def test_a_comparison_that_stopped_between_looks_is_judged_at_the_next(rounds, look):
    assert final_look(in_run_plan(10), rounds) == look


@pytest.mark.parametrize("interval, expected", [
    # within the band: the same, though the interval excludes 1 (the band is checked first)
    ((0.952, 0.977), SAME), ((1.01, 1.049), SAME), ((0.95, 1.05), SAME),
    ((0.949, 0.99), FASTER), ((1.001, 1.2), SLOWER), ((0.90, 1.01), UNDECIDED),
    ((0.99, 1.051), UNDECIDED)])
def test_verdict_boundaries_at_five_percent(interval, expected):
    low, high = interval
    assert verdict_of(low, high, low, high, 0.05) == expected


def test_judge_rounds_matches_yuens_interval_computed_by_hand():
    # eight rounds: g = 1 trimmed at each end, h = 6 kept, df = 5
    logs = np.log([1.10, 1.12, 1.08, 1.30, 1.11, 1.09, 0.95, 1.13])
    plan = Plan(first=8, looks=3, alpha=0.01, alpha_same=0.1)
    (judged,) = judge_rounds(logs[None, :], plan, 1, threshold=0.05, beyond=True)
    ordered = np.sort(logs)
    mean = ordered[1:7].mean()
    winsorized = np.clip(ordered, ordered[1], ordered[6])
    se = math.sqrt(7 * winsorized.var(ddof=1) / (6 * 5))
    change = 0.01 * math.log(1 + (math.e - 1) / 3)
    same = 0.1 * math.log(1 + (math.e - 1) / 3)
    assert judged.ratio == pytest.approx(math.exp(mean))
    assert judged.low == pytest.approx(math.exp(mean - scipy_t.ppf(1 - change / 2, 5) * se))
    assert judged.high == pytest.approx(math.exp(mean + scipy_t.ppf(1 - change / 2, 5) * se))
    assert judged.same_low == pytest.approx(math.exp(mean - scipy_t.ppf(1 - same / 2, 5) * se))
    assert judged.low > 1 and judged.ratio > 1.05 and judged.verdict == SLOWER
    assert judged.rounds == 8


def test_a_significant_change_within_the_threshold_is_not_a_regression_yet():
    # 3% slower, known to +-0.5%: not the same (outside no band edge), not beyond 5%
    logs = np.log(1.03) + np.array([0.004, -0.004, 0.002, -0.002, 0.0, 0.003, -0.003, 0.001])
    plan = Plan(first=8, looks=1, alpha=0.01, alpha_same=0.1)
    (as_regression,) = judge_rounds(logs[None, :], plan, 1, 0.05, beyond=True)
    (as_setups,) = judge_rounds(logs[None, :], plan, 1, 0.05, beyond=False)
    assert as_regression.verdict == SAME  # its whole interval lies within 5%
    assert as_setups.verdict == SAME
    logs = np.log(1.049) + logs - np.log(1.03)
    (near_edge,) = judge_rounds(logs[None, :], plan, 1, 0.05, beyond=True)
    (setups,) = judge_rounds(logs[None, :], plan, 1, 0.05, beyond=False)
    assert near_edge.verdict == UNDECIDED  # excludes 1, but 4.9% is no regression
    assert setups.verdict == SLOWER  # which setup is faster: it is, if only a little


def test_rounds_to_decide_follows_the_square_root_law():
    logs = 0.08 * np.array([1, -1, 1, -1, 0.5, -0.5, 0.2, -0.2])
    plan = Plan(first=8, looks=1, alpha=0.01, alpha_same=0.1)
    (judged,) = judge_rounds(logs[None, :], plan, 1, 0.05, beyond=True)
    assert judged.verdict == UNDECIDED
    half = (math.log(judged.same_high) - math.log(judged.same_low)) / 2
    room = math.log(1.05) - abs(math.log(judged.ratio))
    assert rounds_to_decide(judged, 0.05) == math.ceil(8 * (half / room) ** 2)
    assert rounds_to_decide(judged, 0.05) > 8


def test_stopping_at_every_look_keeps_false_changes_under_the_budget():
    """Two identical configurations, judged at every planned look and stopped at the first
    decision: how often is either called faster or slower? At most the 5% spent, and the
    bound holds with stopping included (normal noise and a heavy-tailed one)."""
    rng = np.random.default_rng(7)
    plan = in_run_plan(10)
    for noise in (rng.normal(0, 0.05, (3000, 137)),
                  0.03 * rng.standard_t(3, (3000, 137))):
        open_ = np.ones(len(noise), dtype=bool)
        wrong = 0
        for look, rounds in enumerate(plan.rounds(), start=1):
            judged = judge_rounds(noise[open_, :rounds], plan, look, 0.05)
            verdicts = np.array([j.verdict for j in judged])
            wrong += int(np.isin(verdicts, [FASTER, SLOWER]).sum())
            open_[np.flatnonzero(open_)[verdicts != UNDECIDED]] = False
        # the binomial's 3-sigma margin over 3,000 comparisons
        assert wrong / len(noise) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / len(noise))
