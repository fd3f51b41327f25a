"""The work view (bench/present/flops_kernels.py): achieved TFLOP/s and fraction of peak, operators
and kernels per phase, host dispatch against device time. Every number drawn is checked
against one computed here from results.csv with pandas; a GPU run is synthetic (this
machine has none), and the page is drawn in a real Chromium where there is one."""


import pandas as pd
import pytest

pytest.importorskip("plotly")

import plotly.graph_objects as go

from bench.analyze.phase_bounds import COMPUTE_PEAK_FRACTION, LAUNCH_HOST_SHARE
from bench.analyze.reader import load_run
from bench.analyze.run_tables import results_of
from bench.present.charts import PHASE_COLORS
from bench.present.page import Section, write_page
from bench.present.flops_kernels import work_figures
from tests.support.synthetic import PEAK_TFLOPS, env_record, result_row, sweep_run, write_run
from tests.support.chromium import Chromium
from tests.conftest import chromium_or_skip

SCENARIOS, BATCHES = ["sequential", "gan"], [1, 64, 1024]


@pytest.fixture(scope="module")
def gpu(tmp_path_factory):
    """A synthetic GPU run, its blocks, and its results.csv as pandas reads it plainly."""
    folder = sweep_run(tmp_path_factory.mktemp("work") / "gpu", scenarios=SCENARIOS,
                       batch_sizes=BATCHES, samples_per_phase=30)
    blocks = work_figures(load_run(folder).results)
    return folder, blocks, pd.read_csv(folder / "results.csv")


def figures(blocks):
    return [b for b in blocks if isinstance(b, go.Figure)]


def panel(fig, axis):
    return [t for t in fig.data if t.xaxis == axis]


def test_three_sentences_and_three_charts_and_nothing_empty(gpu):
    _, blocks, _ = gpu
    assert [type(b) for b in blocks] == [str, go.Figure] * 3
    assert all(b is not None for b in blocks)
    for fig in figures(blocks):
        # at most one legend entry per scenario (and per phase, per reference line)
        names = [t.name for t in fig.data if t.showlegend is not False]
        assert len(names) == len(set(names))
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_the_rate_drawn_is_flops_over_the_median(gpu):
    _, blocks, csv = gpu
    rate = figures(blocks)[0]
    steps = csv[csv.phase == "step"].assign(
        tflops=lambda d: d.flops / (d.median_ms * 1e-3) / 1e12)
    # a dot per configuration: the three setups of sequential at batch 64
    dots = next(t for t in panel(rate, "x") if t.mode == "markers"
                and t.name == "scenario = sequential")
    known = steps[(steps.scenario == "sequential") & (steps.batch_size == 64)]
    drawn = sorted(y for x, y in zip(dots.x, dots.y) if x == 64)
    assert drawn == pytest.approx(sorted(known.tflops), rel=1e-9)
    one = known[known.optimizer_setup == "single"].iloc[0]
    assert one.tflops == pytest.approx(one.flops / one.median_ms / 1e9)
    # the line through them: their median at each batch size
    line = next(t for t in panel(rate, "x") if t.mode == "lines+markers"
                and t.name == "scenario = sequential")
    medians = steps[steps.scenario == "sequential"].groupby("batch_size").tflops.median()
    assert list(line.x) == BATCHES
    assert list(line.y) == pytest.approx(medians.loc[BATCHES].tolist(), rel=1e-9)
    assert rate.layout.xaxis.type == "log" and rate.layout.xaxis2.type == "log"
    assert rate.layout.yaxis.title.text == "TFLOP/s"


def test_the_fraction_of_peak_has_the_compute_bound_line(gpu):
    _, blocks, csv = gpu
    rate = figures(blocks)[0]
    right = panel(rate, "x2")
    (threshold,) = [t for t in right if t.mode == "lines+text"]
    assert list(threshold.y) == [COMPUTE_PEAK_FRACTION] * 2 and threshold.line.dash == "dot"
    assert "compute-bound above" in threshold.text
    assert (min(threshold.x), max(threshold.x)) == (min(BATCHES), max(BATCHES))
    steps = csv[csv.phase == "step"]
    gan = steps[steps.scenario == "gan"]
    fraction = (gan.flops / (gan.median_ms * 1e-3) / 1e12 / PEAK_TFLOPS).groupby(
        gan.batch_size).median()
    line = next(t for t in right if t.mode == "lines+markers" and t.name == "scenario = gan")
    assert list(line.y) == pytest.approx(fraction.loc[BATCHES].tolist(), rel=1e-9)
    # the batches of 1024 reach the compute-bound fraction, those of 1 are far under it
    assert line.y[-1] >= COMPUTE_PEAK_FRACTION > line.y[0]
    # the sentence above names the line's meaning
    assert "compute-bound" in blocks[0] and f"{COMPUTE_PEAK_FRACTION:.0%}" in blocks[0]


