"""The paired noise model: fitted to A/A rounds written with a known shift per round, a
known effect per comparison group and phase and a known rest per measurement, it finds
them; comparisons simulated from them, stopping as the paired rounds stop, find a 10%
slowdown that stands well above that noise and flag nothing else; and their judge is the
one ``python -m bench paired`` uses."""

from itertools import product

import numpy as np
import pytest

from bench.analyze.paired_rounds import compare_paired, judge_sequentially
from bench.analyze.reader import load_run
from bench.schema import REQUIRED_PHASES
from bench.selfcheck.paired_noise import MAD_SCALE, fit
from bench.selfcheck.sequential_noise import QuietNoise, simulate
from tests.support.synthetic import env_record, result_row, write_run

GROUPS = list(product(("sequential", "shared_input"), (1, 2)))
SETUPS = ("separate", "single")
SHIFTS = (0.02, -0.01, 0.0, 0.03, 0.01, -0.02)  # each round's process level, b over a
# A group's effect in round i is CELL[(group + i) % 4]: every round's four groups take each
# value once (median 0), and over the six rounds each group's effects have median 0 and a
# median |effect| of 0.03, 0.045, 0.06 and 0.045 for groups 0 to 3.
CELL = (0.03, -0.03, 0.06, -0.06)
# What is left to each configuration: + for separate, - for single (median 0 each round,
# and over the rounds; median |rest| 0.005).
REST = (0.01, -0.01, 0.005, -0.005, 0.0, 0.0)


def write_round(folder, run_id, log_offset):
    rows, samples = [], {}
    for g, (scenario, batch) in enumerate(GROUPS):
        for s, setup in enumerate(SETUPS):
            for phase in REQUIRED_PHASES:
                median = (1.0 + batch) * np.exp(log_offset(g, s))
                values = [median * 0.99, median, median * 1.01]  # the median exactly
                row = result_row(run_id=run_id, scenario=scenario, batch_size=batch,
                                 optimizer_setup=setup, phase=phase, n_samples=3,
                                 group=f"{scenario}/bs{batch}", median_ms=median,
                                 ci_low_ms=values[0], ci_high_ms=values[2])
                rows.append(row)
                samples[(row["config_id"], phase, 1)] = values
    return write_run(folder, rows, samples, env_record(run_id))


def aa_rounds(root, cell: bool, rest: bool):
    for i, shift in enumerate(SHIFTS):
        def offset(g, s, i=i, shift=shift):
            return (shift + cell * CELL[(g + i) % 4]
                    + rest * (REST[i] if s == 0 else -REST[i]))
        write_round(root / "a" / f"round-{i + 1:02d}", f"a{i}", lambda g, s: 0.0)
        write_round(root / "b" / f"round-{i + 1:02d}", f"b{i}", offset)
    return root


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    return fit(aa_rounds(tmp_path_factory.mktemp("cells"), cell=True, rest=False))


@pytest.fixture(scope="module")
def rests(tmp_path_factory):
    return fit(aa_rounds(tmp_path_factory.mktemp("rests"), cell=False, rest=True))


def test_the_fit_finds_each_round_s_shift_and_each_group_s_effects(cells):
    keys = len(GROUPS) * len(SETUPS) * 4
    assert cells.shifts.shape == (len(SHIFTS), keys)
    for i, shift in enumerate(SHIFTS):
        assert cells.shifts[i] == pytest.approx(np.full(keys, shift), abs=1e-9)
    # a cell per group and phase, holding both setups
    assert len(cells.cell_scale) == len(GROUPS) * 4
    assert np.bincount(cells.cell).tolist() == [2] * 16
    for c in range(16):
        mine = cells.keys[cells.cell == c]
        assert len(set(mine.get_level_values("phase"))) == 1
        assert len(set(zip(mine.get_level_values("scenario"),
                           mine.get_level_values("batch_size")))) == 1
    scale = {(s, b): MAD_SCALE * m for (s, b), m in zip(GROUPS, (0.03, 0.045, 0.06, 0.045))}
    for c in range(16):
        key = cells.keys[cells.cell == c][0]
        assert cells.cell_scale[c] == pytest.approx(scale[(key[0], key[3])])
    # the setups of a group move together: nothing is left to them
    assert np.abs(cells.key_scale).max() <= 1e-6
    assert cells.describe()["cell_share_of_variance"] == pytest.approx(1.0)
    assert cells.describe()["step_shift_sd"] == pytest.approx(np.std(SHIFTS, ddof=1))


def test_the_fit_finds_what_each_configuration_keeps(rests):
    # no group effect: the two setups' rests cancel in their cell's mean
    assert rests.cell_scale == pytest.approx(np.full(16, rests.cell_scale.min()))
    assert rests.key_scale == pytest.approx(np.full(32, MAD_SCALE * 0.005))
    assert sorted(set(np.round(np.abs(rests.key_standardized) * MAD_SCALE * 0.005, 9))) == \
        [0.0, 0.005, 0.01]


def test_a_slowdown_far_above_the_noise_is_found_and_nothing_else_is(rests):
    # rests of sd about 0.007 and round shifts of sd 0.019 (whose mean over the rounds every
    # interval carries) against log 1.1 = 0.095; no unchanged measurement gets near the 5%
    # threshold, and every one is decided within the twelve rounds allowed
    result = simulate(rests, trials=3, seed=1, max_rounds=12)
    assert result["slowed_steps"] == 3 * 2 and result["found"] == 6
    assert result["false_changes"] == 0
    assert result["unchanged_measurements"] == 2 * 3 * 32 - 3 * 8
    assert result["capped_share"] == 0 and 3 <= result["mean_rounds"] <= 12
    # a round that measured only what was undecided counts as that share of a round
    assert result["mean_round_equivalents"] <= result["mean_rounds"]
    # no comparison of six flagged anything: the bound is Clopper-Pearson's for 0 of 6,
    # 1 - 0.05^(1/6), at a whole comparison's measurements per cluster
    assert result["false_change_rate_upper_95"] == pytest.approx(
        (1 - 0.05 ** (1 / 6)) * 6 / result["unchanged_measurements"] * 1.0, rel=1e-6)


def test_a_quiet_machine_decides_in_a_few_rounds(rests):
    quiet = simulate(QuietNoise(rests), trials=3, seed=2, max_rounds=24)
    assert quiet["found"] == quiet["slowed_steps"] and quiet["false_changes"] == 0
    assert quiet["mean_rounds"] <= 7 and quiet["capped_share"] == 0


def test_the_simulation_judges_as_the_paired_command_does(tmp_path):
    # compare_paired over the written rounds, and judge_sequentially over the log-ratios
    # they were written with: the same figures for every measurement
    root = aa_rounds(tmp_path, cell=True, rest=True)
    a = [load_run(p) for p in sorted((root / "a").iterdir())]
    b = [load_run(p) for p in sorted((root / "b").iterdir())]
    table = compare_paired(a, b)
    matrix = np.array([[SHIFTS[i] + CELL[(GROUPS.index((r.scenario, r.batch_size)) + i) % 4]
                        + (REST[i] if r.optimizer_setup == "separate" else -REST[i])
                        for i in range(len(SHIFTS))] for r in table.itertuples()])
    judged = judge_sequentially(matrix, table["phase"].to_numpy())
    columns = ["ratio", "low", "high", "decided_at", "rounds"]
    assert table[columns].to_numpy() == pytest.approx(judged[columns].to_numpy(), abs=1e-9,
                                                      nan_ok=True)
    assert table["verdict"].tolist() == judged["verdict"].tolist()
    assert len(table) == 32
