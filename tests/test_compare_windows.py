"""One run per side: measurements timed together (a comparison group) drift together, so
the drift test counts its degrees of freedom in groups, not measurements; and the noise
model that checks it resamples whole groups of measured runs."""

from itertools import product

import numpy as np
import pytest

from bench.analyze.run_comparison import compare_runs, load_side
from bench.analyze.judge import NO_CHANGE, REGRESSION
from bench.analyze.t_distribution import student_t_cdf
from bench.schema import REQUIRED_PHASES
from bench.selfcheck.noise_model import binomial_upper, fit, paired_draws, simulated_run
from tests.support.synthetic import env_record, result_row, write_run

SCENARIOS = ("sequential", "shared_input", "separate_losses")
BATCHES, SETUPS = (1, 32, 128), ("separate", "single", "grouped")
# Each group's log-ratio, shared by its three setups and four phases. Per phase the 27
# values are these nine three times: median 0, and |x| sorted 0, .01, .02, .02, .05, .05,
# .1, .3, .3 gives a MAD of 0.05. Two batch sizes of `sequential` depart by 0.3 (two
# windows: the one-window rule lets them through).
OTHERS = iter((-0.1, -0.05, -0.02, -0.01, 0.0, 0.02, 0.05))
EFFECT = {(s, b): 0.3 if s == "sequential" and b > 1 else next(OTHERS)
          for s, b in product(SCENARIOS, BATCHES)}


def run_folder(folder, run_id, effect=None, grouped=True):
    """Every configuration and phase at 0.5 + 0.01 x batch ms, times exp(effect) of its
    group, its samples all equal (no noise within the run); ``grouped``: whether the rows
    name their comparison group, as the runner's do."""
    rows = []
    for scenario, batch, setup in product(SCENARIOS, BATCHES, SETUPS):
        reference = result_row(scenario=scenario, batch_size=batch)["config_id"]
        median = (0.5 + 0.01 * batch) * np.exp((effect or {}).get((scenario, batch), 0.0))
        for phase in REQUIRED_PHASES:
            rows.append(result_row(run_id=run_id, scenario=scenario, batch_size=batch,
                                   optimizer_setup=setup, phase=phase, n_samples=5,
                                   median_ms=median, ci_low_ms=median, ci_high_ms=median,
                                   group=reference if grouped else ""))
    return write_run(folder, rows, None, env_record(run_id))


@pytest.mark.parametrize("grouped", [True, False])
def test_degrees_of_freedom_count_groups_not_measurements(tmp_path, grouped):
    base = run_folder(tmp_path / "a", "a", grouped=grouped)
    cand = run_folder(tmp_path / "b", "b", EFFECT, grouped=grouped)
    table = compare_runs(load_side(str(base)), [load_side(str(cand))]).tables[0]
    assert table["shift"].to_numpy() == pytest.approx(np.ones(108))
    t = 0.3 / (1.4826 * 0.05)
    # 9 groups: 0.37 x 8 degrees of freedom; each configuration alone: 0.37 x 26
    df = 0.37 * (8 if grouped else 26)
    departed = table[table.departure > 1.3]
    assert len(departed) == 2 * 3 * 4
    assert departed.p_value.to_numpy() == pytest.approx(2 * (1 - student_t_cdf(t, df)))
    # the 24 smallest p-values of 108: q = p x 108 / 24, 0.125 with groups, 0.011 without
    assert departed.q_value.to_numpy() == pytest.approx(
        2 * (1 - student_t_cdf(t, df)) * 108 / 24)
    if grouped:
        assert set(table.verdict) == {NO_CHANGE}
    else:
        assert set(table.loc[departed.index, "verdict"]) == {REGRESSION}
        assert (table.verdict == REGRESSION).sum() == 24


def measured_runs(root, count=4):
    """``count`` runs in which each group's effect (drawn anew per run) is shared by its
    setups and phases."""
    folders = []
    for r in range(count):
        rng = np.random.default_rng(r)
        folders.append(run_folder(root / f"m{r}", f"m{r}",
                                  {k: rng.normal(0, 0.2) for k in EFFECT}))
    return folders


def test_block_bootstrap_takes_whole_groups_from_one_measured_run(tmp_path):
    folders = measured_runs(tmp_path)
    model = fit(folders)
    # every member and phase of a group moved alike in the measured runs
    assert list(model.describe()["group_share_of_variance"].values()) == pytest.approx([1.0] * 4)
    rng = np.random.default_rng(0)
    draws = np.arange(9) % 4
    run = simulated_run(model, tmp_path / "s", "s", rng, draws)
    side = load_side(str(run)).runs[0].results.set_index(["config_id", "phase"])
    # log median - level - e of the drawn run: the same number (the run's shift) everywhere
    left = (np.log(side.loc[model.level.index, "median_ms"].to_numpy()) - model.level.to_numpy()
            - model.residuals[np.arange(108), draws[model.group]])
    assert np.ptp(left) == pytest.approx(0.0, abs=1e-9)


def test_the_two_sides_never_take_a_group_from_the_same_run(tmp_path):
    model = fit(measured_runs(tmp_path, 3))
    rng = np.random.default_rng(1)
    pairs = [paired_draws(model, rng) for _ in range(200)]
    assert all((a != b).all() for a, b in pairs)
    # and every other run is drawn: 3 runs, 2 others each
    assert {(x, y) for a, b in pairs for x, y in zip(a, b)} == {
        (x, y) for x in range(3) for y in range(3) if x != y}


def test_binomial_upper_bound_by_hand():
    # no event in n: (1 - p)^n = 0.05
    assert binomial_upper(0, 1000) == pytest.approx(1 - 0.05 ** (1 / 1000), rel=1e-6)
    # one event in 50: (1 - p)^50 + 50 p (1 - p)^49 = 0.05 at the bound
    p = binomial_upper(1, 50)
    assert (1 - p) ** 50 + 50 * p * (1 - p) ** 49 == pytest.approx(0.05, rel=1e-6)
