"""Paired comparison of two environments measured in interleaved rounds.

Round i of the baseline and round i of the candidate ran side by side, taking turns
(``bench/measure/turns.py``), so whatever the machine was doing then (a clock level, a
neighbour's load) touched both: the ratio within a round cancels most of it. What it
leaves is what belongs to each process: on a shared machine two processes run at levels
up to 1.6x apart, and that moves every measurement of the round alike. So each round's
log-ratios are taken relative to their median over the round's measurements (per phase):
the round's common shift.

Per measurement key (``KEY``, as ``compare_sides`` matches), the departures from the
common shift over the rounds are judged by Wilcoxon's signed-rank test, with the
Hodges-Lehmann estimate and its exact interval (``bench/analyze/signed_rank.py``: a
process that reads one comparison group far slower for its whole life makes one round
jump, which a t-test's standard deviation would carry into every verdict),
Benjamini-Hochberg q-values over every key, and the threshold. The common shift itself is
judged by Student's t over the rounds' shifts (the step phase's, each a median over many
keys): a change of everything at once (a slower torch release) is reported as one
verdict, with an interval that the rounds' process levels widen, as they should.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.analyze.comparison import KEY, Side, key_label, side_units
from bench.analyze.reader import Run
from bench.analyze.significance import DEFAULT_THRESHOLD, adjust, paired, verdict
from bench.analyze.signed_rank import signed_rank
from bench.analyze.units import check_units_unique
from bench.errors import UsageError
from bench.schema import STEP

COLUMNS = [*KEY, "config", "ratio", "low", "high", "p_value", "q_value", "verdict",
           "baseline_ms", "candidate_ms", "rounds"]


def round_medians(run: Run) -> pd.Series:
    """Per key, the median of the run's measured unit medians (its repeats, if several)."""
    units = side_units(Side([run]))
    units = units[units["unit_ms"].notna()]
    return units.groupby(list(KEY), sort=False, dropna=False)["unit_ms"].median()


def compare_paired(baseline_rounds: Sequence[Run], candidate_rounds: Sequence[Run],
                   threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """One row per key measured on both sides in at least one round (``COLUMNS``): `ratio`
    is the rounds' mean common shift times the Hodges-Lehmann estimate of the key's
    departure from it, which `low` and `high` bound; `baseline_ms` and `candidate_ms` are
    the medians over the rounds; `rounds` counts the pairs behind it. A round whose key is missing (or not measured) on either side drops
    out of that key's pairs; a key with fewer than six pairs gets no interval (none reaches
    95%) and no verdict."""
    if len(baseline_rounds) != len(candidate_rounds):
        raise UsageError(f"rounds pair by position: {len(baseline_rounds)} baseline rounds "
                         f"against {len(candidate_rounds)} candidate rounds")
    for rounds in (baseline_rounds, candidate_rounds):
        check_units_unique(rounds)  # one run twice would be one round counted twice
    pairs = []
    for i, (base, cand) in enumerate(zip(baseline_rounds, candidate_rounds)):
        both = pd.concat([round_medians(base).rename("baseline_ms"),
                          round_medians(cand).rename("candidate_ms")], axis=1, join="inner")
        pairs.append(both.assign(round=i))
    table = pd.concat(pairs)
    if table.empty:
        raise UsageError("the rounds have no measurement in common to compare")
    table["log_ratio"] = np.log(table["candidate_ms"] / table["baseline_ms"])
    phase = table.index.get_level_values("phase")
    round_shift = table.groupby([table["round"], phase])["log_ratio"].transform("median")
    table["departure"] = table["log_ratio"] - round_shift
    grouped = table.groupby(level=list(range(len(KEY))), sort=False, dropna=False)
    out = pd.DataFrame({"mean": grouped["log_ratio"].mean(),
                        "rounds": grouped.size(),
                        "baseline_ms": grouped["baseline_ms"].median(),
                        "candidate_ms": grouped["candidate_ms"].median()})
    out.index.names = list(KEY)
    # keys x rounds, NaN where a round lacks the key: the test takes each key's own rounds
    by_round = table.set_index("round", append=True)["departure"].unstack("round")
    by_round = by_round.reindex(out.index)
    estimate, low, high, p, _ = signed_rank(by_round.to_numpy())
    out = out.reset_index()
    shift = out["mean"] - grouped["departure"].mean().to_numpy()  # what every key shares
    out["ratio"] = np.exp(shift + estimate)
    out["low"], out["high"] = np.exp(shift + low), np.exp(shift + high)
    out["p_value"], out["q_value"] = p, adjust(p)
    # the verdict is on the departure: a change of everything is the common shift's verdict
    out["verdict"] = verdict(np.exp(estimate), np.exp(low), np.exp(high), out["q_value"],
                             threshold)
    out["config"] = [key_label(r) for r in out.to_dict("records")]
    result = out[COLUMNS].copy()
    result.attrs["common_shift"] = common_shift(table, threshold)
    return result


def common_shift(table: pd.DataFrame, threshold: float) -> dict | None:
    """The step phase's shift of every measurement, over the rounds: its ratio, interval
    and verdict (regression, improvement or no change)."""
    steps = table[table.index.get_level_values("phase") == STEP]
    if steps.empty:
        return None
    shifts = steps.groupby("round")["log_ratio"].median()
    low, high, p = paired(shifts.mean(), shifts.std(), len(shifts))
    ratio = float(np.exp(shifts.mean()))
    return {"ratio": ratio, "low": float(np.exp(low)), "high": float(np.exp(high)),
            "p_value": float(p), "rounds": len(shifts),
            "verdict": str(verdict(ratio, float(np.exp(low)), float(np.exp(high)),
                                   float(p), threshold))}
