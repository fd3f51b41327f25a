"""The paired noise model: fitted to A/A rounds written with a known shift per round and a
known departure per measurement, it finds them; simulated from them, it finds a 10%
slowdown that stands well above that noise and flags nothing else."""

from itertools import product

import numpy as np
import pytest

from bench.schema import REQUIRED_PHASES
from bench.tools.paired_noise import fit, simulate
from bench.tools.synthetic import env_record, result_row, write_run

CONFIGS = list(product(("sequential", "shared_input"), (1, 2), ("separate", "single")))
SHIFTS = (0.1, -0.05, 0.0, 0.2, 0.03, -0.1)  # each round's process level, b over a


def departure(k: int, i: int) -> float:
    """Key k's departure in round i: +-0.01, +-0.02, 0 in turn, the same in every phase,
    so that each round's median over the eight configurations of a phase is 0."""
    return (0.01, -0.01, 0.02, -0.02, 0.0, 0.015, -0.015, 0.0)[(k + i) % 8]


def write_round(folder, run_id, log_offset):
    rows, samples = [], {}
    for k, (scenario, batch, setup) in enumerate(CONFIGS):
        for phase in REQUIRED_PHASES:
            median = (1.0 + batch) * np.exp(log_offset(k))
            values = [median * 0.99, median, median * 1.01]  # the median exactly
            row = result_row(run_id=run_id, scenario=scenario, batch_size=batch,
                             optimizer_setup=setup, phase=phase, n_samples=3,
                             median_ms=median, ci_low_ms=values[0], ci_high_ms=values[2])
            rows.append(row)
            samples[(row["config_id"], phase, 1)] = values
    write_run(folder, rows, samples, env_record(run_id))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("aa")
    for i, shift in enumerate(SHIFTS):
        write_round(root / "a" / f"round-{i + 1:02d}", f"a{i}", lambda k: 0.0)
        write_round(root / "b" / f"round-{i + 1:02d}", f"b{i}",
                    lambda k, i=i, shift=shift: shift + departure(k, i))
    return fit(root)


def test_the_fit_finds_each_round_s_shift_and_each_key_s_departures(model):
    assert model.shifts.shape == (len(SHIFTS), len(CONFIGS) * 4)
    for i, shift in enumerate(SHIFTS):
        assert model.shifts[i] == pytest.approx(np.full(len(CONFIGS) * 4, shift), abs=1e-9)
    configs = model.rows["config_id"].tolist()
    for column, config in enumerate(configs):
        k = next(n for n, c in enumerate(CONFIGS) if config.startswith(f"{c[0]}/seed/cpu/"
                                                                        f"bs{c[1]}/{c[2]}/"))
        raw = np.array([departure(k, i) for i in range(len(SHIFTS))])
        assert model.departures[:, column] == pytest.approx(raw - np.median(raw), abs=1e-9)
    assert set(model.rows["phase"]) == set(REQUIRED_PHASES)
    assert model.describe()["step_shift_sd"] == pytest.approx(np.std(SHIFTS, ddof=1))


def test_a_slowdown_far_above_the_noise_is_found_and_nothing_else_is(model):
    # departures within +-0.04 of their median against log 1.1 = 0.095: in eight rounds
    # drawn from the six, all eight go one way for every slowed measurement (p = 2 / 256),
    # under Benjamini-Hochberg's 0.05 x 8 / 32 for the 8 slowed of 32; six rounds could not
    # (2 / 64 is over it). No unchanged measurement departs past the 5% threshold
    result = simulate(model, trials=3, rounds=8, seed=1)
    assert result["slowed_steps"] == 3 * 2 and result["found"] == 6
    assert result["false_flags"] == 0 and result["trials_with_the_slowdown_seen"] == 1.0
    assert result["unchanged_measurements"] == 3 * (32 + 24)
    six = simulate(model, trials=1, rounds=6, seed=1)
    assert six["found"] == 0 and six["slowed_steps"] == 2
