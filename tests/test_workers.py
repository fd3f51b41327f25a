"""A run measured by several fresh worker processes: which passes each measures, how many
the spread between them asks for, and real runs of two workers, interrupted and resumed."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench.measure.timers import TimingOptions
from bench.sweep.config import MOST_WORKERS, SweepConfig
from bench.sweep.passes import passes_of, worker_of
from bench.sweep.workers import FIRST_WORKERS, process_spread, worker_timing, workers_wanted
from tests.support.synthetic import result_row, write_run
from tests.conftest import ROOT, run_cli

TINY = ["--scenarios", "sequential", "--batch-sizes", "1,2", "--optimizer-setups",
        "separate,single", "--warmup-s", "0", "--budget-s", "0.05", "--min-rounds", "2",
        "--threads", "1"]


def test_worker_k_measures_its_own_passes():
    assert list(passes_of(1, 1)) == [1] and list(passes_of(3, 1)) == [3]
    assert list(passes_of(2, 3)) == [4, 5, 6]
    assert [worker_of(r, 3) for r in range(1, 7)] == [1, 1, 1, 2, 2, 2]


@pytest.mark.parametrize("workers, share", [(0, 0.6), (1, 1.2), (3, 0.4), (4, 0.3)])
def test_the_workers_share_the_run_s_budget(workers, share):
    # 1.2 s per configuration: auto starts two workers, 0.6 s each; three given, 0.4 s
    config = SweepConfig(axes={}, workers=workers,
                         timing=TimingOptions(budget_s=1.2, min_rounds=7))
    timing = worker_timing(config)
    assert timing.budget_s == pytest.approx(share)
    assert timing.min_rounds == 7  # each worker's own


@pytest.mark.parametrize("spread, wanted", [
    (None, FIRST_WORKERS), (0.0, 2), (0.02, 2), (0.04, 3), (0.05, 4), (0.3, MOST_WORKERS)])
def test_the_workers_wanted_bring_the_mean_s_error_to_the_target(spread, wanted):
    # (spread / 0.025)^2, between two and four: 0.04 -> 2.56 -> 3; 0.05 -> 4
    assert workers_wanted(spread) == wanted


def test_the_spread_between_processes_is_pooled_over_configurations(tmp_path):
    rows = []
    for setup, (one, two) in (("separate", (1.0, 1.1)), ("single", (2.0, 2.4))):
        for repeat, median in ((1, one), (2, two)):
            rows.append(result_row(optimizer_setup=setup, repeat=repeat, worker=repeat,
                                   median_ms=median))
    folder = write_run(tmp_path / "run", rows)
    # each configuration's variance of log medians over two passes is (log ratio)^2 / 2;
    # pooled with one degree of freedom each, their mean
    expected = math.sqrt((math.log(1.1) ** 2 / 2 + math.log(1.2) ** 2 / 2) / 2)
    assert process_spread(folder) == pytest.approx(expected)


@pytest.mark.slow
def test_two_workers_each_measure_every_configuration(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", *TINY, "--workers", "2", "--out-dir", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    results = pd.read_csv(out / "results.csv")
    steps = results[results.phase == "step"]
    assert sorted(zip(steps.worker, steps.repeat)) == [(1, 1)] * 4 + [(2, 2)] * 4
    assert (steps.groupby("config_id").size() == 2).all()
    env = json.loads((out / "env.json").read_text())
    assert env["workers"]["count"] == 2 and env["workers"]["chosen"] == "given"
    assert env["workers"]["process_spread"] == pytest.approx(process_spread(out))
    # both workers' rounds pair in the run's ratios: at least two each
    ratios = pd.read_csv(out / "ratios.csv")
    assert (ratios.blocks >= 4).all()
    assert "Verdicts:" in proc.stdout and "Results:" in proc.stdout
    # the store takes the run whole: 2 batch sizes x 2 setups x 2 workers x 4 phases
    added = run_cli("history", "add", str(out), "--store", str(tmp_path / "history.duckdb"))
    assert added.returncode == 0 and "added (32 rows" in added.stdout, added.stderr


def rows_written(out) -> int:
    path = out / "results.csv"
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


@pytest.mark.slow
def test_signals_before_the_workers_open_the_run_leave_a_run_to_resume(tmp_path):
    """Two signals as soon as the run's environment is recorded, before its workers (fresh
    interpreters, slow to start on a loaded machine) have opened its files: the run stops
    with nothing measured and resumes, as one stopped later does (or, the signals landing
    while it still set up, its folder is taken back). It failed reading a results.csv no
    worker had made yet."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "bench", "run", "--scenarios",
                                "sequential", "--batch-sizes", "1", "--optimizer-setups",
                                "separate,single", "--workers", "2", "--warmup-s", "0",
                                "--budget-s", "0.05", "--out-dir", str(out), "--quiet",
                                "--no-report"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "env.json").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGTERM)
    said, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "Traceback" not in err and "holds no results.csv" not in err, err
    if not out.exists():  # stopped while it set up, before the workers: taken back
        assert "interrupted before anything was measured" in err and "taken back" in err
        return
    assert rows_written(out) == 0
    resumed = subprocess.run([sys.executable, "-m", "bench", "run", "--resume", str(out),
                              "--quiet", "--no-report"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert rows_written(out) == 2 * 2 * 4  # two workers' passes of two setups' four phases


@pytest.mark.slow
def test_a_signal_stops_the_workers_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # one group at a time: the groups in progress when the signal comes are not all of them
    args = [*TINY[:3], "1,2,3,4", *TINY[4:], "--interleave", "1"]
    process = subprocess.Popen([sys.executable, "-m", "bench", "run", *args, "--workers", "2",
                                "--out-dir", str(out), "--quiet", "--budget-s", "0.5"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while rows_written(out) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    before = pd.read_csv(out / "results.csv")
    assert 0 < len(before) < 2 * 8 * 4
    proc = run_cli("run", "--resume", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    after = pd.read_csv(out / "results.csv")
    # every configuration once per worker, none twice, what was kept still there
    assert len(after) == 2 * 8 * 4
    assert not after.duplicated(["repeat", "config_id", "phase"]).any()
    kept = before.merge(after, on=["repeat", "config_id", "phase", "median_ms"])
    assert len(kept) == len(before)


@pytest.mark.slow
def test_a_second_signal_stops_the_workers_at_once(tmp_path):
    """Eight groups in flight at once (the CPU's default): the first signal lets each finish
    its fewest rounds, a slow step's many seconds here; the second, passed on to the
    workers too, drops them, as it does in one process. It was passed on once, and every
    group in flight was measured to the end (all of them, in a sweep of eight)."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MULTINET_TEST_WORK": "400"}
    args = ["--load", "tests/work_scenario.py", "--scenarios", "test_work", "--sizes", "seed",
            "--batch-sizes", "1,2,3,4", "--optimizer-setups", "separate,single",
            "--warmup-s", "0", "--budget-s", "30", "--min-rounds", "40", "--threads", "1"]
    process = subprocess.Popen([sys.executable, "-m", "bench", "run", *args, "--workers", "2",
                                "--out-dir", str(out), "--quiet", "--no-report"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "env.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # the workers start once the run's environment is recorded
    time.sleep(4)  # and then import torch and measure
    assert rows_written(out) == 0  # the sweep is too slow to have finished a group yet
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    said, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert time.monotonic() - started < 30, "the workers measured on after the second signal"
    assert rows_written(out) == 0, "a group in flight was measured to the end"
    assert "No configuration was measured." in said
    assert f"run --resume {out}" in said + err, said + err
