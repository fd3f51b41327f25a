"""Paired comparison of two environments measured in interleaved rounds.

Round i of the baseline and round i of the candidate ran side by side, taking turns
(``bench/measure/turns.py``), so whatever the machine was doing then (a clock level, a
neighbour's load) touched both: the ratio within a round cancels most of it. What it
leaves is what belongs to each process: two processes on a shared machine run at levels
apart, and that moves every measurement of the round alike. So each round's effect is
taken out first: per phase, the log-ratios (measurements x rounds) are split by Tukey's
median polish into an effect per measurement and one per round, and each measurement's
log-ratios are freed of the rounds' effects about their mean (``round_effects``). The
split is robust: a quarter of the measurements slower does not move the rounds' effects,
as it would move a median over the round's measurements.

Per measurement key (``KEY``, as ``compare_sides`` matches), the rounds are then judged by
Yuen's 20% trimmed mean and its t (``bench/analyze/trimmed.py``: a process that reads one
comparison group far off for its whole life makes one round jump). The mean of the rounds'
effects stays in every measurement's ratio, the change the candidate brought to all of them
at once, and its uncertainty (their variance over the rounds, over the rounds counted) is
added to each measurement's: a slower torch release makes every measurement a regression,
as it should, and rounds whose processes ran far apart make every interval wide. Then
Benjamini-Hochberg q-values over every key, and the threshold. The shift of everything is
also reported as such: Student's t over the rounds' shifts of the step phase.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bench.analyze.comparison import KEY, SLOT, device_slot, key_label
from bench.analyze.reader import Run, untimed_phases
from bench.analyze.significance import (DEFAULT_THRESHOLD, adjust, paired, t_interval,
                                        verdict)
from bench.analyze.trimmed import trimmed_means
from bench.analyze.units import check_units_unique
from bench.errors import UsageError
from bench.schema import OK, STEP

COLUMNS = [*KEY, "config", "ratio", "low", "high", "p_value", "q_value", "verdict",
           "baseline_ms", "candidate_ms", "rounds"]
# The median polish sweeps until no round's effect moves by more than POLISH_TOLERANCE (a
# millionth of a log-ratio: nothing a verdict can see), or POLISH_SWEEPS: medians can settle
# into a small cycle instead of a limit.
POLISH_TOLERANCE, POLISH_SWEEPS = 1e-6, 100
# Under five rounds the 20% trimmed mean trims nothing, and one process that read a group
# far off decides the interval: such keys get an interval but no test and no verdict.
MIN_ROUNDS = 5
NOT_JUDGED = "not judged"


def round_medians(run: Run) -> pd.Series:
    """Per key, the run's median from results.csv (its samples' median, as the runner wrote
    it; over repeats, the median of theirs): a round can be kept without its samples. A
    CUDA graph's phases have no timing of their own and are left out."""
    rows = run.results[run.results["status"] == OK]
    untimed = pd.Series(untimed_phases(rows), index=rows.index, dtype=bool)
    rows = rows[~untimed].copy()
    rows[SLOT] = device_slot(rows)
    return rows.groupby(list(KEY), sort=False, dropna=False)["median_ms"].median()


def round_effects(log_ratio: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Each round's effect on each key (keys x rounds, as ``log_ratio``, NaN where a round
    lacks the key): per phase, log_ratio = key effect + round effect + rest by median
    polish, the round effects then centred on their mean over the rounds."""
    effects = np.zeros_like(log_ratio)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a round without this phase: NaN
        for value in np.unique(phase):
            x = log_ratio[phase == value]
            by_round = np.zeros((1, x.shape[1]))
            for _ in range(POLISH_SWEEPS):
                by_key = np.nanmedian(x - by_round, axis=1, keepdims=True)
                before, by_round = by_round, np.nanmedian(x - by_key, axis=0, keepdims=True)
                if np.nanmax(np.abs(by_round - before), initial=0.0) < POLISH_TOLERANCE:
                    break
            by_round = np.nan_to_num(by_round - np.nanmean(by_round))
            effects[phase == value] = by_round
    return effects


def judge_rounds(log_ratio: np.ndarray, phase: np.ndarray,
                 threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Per key (rows of ``log_ratio``, keys x rounds, NaN where a round lacks the key;
    ``phase`` per key): ratio, low, high, p_value, q_value, verdict and rounds."""
    effects = round_effects(log_ratio, phase)
    present = ~np.isnan(log_ratio)
    estimate, se, df, rounds = trimmed_means(log_ratio - effects)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one round: no variance, NaN
        # the variance of the rounds' mean effect, over the key's own rounds
        level_var = np.nanvar(np.where(present, effects, np.nan), axis=1, ddof=1) / rounds
    low, high, p = t_interval(estimate, np.sqrt(se ** 2 + level_var), df)
    p = np.where(rounds >= MIN_ROUNDS, p, np.nan)  # not tested: no q-value, no verdict
    out = pd.DataFrame({"ratio": np.exp(estimate), "low": np.exp(low), "high": np.exp(high),
                        "p_value": p, "q_value": adjust(p), "rounds": rounds})
    out["verdict"] = verdict(out["ratio"], out["low"], out["high"], out["q_value"], threshold)
    out.loc[rounds < MIN_ROUNDS, "verdict"] = NOT_JUDGED
    return out


