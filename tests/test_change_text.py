"""Ratios as changes and as ratios, as the pages and summaries write them: an interval from
two rounds can reach 1e100, and a figure past ten times says so rather than print 100 digits."""

import math

from bench.present.change_text import as_change, as_ratio


def test_a_ratio_reads_as_its_signed_change_to_a_tenth_of_a_percent():
    assert as_change(1.25) == "+25.0%"
    assert as_change(0.8) == "-20.0%"
    assert as_change(1.0) == "+0.0%"
    assert as_change(1e-300) == "-100.0%"
    assert as_change(10.0) == "+900.0%"  # the largest shown as a figure


def test_past_ten_times_a_change_or_ratio_says_only_that():
    for ratio in (10.0001, 1e100, math.inf):
        assert as_change(ratio) == "over +900%"
        assert as_ratio(ratio) == "over 10"
    assert as_ratio(10.0) == "10.000"
    assert as_ratio(0.9524) == "0.952"


def test_a_two_round_paired_comparison_prints_no_figure_past_ten_times(tmp_path):
    import pandas as pd

    from bench.present.paired_page import unjudged
    from bench.analyze.judge import NOT_JUDGED
    table = pd.DataFrame([{"config": "c", "phase": "step", "ratio": 1.324, "low": 1e-100,
                           "high": 7.8e85, "rounds": 2, "verdict": NOT_JUDGED,
                           "rounds_to_decide": float("nan")}])
    lines = unjudged(table)
    assert lines[1] == "  c step: +32.4% [-100.0%, over +900%] after 2 round(s)"
