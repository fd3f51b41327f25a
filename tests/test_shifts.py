"""What moved together between two runs, and what a comparison could have seen: blocks of
measurements and common shifts found on tables built by hand, and the detectable change
against scipy's t quantiles."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as scipy_t

from bench.analyze.judge import detectable_change, rounds_for, typical
from bench.analyze.shifts import find_shifts, held, moved

SCENARIOS = ("sequential", "shared_input")
BATCHES = (1, 8, 32)
SETUPS = ("separate", "single", "grouped")


def table(ratio_of, phase="step"):
    """A compared table: a row per scenario, batch size and setup, each group (scenario and
    batch size) its own time window, its ratio from ``ratio_of(scenario, batch, setup)``."""
    rows = [{"scenario": s, "batch_size": b, "optimizer_setup": o, "phase": phase,
             "ratio": ratio_of(s, b, o), "window": f"{s}/{b}"}
            for s in SCENARIOS for b in BATCHES for o in SETUPS]
    return pd.DataFrame(rows)


def test_one_scenario_40_percent_slower_is_named_not_called_common():
    # the case: half the measurements 1.4x, half unchanged, no noise. The median is
    # 1.18, which no configuration shows: no common shift, the block of shared_input
    rows = table(lambda s, b, o: 1.4 if s == "shared_input" else 1.0)
    (shift,) = find_shifts(rows, 0.05)
    assert (shift.dimension, shift.value) == ("scenario", "shared_input")
    assert shift.relative == pytest.approx(1.4) and shift.others == pytest.approx(1.0)
    assert shift.measurements == 9 and shift.agree == 9
    # nothing else varies: the interval is the shift itself, and p is 0
    assert (shift.low, shift.high) == pytest.approx((1.4, 1.4)) and shift.p == 0
    assert moved(rows, shift).sum() == 9


def test_a_shift_every_configuration_agrees_on_is_common():
    # everything 10% slower, give or take 1%: common, named by no dimension
    wobble = {1: 0.99, 8: 1.0, 32: 1.01}
    (shift,) = find_shifts(table(lambda s, b, o: 1.1 * wobble[b]), 0.05)
    assert shift.dimension is None and shift.ratio == pytest.approx(1.1)
    assert shift.measurements == shift.agree == 18


def test_a_shift_only_some_agree_on_is_not_common():
    # 10 of 18 at 1.2, 8 at 1.0, spread over every dimension: the median moves, but a
    # quarter disagree and no dimension's values explain it
    pattern = iter([1.2, 1.0, 1.2, 1.2, 1.0, 1.2, 1.0, 1.2, 1.0,
                    1.0, 1.2, 1.0, 1.2, 1.0, 1.2, 1.2, 1.0, 1.2])
    rows = table(lambda s, b, o: next(pattern))
    assert [s for s in find_shifts(rows, 0.05) if s.dimension is None] == []


def test_the_values_that_held_are_the_one_nearest_no_change_and_its_neighbours():
    medians = {"a": math.log(1.01), "b": math.log(1.03), "c": math.log(1.5)}
    assert held(medians, 0.05) == {"a", "b"}
    # two values, one 40% slower: it is the other that held
    assert held({"x": 0.0, "y": math.log(1.4)}, 0.05) == {"x"}


def test_a_batch_size_that_moved_is_named_with_an_interval_from_the_residual_spread():
    # batch 32 1.5x everywhere; the rest 1.0 with a +-2% wobble per scenario and setup
    wobble = {"separate": 0.98, "single": 1.0, "grouped": 1.02}
    rows = table(lambda s, b, o: (1.5 if b == 32 else 1.0) * wobble[o])
    (shift,) = find_shifts(rows, 0.05)
    assert (shift.dimension, str(shift.value)) == ("batch_size", "32")
    # residuals after each batch size's median: the wobble, 0 or +-0.0198 in logs; the
    # median absolute residual is log 1.02, the spread 1.4826 x that. Windows: 2 in the
    # block, 4 in the rest, 6 in all, less 3 values: df = 0.37 x 3 = 1.11
    spread = 1.4826 * math.log(1.02)
    se = spread * math.sqrt(1 / 2 + 1 / 4)
    t = scipy_t.ppf(0.975, 0.37 * 3)
    centre = math.log(1.5)
    assert shift.low == pytest.approx(math.exp(centre - t * se), rel=1e-3)
    assert shift.high == pytest.approx(math.exp(centre + t * se), rel=1e-3)


def test_the_detectable_change_is_what_the_test_finds_80_percent_of_the_time():
    se, df = np.array([0.02, 0.1, np.nan]), np.array([8.0, 3.0, 5.0])
    got = detectable_change(se, df, 0.05)
    factor = scipy_t.ppf(0.975, df[:2]) + scipy_t.ppf(0.8, df[:2])
    assert got[:2] == pytest.approx(np.expm1(factor * se[:2]))
    assert np.isnan(got[2])
    # nothing under the threshold: a change smaller is not called anyway
    assert detectable_change(0.001, 100, 0.05) == pytest.approx(0.05)
    assert typical([0.3, np.nan, 0.1, 0.2]) == pytest.approx(0.2)


def test_rounds_for_a_change_follow_the_square_root_law():
    # 40% detectable with 2 units; a 10% change needs (log 1.4 / log 1.1)^2 = 12.4 as many
    assert rounds_for(0.10, 0.40, 2) == math.ceil(2 * (math.log(1.4) / math.log(1.1)) ** 2)
    assert rounds_for(0.5, 0.1, 3) == 3  # already detectable
