"""Comparison of run folders: matching, verdicts, configurations not measured, the page's
charts, and the terminal table."""

import numpy as np
import pandas as pd
import pytest


# the charts need plotly; a GPU machine with only torch still collects the GPU tests
pytest.importorskip("plotly")

from bench.analyze.run_comparison import (COMPARED, NOT_MEASURED, ONLY_BASELINE, Side, compare_runs,
                                          device_slot, load_side)
from bench.axes import OPTIMIZER_SETUP, SCENARIO
from bench.present.comparison_page import (MAX_HEATMAP_ROWS, comparison_sections, format_terminal,
                                           heatmap_rows, ratio_heatmap, trend_chart)
from bench.errors import UsageError
from bench.present.page import figures_of
from bench.analyze.judge import DRIFT, IMPROVEMENT, NO_CHANGE, REGRESSION, WELCH
from tests.support.synthetic import env_record, result_row, sweep_run, write_run

SWEEP = dict(scenarios=("sequential", "shared_input"), batch_sizes=(1, 32), samples_per_phase=60)


def side(path) -> Side:
    return load_side(str(path))


def two_configs(folder, run_id, medians, device="cpu", statuses=None, repeats=1, spread=0.02,
                torch_version="2.13.0+cpu", seed=0):
    """Batch sizes 8 and 64 of one configuration, step phase only, with raw samples around
    ``medians[batch]`` (times a per-repeat factor when given as a list)."""
    rng = np.random.default_rng(seed)
    rows, samples = [], {}
    for repeat in range(1, repeats + 1):
        for batch, median in medians.items():
            median = median[repeat - 1] if isinstance(median, list) else median
            status = (statuses or {}).get(batch, "ok")
            row = result_row(run_id=run_id, repeat=repeat, batch_size=batch, device=device,
                             status=status, median_ms=median, torch_version=torch_version)
            rows.append(row)
            if status == "ok":
                samples[(row["config_id"], "step", repeat)] = (
                    median * rng.lognormal(0, spread, 101)).tolist()
    return write_run(folder, rows, samples, env_record(run_id, torch_version=torch_version))


def test_a_a_comparison_flags_nothing(tmp_path):
    a = sweep_run(tmp_path / "a", run_id="a", seed=1, **SWEEP)
    b = sweep_run(tmp_path / "b", run_id="b", seed=2, **SWEEP)
    comparison = compare_runs(side(a), [side(b)])
    table = comparison.tables[0]
    assert len(table) == 2 * 2 * 3 * 4 and set(table.outcome) == {COMPARED}
    assert set(table.verdict) == {NO_CHANGE}
    assert "0 regression(s), 0 improvement(s)" in format_terminal(comparison)


def test_a_uniform_slowdown_of_one_run_per_side_is_a_common_shift_not_regressions(tmp_path):
    a = sweep_run(tmp_path / "a", run_id="a", seed=1, **SWEEP)
    b = sweep_run(tmp_path / "b", run_id="b", seed=2, slowdown=1.1, **SWEEP)
    comparison = compare_runs(side(a), [side(b)])
    table = comparison.tables[0]
    assert set(table.verdict) == {NO_CHANGE} and set(table.method) == {DRIFT}
    assert table.ratio.between(1.05, 1.16).all()
    assert table["shift"].between(1.08, 1.12).all()  # each phase's median ratio
    text = format_terminal(comparison)
    assert "0 regression(s), 0 improvement(s)" in text
    assert "The candidate is 10% slower throughout" in text
    assert "one run per side cannot tell this from machine drift" in text


def test_a_uniform_slowdown_with_three_repeats_a_side_is_flagged_everywhere(tmp_path):
    # Welch over the repeats sees how far repeats wander (1% here), and 10% is beyond it
    a = sweep_run(tmp_path / "a", run_id="a", seed=1, repeats=3, **SWEEP)
    b = sweep_run(tmp_path / "b", run_id="b", seed=2, slowdown=1.1, repeats=3, **SWEEP)
    table = compare_runs(side(a), [side(b)]).tables[0]
    assert set(table.method) == {WELCH} and set(table.verdict) == {REGRESSION}
    back = compare_runs(side(b), [side(a)]).tables[0]
    assert set(back.verdict) == {IMPROVEMENT}


