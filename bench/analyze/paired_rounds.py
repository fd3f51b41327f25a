"""Paired comparison of two environments measured in interleaved rounds.

Round i of the baseline and round i of the candidate ran side by side, taking turns
(``bench/sweep/turns.py``), so whatever the machine was doing then (a clock level, a
neighbour's load) touched both: the ratio within a round cancels most of it. What it
leaves is what belongs to each process: two processes on a shared machine run at levels
apart, and that moves every measurement of the round alike. So each round's effect is
taken out first: per phase, the log-ratios (measurements x rounds) are split by Tukey's
median polish into an effect per measurement and one per round, and each measurement's
log-ratios are freed of the rounds' effects about their mean (``round_effects``). The
split is robust: a quarter of the measurements slower does not move the rounds' effects,
as it would move a median over the round's measurements.

Per measurement key (``KEY``, as ``compare_sides`` matches), the rounds are then judged by
Yuen's 20% trimmed mean and its t (``bench/analyze/judge.py``, as every interval and
verdict: a process that reads one comparison group far off for its whole life makes one
round jump). The mean of the rounds'
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

from bench.analyze.run_comparison import KEY, SLOT, device_slot, key_label
from bench.analyze.reader import Run, untimed_phases
from bench.analyze.plans import ALPHA_CHANGE, ALPHA_SAME, FIRST_LOOK, LOOK_GROWTH, MAX_ROUNDS
from bench.analyze.sequential import Judged, Plan, looks_to, rounds_to_decide
from bench.analyze.judge import (DEFAULT_THRESHOLD, IMPROVEMENT, NO_CHANGE, NOT_JUDGED, OPEN,
                                 REGRESSION, UNDECIDED, adjust, band_verdict,
                                 detectable_change, level_interval, paired, t_interval,
                                 trimmed_means, verdict)
from bench.analyze.comparison_units import check_units_unique
from bench.errors import UsageError
from bench.schema import OK, STEP

COLUMNS = [*KEY, "config", "ratio", "low", "high", "p_value", "q_value", "verdict",
           "baseline_ms", "candidate_ms", "rounds", "decided_at", "rounds_to_decide",
           "detectable"]
# The median polish sweeps until no round's effect moves by more than POLISH_TOLERANCE (a
# millionth of a log-ratio: nothing a verdict can see), or POLISH_SWEEPS: medians can settle
# into a small cycle instead of a limit.
POLISH_TOLERANCE, POLISH_SWEEPS = 1e-6, 100
# Under five rounds the 20% trimmed mean trims nothing, and one process that read a group
# far off decides the interval: such keys get an interval but no test and no verdict.
MIN_ROUNDS = 5
# Paired rounds stop once every measurement is decided (bench/analyze/sequential.py), on
# the plan of bench/analyze/plans.py. Simulated under this machine's noise and a quiet one
# (python -m bench.selfcheck.sequential_noise, 1,000 trials each), it called 0.21 (fitted)
# and 0 (quiet) false changes in 1,000 unchanged measurements and found 94% and 100% of 10%
# changes (results/reference/paired-check-cpu/sequential_noise.json).
PLAN = Plan(first=FIRST_LOOK, looks=looks_to(FIRST_LOOK, LOOK_GROWTH, MAX_ROUNDS),
            alpha=ALPHA_CHANGE, alpha_same=ALPHA_SAME, growth=LOOK_GROWTH)


def round_medians(run: Run) -> pd.Series:
    """Per key, the run's median from results.csv (its samples' median, as the runner wrote
    it; over repeats, the median of theirs): a round can be kept without its samples. A
    CUDA graph's phases have no timing of their own and are left out."""
    rows = run.results[run.results["status"] == OK]
    untimed = pd.Series(untimed_phases(rows), index=rows.index, dtype=bool)
    rows = rows[~untimed].copy()
    rows[SLOT] = device_slot(rows)
    return rows.groupby(list(KEY), sort=False, dropna=False)["median_ms"].median()


