"""Changes along a machine's history (``bench/history/changes.py``): the rules on series of
numbers chosen by hand, then synthetic histories in both stores (DuckDB in a temporary
folder and a real PostgreSQL server, as in test_history_store.py), and the command."""

from __future__ import annotations

import math
import re
import statistics
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bench.history.add import add_run
from bench.commands.history_changes import TITLES
from bench.history.changes import clearest, find_changes, judge
from bench.history.store import open_store
from bench.schema import STEP
from tests.support.synthetic import sweep_run
from tests.conftest import ROOT
from tests.postgres_server import free_port

UPGRADE = "torch 2.13.0 -> 2.14.1"
CONFIGS = 12  # 2 scenarios x 2 batch sizes x 3 setups


def machine_history(folder, prefix, slowdowns, torch, noise, hostname="host-a", hour=0,
                    seed=0):
    """One run a day from 2026-01-01 at ``hour``: run i at ``slowdowns[i]`` times a
    lognormal factor of its own, of sigma ``noise`` (the noise of a whole run: the machine's
    drift), under ``torch[i]``; each run's samples from a seed of its own."""
    factors = np.asarray(slowdowns) * np.random.default_rng(seed).lognormal(0, noise,
                                                                           len(slowdowns))
    return [sweep_run(folder / f"{prefix}-{i:02d}", scenarios=["sequential", "gan"],
                      batch_sizes=[1, 8], run_id=f"{prefix}-{i:02d}", samples_per_phase=20,
                      seed=seed * 100 + i, slowdown=float(slow),
                      env={"torch_version": version, "hostname": hostname,
                           "started_at": f"2026-01-{i + 1:02d}T{hour:02d}:00:00+00:00"})
            for i, (slow, version) in enumerate(zip(factors, torch))]


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory):
    """Ten runs of host-a: torch 2.13.0 for five, then 2.14.1 and 1.2x slower, 3% noise."""
    return machine_history(tmp_path_factory.mktemp("upgrade"), "a",
                           [1.0] * 5 + [1.2] * 5, ["2.13.0"] * 5 + ["2.14.1"] * 5,
                           noise=0.03, seed=1)


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    """Ten runs of host-a under one torch, nothing changed, 4% noise per run."""
    return machine_history(tmp_path_factory.mktemp("flat"), "f", [1.0] * 10,
                           ["2.13.0"] * 10, noise=0.04, seed=2)


@pytest.fixture(scope="module")
def outlier(tmp_path_factory):
    """Ten runs of host-o under one torch, 4% noise per run, the sixth 1.3x slower."""
    return machine_history(tmp_path_factory.mktemp("outlier"), "o",
                           [1.0] * 5 + [1.3] + [1.0] * 4, ["2.13.0"] * 10, noise=0.04,
                           hostname="host-o", seed=3)


def stored(url, runs):
    with open_store(url, write=True) as store:
        for run in runs:
            add_run(store, run)
    return url


def changes(url, **kwargs):
    with open_store(url, write=True) as store:
        return find_changes(store, **kwargs)


