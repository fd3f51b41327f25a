"""What each varied axis changes (``bench/analyze/axis_ratios.py``): references, pairs and
intervals against numbers worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.analyze.axis_ratios import (PAIRED, UNPAIRED, at_references, axis_ratios,
                                       axis_summary, fixed_axes, in_order, reference_value,
                                       swept_values, varied_axes)
from bench.axes import BATCH_SIZE, CUDA_GRAPH, DEVICE, OPTIMIZER_SETUP, PRECISION, SCENARIO, SIZE
from tests.support.synthetic import frame, result_row

PRECISION_, SIZE_, SCENARIO_ = PRECISION.name, SIZE.name, "scenario"


def row(median, low, high, **values):
    return result_row(median_ms=median, ci_low_ms=low, ci_high_ms=high, **values)


def test_the_reference_is_the_default_then_the_order_then_the_first_in_sorted_order():
    assert reference_value(PRECISION, ["bf16", "fp32", "fp16"]) == "fp32"
    assert reference_value(CUDA_GRAPH, [True, False]) is False
    assert reference_value(OPTIMIZER_SETUP, ["grouped", "single"]) == "single"
    assert reference_value(SIZE, ["large", "seed"]) == "seed"  # its order, not the rows'
    assert reference_value(SCENARIO, ["sequential", "gan"]) == "gan"  # no order: sorted
    assert in_order(PRECISION, ["fp16", "fp32", "bf16", "fp16"]) == ["fp32", "bf16", "fp16"]
    assert in_order(BATCH_SIZE, [64, 8, 128]) == [8, 64, 128]  # numbers, not text


def test_a_ratio_and_its_unpaired_interval_by_hand():
    rows = frame([row(10.0, 9.8, 10.2), row(8.0, 7.9, 8.1, precision="bf16"),
                  row(12.0, 11.0, 13.0, precision="fp16")])
    assert [a.name for a in varied_axes(rows)] == [PRECISION_]
    table = axis_ratios(rows, PRECISION).set_index("value")
    # each median's log standard error is ln(high / low) / (2 * 1.96)
    se = math.hypot(math.log(10.2 / 9.8), math.log(8.1 / 7.9)) / (2 * 1.959964)
    bf16 = table.loc["bf16"]
    assert bf16["ratio"] == pytest.approx(0.8)
    assert bf16["ci_low"] == pytest.approx(0.8 * math.exp(-1.959964 * se))
    assert bf16["ci_high"] == pytest.approx(0.8 * math.exp(1.959964 * se))
    assert bf16["reference"] == "fp32" and bf16["interval"] == UNPAIRED
    assert bf16["verdict"] == "faster"
    se16 = math.hypot(math.log(10.2 / 9.8), math.log(13 / 11)) / (2 * 1.959964)
    fp16 = table.loc["fp16"]
    assert fp16["ci_low"] == pytest.approx(1.2 * math.exp(-1.959964 * se16))
    assert fp16["ci_low"] > 1 and fp16["verdict"] == "slower"


def test_only_configurations_equal_in_every_other_axis_are_paired():
    rows = frame([row(10.0, 9.9, 10.1), row(5.0, 4.9, 5.1, precision="bf16"),
                  row(20.0, 19.0, 21.0, batch_size=64, precision="bf16")])
    table = axis_ratios(rows, PRECISION)
    assert len(table) == 1 and table["ratio"].iloc[0] == pytest.approx(0.5)


def paired_row(config, compared, reference, ratio, low, high):
    return {"run_id": "run-a", "config_id": config, "phase": "step", "compared": compared,
            "reference": reference, "ratio": ratio, "ci_low": low, "ci_high": high}


def test_a_ratio_timed_together_takes_the_paired_interval():
    rows = frame([row(10.0, 9.0, 11.0), row(9.0, 8.0, 10.0, precision="bf16")])
    bf16_id = rows.loc[rows[PRECISION_] == "bf16", "config_id"].iloc[0]
    paired = pd.DataFrame([paired_row(bf16_id, PRECISION_, "fp32", 0.91, 0.89, 0.93)])
    (only,) = axis_ratios(rows, PRECISION, paired).to_dict("records")
    assert (only["ratio"], only["ci_low"], only["ci_high"]) == (0.91, 0.89, 0.93)
    assert only["interval"] == PAIRED and only["verdict"] == "faster"
    # unpaired, the two wide intervals leave it undecided
    (alone,) = axis_ratios(rows, PRECISION).to_dict("records")
    assert alone["ci_low"] < 1 < alone["ci_high"] and alone["verdict"] == "inconclusive"


def test_a_ratio_of_another_axis_or_reference_is_never_taken_for_this_one():
    """A default sweep pairs the setups: the bf16 `single` configuration's ratio in
    ratios.csv is single over separate, not bf16 over fp32."""
    rows = frame([row(10.0, 9.9, 10.1, optimizer_setup=s) for s in ("separate", "single")]
                 + [row(5.0, 4.95, 5.05, optimizer_setup=s, precision="bf16")
                    for s in ("separate", "single")])
    single_bf16 = rows.loc[(rows[PRECISION_] == "bf16")
                           & (rows[OPTIMIZER_SETUP.name] == "single"), "config_id"].iloc[0]
    paired = pd.DataFrame([paired_row(single_bf16, OPTIMIZER_SETUP.name, "separate", 0.9,
                                      0.88, 0.92),
                           paired_row(single_bf16, PRECISION_, "fp16", 0.7, 0.6, 0.8)])
    table = axis_ratios(rows, PRECISION, paired)
    assert table["ratio"].tolist() == pytest.approx([0.5, 0.5])
    assert set(table["interval"]) == {UNPAIRED}


def test_each_run_and_device_is_a_series_of_its_own():
    rows = frame([row(10.0, 9.9, 10.1, device="cpu"),
                  row(12.0, 11.9, 12.1, device="cpu", precision="bf16"),
                  row(2.0, 1.98, 2.02, device="cuda:0", device_name="GPU",
                      optimizer_impl="foreach"),
                  row(1.0, 0.99, 1.01, device="cuda:0", device_name="GPU",
                      optimizer_impl="foreach", precision="bf16")])
    table = axis_ratios(rows, PRECISION)
    assert dict(zip(table["where"], table["ratio"])) == pytest.approx(
        {"cpu (Test CPU)": 1.2, "cuda:0 (GPU)": 0.5})
    assert len(axis_summary(table)) == 2  # never pooled into one row
    # the devices pair although `auto` ran a loop on one and foreach on the other
    devices = axis_ratios(rows, DEVICE).set_index(PRECISION_)["ratio"]
    assert devices.to_dict() == pytest.approx({"fp32": 0.2, "bf16": 1 / 12})


def test_a_configuration_whose_reference_failed_stays_in_the_charts():
    rows = frame([row(10.0, 9.9, 10.1, batch_size=8),
                  row(5.0, 4.9, 5.1, batch_size=8, precision="bf16"),
                  result_row(batch_size=64, status="oom", error="out of memory"),
                  row(40.0, 39.0, 41.0, batch_size=64, precision="bf16")])
    kept = at_references(rows, [PRECISION])
    shown = kept[kept["status"] == "ok"]
    assert sorted(zip(shown["batch_size"], shown[PRECISION_])) == [(8, "fp32"), (64, "bf16")]
    values = swept_values(rows)[PRECISION_]
    assert values == [("fp32", True), ("bf16", True)]
    failed = frame([row(10.0, 9.9, 10.1),
                    result_row(precision="bf16", status="oom", error="out of memory")])
    assert swept_values(failed)[PRECISION_] == [("fp32", True), ("bf16", False)]
    assert PRECISION_ not in fixed_axes(failed)


def test_each_scenario_has_its_own_reference_and_the_charts_keep_it():
    rows = frame([row(1.0, 0.9, 1.1, scenario="dcgan", size="tiny"),
                  row(4.0, 3.9, 4.1, scenario="dcgan", size="published"),
                  row(2.0, 1.9, 2.1, scenario="sac", size="published")])
    assert [a.name for a in varied_axes(rows)] == [SIZE_]
    table = axis_ratios(rows, SIZE)
    assert table[[SCENARIO_, "value", "reference"]].values.tolist() == [
        ["dcgan", "published", "tiny"]]
    assert table["ratio"].iloc[0] == pytest.approx(4.0)
    kept = at_references(rows, [SIZE])
    assert sorted(zip(kept[SCENARIO_], kept[SIZE_])) == [("dcgan", "tiny"),
                                                         ("sac", "published")]
    assert "size" not in fixed_axes(rows) and fixed_axes(rows)[PRECISION_] == "fp32"


def test_the_summary_is_the_geometric_mean_and_the_verdict_counts():
    rows = frame([row(10.0, 9.9, 10.1, batch_size=b) for b in (1, 2)]
                 + [row(v, v * 0.99, v * 1.01, batch_size=b, precision="bf16")
                    for b, v in ((1, 5.0), (2, 20.0))])
    (summary,) = axis_summary(axis_ratios(rows, PRECISION)).to_dict("records")
    assert summary["geomean"] == pytest.approx(math.sqrt(0.5 * 2.0))
    assert (summary["lowest"], summary["highest"]) == (pytest.approx(0.5), pytest.approx(2.0))
    assert summary["configurations"] == 2 and summary["verdicts"] in (
        "1 faster, 1 slower", "1 slower, 1 faster")


def test_the_views_headline_gives_the_geometric_mean_of_the_step_ratios():
    """Steps at 0.5 and 2.0 of the reference: the geometric mean is 1.0, where an
    arithmetic mean would say 1.25; the forward phase's ratios stay out of it."""
    from bench.present.axis_views import headline
    rows = frame([row(10.0, 9.9, 10.1, batch_size=b, phase=p) for b in (1, 2)
                  for p in ("forward", "step")]
                 + [row(v * (0.9 if p == "forward" else 1), v * 0.99, v * 1.01, batch_size=b,
                        precision="bf16", phase=p)
                    for b, v in ((1, 5.0), (2, 20.0)) for p in ("forward", "step")])
    text = headline(axis_ratios(rows, PRECISION), PRECISION)
    assert "step time x1.000 of precision = fp32 (geometric mean of 2 configuration(s); " in text
    assert "1 faster" in text and "1 slower" in text