def test_the_bars_are_the_median_counts_of_each_scenario_and_phase(gpu):
    _, blocks, csv = gpu
    counts = figures(blocks)[1]
    phases = csv[csv.phase != "step"]
    for axis, column in (("x", "ops"), ("x2", "kernels")):
        bars = panel(counts, axis)
        assert {b.name for b in bars} == {"forward", "backward", "optimizer"}
        for bar in bars:
            assert bar.marker.color == PHASE_COLORS[bar.name]
            expected = phases[phases.phase == bar.name].groupby("scenario")[column].median()
            assert dict(zip(bar.x, bar.y)) == pytest.approx(expected.to_dict())
            assert all("barely depend on the batch size" in h for h in bar.hovertext)
    # the optimizer's operators differ by setup: the bar is their median, not their mean
    optimizer = next(b for b in panel(counts, "x") if b.name == "optimizer")
    sequential = phases[(phases.phase == "optimizer") & (phases.scenario == "sequential")]
    assert dict(zip(optimizer.x, optimizer.y))["sequential"] == sequential.ops.median() \
        != pytest.approx(sequential.ops.mean())
    assert counts.layout.yaxis.title.text == "operators per iteration"
    assert counts.layout.yaxis2.title.text == "kernels per iteration"


def test_points_on_or_above_the_launch_line_are_the_launch_bound_steps(gpu):
    _, blocks, csv = gpu
    sentence, dispatch = blocks[4], figures(blocks)[2]
    steps = csv[csv.phase == "step"]
    above = int((steps.host_median_ms / steps.median_ms >= LAUNCH_HOST_SHARE).sum())
    assert 0 < above < len(steps) and above == int((steps.bound == "launch").sum())
    points = [t for t in dispatch.data if t.mode == "markers"]
    assert {t.name for t in points} == {"scenario = sequential", "scenario = gan"}
    symbols = [s for t in points for s in t.marker.symbol]
    assert len(symbols) == len(steps) and symbols.count("circle") == above
    # every point is a configuration's step, device time along x, host time up y
    drawn = sorted((x, y) for t in points for x, y in zip(t.x, t.y))
    expected = sorted(zip(steps.median_ms, steps.host_median_ms))
    assert [c for pair in drawn for c in pair] == pytest.approx(
        [c for pair in expected for c in pair], rel=1e-12)
    # the filled ones are exactly those at or above y = share x
    assert sorted(y / x >= LAUNCH_HOST_SHARE for t in points for x, y in zip(t.x, t.y)) \
        == sorted(s == "circle" for s in symbols)
    slopes = {round(t.y[0] / t.x[0], 6) for t in dispatch.data if t.mode == "lines"}
    assert slopes == {1.0, LAUNCH_HOST_SHARE}
    assert dispatch.layout.xaxis.type == dispatch.layout.yaxis.type == "log"
    assert f"Of {len(steps)} configuration(s) measured on CUDA" in sentence
    assert f"{above} are launch-bound" in sentence
    # the hover names the configuration
    assert all("batch " in h and "setup " in h for t in points for h in t.hovertext)


def test_a_step_without_flops_takes_forward_and_backward(gpu):
    folder, _, csv = gpu
    results = load_run(folder).results.copy()
    step = results.phase == "step"
    results.loc[step, ["flops", "tflops_per_s", "peak_fraction"]] = float("nan")
    blocks = work_figures(results)
    line = next(t for t in figures(blocks)[0].data if t.xaxis == "x"
                and t.mode == "lines+markers" and t.name == "scenario = gan")
    parts = csv[csv.phase.isin(["forward", "backward"]) & (csv.scenario == "gan")]
    sums = parts.groupby("config_id").agg(flops=("flops", "sum"), ms=("median_ms", "sum"),
                                          batch=("batch_size", "first"))
    expected = (sums.flops / (sums.ms * 1e-3) / 1e12).groupby(sums.batch).median()
    assert list(line.y) == pytest.approx(expected.loc[BATCHES].tolist(), rel=1e-9)
    assert "18 configuration(s) have no FLOPs on their step row" in blocks[0]


