"""Bisection across environments: the search, on comparisons whose answers are known (how
many it makes, where it places each change), and the whole tool on real environments that
differ only in a variable, the fourth making the sweep about four times the work."""

import math
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench.analyze.bisection import bisect, there
from bench.present.bisection_text import bisection_text
from tests.conftest import ROOT, run_cli
from tests.support.refusals import refused_in_one_line


def known(culprits: dict[str, int], ratio: float = 2.0, partial: dict | None = None):
    """``compare(k)`` for measurements each changed by ``ratio`` from its culprit on (and
    by ``partial[m]`` = (from, ratio) before that, where given)."""
    def compare(k: int) -> pd.DataFrame:
        rows = []
        for config, culprit in culprits.items():
            r = ratio if k >= culprit else 1.0
            if partial and config in partial and partial[config][0] <= k < culprit:
                r = partial[config][1]
            rows.append({"config": config, "phase": "step", "ratio": r, "low": r * 0.98,
                         "high": r * 1.02,
                         "verdict": "regression" if r > 1.05 else "no change"})
        return pd.DataFrame(rows)
    return compare


def test_five_environments_with_the_fourth_to_blame_take_three_comparisons():
    found = bisect(5, known({"a": 3, "b": 3}))
    assert found.compared == [4, 2, 3]
    assert list(found.steps()) == [(2, 3)]
    step = found.steps()[(2, 3)]
    assert [c.config for c in step] == ["a", "b"]
    assert step[0].at_high["ratio"] == 2.0 and step[0].at_low["ratio"] == 1.0


@pytest.mark.parametrize("count", range(2, 10))
def test_every_culprit_is_found_in_logarithmically_many_comparisons(count):
    for culprit in range(1, count):
        found = bisect(count, known({"m": culprit}))
        assert [(c.low, c.high) for c in found.placed] == [(culprit - 1, culprit)]
        assert len(found.compared) <= 1 + math.ceil(math.log2(count - 1))


def test_nothing_changed_is_one_comparison_and_no_step():
    found = bisect(5, known({"m": 99}))
    assert found.compared == [4] and found.placed == []
    text = bisection_text(found, ["e1", "e2", "e3", "e4", "e5"], {})
    assert text.endswith("No change between e1 and e5: nothing to bisect.")


def test_changes_with_different_culprits_are_each_placed_sharing_comparisons():
    found = bisect(9, known({"early": 2, "late": 7}))
    assert {c.config: (c.low, c.high) for c in found.placed} == {"early": (1, 2),
                                                                "late": (6, 7)}
    assert found.compared[0] == 8 and len(found.compared) <= 7


def test_a_change_in_two_steps_is_placed_where_it_passes_half_its_size():
    # 1.2 from the second environment, 2.0 from the fourth: log 1.2 < log 2 / 2
    found = bisect(5, known({"m": 3}, partial={"m": (1, 1.2)}))
    assert [(c.low, c.high) for c in found.placed] == [(2, 3)]
    assert there({"ratio": 1.5}, {"ratio": 2.0}) and not there({"ratio": 1.4}, {"ratio": 2.0})
    assert there({"ratio": 0.6}, {"ratio": 0.5}) and not there(None, {"ratio": 2.0})


def test_the_report_gives_each_step_its_intervals_and_env_json_differences():
    found = bisect(5, known({"m": 3}))
    envs = {"e1": {"threads": 2, "settings": {}}, "e3": {"threads": 2, "settings": {}},
            "e4": {"threads": 2, "settings": {"OMP_NUM_THREADS": "1"},
                   "machine_load": {"others_share": 0.5}}}
    text = bisection_text(found, ["e1", "e2", "e3", "e4", "e5"], envs)
    assert "3 paired comparisons against e1" in text
    assert "First at e4 (after e3): 1 change" in text
    assert ("  m step: 2.000 [1.960, 2.040] regression at e4 against e1 (at e3: 1.000 "
            "[0.980, 1.020], no change)") in text
    # what the moment brought (the machine's load) is not a difference of the environments
    assert text.endswith("env.json from e3 to e4: settings.OMP_NUM_THREADS: - -> 1")


# One thread: on a machine with more runnable processes than cores, torch's two OpenMP
# threads wait for each other at every parallel region, and a phase's median then moved
# 100-fold from one process to the next (0.17 to 187 ms), burying any slowdown.
SWEEP = ("--load tests/work_scenario.py --scenarios test_work --sizes seed --devices cpu "
         "--batch-sizes 256 --optimizer-setups separate --optimizer sgd --optimizer-impl loop "
         "--budget-s 0.3 --min-rounds 2 --warmup-s 0 --compare-by none --threads 1")


def run_bisection(out_dir, settings: dict[str, str]):
    envs = [f"--env=e{i}={sys.executable}" for i in range(1, 6)]
    sets = [f"--set=e{i}:{var}" for i, var in settings.items()]
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "bench", "bisect", *envs, *sets,
                           # five: the fewest rounds a verdict rests on, and all that a
                           # sixfold slowdown, or none, needs
                           "--rounds", "5", "--out-dir", str(out_dir), "--run-args", SWEEP],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=3600)
    return proc, time.monotonic() - started


@pytest.mark.slow
def test_a_real_slowdown_at_the_fourth_of_five_environments_is_named_there(tmp_path):
    proc, took = run_bisection(tmp_path, {4: "MULTINET_TEST_WORK=6",
                                          5: "MULTINET_TEST_WORK=6"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "3 paired comparisons against e1" in out, out[-3000:]
    assert "First at e4 (after e3):" in out
    # the variable is what env.json says changed there (the commit too, were one made
    # while the test ran)
    step_env = next(line for line in out.splitlines() if "env.json from" in line)
    assert step_env.startswith("  env.json from e3 to e4: ")
    assert "settings.MULTINET_TEST_WORK: - -> 6" in step_env
    assert (tmp_path / "bisection.txt").read_text().startswith("Bisection over 5")
    print(f"bisection over five environments: {took:.0f} s")


@pytest.mark.slow
def test_five_identical_environments_give_nothing_to_bisect(tmp_path):
    proc, took = run_bisection(tmp_path, {})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 paired comparison against e1" in proc.stdout
    assert "No change between e1 and e5: nothing to bisect." in proc.stdout
    print(f"bisection over five identical environments: {took:.0f} s")


def test_names_that_make_too_long_a_comparison_folder_are_refused_in_one_line(tmp_path):
    """Each is a folder's name alone; FIRST-vs-OTHER, the comparison's, is not."""
    first, other = "a" * 130, "b" * 130
    proc = run_cli("bisect", "--env", f"{first}={sys.executable}", "--env",
                   f"{other}={sys.executable}", "--out-dir", str(tmp_path / "out"))
    refused_in_one_line(proc, "a comparison's folder is named FIRST-vs-OTHER, 264 bytes here, "
                        "too long for a folder's name (at most 200)")
    assert not (tmp_path / "out").exists()
