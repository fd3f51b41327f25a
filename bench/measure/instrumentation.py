"""What the boundaries between phases cost: the phases' sum against the unbroken step.

The timer alternates a pass with boundaries between the phases and a pass without any, a
block of each per round (``bench/measure/timers.py``). Within a round the two passes run
moments apart, so their ratio is free of the machine's drift over the run; the ratio of the
medians of whole runs is not (a machine whose speed jumps between levels moves them apart).
So the two passes are set against each other round by round, and the median of those
ratios gets an order-statistic interval like any other median.

A verdict needs that interval: ``within`` the bound when all of it is, ``outside`` when none
of it is, ``undecided`` otherwise (more rounds decide). A loaded machine widens the interval
and so delays the verdict; it does not turn it.
"""

from __future__ import annotations

import statistics

from bench.measure.stats import Summary, summarize
from bench.schema import PHASES, STEP

# The phases' sum may differ from the unbroken step by this fraction of it.
BOUND = 0.05
WITHIN, OUTSIDE, UNDECIDED = "within", "outside", "undecided"


def bounded_iterations(timing, where=None) -> list[float]:
    """The iterations of the pass with boundaries, each its phases added up (those at the
    indices ``where``, else all)."""
    indices = range(len(timing.device_ms[PHASES[0]])) if where is None else where
    return [sum(timing.device_ms[p][i] for p in timing.phases) for i in indices]


def round_ratios(timing) -> list[float]:
    """Per round that timed both passes: the median iteration of the pass with boundaries
    (its phases added up, iteration by iteration) over the median unbroken step. Not the sum
    of the phases' medians: each phase is skewed to the right, so that sum falls short of the
    typical iteration by a few percent even where the boundaries cost nothing."""
    first = PHASES[0]
    ratios = []
    for round_ in sorted(set(timing.block[STEP]) & set(timing.block[first])):
        where = [i for i, r in enumerate(timing.block[first]) if r == round_]
        bounded = statistics.median(bounded_iterations(timing, where))
        step = statistics.median(t for t, r in zip(timing.device_ms[STEP], timing.block[STEP])
                                 if r == round_)
        if step > 0:
            ratios.append(bounded / step)
    return ratios


def phase_sum_ratio(timing) -> Summary:
    return summarize(round_ratios(timing))


def verdict(summary: Summary, bound: float = BOUND) -> str:
    low, high = 1 - bound, 1 + bound
    if low <= summary.ci_low and summary.ci_high <= high:
        return WITHIN
    if summary.ci_high < low or summary.ci_low > high:
        return OUTSIDE
    return UNDECIDED
