"""The report's figures and tables from small hand-made tables: the values drawn are the
values put in (or the ratios computed by hand from them)."""

import pandas as pd
import pytest

# the charts need plotly; a GPU machine with only torch still collects the GPU tests
pytest.importorskip("plotly")

from plotly.offline import get_plotlyjs

from bench.present.page import figures_of, render_page
from bench.analyze.run_tables import setup_ratio_table
from bench.present.charts import phase_breakdown, setup_ratios, step_and_throughput
from bench.present.memory_charts import (GPU_ACTIVITY, GPU_MEMORY, constant_metrics,
                                         memory_breakdown, per_batch_metrics)
from bench.present.labels import tidy
from bench.present.environment_section import env_table
from bench.present.report_page import (noise_summary, not_measured_table, noisy_table,
                                       report_sections, runs_without_gpu)
from bench.present.summary import format_summary
from bench.analyze.reader import load_run
from tests.support.synthetic import env_record, frame, result_row, write_run

# median ms per (setup, batch size, phase)
MEDIANS = {
    ("separate", 1): {"forward": 1.0, "backward": 2.0, "optimizer": 0.8, "step": 3.5},
    ("separate", 8): {"forward": 1.5, "backward": 3.0, "optimizer": 0.8, "step": 5.0},
    ("single", 1): {"forward": 1.0, "backward": 2.0, "optimizer": 0.2, "step": 3.0},
    ("single", 8): {"forward": 1.5, "backward": 3.0, "optimizer": 0.4, "step": 4.0},
}


def hand_made(device="cpu", **extra):
    return frame([result_row(optimizer_setup=setup, batch_size=batch, phase=phase,
                             median_ms=ms, device=device, **extra)
                  for (setup, batch), phases in MEDIANS.items()
                  for phase, ms in phases.items()])


def by_name(fig, name):
    return [t for t in fig.data if t.name == name]


def test_stacked_phase_bars_hold_the_medians_and_the_step_beside_them():
    fig = phase_breakdown(hand_made(), "sequential")
    # one panel per setup; in each, a trace per phase over the batch sizes
    forward = by_name(fig, "forward")
    assert [list(t.y) for t in forward] == [[1.0, 1.5], [1.0, 1.5]]
    assert [list(t.y) for t in by_name(fig, "optimizer")] == [[0.8, 0.8], [0.2, 0.4]]
    step = by_name(fig, "step")
    assert [list(t.y) for t in step] == [[3.5, 5.0], [3.0, 4.0]]
    # the phases stack in one slot, the step stands in the slot beside it
    assert [list(a) for a in forward[0].x] == [["1", "8"], ["phases", "phases"]]
    assert [list(a) for a in step[0].x] == [["1", "8"], ["step", "step"]]
    assert fig.layout.barmode == "stack"
    assert [a.text for a in fig.layout.annotations][:2] == ["optimizer_setup = separate",
                                                           "optimizer_setup = single"]
    assert phase_breakdown(hand_made(), "no_such_scenario") is None


def test_optimizer_setups_relative_to_separate_are_the_hand_computed_ratios():
    table = setup_ratio_table(hand_made())
    got = {(r.batch_size, r.phase): r.ratio for r in table.itertuples()}
    assert got == pytest.approx({(1, "optimizer"): 0.2 / 0.8, (8, "optimizer"): 0.4 / 0.8,
                                 (1, "step"): 3.0 / 3.5, (8, "step"): 4.0 / 5.0})
    fig = setup_ratios(hand_made())
    optimizer, step = fig.data  # one line (sequential, single) per panel
    assert optimizer.name == "optimizer_setup = single"
    assert optimizer.legendgrouptitle.text == "scenario = sequential"
    assert list(optimizer.y) == pytest.approx([0.25, 0.5])
    assert list(step.y) == pytest.approx([3.0 / 3.5, 0.8])
    assert "ratio 0.250" in optimizer.hovertext[0]