def cpu_run(folder):
    """A CPU run filled as the runner fills one: FLOPs, their rate and operators, but no
    peak, no kernels, and the host's time on the device's own clock."""
    rows = []
    for scenario in SCENARIOS:
        for batch in (1, 32):
            work = {"forward": (1000 * batch, 18), "backward": (2000 * batch, 44),
                    "optimizer": (0, 98)}
            work["step"] = (3000 * batch, 160)
            for phase, (flops, ops) in work.items():
                ms = 0.5 + 0.01 * batch
                rows.append(result_row(
                    run_id="cpu", scenario=scenario, batch_size=batch, phase=phase,
                    median_ms=ms, host_median_ms=ms, flops=flops, ops=ops,
                    tflops_per_s=flops / (ms * 1e-3) / 1e12 if flops else ""))
    return write_run(folder, rows, env=env_record("cpu"))


def test_a_cpu_run_gets_only_what_it_has(tmp_path):
    synthetic = sweep_run(tmp_path / "synthetic-cpu", scenarios=SCENARIOS, batch_sizes=[1, 8],
                          device="cpu", samples_per_phase=10)
    assert work_figures(load_run(synthetic).results) == []
    blocks = work_figures(load_run(cpu_run(tmp_path / "cpu")).results)
    # the rate and the operators; no fraction of peak, no kernels, no dispatch chart
    assert [type(b) for b in blocks] == [str, go.Figure] * 2
    rate, counts = figures(blocks)
    assert {t.xaxis for t in rate.data} == {"x"} and {t.xaxis for t in counts.data} == {"x"}
    assert "No fraction of peak is drawn" in blocks[0]
    assert "No kernels were counted" in blocks[2]
    bars = {b.name: dict(zip(b.x, b.y)) for b in counts.data}
    assert bars["optimizer"] == {"gan": 98, "sequential": 98}


def test_beside_a_gpu_run_a_cpu_run_gets_a_row_of_panels_that_says_what_it_lacks(gpu, tmp_path):
    folder, _, _ = gpu
    blocks = work_figures(results_of([load_run(folder), load_run(cpu_run(tmp_path / "cpu"))]))
    rate, counts, dispatch = figures(blocks)
    for fig in (rate, counts):
        # a row per run's device; the CPU's fraction of peak and kernels are said to be absent
        notes = [a for a in fig.layout.annotations if a.text == "not measured on this device"]
        assert len(notes) == 1 and {t.xaxis for t in fig.data} == {"x", "x3", "x4"}
    # the dispatch chart is the GPU's alone: the CPU times host and device on one clock
    assert {t.xaxis for t in dispatch.data} == {"x"}
    assert "Of 18 configuration(s) measured on CUDA" in blocks[4]


def test_a_run_without_any_measured_row_has_no_view(tmp_path):
    rows = [result_row(phase=p, status="oom", error="out of memory")
            for p in ("forward", "backward", "optimizer", "step")]
    assert work_figures(load_run(write_run(tmp_path / "oom", rows)).results) == []


@pytest.mark.chromium
def test_the_view_draws_in_a_browser_without_errors(gpu, tmp_path):
    executable = chromium_or_skip()
    folder, blocks, _ = gpu
    # and a GPU run beside a CPU one: a row of panels each, the CPU's without kernels
    mixed = work_figures(results_of([load_run(folder), load_run(cpu_run(tmp_path / "cpu"))]))
    sections = [Section("Work", blocks, anchor="work"), Section("Mixed", mixed)]
    page = write_page(tmp_path / "work.html", "work", sections)
    with Chromium(executable) as browser:
        check = browser.check_page(page)
    assert check.errors == []
    assert len(check.charts) == len(figures(blocks)) + len(figures(mixed)) == 6
    assert [c for c in check.charts if c["svg"] == 0 or c["marks"] == 0] == []
    assert "launch-bound" in check.text and "compute-bound above" in check.text