def test_devices_match_by_kind_across_machines(tmp_path):
    base = two_configs(tmp_path / "a", "a", {8: 1.0, 64: 2.0}, device="cuda:0")
    cand = two_configs(tmp_path / "b", "b", {8: 1.0, 64: 2.0}, device="cuda:1")
    table = compare_runs(side(base), [side(cand)]).tables[0]
    assert list(table.outcome) == [COMPARED, COMPARED]
    assert table.config.iloc[0] == "sequential/seed/cuda/bs8/separate/adam/loop"
    # two GPUs in one run stay apart, numbered in the order of their indexes
    results = pd.DataFrame({"run_id": ["r"] * 4, "device": ["cuda:1", "cuda:0", "cpu", "cuda:10"]})
    assert list(device_slot(results)) == ["cuda#2", "cuda", "cpu", "cuda#3"]


def test_out_of_memory_is_listed_never_a_regression(tmp_path):
    base = two_configs(tmp_path / "a", "a", {8: 1.0, 64: 2.0})
    cand = two_configs(tmp_path / "b", "b", {8: 1.0, 64: 2.0}, statuses={64: "oom"})
    comparison = compare_runs(side(base), [side(cand)])
    table = comparison.tables[0].set_index("batch_size")
    assert table.loc[64, "outcome"] == NOT_MEASURED and table.loc[64, "verdict"] == ""
    assert np.isnan(table.loc[64, "ratio"])
    assert (table.loc[64, "baseline_status"], table.loc[64, "candidate_status"]) == ("ok", "oom")
    assert table.loc[8, "verdict"] == NO_CHANGE and comparison.count(REGRESSION) == 0
    text = format_terminal(comparison)
    assert "Not compared, not measured on a side" in text
    assert "bs64/separate/adam/loop baseline ok, candidate oom" in text
    heatmap = ratio_heatmap(comparison.tables[0], "t")
    neutral, coloured = heatmap.data
    assert list(coloured.text[0]) == ["1.00", "ok → oom"]
    # no significant change at batch 8: drawn grey, not coloured; batch 64 not at all
    assert list(coloured.z[0]) == [None, None] and list(neutral.z[0]) == [0.0, None]


def test_heatmap_colours_only_significant_cells(tmp_path):
    # three repeats a side, each within 0.2% of the others: Welch calls 8 and 64 changes
    medians = {8: [1.0, 1.002, 0.998], 64: [2.0, 2.004, 1.996], 512: [3.0, 3.006, 2.994]}
    changed = {8: [1.2, 1.2024, 1.1976], 64: [1.0, 1.002, 0.998], 512: [3.0, 2.994, 3.006]}
    base = two_configs(tmp_path / "a", "a", medians, repeats=3, spread=0.01)
    cand = two_configs(tmp_path / "b", "b", changed, repeats=3, spread=0.01, seed=1)
    table = compare_runs(side(base), [side(cand)]).tables[0]
    ratios = dict(zip(table.batch_size, table.ratio))
    assert ratios == pytest.approx({8: 1.2, 64: 0.5, 512: 1.0}, rel=0.01)
    assert list(table.verdict) == [REGRESSION, IMPROVEMENT, NO_CHANGE]
    fig = ratio_heatmap(table, "t")
    neutral, coloured = fig.data
    assert list(coloured.x) == ["8", "64", "512"] and list(coloured.y) == ["sequential · separate"]
    assert coloured.z[0][:2] == pytest.approx([np.log2(ratios[8]), np.log2(ratios[64])])
    assert coloured.z[0][2] is None and list(neutral.z[0]) == [None, None, 0.0]
    assert list(coloured.text[0]) == [f"{ratios[8]:.2f} ▲", f"{ratios[64]:.2f} ▼",
                                      f"{ratios[512]:.2f}"]
    assert "regression" in coloured.hovertext[0][0] and "batch 8" in coloured.hovertext[0][0]
    # the colour bar spans the largest significant change, 0.5 (about an octave)
    span = abs(np.log2(ratios[64]))
    assert (coloured.zmin, coloured.zmax) == pytest.approx((-span, span))


def test_spread_between_repeats_keeps_a_shift_within_it_unflagged(tmp_path):
    # each repeat is tight, but the repeats of each side wander by about 10%
    base = two_configs(tmp_path / "a", "a", {8: [0.95, 1.0, 1.05]}, repeats=3, spread=0.005)
    cand = two_configs(tmp_path / "b", "b", {8: [0.99, 1.07, 1.12]}, repeats=3, spread=0.005)
    row = compare_runs(side(base), [side(cand)]).tables[0].iloc[0]
    assert (row.baseline_units, row.candidate_units) == (3, 3) and row.method == WELCH
    assert row.ratio == pytest.approx(1.07, rel=0.01) and row.verdict == NO_CHANGE