def test_step_time_and_throughput_lines():
    times, rates = step_and_throughput(hand_made())
    # a panel per scenario, a line per setup: the legend holds the setups only
    assert [t.name for t in times.data] == ["optimizer_setup = separate",
                                            "optimizer_setup = single"]
    assert [list(t.y) for t in times.data] == [[3.5, 5.0], [3.0, 4.0]]
    assert list(rates.data[0].y) == pytest.approx([1 / 3.5 * 1e3, 8 / 5.0 * 1e3])
    assert times.layout.xaxis.type == "log" and times.layout.yaxis.type == "log"
    assert [a.text for a in times.layout.annotations] == ["scenario = sequential"]
    one_batch = hand_made()[hand_made()["batch_size"] == 8]
    assert step_and_throughput(one_batch) == []  # a line of one point says nothing


def test_hover_names_the_configuration_fully():
    fig = phase_breakdown(hand_made(), "sequential")
    text = fig.data[0].hovertext[1]
    for part in ("cpu (Test CPU)", "sequential", "size seed", "batch 8", "setup separate",
                 "adam · impl loop", "phase forward", "median 1.5 ms", "run run-a"):
        assert part in text


def test_repeats_collapse_to_the_median_of_their_medians():
    rows = frame([result_row(repeat=i, median_ms=ms) for i, ms in enumerate([1.0, 2.0, 10.0], 1)])
    d = tidy(rows)
    assert len(d) == 1 and d.median_ms.iloc[0] == 2.0 and d.repeats.iloc[0] == 3


def test_rows_not_measured_are_left_out_of_charts_and_listed():
    results = pd.concat([hand_made(), frame([
        result_row(batch_size=64, phase=p, status="oom", error="CUDA out of memory")
        for p in ("forward", "backward", "optimizer", "step")] + [
        result_row(batch_size=128, phase="step", status="skipped",
                   error="a smaller batch ran out of memory")])], ignore_index=True)
    fig = phase_breakdown(results, "sequential")
    assert all("64" not in t.x[0] and "128" not in t.x[0] for t in fig.data)
    table = not_measured_table(results)
    assert [row[1:] for row in table.rows] == [
        ["sequential/seed/cpu/bs64/separate/adam/loop", 1, "oom", "CUDA out of memory"],
        ["sequential/seed/cpu/bs128/separate/adam/loop", 1, "skipped",
         "a smaller batch ran out of memory"]]
    assert not_measured_table(hand_made()) is None


def test_noisy_configurations_are_listed():
    results = hand_made()
    results.loc[3, ["noisy", "iqr_ms"]] = [True, 0.7]
    table = noisy_table(results)
    assert table.rows == [["run-a", "sequential/seed/cpu/bs1/separate/adam/loop", 1, "step",
                           "3.5", "0.7", "20%"]]


def test_disturbed_blocks_are_counted_once_per_configuration_as_the_summary_counts_them():
    """Every phase row of a configuration carries its blocks: two configurations of 40 and
    30 blocks, 3 and 2 of them disturbed, are 5 of 70, not the 20 of 280 of four rows each
    (a repeat not measured counts none)."""
    rows = [result_row(batch_size=batch, phase=phase, blocks=blocks, disturbed_blocks=bad,
                       noisy=phase == "forward")
            for batch, blocks, bad in ((1, 40, 3), (8, 30, 2))
            for phase in ("forward", "backward", "optimizer", "step")]
    rows += [result_row(batch_size=64, phase=p, status="oom", blocks=9, disturbed_blocks=9)
             for p in ("forward", "step")]
    results = frame(rows)
    text = noise_summary(results)
    assert "5 of 70 timing blocks were disturbed" in text
    # noise is a measurement's own: one flagged phase row of each configuration's four
    assert text.startswith("2 of 8 measurements have an interquartile range over 10%")
    assert "5 of 70 timing blocks were disturbed" in format_summary(results)