def config_ids(run: Run) -> pd.Series:
    """Per key, the config_id the run's rows give it (what ``bench run --only`` takes)."""
    rows = run.results[run.results["status"] == OK].copy()
    rows[SLOT] = device_slot(rows)
    return rows.groupby(list(KEY), sort=False, dropna=False)["config_id"].first()


def nan_median(x: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmedian(x, axis, keepdims=True)`` for a 2-D array, NaN where a line holds
    none: sorted once, NaN last, and the middle of each line's values read off. numpy's
    own takes a masked-array path on small arrays with NaN, some fifty times slower, and
    the median polish takes hundreds of them per comparison."""
    ordered = np.sort(x, axis=axis)
    count = np.sum(~np.isnan(x), axis=axis, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=axis)
    high = np.take_along_axis(ordered, count // 2 - (count == 0), axis=axis)
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, (low + high) / 2, np.nan)


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
                by_key = nan_median(x - by_round, axis=1)
                before, by_round = by_round, nan_median(x - by_key, axis=0)
                if np.nanmax(np.abs(by_round - before), initial=0.0) < POLISH_TOLERANCE:
                    break
            by_round = np.nan_to_num(by_round - np.nanmean(by_round))
            effects[phase == value] = by_round
    return effects


def freed_of_rounds(log_ratio: np.ndarray, phase: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per key (keys x rounds in, NaN where a round lacks the key): the trimmed mean of its
    log-ratios freed of the rounds' effects, its standard error, degrees of freedom and
    rounds, and the variance of the rounds' mean effect over the key's own rounds (NaN with
    one round), which the key's ratio still holds."""
    effects = round_effects(log_ratio, phase)
    present = ~np.isnan(log_ratio)
    estimate, se, df, rounds = trimmed_means(log_ratio - effects)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one round: no variance, NaN
        level_var = np.nanvar(np.where(present, effects, np.nan), axis=1, ddof=1) / rounds
    return estimate, se, df, rounds, level_var


def judge_rounds(log_ratio: np.ndarray, phase: np.ndarray,
                 threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Per key (rows of ``log_ratio``, keys x rounds, NaN where a round lacks the key;
    ``phase`` per key): ratio, low, high, p_value, q_value, verdict and rounds."""
    estimate, se, df, rounds, level_var = freed_of_rounds(log_ratio, phase)
    low, high, p = t_interval(estimate, np.sqrt(se ** 2 + level_var), df)
    p = np.where(rounds >= MIN_ROUNDS, p, np.nan)  # not tested: no q-value, no verdict
    out = pd.DataFrame({"ratio": np.exp(estimate), "low": np.exp(low), "high": np.exp(high),
                        "p_value": p, "q_value": adjust(p), "rounds": rounds})
    out["verdict"] = verdict(out["ratio"], out["low"], out["high"], out["q_value"], threshold)
    out.loc[rounds < MIN_ROUNDS, "verdict"] = NOT_JUDGED
    return out


def look_at(log_ratio: np.ndarray, phase: np.ndarray, plan: Plan, look: int,
            threshold: float) -> pd.DataFrame:
    """Every key judged on the rounds up to look ``look`` (keys x rounds in): ratio, the
    change interval (low, high) and the no-change one (same_low, same_high) at the look's
    levels, se, df, rounds and the verdict: a regression or improvement (past the
    threshold, its interval clear of 1), no change (its no-change interval within the
    threshold), else undecided."""
    estimate, se, df, rounds, level_var = freed_of_rounds(log_ratio, phase)
    se = np.sqrt(se ** 2 + np.nan_to_num(level_var))
    low, high = level_interval(estimate, se, df, plan.level(look))
    same_low, same_high = level_interval(estimate, se, df, plan.level(look, same=True))
    with np.errstate(over="ignore"):  # an interval without bounds yet: inf
        out = pd.DataFrame({"ratio": np.exp(estimate), "low": np.exp(low),
                            "high": np.exp(high), "same_low": np.exp(same_low),
                            "same_high": np.exp(same_high), "se": se, "df": df,
                            "rounds": rounds})
    out["verdict"] = band_verdict(out["low"], out["high"], out["same_low"], out["same_high"],
                                  threshold, estimate,
                                  labels=(IMPROVEMENT, REGRESSION, NO_CHANGE, OPEN))
    return out


def looks_within(plan: Plan, n_rounds: int) -> list[tuple[int, int]]:
    """(look, rounds) of the planned looks ``n_rounds`` rounds reach, and where the rounds
    ended between looks (their cap, or a comparison made early), one more at all of them,
    at the next look's level: its share of the budget was never spent."""
    looks = [(k, r) for k, r in enumerate(plan.rounds(), start=1) if r <= n_rounds]
    done = looks[-1][1] if looks else 0
    if n_rounds > done and n_rounds >= plan.first and len(looks) < plan.looks:
        looks.append((len(looks) + 1, n_rounds))
    return looks


def judge_sequentially(log_ratio: np.ndarray, phase: np.ndarray,
                       threshold: float = DEFAULT_THRESHOLD, plan: Plan = PLAN,
                       looked: dict | None = None) -> pd.DataFrame:
    """Per key (rows of ``log_ratio``, keys x rounds in round order, NaN where a round lacks
    the key), the verdict of the first planned look that decided it, on the rounds up to
    that look; an undecided key keeps its last look's figures and says about how many
    rounds would decide it. Columns: ratio, low, high, verdict, rounds, decided_at (the
    rounds at the deciding look, NaN where undecided), rounds_to_decide, detectable.
    ``looked``: the looks of earlier calls on the same rounds, by (look, rounds), kept and
    reused (a caller that judges after every new round; its earlier rounds never change)."""
    n_rounds = log_ratio.shape[1]
    final = None
    decided_at = np.full(len(log_ratio), np.nan)
    looked = {} if looked is None else looked
    for look, rounds in looks_within(plan, n_rounds):
        if (look, rounds) not in looked:
            looked[look, rounds] = look_at(log_ratio[:, :rounds], phase, plan, look, threshold)
        judged = looked[look, rounds].copy()
        if final is None:
            final = judged
        open_ = np.isnan(decided_at)
        # a key decided at an earlier look keeps that verdict: later rounds may not touch it
        final.loc[open_] = judged.loc[open_]
        decided_at[open_ & (judged["verdict"] != OPEN).to_numpy()] = rounds
    if final is None:  # under the first look: an interval at the first look's level
        final = look_at(log_ratio, phase, plan, 1, threshold)
        final["verdict"] = NOT_JUDGED
    final["decided_at"] = decided_at
    final["rounds_to_decide"] = [
        rounds_to_decide(Judged(r.ratio, r.low, r.high, r.same_low, r.same_high,
                                UNDECIDED, int(r.rounds)), threshold)
        if r.verdict == OPEN else np.nan for r in final.itertuples()]
    final["detectable"] = detectable_change(final["se"], final["df"], threshold)
    return final


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
    is missing (or not measured) on either side drops out of that key's pairs. Each key is
    judged at the planned looks (``judge_sequentially``): `verdict`, and the rounds its
    look rested on in `rounds`."""
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
    judged = judge_sequentially(by_round.to_numpy(),
                                out.index.get_level_values("phase").to_numpy(), threshold)
    # the p-value of the last look's estimate, for reading: the verdict is the looks'
    _, _, p = t_interval(np.log(judged["ratio"]), judged["se"], judged["df"])
    judged["p_value"], judged["q_value"] = p, adjust(p)
    out = pd.concat([out.reset_index(), judged.drop(columns=["rounds"]).assign(
        rounds=judged["rounds"])], axis=1)
    out["config"] = [key_label(r) for r in out.to_dict("records")]
    ids = pd.concat([config_ids(run) for run in baseline.values()])
    ids = ids[~ids.index.duplicated()]
    out["config_id"] = ids.reindex(pd.MultiIndex.from_frame(out[list(KEY)])).to_numpy()
    result = out[[*COLUMNS, "config_id"]].copy()
    step = out["phase"].to_numpy() == STEP
    result.attrs["common_shift"] = common_shift(by_round.to_numpy()[step], threshold)
    result.attrs["rounds"] = by_round.shape[1]  # the rounds paired
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
            "verdict": judged if len(shifts) >= FIRST_LOOK else NOT_JUDGED}