def test_pooled_runs_are_units_of_their_side(tmp_path):
    a1 = two_configs(tmp_path / "a1", "a1", {8: 0.93}, spread=0.005)
    a2 = two_configs(tmp_path / "a2", "a2", {8: 1.07}, spread=0.005, seed=1)
    b1 = two_configs(tmp_path / "b1", "b1", {8: 1.05}, spread=0.005, seed=2)
    b2 = two_configs(tmp_path / "b2", "b2", {8: 1.07}, spread=0.005, seed=3)
    row = compare_runs(load_side(f"{a1},{a2}"), [load_side(f"{b1},{b2}")]).tables[0].iloc[0]
    assert (row.baseline_units, row.candidate_units) == (2, 2) and row.method == WELCH
    assert row.ratio == pytest.approx(1.06, rel=0.01)
    assert row.verdict == NO_CHANGE  # the candidate lies within the baseline's runs
    # one run a side: the one measurement is its phase's whole shift, and departs from none
    row = compare_runs(side(a1), [side(b1)]).tables[0].iloc[0]
    assert row.method == DRIFT and row["shift"] == pytest.approx(row.ratio)
    assert row.departure == pytest.approx(1.0) and row.verdict == NO_CHANGE


def test_runs_with_nothing_in_common_are_refused(tmp_path):
    base = two_configs(tmp_path / "a", "a", {8: 1.0}, device="cpu")
    cand = two_configs(tmp_path / "b", "b", {8: 1.0}, device="cuda:0")
    with pytest.raises(UsageError, match="nothing in common.*devices cpu.*devices cuda"):
        compare_runs(side(base), [side(cand)])


def test_configurations_on_one_side_only_are_counted_apart(tmp_path):
    base = two_configs(tmp_path / "a", "a", {8: 1.0, 64: 2.0})
    cand = two_configs(tmp_path / "b", "b", {8: 1.0})
    comparison = compare_runs(side(base), [side(cand)])
    assert list(comparison.tables[0].outcome) == [COMPARED, ONLY_BASELINE]
    assert "1 configuration(s) only in baseline" in format_terminal(comparison)


def test_several_candidates_give_a_trend_labelled_by_torch_version(tmp_path):
    sides = [side(two_configs(tmp_path / v, v, {8: ms, 64: 2 * ms}, torch_version=v))
             for v, ms in (("2.11.0", 1.0), ("2.12.0", 1.1), ("2.13.0", 0.9))]
    comparison = compare_runs(sides[0], sides[1:])
    assert [s.label for s in sides] == ["torch 2.11.0", "torch 2.12.0", "torch 2.13.0"]
    fig = trend_chart(comparison)
    assert list(fig.data[0].x) == ["torch 2.11.0", "torch 2.12.0", "torch 2.13.0"]
    assert list(fig.data[0].y) == pytest.approx([1.0, 1.1, 0.9], rel=0.01)
    intro, sections = comparison_sections(comparison)
    titles = [s.title for s in sections]
    assert titles == ["torch 2.12.0 against torch 2.11.0", "torch 2.13.0 against torch 2.11.0",
                      "Across the runs", "Environments"]
    assert sections[-1].blocks[0].startswith("The runs differ in: torch_version.")
    assert len(figures_of(sections)) == 3  # a heatmap per candidate, the trend



def test_a_tall_heatmap_keeps_the_rows_with_significant_changes():
    # 70 rows, r05 and r66 with a significant change: the cap of 60 keeps those two, then
    # the first 58 others (r00 to r58 without r05), shown in name order
    d = pd.DataFrame({"row": [f"r{i:02d}" for i in range(70)], SCENARIO.name: "sequential",
                      OPTIMIZER_SETUP.name: "separate", "verdict": NO_CHANGE, "ratio": 1.01})
    d.loc[[5, 66], "verdict"], d.loc[[5, 66], "ratio"] = REGRESSION, [1.5, 1.2]
    rows, total = heatmap_rows(d)
    assert total == 70 and MAX_HEATMAP_ROWS == 60
    assert rows == [f"r{i:02d}" for i in range(59)] + ["r66"]
