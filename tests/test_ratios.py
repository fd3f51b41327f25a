"""Ratios of the configurations of a comparison group to its reference, from blocks paired
round by round: the numbers, the intervals and the verdicts, computed by hand."""

import numpy as np
import pytest
from scipy.stats import t as scipy_t

from bench.analyze.judge import FASTER, SAME, SLOWER
from bench.analyze.judge import UNDECIDED as INCONCLUSIVE
from bench.analyze.judge import interval_verdict as verdict
from bench.analyze.ratios import paired_ratios
from bench.analyze.reader import load_run
from bench.schema import RATIO_FIELDS
from tests.support.synthetic import result_row, write_run

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
                         median_ms=float(np.median(values)), n_samples=len(values),
                         measure_s=1.0)
        rows.append(row)
        samples[(row["config_id"], "step", 1)] = values
        blocks[(row["config_id"], "step", 1)] = [b for b in range(len(fractions))
                                                 for _ in range(per_block)]
    return load_run(write_run(folder, rows, samples, blocks=blocks))


def test_the_ratio_is_the_trimmed_mean_of_the_rounds_ratios_at_the_first_looks_level(tmp_path):
    (row,) = paired_ratios(paired_run(tmp_path / "run")).to_dict("records")
    assert row["config_id"] == "sequential/seed/cpu/bs8/single/adam/loop"
    assert (row["compared"], row["reference"], row["value"]) == \
        ("optimizer_setup", "separate", "single")
    assert row["blocks"] == 10
    # the machine's speed cancels round by round; of the ten fractions the two lowest and
    # the two highest are trimmed, and the six kept are averaged as logarithms
    logs = np.log(sorted(FRACTIONS))
    assert row["ratio"] == pytest.approx(np.exp(logs[2:8].mean()))
    # Yuen's standard error from the winsorized values (the trimmed ones replaced by the
    # nearest kept), h = 6 kept, 5 degrees of freedom
    winsorized = np.clip(logs, logs[2], logs[7])
    se = np.sqrt(9 * winsorized.var(ddof=1) / (6 * 5))
    # ten rounds are the first of twelve looks: Pocock-type spending gives it
    # 0.05 ln(1 + (e - 1) / 12) of the 5% budget
    level = 0.05 * np.log(1 + (np.e - 1) / 12)
    assert row["look"] == 1 and row["confidence"] == pytest.approx(1 - level)
    t = scipy_t.ppf(1 - level / 2, 5)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (np.exp(logs[2:8].mean() - t * se), np.exp(logs[2:8].mean() + t * se)), rel=1e-6)
    # at 99.3% the interval reaches just past 1: not yet decided at this look
    assert row["ci_low"] < 1 < row["ci_high"] and row["verdict"] == INCONCLUSIVE
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
