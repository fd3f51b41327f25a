"""The report's section "Where the step goes": its figures by hand on a small table, and the
section of a real tiny run drawn in a real headless Chromium."""

import pandas as pd
import pytest

pytest.importorskip("plotly")

from bench.analyze.networks import attribution_checks, dominant  # noqa: E402
from bench.analyze.reader import load_run  # noqa: E402
from bench.present.networks_section import where_the_step_goes  # noqa: E402
from bench.present.page import figures_of, write_page  # noqa: E402
from bench.present.report_page import report_sections  # noqa: E402
from bench.sweep.config import load_sweep  # noqa: E402
from bench.sweep.loop import run_sweep  # noqa: E402
from bench.sweep.traces import trace_into  # noqa: E402
from tests.support.chromium import Chromium  # noqa: E402
from tests.support.synthetic import sweep_run  # noqa: E402
from multinet import StepSpec  # noqa: E402
from tests.conftest import chromium_or_skip  # noqa: E402

TINY = {"warmup_iters": 1, "warmup_s": 0, "min_samples": 2, "budget_s": 0.05, "min_rounds": 2}


def hand_table() -> pd.DataFrame:
    """Two configurations of one scenario: batch 8 and 32, setup separate; the larger's
    discriminator backward is the most (6 ms of 12)."""
    rows = []
    for config, batch, times in (("c8", 8, (1, 2, 1, 0.5, 0.5, 0.2)),
                                 ("c32", 32, (2, 6, 2, 1, 0.6, 0.4))):
        for (network, phase), ms in zip([("discriminator", "forward"),
                                         ("discriminator", "backward"),
                                         ("generator", "forward"), ("generator", "backward"),
                                         ("generator", "optimizer"), ("(outside)", "forward")],
                                        times):
            rows.append({"run": "r", "config_id": config, "scenario": "gan", "batch_size": batch,
                         "optimizer_setup": "separate", "network": network, "phase": phase,
                         "median_ms": ms})
    table = pd.DataFrame(rows)
    table["overhead"] = table["config_id"].map({"c8": 0.02, "c32": 0.06})
    table["sum_gap"] = table["phase"].map({"forward": 0.01, "backward": -0.03,
                                           "optimizer": 0.05})
    table["apportioned_ms"] = 0.0
    table["eager_twin"] = False
    return table


def test_the_dominant_network_and_phase_at_the_largest_batch():
    top = dominant(hand_table(), "gan")
    assert (top.batch_size, top.setup, top.network, top.phase) == (32, "separate",
                                                                    "discriminator", "backward")
    assert top.ms == 6 and top.step_ms == pytest.approx(12) and top.share == pytest.approx(0.5)


def test_the_checks_over_configurations_and_phases():
    checks = attribution_checks(hand_table())
    assert checks.configurations == 2
    assert (checks.overhead_low, checks.overhead_median, checks.overhead_high) == \
        pytest.approx((0.02, 0.04, 0.06))
    # |sum_gap| of (config, phase): 0.01, 0.03, 0.05 twice each
    assert checks.gap_median == pytest.approx(0.03) and checks.gap_high == pytest.approx(0.05)
    assert checks.apportioned == checks.eager_twins == 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A real run of two scenarios at two batch sizes, with one configuration traced."""
    config = load_sweep(overrides={"scenarios": ["sequential", "gan"], "batch_sizes": [1, 4],
                                   "devices": ["cpu"], "optimizer_setups": ["separate", "single"],
                                   "threads": 1}, timing_overrides=TINY)
    out = tmp_path_factory.mktemp("where") / "run"
    run_sweep(config, out, progress=False)
    list(trace_into(out, [StepSpec("gan", 1, optimizer_impl="loop")], steps=1))
    return out


def test_a_run_without_networks_has_no_section(tmp_path):
    run = load_run(sweep_run(tmp_path / "older", scenarios=("sequential",), batch_sizes=(1,)))
    assert run.networks() is None
    assert where_the_step_goes([run]) is None
    assert "Where the step goes" not in [s.title for s in report_sections([run])[1]]


@pytest.mark.slow
def test_the_section_draws_in_a_real_browser(tiny_run):
    executable = chromium_or_skip()
    run = load_run(tiny_run)
    intro, sections = report_sections([run])
    titles = [s.title for s in sections]
    assert "Where the step goes" in titles
    section = sections[titles.index("Where the step goes")]
    # per scenario: time by network and phase, and memory by network
    assert len(figures_of([section])) == 4
    page = write_page(tiny_run / "report.html", "report", sections, intro)
    with Chromium(executable) as browser:
        check = browser.check_page(page)
    assert check.errors == []
    assert [c for c in check.charts if c["svg"] == 0 or c["marks"] == 0] == []
    assert "Where the step goes" in check.headings
    assert "gan: at batch 4 with setup separate" in check.text
    assert "gan_seed_cpu_bs1_separate_adam_loop.pt.trace.json" in check.text
    assert "top operators per network and phase" in check.text
