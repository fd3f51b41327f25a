"""Ratios of the configurations of a comparison group to its reference, from blocks paired
round by round: the numbers, the intervals and the verdicts, computed by hand."""

import numpy as np
import pytest

from bench.analyze.ratios import FASTER, INCONCLUSIVE, SAME, SLOWER, paired_ratios, verdict
from bench.analyze.reader import load_run
from bench.schema import RATIO_FIELDS
from bench.tools.synthetic import result_row, write_run

# Ten rounds. The machine's speed moves the rounds of both configurations alike (x1 to x3);
# within each round `single` takes these fractions of `separate`'s time:
FRACTIONS = [0.80, 0.82, 0.84, 0.86, 0.88, 0.90, 0.92, 0.94, 0.96, 1.10]
MACHINE = [1.0, 3.0, 1.2, 2.5, 1.0, 1.1, 2.9, 1.0, 1.3, 1.0]


def paired_run(folder, fractions=FRACTIONS, per_block=3):
    rows, samples, blocks = [], {}, {}
    reference = "sequential/seed/cpu/bs8/separate/adam/loop"
    for setup, share in (("separate", [1.0] * len(fractions)), ("single", fractions)):
        values = [10.0 * m * f for m, f in zip(MACHINE, share) for _ in range(per_block)]
        row = result_row(batch_size=8, optimizer_setup=setup, group=reference,
                         median_ms=float(np.median(values)), n_samples=len(values))
        rows.append(row)
        samples[(row["config_id"], "step", 1)] = values
        blocks[(row["config_id"], "step", 1)] = [b for b in range(len(fractions))
                                                 for _ in range(per_block)]
    return load_run(write_run(folder, rows, samples, blocks=blocks))


def test_the_ratio_is_the_median_of_the_rounds_ratios_with_order_statistics(tmp_path):
    (row,) = paired_ratios(paired_run(tmp_path / "run")).to_dict("records")
    assert row["config_id"] == "sequential/seed/cpu/bs8/single/adam/loop"
    assert (row["compared"], row["reference"], row["value"]) == \
        ("optimizer_setup", "separate", "single")
    assert row["blocks"] == 10
    # the machine's speed cancels round by round: the middle of the ten fractions
    assert row["ratio"] == pytest.approx(np.sqrt(0.88 * 0.90))
    # for ten values the 95% interval of the median runs from the 2nd to the 9th
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.82, 0.96))
    assert row["verdict"] == FASTER
    # where the medians alone would say: the machine's slow rounds landed on both alike
    assert row["reference_ms"] == pytest.approx(np.median(
        [10.0 * m for m in MACHINE for _ in range(3)]))


def test_a_ratios_file_has_the_documented_columns(tmp_path):
    ratios = paired_ratios(paired_run(tmp_path / "run"))
    assert tuple(ratios.columns) == RATIO_FIELDS


@pytest.mark.parametrize("low, high, expected", [
    (0.96, 1.04, SAME), (0.90, 0.97, FASTER), (1.02, 1.30, SLOWER), (0.90, 1.10, INCONCLUSIVE),
    (0.95, 1.05, SAME), (0.80, 0.99, FASTER)])
def test_verdicts_at_five_percent(low, high, expected):
    assert verdict(low, high, 0.05) == expected


def test_a_configuration_timed_alone_has_no_ratio(tmp_path):
    rows = [result_row(batch_size=8, optimizer_setup=s) for s in ("separate", "single")]
    assert paired_ratios(load_run(write_run(tmp_path / "run", rows))).empty