def test_gpu_memory_charts_hold_the_columns_and_cpu_runs_get_a_sentence():
    gpu = hand_made("cuda:0", device_name="Some GPU", sm_clock_mhz_mean=1980.0)
    gpu = gpu.assign(cuda_peak_allocated_mib=gpu["batch_size"] * 100.0,
                     cuda_peak_reserved_mib=gpu["batch_size"] * 120.0)
    fig = per_batch_metrics(gpu, GPU_MEMORY, "memory")
    assert [a.text for a in fig.layout.annotations] == ["CUDA peak allocated (MiB)",
                                                        "CUDA peak reserved (MiB)"]
    assert list(fig.data[0].y) == [100.0, 800.0]
    # a clock locked at one frequency is said, not drawn as a flat line
    assert constant_metrics(gpu, GPU_ACTIVITY) == {"sm_clock_mhz_mean": 1980.0}
    assert per_batch_metrics(gpu, GPU_ACTIVITY, "activity") is None
    assert per_batch_metrics(hand_made(), GPU_MEMORY, "memory") is None
    both = pd.concat([gpu.assign(run="gpu-run"), hand_made().assign(run="cpu-run")])
    assert runs_without_gpu(both) == ["cpu-run"]


def test_analytic_breakdown_is_stacked_in_mib():
    fig = memory_breakdown(hand_made(param_bytes=2 * 1024 * 1024, grad_bytes=1024 * 1024,
                                     optimizer_state_bytes=4 * 1024 * 1024,
                                     activation_bytes=512 * 1024))
    assert {t.name: list(t.y) for t in fig.data} == {
        "parameters": [2.0] * 4, "gradients": [1.0] * 4, "optimizer state": [4.0] * 4,
        "activations": [0.5] * 4}
    assert [list(a) for a in fig.data[0].x] == [["1", "1", "8", "8"],
                                                ["separate", "single"] * 2]


def test_environment_table_highlights_what_differs():
    sentence, table = env_table({"a": env_record("a", torch_version="2.12.0"),
                                 "b": env_record("b", torch_version="2.13.0")})
    assert sentence.startswith("The runs differ in: torch_version.")
    differs = [row[0] for row, css in zip(table.rows, table.row_classes) if css]
    assert differs == ["torch_version"]  # run_id and started_at differ by construction
    assert ["nvidia_driver", "not recorded: no NVML", "not recorded: no NVML"] in table.rows


def test_page_inlines_plotly_once_and_escapes_text_from_the_data(tmp_path):
    evil = "<script>alert('x')</script>"
    rows = hand_made(device_name=evil, hostname=evil).to_dict("records")
    run = load_run(write_run(tmp_path / "run", rows, env=env_record(cpu_model=evil)))
    intro, sections = report_sections([run])
    html = render_page("report", sections, intro)
    assert html.count(get_plotlyjs()) == 1
    figures = figures_of(sections)
    # phases, step time, throughput, setups; no memory columns in these rows
    assert len(figures) == 4
    # one script for plotly.js, one per chart; the device name never becomes one
    assert html.count("<script") == 1 + len(figures)
    assert evil not in html
    assert "<td>&lt;script&gt;alert('x')&lt;/script&gt;</td>" in html  # env table
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in figures[0].data[0].hovertext[0]
    assert "ran without a GPU" in html


def test_a_run_with_nothing_measured_still_reports_what_happened(tmp_path):
    rows = [result_row(phase=p, status="oom", error="CUDA out of memory")
            for p in ("forward", "backward", "optimizer", "step")]
    intro, sections = report_sections([load_run(write_run(tmp_path / "run", rows))])
    assert figures_of(sections) == []
    html = render_page("report", sections, intro)
    assert "<script" not in html  # no chart, so no plotly.js either
    assert "0 configuration(s) measured, 1 not measured (1 oom)" in html
    assert "<td>CUDA out of memory</td>" in html
