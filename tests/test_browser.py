"""The report and the comparison page in a real headless Chromium: every chart draws, and
no script error is logged. Skipped, saying why, where Chromium is missing outside CI."""


import pytest


# the charts need plotly; a GPU machine with only torch still collects the GPU tests
pytest.importorskip("plotly")

from bench.analyze.run_comparison import compare_runs, load_side
from bench.present.comparison_page import comparison_sections
from bench.present.page import figures_of, write_page
from bench.present.report_page import report_sections
from bench.analyze.reader import load_run
from tests.support.synthetic import env_record, result_row, sweep_run, write_run
from tests.support.chromium import Chromium
from tests.conftest import chromium_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.chromium]
EVIL = "<script>alert('device')</script>"
SWEEP = dict(scenarios=("sequential", "separate_losses"), batch_sizes=(1, 32, 128),
             samples_per_phase=30)


@pytest.fixture(scope="module")
def browser():
    executable = chromium_or_skip()
    with Chromium(executable) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """A report of a GPU run and a CPU run (with a device name that is markup, and a
    configuration that ran out of memory), and a comparison with two candidates."""
    root = tmp_path_factory.mktemp("pages")
    gpu = [sweep_run(root / f"gpu-{i}", run_id=f"gpu-{i}", seed=i, slowdown=s, **SWEEP)
           for i, s in enumerate((1.0, 1.1, 0.9))]
    cpu_rows = [result_row(run_id="cpu", batch_size=b, phase=p, median_ms=ms,
                           device_name=EVIL, optimizer_setup=setup)
                for b, ms in ((1, 0.5), (32, 2.0)) for setup in ("separate", "single")
                for p in ("forward", "backward", "optimizer", "step")]
    cpu_rows += [result_row(run_id="cpu", batch_size=4096, phase=p, status="oom",
                            error="out of memory", device_name=EVIL)
                 for p in ("forward", "backward", "optimizer", "step")]
    cpu = write_run(root / "cpu", cpu_rows, env=env_record("cpu", cpu_model=EVIL))

    intro, sections = report_sections([load_run(gpu[0]), load_run(cpu)])
    report = write_page(root / "report.html", "report", sections, intro)
    paired = sweep_run(root / "paired", run_id="paired", rounds=12, device="cpu", **SWEEP)
    p_intro, p_sections = report_sections([load_run(paired)])
    paired_report = write_page(root / "paired.html", "paired", p_sections, p_intro)
    comparison = compare_runs(load_side(str(gpu[0])), [load_side(str(g)) for g in gpu[1:]])
    c_intro, c_sections = comparison_sections(comparison)
    compared = write_page(root / "comparison.html", "comparison", c_sections, c_intro)
    return {"report": (report, len(figures_of(sections))),
            "paired": (paired_report, len(figures_of(p_sections))),
            "comparison": (compared, len(figures_of(c_sections)))}


@pytest.fixture(scope="module")
def checked(browser, pages):
    """Each page loaded once: (what the browser saw, the number of charts written)."""
    return {name: (browser.check_page(path), expected) for name, (path, expected) in pages.items()}


@pytest.mark.parametrize("page", ["report", "paired", "comparison"])
def test_every_chart_renders_without_script_errors(checked, page):
    check, expected = checked[page]
    assert check.errors == []
    assert len(check.charts) == expected >= 3
    undrawn = [c for c in check.charts if c["svg"] == 0 or c["marks"] == 0]
    assert undrawn == []


def test_a_run_of_setups_timed_together_opens_with_findings_and_their_intervals(checked):
    check = checked["paired"][0]
    assert check.headings[0] == "Findings"
    # the findings chart: a point and an interval for each of the 2 x 3 x 2 ratios
    findings = check.charts[0]
    assert findings["marks"] == 12 and findings["errorbars"] == 12
    assert "single vs separate" in check.text and "faster" in check.text
    # every time chart of the page draws the median's interval too
    assert all(chart["errorbars"] > 0 for chart in check.charts[1:4])


def test_markup_from_the_data_shows_as_text(checked):
    check = checked["report"][0]
    assert EVIL in check.text  # shown, in the environment table and the not-measured list
    assert "ran without a GPU" in check.text and "out of memory" in check.text


def test_the_check_itself_catches_a_broken_page(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<div class="plotly-graph-div" id="empty"></div>'
                    "<script>notAFunction()</script>")
    check = browser.check_page(page)
    assert check.charts == [{"id": "empty", "svg": 0, "marks": 0, "errorbars": 0}]
    assert len(check.errors) == 1 and "notAFunction" in check.errors[0]
