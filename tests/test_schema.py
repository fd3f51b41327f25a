"""The CSV schema: what is written is what pandas reads back, and the docs list it all."""

import re

import pandas as pd
import pytest

from bench.axes import config_id
from bench.measure.result import ConfigResult
from bench.sweep.writer import ResultsWriter
from bench.schema import (FIELDS, RATIO_COLUMNS, SAMPLE_COLUMNS, SAMPLE_FIELDS,
                          markdown_table)
from bench.measure.timers import Timing
from bench.schema import REQUIRED_PHASES, TIMED_PHASES
from multinet import StepSpec
from tests.conftest import ROOT


def a_result(repeat=1):
    timing = Timing(clock="perf_counter")
    for phase in TIMED_PHASES:
        timing.device_ms[phase] = [1.0, 2.0, 3.0, 4.0]  # median 2.5, IQR 3.25 - 1.75
        timing.host_ms[phase] = [0.5, 0.5, 0.5, 0.5]
    timing.warmup_iters, timing.stop_reason, timing.elapsed_s = 3, "budget", 0.25
    return ConfigResult(StepSpec("sequential", 32), "Some CPU", repeat, "2026-01-01T00:00:00+00:00",
                        timing=timing, threads=2,
                        config_columns={"param_bytes": 100, "cpu_peak_rss_mib": 12.5},
                        phase_columns={"forward": {"phase_peak_allocated_mib": 1.5}})


def test_round_trip_through_pandas(tmp_path):
    writer = ResultsWriter(tmp_path, "run-1", "2.13.0", "host-a")
    writer.write(a_result(1))
    writer.write(a_result(2))
    writer.close()
    df = pd.read_csv(tmp_path / "results.csv")
    assert tuple(df.columns) == FIELDS
    # a scenario without a target update has no `target` rows
    assert len(df) == 8 and list(df.phase[:4]) == list(REQUIRED_PHASES)
    row = df.iloc[0]
    assert row.config_id == "sequential/seed/cpu/bs32/separate/adam/auto"
    assert (row.median_ms, row.iqr_ms, row.n_samples) == (2.5, 1.5, 4)
    assert row.samples_per_s == 32 / 2.5 * 1000
    assert row.host_median_ms == 0.5
    assert row.param_bytes == 100 and row.cpu_peak_rss_mib == 12.5
    assert row.phase_peak_allocated_mib == 1.5 and pd.isna(df.iloc[1].phase_peak_allocated_mib)
    # types pandas infers with no hints
    assert df.noisy.dtype == bool and df.batch_size.dtype.kind == "i"
    assert df.median_ms.dtype.kind == "f" and pd.isna(row.cuda_peak_allocated_mib)
    assert list(df.repeat.unique()) == [1, 2]

    samples = pd.read_csv(tmp_path / "samples.csv")
    assert tuple(samples.columns) == SAMPLE_FIELDS
    assert len(samples) == 2 * 4 * 4
    first = samples[(samples.repeat == 1) & (samples.phase == "step")]
    assert list(first.device_ms) == [1.0, 2.0, 3.0, 4.0]
    # the samples join back onto their results rows
    merged = samples.merge(df, on=["run_id", "repeat", "config_id", "phase"])
    assert len(merged) == len(samples)


def test_header_is_written_once_when_appending(tmp_path):
    for _ in range(2):
        writer = ResultsWriter(tmp_path, "run-1", "2.13.0", "host-a")
        writer.write(a_result())
        writer.close()
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert sum(line.startswith("schema_version,") for line in lines) == 1
    assert len(lines) == 1 + 8


def test_unknown_column_cannot_be_written(tmp_path):
    result = a_result()
    result.config_columns["not_a_column"] = 1
    writer = ResultsWriter(tmp_path, "run-1", "2.13.0", "host-a")
    with pytest.raises(ValueError):
        writer.write(result)


def test_results_readme_documents_every_column():
    readme = (ROOT / "results" / "README.md").read_text()
    assert markdown_table() in readme
    assert markdown_table(SAMPLE_COLUMNS) in readme
    assert markdown_table(RATIO_COLUMNS) in readme
    documented = set(re.findall(r"^\| `(\w+)` \|", readme, re.MULTILINE))
    assert set(FIELDS) | set(SAMPLE_FIELDS) <= documented


def test_config_id():
    assert config_id(StepSpec("gan", 4, "cuda:0", "single", "sgd", "fused", "wide")) == \
        "gan/wide/cuda:0/bs4/single/sgd/fused"