def history(*args):
    return subprocess.run([sys.executable, "-m", "bench", "history", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def step_times(runs) -> pd.DataFrame:
    """config_id x run: the step's median_ms, as each results.csv says."""
    frames = [pd.read_csv(run / "results.csv") for run in runs]
    rows = pd.concat([f[f["phase"] == STEP] for f in frames])
    return rows.pivot(index="config_id", columns="run_id", values="median_ms")


def test_a_step_is_judged_by_hand_computed_numbers():
    # logs of 10 ms and 12 ms, each side moved by 0, +e, -e, +e, -e: each side's median and
    # mean are its level, its squared deviations sum to 4 e^2, so the pooled variance of a
    # run over 5 + 5 - 2 = 8 degrees of freedom is 8 e^2 / 8 = e^2
    e = 0.02
    wobble = np.array([0, e, -e, e, -e])
    levels = np.concatenate([math.log(10) + wobble, math.log(12) + wobble])
    boundaries = judge(levels, np.full(10, np.nan))
    assert [b.index for b in boundaries] == [2, 3, 4, 5, 6, 7, 8]
    (change,) = [b for b in boundaries if b.candidate]
    assert change.index == 5 and (change.runs_before, change.runs_after) == (5, 5)
    assert math.exp(change.d) == pytest.approx(1.2, rel=1e-12)
    # se = e sqrt(pi/2 (1/5 + 1/5)) = 0.02 x 0.792665 = 0.0158533; t(0.975, 8) = 2.306004
    assert change.se == pytest.approx(0.0158533, rel=1e-5) and change.df == 8
    assert math.exp(change.low) == pytest.approx(1.2 * math.exp(-2.306004 * 0.0158533),
                                                 rel=1e-6)  # 1.15692
    assert math.exp(change.high) == pytest.approx(1.2 * math.exp(2.306004 * 0.0158533),
                                                  rel=1e-6)  # 1.24469


def test_a_change_starts_where_the_runs_after_it_show_it():
    # the sixth run is still at 10 ms: the median of 10, 12, 12, 12, 12 is 12 already, but
    # the step starts at the seventh run, where the first two runs after it show it
    levels = np.log([10.0] * 6 + [12.0] * 4)
    assert [b.index for b in judge(levels, np.full(10, np.nan)) if b.candidate] == [6]


def test_a_single_odd_run_or_a_pair_of_runs_is_never_a_change():
    e = 0.02
    flat = math.log(10) + np.array([0, e, -e, e, -e, 0, e, -e, e, -e])
    nothing = np.full(10, np.nan)
    for odd in (5, 8):  # in the middle; second to last, where 2 runs follow the boundary
        levels = flat.copy()
        levels[odd] += math.log(1.3)
        assert [b.index for b in judge(levels, nothing) if b.candidate] == []
    # one run on a side: however far apart, and however narrow their own intervals
    assert judge(np.log([10.0, 13.0]), [1e-8, 1e-8]) == []
    assert judge(np.log([10.0, 10.0, 13.0]), [1e-8] * 3) == []


def test_the_runs_own_intervals_set_a_floor_on_their_spread():
    # identical runs on each side: only their own intervals say how far apart they could
    # be. Within +-0.1% each, 1.15 is a change; within +-20% (sd log(1.2) / 1.96 = 0.0930
    # each), the sides' intervals reach 2.306 x 0.0930 x 1.2533 x 2 / sqrt(5) = 0.240 in
    # all, beyond log(1.15) = 0.140
    levels = np.log([10.0] * 5 + [11.5] * 5)
    narrow = (math.log(1.001) / 1.959964) ** 2
    wide = (math.log(1.2) / 1.959964) ** 2
    assert [b.index for b in clearest([b for b in judge(levels, [narrow] * 10)
                                       if b.candidate])] == [5]
    assert [b.index for b in judge(levels, [wide] * 10) if b.candidate] == []


def test_a_torch_upgrade_is_found_once_at_its_boundary_in_every_configuration(
        store_url, upgrade):
    found = changes(stored(store_url, upgrade))
    times = step_times(upgrade)
    assert len(found) == CONFIGS
    assert sorted(c.config_id for c in found) == sorted(times.index)
    for change in found:
        assert (change.machine, change.phase) == ("host-a", STEP)
        assert (change.before_run, change.after_run) == ("a-04", "a-05")
        assert change.before_started_at == "2026-01-05T00:00:00+00:00"
        assert change.after_started_at == "2026-01-06T00:00:00+00:00"
        assert change.attributed_to == (UPGRADE,) and change.explanation == UPGRADE
        assert change.direction == "slower" and (change.runs_before, change.runs_after) == (5, 5)
        # the median of the five runs' medians after, over that of the five before
        row = times.loc[change.config_id]
        expected = (statistics.median(row[[f"a-{i:02d}" for i in range(5, 10)]])
                    / statistics.median(row[[f"a-{i:02d}" for i in range(5)]]))
        assert change.ratio == pytest.approx(expected, rel=1e-9)
        assert change.ratio_low < 1.2 < change.ratio_high
        assert 1 < change.ratio_low < change.ratio < change.ratio_high < 1.45
        assert abs(change.ratio / 1.2 - 1) < 0.05
        assert change.q_value < 0.05


@pytest.mark.slow
def test_a_flat_history_and_one_slow_run_give_none(store_url, flat, outlier):
    # the slow run is there, 1.3x (within the runs' 4% noise) in every configuration
    times = step_times(outlier)
    assert (times["o-05"] / times["o-04"]).between(1.3 / 1.15, 1.3 * 1.15).all()
    url = stored(store_url, [*flat, *outlier])
    assert changes(url) == []
    proc = history("changes", "--store", url)
    first, seen = proc.stdout.splitlines()
    assert (proc.returncode, first) == (0, f"no changes in {2 * CONFIGS} series "
                                           f"(phase {STEP}, {url})")
    # 4% noise a run, two to five runs a side: the finest a boundary sees, five a side on
    # 8 degrees of freedom, is (2.31 + 0.89) x 0.04 x sqrt(pi / 2 x 2 / 5) = 10%; the slow
    # run widens its windows
    assert seen.startswith("At the noise of these histories, a step under ~")
    assert 0.10 <= float(seen.split("~")[1].split("%")[0]) / 100 <= 0.6


@pytest.mark.slow
def test_two_machines_are_kept_apart(store_url, upgrade, tmp_path):
    # host-b: 1.5x slower than host-a's first runs and flat, its runs between host-a's: a
    # history mixing the two would jump at every run
    other = machine_history(tmp_path, "b", [1.5] * 10, ["2.13.0"] * 10, noise=0.04,
                            hostname="host-b", hour=12, seed=4)
    url = stored(store_url, [*upgrade, *other])
    found = changes(url)
    assert len(found) == CONFIGS
    assert {(c.machine, c.before_run, c.after_run) for c in found} == {("host-a", "a-04",
                                                                        "a-05")}
    assert changes(url, machine="host-b") == []
    assert len(changes(url, machine="host-a")) == CONFIGS


def test_the_command_prints_each_change_and_refuses_bad_input_in_one_line(store_url,
                                                                          upgrade):
    url = stored(store_url, upgrade)
    config = "sequential/seed/cuda:0/bs8/single/adam/foreach"
    proc = history("changes", "--store", url, "--config", config)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"1 change in 1 series (phase {STEP}, {url}):"
    (change,) = changes(url, config=config)
    assert re.split(r"\s{2,}", lines[1]) == list(TITLES)
    assert re.split(r"\s{2,}", lines[2]) == [
        "host-a", config, "2026-01-05 -> 2026-01-06 (a-05)",
        f"{change.ratio:.3f} [{change.ratio_low:.3f}, {change.ratio_high:.3f}]", "slower",
        UPGRADE]
    # a part of a config_id: the six configurations of batch size 8
    proc = history("changes", "--store", url, "--config", "/bs8/")
    assert proc.returncode == 0 and proc.stdout.startswith("6 changes in 6 series"), proc
    assert proc.stdout.count(UPGRADE) == 6
    proc = history("changes", "--store", url, "--phase", "forward", "--threshold", "30")
    assert proc.returncode == 0 and proc.stdout.startswith("no changes in 12 series"), proc

    closed = f"postgresql://someone:secret@127.0.0.1:{free_port()}/nothing"
    for args, expected in ((("--store", url, "--machine", "nope"), "has no machine 'nope'"),
                           (("--store", url, "--config", "nope"), "matches 'nope'"),
                           (("--store", closed), "cannot reach history store")):
        proc = history("changes", *args)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
        assert proc.stdout == ""
