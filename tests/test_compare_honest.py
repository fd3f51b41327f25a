"""Comparisons that stay honest about the drift between runs: one run per side judged
against the common shift, duplicated units refused, and paired rounds."""

import shutil
from itertools import product

import numpy as np
import pytest

pytest.importorskip("plotly")

from bench.analyze.block_verdicts import CommonShift
from bench.analyze.run_comparison import KEY, compare_runs, load_side
from bench.analyze.paired_rounds import compare_paired
from bench.analyze.reader import load_run
from bench.analyze.judge import DRIFT, NO_CHANGE, REGRESSION
from bench.analyze.judge import OPEN as UNDECIDED
from bench.cli import main
from bench.present.comparison_page import ratio_heatmap
from bench.present.shifts_text import shift_text
from bench.schema import REQUIRED_PHASES
from tests.support.synthetic import env_record, result_row, write_run
from tests.conftest import run_cli

SCENARIOS = ("sequential", "shared_input", "separate_losses", "shared_trunk")
BATCHES, SETUPS = (1, 32, 256), ("separate", "single", "grouped")
CONFIGS = len(SCENARIOS) * len(BATCHES) * len(SETUPS)  # 36, so 144 measurements


def run_folder(folder, run_id, *, factor=1.0, slower=None, between=0.015, spread=0.03,
               n=41, seed=0, leave_out=(), slower_at=None):
    """One repeat of every configuration: each configuration and phase times ``factor``, a
    further factor per scenario from ``slower``, and its own between-run factor
    (lognormal, sigma ``between``); ``n`` samples around that (sigma ``spread``), the row's
    95% interval of the median from their order statistics. ``leave_out``: (scenario, batch,
    setup) not in the run."""
    rng = np.random.default_rng(seed)
    rows, samples = [], {}
    for scenario, batch, setup in product(SCENARIOS, BATCHES, SETUPS):
        for phase in REQUIRED_PHASES:
            median = ((0.5 + 0.01 * batch) * factor * (slower or {}).get(scenario, 1.0)
                      * (slower_at or {}).get((scenario, batch), 1.0)
                      * rng.lognormal(0, between))
            values = np.sort(median * rng.lognormal(0, spread, n))
            if (scenario, batch, setup) in leave_out:
                continue
            half = 1.96 * n ** 0.5 / 2  # ranks of the median's interval (Conover)
            low, high = int(np.floor(n / 2 - half)), int(np.ceil(1 + n / 2 + half))
            row = result_row(run_id=run_id, scenario=scenario, batch_size=batch,
                             optimizer_setup=setup, phase=phase, n_samples=n,
                             median_ms=float(np.median(values)), ci_low_ms=values[low - 1],
                             ci_high_ms=values[high - 1])
            rows.append(row)
            samples[(row["config_id"], phase, 1)] = values.tolist()
    return write_run(folder, rows, samples, env_record(run_id))


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    """A baseline, the same machine 8% slower with its own per-configuration noise, and
    that plus one scenario (a quarter of the configurations) 1.3x slower. Each side's
    between-run noise of 1.5% makes a ratio's about 2.1% (0.015 x sqrt 2); the slowed
    scenario departs by log 1.3 = 0.26, over ten times that."""
    root = tmp_path_factory.mktemp("drift")
    return {"base": run_folder(root / "base", "base", seed=1),
            "drift": run_folder(root / "drift", "drift", factor=1.08, seed=2),
            "slower": run_folder(root / "slower", "slower", factor=1.08, seed=3,
                                 slower={"shared_input": 1.3})}


