"""The arithmetic the paired judge does many times per comparison, done faster than numpy's
general routines: each held to the plain route it replaces, on inputs with gaps and ties."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bench.analyze.judge import level_interval, unique_quantiles
from bench.analyze.paired_rounds import PLAN, judge_sequentially, nan_median
from bench.analyze.t_distribution import student_t_quantile


@pytest.mark.parametrize("seed", range(4))
def test_the_median_of_each_line_is_numpys_nanmedian(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        rows, cols = rng.integers(1, 9, size=2)
        x = rng.normal(size=(rows, cols))
        if rng.random() < 0.3:  # ties
            x = rng.integers(0, 3, size=(rows, cols)).astype(float)
        x[rng.random((rows, cols)) < 0.35] = np.nan  # rounds that lack a key, some lines empty
        for axis in (0, 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an empty line
                expected = np.nanmedian(x, axis=axis, keepdims=True)
            np.testing.assert_array_equal(nan_median(x, axis), expected)


def test_medians_by_hand():
    x = np.array([[3.0, np.nan, 1.0, 2.0], [np.nan] * 4, [4.0, 1.0, np.nan, 2.0]])
    np.testing.assert_array_equal(nan_median(x, 1), [[2.0], [np.nan], [2.0]])
    np.testing.assert_array_equal(nan_median(x, 0), [[3.5, 1.0, 1.0, 2.0]])


def test_each_distinct_quantile_is_the_one_solved_alone():
    p = np.array([[0.975, 0.9995, 0.975], [0.9995, 0.8, 0.975]])
    df = np.array([[4.0, 4.0, 4.0], [11.0, 2.5, 4.0]])
    expected = [[float(student_t_quantile(pi, di)) for pi, di in zip(pr, dr)]
                for pr, dr in zip(p, df)]
    np.testing.assert_allclose(unique_quantiles(p, df), expected, rtol=1e-12)
    # t(0.975, 4) from the tables: 2.776
    assert unique_quantiles(np.array([0.975]), np.array([4.0]))[0] == pytest.approx(2.7764, abs=1e-4)


def test_an_interval_where_the_error_is_spent_or_the_rounds_too_few_has_no_bounds():
    low, high = level_interval([0.1, 0.1, 0.1], [0.02, 0.02, 0.0], [4.0, 0.0, 0.0],
                               [0.05, 0.05, 0.05])
    assert low[0] == pytest.approx(0.1 - 2.7764 * 0.02, abs=1e-5)
    assert (low[1], high[1]) == (-np.inf, np.inf)
    assert (low[2], high[2]) == (0.1, 0.1)  # no spread: the estimate itself


@pytest.mark.slow
def test_reusing_earlier_looks_judges_as_judging_afresh():
    rng = np.random.default_rng(7)
    keys = 24
    phase = np.repeat(["forward", "backward", "optimizer", "step"], keys // 4)
    rounds = np.full((keys, PLAN.rounds()[-1]), np.nan)
    looked: dict = {}
    for r in range(rounds.shape[1]):
        rounds[:, r] = rng.normal(0, 0.03, keys) + 0.1 * (np.arange(keys) % 5 == 0)
        if r % 3 == 2:
            rounds[rng.random(keys) < 0.5, r] = np.nan  # decided keys left out
        if r + 1 < PLAN.first:
            continue
        kept = judge_sequentially(rounds[:, :r + 1], phase, looked=looked)
        fresh = judge_sequentially(rounds[:, :r + 1], phase)
        assert kept.equals(fresh)
    assert len(looked) >= PLAN.looks
