"""The summary at the end of a run: verdicts with intervals where configurations were timed
together, medians where they were timed alone, and what may have disturbed them."""

import numpy as np
import pytest

from bench.analyze.ratios import paired_ratios
from bench.present.summary import format_summary
from tests.test_ratios import FRACTIONS, paired_run
from tests.support.synthetic import frame, result_row


def test_a_group_prints_each_setup_s_ratio_interval_and_verdict(tmp_path):
    run = paired_run(tmp_path / "run")
    text = format_summary(run.results, paired_ratios(run), {})
    lines = text.splitlines()
    assert lines[0].startswith("Step time per optimizer setup against `separate`")
    row = next(line for line in lines if line.startswith("sequential"))
    # separate's median (30 samples: ten rounds of three, 10 ms times the machine's speed;
    # the 15th and 16th are 11 and 12 ms), then single over it: the trimmed mean of the ten
    # rounds' fractions (the six middle ones, as logarithms; tests/test_ratios.py)
    middle = np.log(sorted(FRACTIONS))[2:8]
    assert row.split()[:7] == ["sequential", "seed", "adam/loop", "8", "11.500", "ms",
                               f"{np.exp(middle.mean()):.3f}"]
    assert row.endswith("inconclusive")  # its interval at the first look reaches past 1
    assert "fastest" not in text
    took = next(line for line in lines if line.startswith("Verdicts"))
    # one group, ten rounds, the synthetic rows' measure_s (1.0 s each, two configurations)
    assert took == ("Verdicts: 0 of 1 decided; the groups took 10 rounds, 2.0 s of sampling, "
                    "stopping at look 1.")


def test_configurations_timed_alone_get_medians_and_no_winner():
    rows = frame([result_row(batch_size=8, optimizer_setup=s, median_ms=ms)
                  for s, ms in (("separate", 2.0), ("single", 1.5))])
    text = format_summary(rows)
    assert "timed alone" in text and "fastest" not in text
    row = next(line for line in text.splitlines() if line.startswith("sequential"))
    assert row.split()[4:7] == ["2.000", "1.500", "5,333"]  # 8 samples / 1.5 ms


def test_a_busy_machine_and_disturbed_blocks_are_said():
    rows = frame([result_row(batch_size=8, blocks=40, disturbed_blocks=3)])
    text = format_summary(rows, None, {"machine_load": {"busy": True, "others_share": 0.62}})
    assert "3 of 40 timing blocks were disturbed" in text
    assert "The machine was busy when the run started: other processes used 62%" in text


@pytest.mark.parametrize("load", [{"busy": True}, {"busy": True, "others_share": "most"},
                                  {"busy": True, "others_share": float("nan")}])
def test_a_busy_machine_whose_share_is_not_recorded_is_said_so(load):
    """env.json edited by hand: found by the fuzz of tests/test_fuzz_inputs.py on a busy
    machine, where the summary of a resumed run raised KeyError."""
    rows = frame([result_row(batch_size=8)])
    text = format_summary(rows, None, {"machine_load": load})
    assert ("other processes used a share of its CPU time that env.json does not record"
            in text)


def test_a_machine_load_that_is_not_an_object_is_left_out():
    rows = frame([result_row(batch_size=8)])
    assert "busy" not in format_summary(rows, None, {"machine_load": [1, 2]})


def test_statuses_count_configurations_not_their_phase_rows():
    """Two measured configurations of four phase rows, one out of memory with its four, one
    skipped (written with its step row only), over two repeats of the first."""
    phases = ("forward", "backward", "optimizer", "step")
    rows = [result_row(batch_size=b, phase=p, repeat=r) for b, r in ((1, 1), (1, 2), (2, 1))
            for p in phases]
    rows += [result_row(batch_size=64, phase=p, status="oom", error="CUDA out of memory")
             for p in phases]
    rows.append(result_row(batch_size=128, status="skipped", error="a smaller batch ran out"))
    text = format_summary(frame(rows))
    assert "Configurations: 3 ok, 1 oom, 1 skipped." in text
    assert text.count("sequential/seed/cpu/bs64/separate/adam/loop (repeat 1): CUDA out of "
                      "memory") == 1
