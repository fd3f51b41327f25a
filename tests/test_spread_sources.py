"""Where the spread between runs comes from: the split of block medians into a process's
level and its time windows, checked on values built by hand, and one real probe."""

import json
import math

import numpy as np
import pytest

from bench.selfcheck.spread_sources import components, run_probe, shared_window


def test_a_level_per_process_and_nothing_else_is_all_process_spread():
    # three processes at levels e^-0.1, 1, e^0.1, every block of a process alike
    probes = [[math.exp(level)] * 20 for level in (-0.1, 0.0, 0.1)]
    out = components(probes)
    assert out["window_sd"] == pytest.approx(0.0, abs=1e-12)
    assert out["process_sd"] == pytest.approx(0.1)  # the sd of -0.1, 0, 0.1
    assert out["blocks_per_probe"] == 20


def test_windows_that_alternate_within_each_process_are_window_spread():
    # every process alternates 0.9 and 1.1 around the same level: no process spread
    probes = [[0.9, 1.1] * 10 for _ in range(3)]
    out = components(probes)
    logs = np.log([0.9, 1.1] * 10)
    assert out["window_sd"] == pytest.approx(math.sqrt(
        np.sum((logs - logs.mean()) ** 2) * 3 / (60 - 3)))
    assert out["process_sd"] == 0.0 and out["lag1"] == pytest.approx(-1.0)


def test_a_level_every_configuration_meets_at_once_is_shared():
    rng = np.random.default_rng(0)
    machine = rng.normal(0, 0.2, 200)  # the machine's level, block by block
    same = [[list(np.exp(machine)) for _ in range(1)] for _ in range(2)]
    assert shared_window(same) == pytest.approx(1.0)
    apart = [[list(np.exp(rng.normal(0, 0.2, 200)))] for _ in range(2)]
    assert shared_window(apart) < 0.1


@pytest.mark.slow
def test_a_real_probe_times_each_configuration_in_blocks():
    out = run_probe("default", ["sequential:1", "shared_input:1"], seconds=0.5, block_s=0.02)
    assert out["threads"] >= 1 and len(out["blocks"]) == 2
    assert all(len(b) >= 2 and min(b) > 0 for b in out["blocks"])
    json.dumps(out)  # what the parent reads back


def test_a_probe_slower_than_its_seconds_still_takes_two_blocks_each():
    """Under a burner per core a 0.5 s probe once finished a single cycle, leaving a spread
    of one block; with no seconds at all it still takes the two a spread needs."""
    out = run_probe("default", ["sequential:1"], seconds=0.0, block_s=0.01)
    assert [len(b) for b in out["blocks"]] == [2]
