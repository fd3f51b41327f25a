"""The same configurations across device types, read from the store: each type's median and
interval, pooled over its runs (a partition's shards), and the ratio to the reference type
with its interval, against figures computed by hand. Against DuckDB and a real PostgreSQL."""

import math

import pytest

from bench.analyze.judge import Z_95
from bench.history.add import add_run
from bench.history.hardware import TYPE, compare_hardware
from bench.history.store import open_store
from bench.present.hardware_page import hardware_sections
from tests.support.synthetic import env_record, result_row, write_run

pytest.importorskip("plotly")


def slurm_run(root, run_id, partition, step_ms):
    """A run of a partition's job: (batch size, median, ci low, ci high) per step row."""
    rows = [result_row(run_id=run_id, batch_size=b, median_ms=m, ci_low_ms=lo, ci_high_ms=hi,
                       device_name="Test GPU")
            for b, m, lo, hi in step_ms]
    env = env_record(run_id, slurm={"job_id": run_id[-1], "partition": partition})
    return write_run(root / run_id, rows, env=env)


@pytest.fixture
def comparison(tmp_path, store_url):
    runs = [slurm_run(tmp_path, "run-a1", "alpha", [(1, 10.0, 9.0, 11.0), (8, 4.0, 3.9, 4.1)]),
            # beta's two shards: a batch size each
            slurm_run(tmp_path, "run-b1", "beta", [(1, 20.0, 18.0, 22.0)]),
            slurm_run(tmp_path, "run-b2", "beta", [(8, 4.0, 3.9, 4.1)])]
    with open_store(store_url, write=True) as store:
        for run in runs:
            add_run(store, run)
        return compare_hardware(store, ["run-b1", "run-a1", "run-b2", "run-zz"],
                                ["alpha", "beta"])


def test_each_configuration_is_set_against_the_reference_type(comparison):
    assert comparison.types == ["alpha · Test GPU", "beta · Test GPU"]
    assert comparison.missing == ["run-zz"]
    beta = comparison.times[comparison.times[TYPE] == "beta · Test GPU"].set_index("config")
    bs1, bs8 = beta.loc["sequential/seed/bs1/separate/adam/loop"], \
        beta.loc["sequential/seed/bs8/separate/adam/loop"]
    # each median's interval is 1.96 standard errors of its log either side
    se = math.log(11 / 9) / (2 * Z_95)  # 22/18 is the same ratio
    assert bs1["ratio"] == pytest.approx(2.0)
    assert bs1["ratio_low"] == pytest.approx(2 * math.exp(-Z_95 * math.sqrt(2) * se))
    assert bs1["ratio_high"] == pytest.approx(2 * math.exp(Z_95 * math.sqrt(2) * se))
    assert bs1["verdict"] == "slower"
    # 4.0 [3.9, 4.1] on both: 1, within (3.9/4.1)^(1/sqrt 2) of it, inside 5%
    assert bs8["ratio"] == pytest.approx(1.0)
    assert bs8["ratio_low"] == pytest.approx((3.9 / 4.1) ** (1 / math.sqrt(2)))
    assert bs8["verdict"] == "same"
    assert list(beta["runs"]) == [1, 1]
    assert set(comparison.runs["partition"]) == {"alpha", "beta"}


def test_the_page_says_what_is_missing_and_what_an_empty_comparison_is(comparison, tmp_path):
    intro, sections = hardware_sections(comparison, "store", ["gamma"])
    assert "Not in the store (their jobs did not complete): gamma." in intro
    assert [s.title for s in sections] == ["Step time by device type", "Every phase", "Runs"]
    table = sections[0].blocks[1]
    assert table.header[2:] == ["alpha · Test GPU (ms)", "beta · Test GPU (ms)",
                                "beta · Test GPU / alpha · Test GPU", "verdict"]
    assert table.rows[0][2:] == ["10 [9, 11]", "20 [18, 22]", "2 [1.74, 2.3]", "slower"]
    with open_store(str(tmp_path / "empty.duckdb"), write=True) as store:
        empty = compare_hardware(store, ["run-x"], ["alpha"])
    intro, sections = hardware_sections(empty, "store")
    assert sections == [] and intro[-1] == "No run of this submission is in the store yet."