def numbered(rounds: Mapping[int, Run] | Sequence[Run]) -> dict[int, Run]:
    """Rounds by their number: a mapping as it is, a sequence numbered from 1."""
    return dict(rounds) if isinstance(rounds, Mapping) else dict(enumerate(rounds, 1))


def compare_paired(baseline_rounds: Mapping[int, Run] | Sequence[Run],
                   candidate_rounds: Mapping[int, Run] | Sequence[Run],
                   threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """One row per key measured on both sides in at least one round (``COLUMNS``): `ratio`
    is the key's trimmed mean ratio over the rounds, freed of each round's effect, which
    `low` and `high` bound; `baseline_ms` and `candidate_ms` are the medians over the
    rounds; `rounds` counts the pairs behind it. Rounds pair by number (``numbered``), the
    two that ran side by side: a round one side lacks pairs with nothing. A round whose key
    is missing (or not measured) on either side drops out of that key's pairs; a key with
    one pair gets no interval, and one with fewer than MIN_ROUNDS no test and no verdict."""
    baseline, candidate = numbered(baseline_rounds), numbered(candidate_rounds)
    for rounds in (baseline, candidate):
        check_units_unique(list(rounds.values()))  # one run twice: one round counted twice
    pairs = []
    for number in sorted(baseline.keys() & candidate.keys()):
        both = pd.concat([round_medians(baseline[number]).rename("baseline_ms"),
                          round_medians(candidate[number]).rename("candidate_ms")],
                         axis=1, join="inner")
        pairs.append(both.assign(round=number))
    if not pairs:
        raise UsageError("the two sides have no round number in common to pair")
    table = pd.concat(pairs)
    if table.empty:
        raise UsageError("the rounds have no measurement in common to compare")
    table["log_ratio"] = np.log(table["candidate_ms"] / table["baseline_ms"])
    grouped = table.groupby(level=list(range(len(KEY))), sort=False, dropna=False)
    out = pd.DataFrame({"baseline_ms": grouped["baseline_ms"].median(),
                        "candidate_ms": grouped["candidate_ms"].median()})
    out.index.names = list(KEY)
    # keys x rounds, NaN where a round lacks the key: each key is judged on its own rounds
    by_round = table.set_index("round", append=True)["log_ratio"].unstack("round")
    by_round = by_round.reindex(out.index)
    judged = judge_rounds(by_round.to_numpy(), out.index.get_level_values("phase").to_numpy(),
                          threshold)
    out = pd.concat([out.reset_index(), judged], axis=1)
    out["config"] = [key_label(r) for r in out.to_dict("records")]
    result = out[COLUMNS].copy()
    step = out["phase"].to_numpy() == STEP
    result.attrs["common_shift"] = common_shift(by_round.to_numpy()[step], threshold)
    return result


def common_shift(step_log_ratio: np.ndarray, threshold: float) -> dict | None:
    """The step phase's shift of every measurement (``step_log_ratio``: the step keys x
    rounds), over the rounds: each round's median log-ratio, their mean as a ratio with its
    interval and verdict (regression, improvement or no change; not judged under
    MIN_ROUNDS rounds, as no measurement is)."""
    if step_log_ratio.size == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a round without a step: NaN
        shifts = pd.Series(np.nanmedian(step_log_ratio, axis=0)).dropna()
    low, high, p = paired(shifts.mean(), shifts.std(), len(shifts))
    ratio = float(np.exp(shifts.mean()))
    judged = str(verdict(ratio, float(np.exp(low)), float(np.exp(high)), float(p), threshold))
    return {"ratio": ratio, "low": float(np.exp(low)), "high": float(np.exp(high)),
            "p_value": float(p), "rounds": len(shifts),
            "verdict": judged if len(shifts) >= MIN_ROUNDS else NOT_JUDGED}
