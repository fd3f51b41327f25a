"""The report's section on what bounds each configuration, and its energy chart, from a
synthetic GPU run (this machine has no GPU) and from a CPU run."""

import csv

import pytest

pytest.importorskip("plotly")

from bench.analyze.reader import load_run
from bench.present.bounds_section import bounds_section
from bench.present.page import figures_of, render_page
from bench.present.report_page import report_sections
from tests.support.synthetic import sweep_run

SCENARIOS, BATCHES = ["sequential", "gan"], [1, 64, 1024]


def gpu_run(tmp_path, **kwargs):
    return load_run(sweep_run(tmp_path / "gpu", scenarios=SCENARIOS, batch_sizes=BATCHES,
                              **kwargs))


def section_of(sections):
    return next(s for s in sections if s.anchor == "bounds")


def step_row(run, config):
    rows = run.results
    return rows[(rows["config_id"] == config) & (rows["phase"] == "step")].iloc[0]


def test_the_bound_of_each_configuration_is_in_the_page(tmp_path):
    run = gpu_run(tmp_path)
    intro, sections = report_sections([run])
    html = render_page("report", sections, intro)
    launch = "sequential/seed/cuda:0/bs1/separate/adam/foreach"
    compute = "gan/seed/cuda:0/bs1024/single/adam/foreach"
    neither = "sequential/seed/cuda:0/bs64/grouped/adam/foreach"
    # by hand from the rows: host over device time against 0.8, the peak fraction against 0.5
    row = step_row(run, launch)
    assert row.host_median_ms / row.median_ms >= 0.8 and row.peak_fraction < 0.5
    row = step_row(run, compute)
    assert row.peak_fraction >= 0.5
    row = step_row(run, neither)
    assert row.host_median_ms / row.median_ms < 0.8 and row.peak_fraction < 0.5
    for config, bound in [(launch, "launch"), (compute, "compute"), (neither, "neither")]:
        assert f"<td>{config}</td><td>{bound}</td>" in html
    # every configuration is listed, with the bound the writer gave its step row
    steps = run.results[run.results["phase"] == "step"]
    assert len(steps) == 18
    for config, bound in zip(steps["config_id"], steps["bound"]):
        assert f"<td>{config}</td><td>{bound}</td>" in html
    # in words: the six batches of 1 measured the host, the six of 1024 the GPU's arithmetic
    assert "6 measured the host (launch-bound): " in html and "6 are compute-bound: " in html
    assert "A CUDA graph replays every kernel of the step with one launch" in html
    assert "torch.compile fuses kernels" in html


def test_the_energy_chart_draws_samples_per_joule_and_marks_estimates(tmp_path):
    run = gpu_run(tmp_path, energy_source="estimate")
    section = bounds_section(run.results)
    (chart,) = figures_of([section])
    (bars,) = chart.data
    assert bars.name == "estimate (mean power x time)" and bars.marker.pattern.shape == "/"
    steps = run.results[run.results["phase"] == "step"].set_index("config_id")
    drawn = dict(zip(bars.y, bars.x))
    assert drawn == pytest.approx(steps["samples_per_j"].to_dict())
    # one of them by hand: 120 + 0.05 x 1 W over a step of about 0.804 ms, batch 1
    config = "sequential/seed/cuda:0/bs1/separate/adam/foreach"
    assert drawn[config] == pytest.approx(1 / (120.05 * 0.804e-3), rel=0.03)
    assert "18 ran on a GPU without the counter" in " ".join(
        b for b in section.blocks if isinstance(b, str))
    counted = bounds_section(gpu_run(tmp_path / "c").results)
    assert [t.name for t in figures_of([counted])[0].data] == ["energy counter"]
    none = bounds_section(gpu_run(tmp_path / "n", energy_source="").results)
    assert figures_of([none]) == []
    assert "No energy figures" in " ".join(b for b in none.blocks if isinstance(b, str))


def test_an_older_csv_without_the_bound_column_gets_it_from_its_figures(tmp_path):
    folder = sweep_run(tmp_path / "old", scenarios=["sequential"], batch_sizes=[1, 1024],
                       setups=("separate",))
    path = folder / "results.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    fields = [c for c in rows[0] if c != "bound"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    run = load_run(folder)
    assert set(run.results["bound"]) == {""}
    (table,) = [b for block in bounds_section(run.results).blocks
                for b in getattr(block, "blocks", [block]) if hasattr(b, "rows")]
    assert [r[:2] for r in table.rows] == [
        ["sequential/seed/cuda:0/bs1/separate/adam/foreach", "launch"],
        ["sequential/seed/cuda:0/bs1024/separate/adam/foreach", "compute"]]


def test_a_cpu_run_says_plainly_that_no_bound_is_computed(tmp_path):
    run = load_run(sweep_run(tmp_path / "cpu", scenarios=["sequential"], batch_sizes=[1],
                             device="cpu"))
    intro, sections = report_sections([run])
    assert section_of(sections).blocks == [
        "Measured on the CPU: no launch/compute bound is computed (it needs the separate "
        "host and device clocks of CUDA)."]
    assert "Measured on the CPU: no launch/compute bound is computed" in render_page(
        "report", sections, intro)