def test_a_common_drift_with_one_run_per_side_is_reported_not_failed(drifted, tmp_path):
    proc = run_cli("compare", str(drifted["base"]), str(drifted["drift"]),
                   "--fail-on-regression", "--out", str(tmp_path / "c.html"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{CONFIGS * 4} measurements compared" in proc.stdout
    assert "0 regression(s), 0 improvement(s)" in proc.stdout
    assert "The candidate is 8% slower throughout" in proc.stdout
    assert "one run per side cannot tell this from machine drift" in proc.stdout
    assert "cannot tell this from machine drift" in (tmp_path / "c.html").read_text()


@pytest.mark.slow
def test_one_scenario_beyond_the_drift_is_flagged_and_nothing_else(drifted, tmp_path):
    comparison = compare_runs(load_side(str(drifted["base"])),
                              [load_side(str(drifted["slower"]))])
    table = comparison.tables[0]
    assert set(table.method) == {DRIFT}
    flagged = table[table.verdict == REGRESSION]
    assert set(flagged.scenario) == {"shared_input"} and len(flagged) == CONFIGS // 4 * 4
    assert set(table.loc[table.scenario != "shared_input", "verdict"]) == {NO_CHANGE}
    # judged beyond the common shift of about 8%, by about 1.3 (a quarter of the
    # configurations moved, so the median drifts up a little from 1.08)
    assert flagged.departure.between(1.15, 1.4).all()
    assert table["shift"].between(1.06, 1.12).all()
    proc = run_cli("compare", str(drifted["base"]), str(drifted["slower"]),
                   "--fail-on-regression", "--out", str(tmp_path / "c.html"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{CONFIGS // 4 * 4} regression(s), 0 improvement(s)" in proc.stdout
    # only the significant cells are coloured: the slowed scenario's, with their ratios
    fig = ratio_heatmap(table, "t")
    coloured = [t for t in fig.data if t.name == "significant change"]
    for trace in coloured:
        for label, z in zip(trace.y, trace.z):
            assert all((v is not None) == label.startswith("shared_input") for v in z)
    step = table[(table.phase == "step") & (table.scenario == "shared_input")
                 & (table.optimizer_setup == "separate")].sort_values("batch_size")
    (row,) = [i for i, label in enumerate(coloured[-1].y) if label == "shared_input · separate"]
    assert list(coloured[-1].z[row]) == pytest.approx(list(np.log2(step.ratio)))


def refused(capsys, *args) -> str:
    assert main(["compare", *map(str, args)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_duplicated_units_are_refused_in_one_line(drifted, tmp_path, capsys):
    base = drifted["base"]
    text = (base / "results.csv").read_text()
    twice = tmp_path / "twice"
    shutil.copytree(base, twice)
    header, first, *rest = text.splitlines(keepends=True)
    (twice / "results.csv").write_text(header + first + "".join(rest) + first)
    line = refused(capsys, twice, drifted["drift"])
    assert line.startswith(f"error: {twice / 'results.csv'}: line {len(rest) + 3} repeats an "
                           "earlier row (run_id base, repeat 1, config_id ")
    assert line.endswith("the file is damaged")
    line = refused(capsys, f"{base},{base}", drifted["drift"])
    assert f"{base} is given twice on one side" in line
    line = refused(capsys, base, f"{drifted['drift']},{drifted['drift']}")
    assert "is given twice on one side" in line
    copy = tmp_path / "copy"
    shutil.copytree(base, copy)
    line = refused(capsys, f"{base},{copy}", drifted["drift"])
    assert f"{base} and {copy} both hold run base" in line


def paired_rounds(root, rounds, slower=None, leave_out=()):
    """``rounds`` rounds of environments a and b, back to back: a drift per round common
    to both (sigma 5%), and each configuration's own noise per round and environment
    (sigma 2%); b slower per scenario by ``slower``; ``leave_out`` of b's first round."""
    drifts = np.random.default_rng(99).lognormal(0, 0.05, rounds)
    a, b = [], []
    for i, drift in enumerate(drifts):
        a.append(load_run(run_folder(root / f"a{i}", f"a{i}", factor=drift, between=0.02,
                                     spread=0.01, n=21, seed=2 * i)))
        b.append(load_run(run_folder(root / f"b{i}", f"b{i}", factor=drift, between=0.02,
                                     spread=0.01, n=21, seed=2 * i + 1, slower=slower,
                                     leave_out=leave_out if i == 0 else ())))
    return a, b


@pytest.mark.slow
def test_paired_rounds_of_identical_environments_flag_nothing(tmp_path):
    a, b = paired_rounds(tmp_path, 10)
    table = compare_paired(a, b)
    assert len(table) == CONFIGS * 4 and (table.rounds <= 10).all()
    # no change anywhere; nearly all of it decided as such well before the tenth round
    assert set(table.verdict) <= {NO_CHANGE, UNDECIDED}
    assert (table.verdict == NO_CHANGE).mean() > 0.9
    decided = table[table.verdict == NO_CHANGE]
    assert set(decided.decided_at) <= {3, 4, 5, 7, 9, 10}
    # a verdict rests on the rounds up to the look that decided it
    assert (decided.rounds == decided.decided_at).all()
    # the round's drift cancels within each pair: what is left is the 2% of each side, sd
    # 0.0283 a round: 144 keys stay within 4% (three rounds' sd, 0.0163, times 2.4)
    assert table.ratio.between(0.961, 1.040).all()


@pytest.mark.slow
def test_paired_rounds_find_a_ten_percent_slowdown_of_a_quarter(tmp_path):
    # per round, log(b / a) = log 1.1 + two independent N(0, 0.02) terms: sd 0.0283; an
    # unchanged key would need 0.0488 (5%) to pass the threshold
    gone = ("shared_trunk", 1, "separate")
    a, b = paired_rounds(tmp_path, 10, slower={"sequential": 1.1}, leave_out=[gone])
    table = compare_paired(a, b)
    flagged = table[table.verdict == REGRESSION]
    slowed = table[table.scenario == "sequential"]
    # found at nearly all 36 slowed measurements by the tenth round; the rest undecided
    assert set(flagged.scenario) == {"sequential"} and len(flagged) >= 0.9 * len(slowed)
    assert set(slowed.verdict) <= {REGRESSION, UNDECIDED}
    assert set(table.loc[table.scenario != "sequential", "verdict"]) <= {NO_CHANGE, UNDECIDED}
    # some are decided after three rounds, their estimate's sd then 1.6%
    assert flagged.ratio.between(1.04, 1.16).all() and (flagged.low > 1).all()
    # the configuration missing from b's first round has one pair fewer at its look
    missing = (table.scenario == "shared_trunk") & (table.batch_size == 1) & \
        (table.optimizer_setup == "separate")
    decided = table.decided_at.notna()
    assert (table.loc[missing & decided, "rounds"] ==
            table.loc[missing & decided, "decided_at"] - 1).all()
    assert (table.loc[~missing & decided, "rounds"] ==
            table.loc[~missing & decided, "decided_at"]).all()
    assert list(table.columns) == [*KEY, "config", "ratio", "low", "high", "p_value",
                                   "q_value", "verdict", "baseline_ms", "candidate_ms",
                                   "rounds", "decided_at", "rounds_to_decide", "detectable",
                                   "config_id"]


def test_a_shift_of_some_phases_only_is_named_by_phase():
    # only the phases whose measurements agree on a shift past the threshold are listed
    shift = CommonShift(ratio=1.03, phases={"forward": 1.12, "optimizer": 0.9},
                        throughout=False, single=True)
    text = shift_text(shift, 0.05)
    assert text.startswith("The candidate is 12% slower in the forward phase, 10% faster in "
                           "the optimizer phase, common to its configurations")
    assert "backward" not in text and "cannot tell this from machine drift" in text
    assert shift_text(None, 0.05) == ""


def processes_rounds(root, rounds, level, slower=None):
    """Rounds in which each process runs at its own level (lognormal, sigma ``level``: a
    shared machine's processes run up to 1.6x apart), on top of a drift common to the
    round. Returns the rounds and log(level b / level a) per round."""
    rng = np.random.default_rng(7)
    a, b, levels = [], [], []
    for i in range(rounds):
        drift = rng.lognormal(0, 0.05)
        level_a, level_b = rng.lognormal(0, level, 2)
        levels.append(np.log(level_b / level_a))
        a.append(load_run(run_folder(root / f"a{i}", f"a{i}", factor=drift * level_a,
                                     between=0.02, spread=0.01, n=21, seed=2 * i)))
        b.append(load_run(run_folder(root / f"b{i}", f"b{i}", factor=drift * level_b,
                                     between=0.02, spread=0.01, n=21, seed=2 * i + 1,
                                     slower=slower)))
    return a, b, np.array(levels)


@pytest.mark.slow
def test_each_round_s_process_level_leaves_every_ratio_and_widens_every_interval(tmp_path):
    # every measurement of b moves with b's process level against a's. Each round's level
    # is taken out of every ratio but for their mean over the rounds, which stays in all of
    # them alike: a quarter 10% slower stands 10% above the rest; and the intervals carry
    # the uncertainty of that mean, sd(levels) / sqrt(10), 0.038 here (t's 97.5% point on
    # 5 degrees of freedom is 2.57; the rounds' effects are estimated, hence 90% of it):
    # no verdict, where rounds without process levels have intervals a quarter as wide
    a, b, levels = processes_rounds(tmp_path / "quarter", 10, 0.10, {"sequential": 1.1})
    table = compare_paired(a, b)
    common = np.exp(levels.mean())
    rest = table[table.scenario != "sequential"]
    slowed = table[table.scenario == "sequential"]
    assert (rest.ratio / common).between(0.96, 1.04).all()
    assert (slowed.ratio / common).between(1.06, 1.14).all()
    half = np.log(table.high / table.low) / 2
    assert (half > 0.9 * 2.57 * levels.std(ddof=1) / np.sqrt(10)).all()
    assert set(table.verdict) == {UNDECIDED}  # too wide for a change, and for none
    a, b, _ = processes_rounds(tmp_path / "level", 10, 0.0, {"sequential": 1.1})
    level = compare_paired(a, b)
    level_half = np.log(level.high / level.low) / 2
    # (those decided early are wider for their fewer rounds)
    assert level_half.median() < half.median() / 3


@pytest.mark.slow
def test_a_change_of_everything_is_every_measurement_s_and_the_shift_s(tmp_path):
    # the same with processes at nearly one level (sigma 0.5%): the quarter is found, and
    # everything 10% slower is a regression of every measurement and of the shift
    a, b, _ = processes_rounds(tmp_path / "quarter", 10, 0.005, {"sequential": 1.1})
    table = compare_paired(a, b)
    assert set(table[table.verdict == REGRESSION].scenario) == {"sequential"}
    assert (table.verdict == REGRESSION).sum() >= 0.9 * CONFIGS // 4 * 4
    everything = {s: 1.1 for s in SCENARIOS}
    a, b, _ = processes_rounds(tmp_path / "all", 12, 0.005, everything)
    table = compare_paired(a, b)
    assert set(table.verdict) <= {REGRESSION, UNDECIDED}
    assert (table.verdict == REGRESSION).mean() >= 0.9
    shift = table.attrs["common_shift"]
    assert shift["rounds"] == 12 and shift["verdict"] == REGRESSION
    assert shift["low"] < shift["ratio"] < shift["high"]
    # the same process levels without the slowdown: the two shifts differ by 1.1
    a0, b0, _ = processes_rounds(tmp_path / "none", 12, 0.005)
    base = compare_paired(a0, b0).attrs["common_shift"]
    assert shift["ratio"] / base["ratio"] == pytest.approx(1.1, rel=0.02)


@pytest.mark.slow
def test_a_change_in_one_measurement_window_is_not_counted_two_are(tmp_path, capsys):
    """One run per side: a batch size of a scenario (its setups timed together, one window)
    2x slower could be the machine at another speed for a few seconds; the same at a second
    batch size, timed at another moment, is a change."""
    base = run_folder(tmp_path / "a", "a", seed=1)
    one = run_folder(tmp_path / "one", "one", seed=2, slower_at={("sequential", 32): 2.0})
    table = compare_runs(load_side(str(base)), [load_side(str(one))]).tables[0]
    assert set(table.verdict) == {NO_CHANGE}
    lonely = table[table.unconfirmed]
    assert set(zip(lonely.scenario, lonely.batch_size)) == {("sequential", 32)}
    proc = run_cli("compare", str(base), str(one), "--fail-on-regression",
                   "--out", str(tmp_path / "one.html"))
    assert proc.returncode == 0 and "at one batch size only" in proc.stdout
    two = run_folder(tmp_path / "two", "two", seed=2,
                     slower_at={("sequential", 32): 2.0, ("sequential", 256): 2.0})
    table = compare_runs(load_side(str(base)), [load_side(str(two))]).tables[0]
    flagged = table[table.verdict == REGRESSION]
    assert set(zip(flagged.scenario, flagged.batch_size)) == {("sequential", 32),
                                                              ("sequential", 256)}
    assert len(flagged) == 2 * len(SETUPS) * 4 and not table.unconfirmed.any()


def test_one_scenario_slower_against_a_run_of_its_own_is_named_and_fails(tmp_path):
    """The case that was misdescribed: a run against itself with one scenario 1.4x slower,
    no noise elsewhere. Not "18% slower throughout": that scenario, a regression, exit 1."""
    base = run_folder(tmp_path / "a", "a", seed=3)
    slow = run_folder(tmp_path / "b", "b", seed=3, slower={"shared_trunk": 1.4})
    proc = run_cli("compare", str(base), str(slow), "--fail-on-regression",
                   "--out", str(tmp_path / "c.html"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "throughout" not in proc.stdout
    assert "scenario = shared_trunk is 40% slower than the rest" in proc.stdout
    table = compare_runs(load_side(str(base)), [load_side(str(slow))]).tables[0]
    flagged = table[table.verdict == REGRESSION]
    assert set(flagged.scenario) == {"shared_trunk"}
    assert len(flagged) == (table.scenario == "shared_trunk").sum()


def test_a_scenario_30_percent_slower_is_seen_through_between_run_noise(tmp_path):
    # another run's noise (1.5% per measurement between runs): the block stands far above it
    base = run_folder(tmp_path / "a", "a", seed=4)
    slow = run_folder(tmp_path / "b", "b", seed=5, slower={"sequential": 1.3})
    table = compare_runs(load_side(str(base)), [load_side(str(slow))]).tables[0]
    flagged = table[table.verdict == REGRESSION]
    assert set(flagged.scenario) == {"sequential"}
    assert len(flagged) >= 0.9 * (table.scenario == "sequential").sum()
    # and two runs with nothing changed: no block, no regression
    other = run_folder(tmp_path / "c", "c", seed=6)
    same = compare_runs(load_side(str(base)), [load_side(str(other))]).tables[0]
    assert set(same.verdict) == {NO_CHANGE}
    assert [s for s, _, v in same.attrs["shifts"] if v == REGRESSION] == []


def test_every_comparison_says_what_it_could_have_seen(tmp_path):
    base = run_folder(tmp_path / "a", "a", seed=7)
    other = run_folder(tmp_path / "b", "b", seed=8)
    proc = run_cli("compare", str(base), str(other), "--out", str(tmp_path / "c.html"))
    line = next(x for x in proc.stdout.splitlines() if x.startswith("At the noise"))
    assert "were invisible here" in line and "one run per side" in line
    table = compare_runs(load_side(str(base)), [load_side(str(other))]).tables[0]
    step = table[table.phase == "step"]
    assert f"~{step.detectable.median():.0%}" in line
