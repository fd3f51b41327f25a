"""Where a configuration's time moved along one machine's history, and what changed there.

A *series* is one machine (``runs.machine``) and one configuration (``config_id``) in one
phase, its runs ordered by when they started (ties by run_id). A run is summed up by its
median (the median of its repeats' medians, where it has several) and the variance of that
median's logarithm from its own 95% interval (``ci_low_ms``..``ci_high_ms``).

Why not compare neighbouring runs: two runs of the same code on the same machine differ by
more than their samples suggest (the machine drifts between runs, often for a whole run at
once), so a pair of runs, however narrow their intervals, cannot tell a change from drift.
Only a shift that *persists* over several runs is one. So each boundary between adjacent runs
is judged by a window of up to ``WINDOW`` runs on each side (at least ``MIN_RUNS``), on the
logarithms of the runs' medians:

- each side's level is the median of its runs: one odd run does not move it;
- the spread of a run about its side's level is the standard deviation of the runs about
  their side's mean, pooled over both sides (a + b - 2 degrees of freedom): the drift
  between runs is in it, and one odd run widens it rather than hides. Its floor is the
  runs' own intervals (the median of their variances): runs cannot agree better than
  their samples allow. Each side's level gets a 95% Student's t interval (the variance
  of a median is about pi/2 times that of a mean), and the ratio after/before
  exp(level after - level before) gets its own, from the two together;
- a boundary is a change when the ratio departs from 1 by more than the threshold, the two
  sides' intervals do not overlap, the first ``MIN_RUNS`` runs after it each lie nearer
  the level after than the level before (the change starts there and lasts), and its
  Benjamini-Hochberg q-value is under 5%: a history of many configurations tests hundreds
  of boundaries at once, and about one unchanged boundary in twenty would otherwise pass
  a 95% test. The q-values are over every boundary one call tests, as ``compare``'s are
  over every measurement it compares;
- a step changes the windows of the boundaries near it too, so of the changes within
  ``WINDOW`` runs of each other only the clearest (the largest |log ratio| over its
  standard error) is kept: a step is reported once, at the boundary where the runs on each
  side agree best.

So a single noisy run makes no change (the medians ignore it, and it widens the spread of
its window), a change needs ``MIN_RUNS`` runs after it before it is reported, and two steps
closer than ``WINDOW`` runs blur into one or none. The threshold is the project's 5%
(``DEFAULT_THRESHOLD``), so that a change along the history means what it means in
``compare``. In simulated histories of 10 runs with 4% lognormal noise per run, a 20% step
is found in about 93% of series (90% at its own boundary) and a flat history marks about
0.1% of series. Where the noise is common to every configuration of a run (the whole
machine drifting), about 1% of flat histories show a shift in every configuration at once:
five runs of a faster or slower machine are a change, reported with no recorded cause.

Each change is attributed to what the environment records differently in the last run
before it and the first run after it (torch, CUDA, driver, project commit); none of them
when nothing recorded changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.analyze.judge import (CONFIDENCE, DEFAULT_THRESHOLD, FASTER, SLOWER, adjust,
                                 detectable_change, log_se, median_shift, typical)
from bench.errors import UsageError
from bench.schema import OK, PHASES, STEP

# The columns of a series: each run's log median and the variance of it from its interval.
LEVEL, WITHIN = "log_median", "within_var"
# Runs on each side of a boundary that judge it, at most and at least.
WINDOW, MIN_RUNS = 5, 2
NO_RECORDED_CHANGE = "no recorded change in the environment"
# What a change is attributed to: a column of ``runs`` and its name in a sentence.
ENVIRONMENT = (("torch_version", "torch"), ("cuda_version", "CUDA"),
               ("nvidia_driver", "driver"), ("project_commit", "commit"))


@dataclass(frozen=True)
class Change:
    """A step in one series: between the runs ``before_run`` and ``after_run`` (adjacent in
    the machine's history), the time of ``config_id`` moved by ``ratio`` (after / before,
    with its 95% interval ``ratio_low``..``ratio_high``; ``direction`` says which way).
    ``before_ms`` and ``after_ms`` are the levels of the windows of ``runs_before`` and
    ``runs_after`` runs that judged it; ``q_value`` its Benjamini-Hochberg q-value.
    ``attributed_to``: texts such as "torch 2.13.0 -> 2.14.1", empty when nothing
    recorded changed."""

    machine: str
    config_id: str
    phase: str
    before_run: str
    before_started_at: str
    after_run: str
    after_started_at: str
    ratio: float
    ratio_low: float
    ratio_high: float
    direction: str  # SLOWER or FASTER
    before_ms: float
    after_ms: float
    runs_before: int
    runs_after: int
    q_value: float
    attributed_to: tuple[str, ...]

    @property
    def explanation(self) -> str:
        """What changed in the environment, in words."""
        return "; ".join(self.attributed_to) or NO_RECORDED_CHANGE


@dataclass(frozen=True)
class Scan:
    """What one search looked at (``series``: how many series had runs) and found."""

    changes: list[Change]
    series: int
    # the median over every boundary judged of the change it would have found 80% of the
    # time (bench/analyze/judge.py): what the search could have seen; None: no boundary
    detectable: float | None = None


def find_changes(store, machine: str | None = None, config: str | None = None,
                 phase: str = STEP, threshold: float = DEFAULT_THRESHOLD) -> list[Change]:
    """The changes along every series of the store (a ``bench.history.store.Store``), or of
    one machine (``runs.machine``) and the configurations ``config`` names (a config_id, else
    every config_id that contains it), in ``phase``; ordered by machine, configuration and
    date. ``threshold`` is a fraction (0.05: 5%). A machine or configuration the store does
    not hold is a ``UsageError``; a store that cannot be read, a ``StoreError``. This
    signature is kept stable for its callers."""
    return scan(store, machine, config, phase, threshold).changes


def scan(store, machine: str | None = None, config: str | None = None, phase: str = STEP,
         threshold: float = DEFAULT_THRESHOLD) -> Scan:
    """``find_changes``, with the number of series it looked at."""
    runs = read_series(store, machine, config, phase)
    every_series = [s.reset_index(drop=True)
                    for _, s in runs.groupby(["machine", "config_id"], sort=True)]
    judged = list(zip(every_series, judge_all([(s[LEVEL].to_numpy(), s[WITHIN].to_numpy())
                                               for s in every_series], threshold)))
    every = [b for _, boundaries in judged for b in boundaries]
    for boundary, q in zip(every, adjust([b.p for b in every])):
        boundary.q = float(q)
    changes = [_change(series, b, phase) for series, boundaries in judged
               for b in clearest([b for b in boundaries if b.is_change])]
    seen = typical(detectable_change([b.se for b in every], [b.df for b in every], threshold))
    return Scan(changes, len(judged), seen)


@dataclass
class Boundary:
    """The judgement of the boundary before run ``index`` of a series (logarithms of ms):
    the levels of the windows on each side, the shift ``d`` between them with its standard
    error, degrees of freedom, 95% interval and p-value; ``candidate`` when it passes
    every rule but the q-value, which needs every boundary of the search (``q``)."""

    index: int
    runs_before: int
    runs_after: int
    level_before: float
    level_after: float
    d: float
    se: float
    df: float
    low: float
    high: float
    p: float
    score: float
    candidate: bool
    q: float = math.nan

    @property
    def is_change(self) -> bool:
        return self.candidate and self.q < 1 - CONFIDENCE


def judge(levels, within_var, threshold: float = DEFAULT_THRESHOLD,
          window: int = WINDOW) -> list[Boundary]:
    """Every boundary of one series with ``MIN_RUNS`` runs or more on each side.
    ``levels``: the log median of each run, in order; ``within_var``: the variance of each
    from the run's own interval (NaN where it has none). The rules are the module's."""
    return judge_all([(levels, within_var)], threshold, window)[0]


def judge_all(series, threshold: float = DEFAULT_THRESHOLD,
              window: int = WINDOW) -> list[list[Boundary]]:
    """``judge`` of each (levels, within_var) of ``series``. The windows are summed up one
    boundary at a time, but Student's t (a root-finding and an incomplete beta function)
    runs once over every boundary of the search: a history of a thousand series has tens of
    thousands of boundaries, and each call costs milliseconds however few it is given."""
    windows = [[_window(k, x, w, window) for k in range(MIN_RUNS, len(x) - MIN_RUNS + 1)]
               for x, w in ((np.asarray(x, dtype=float), np.asarray(w, dtype=float))
                            for x, w in series)]
    flat = [w for ws in windows for w in ws]
    if not flat:
        return [[] for _ in windows]
    k, a, b, level_before, level_after, var, persists = (np.array(c) for c in zip(*flat))
    step = median_shift(level_before, level_after, a, b, var, threshold)
    d, se, df, low, high, p = (step[c] for c in ("d", "se", "df", "low", "high", "p"))
    candidate = step["clear"] & persists
    with np.errstate(divide="ignore"):
        score = np.where(se > 0, np.abs(d) / np.where(se > 0, se, 1.0), np.inf)
    judged = [Boundary(int(k[i]), int(a[i]), int(b[i]), float(level_before[i]),
                       float(level_after[i]), float(d[i]), float(se[i]), float(df[i]),
                       float(low[i]), float(high[i]), float(p[i]), float(score[i]),
                       bool(candidate[i])) for i in range(len(flat))]
    out, start = [], 0
    for ws in windows:
        out.append(judged[start:start + len(ws)])
        start += len(ws)
    return out


def _window(k: int, x: np.ndarray, w: np.ndarray, window: int) -> tuple:
    """The boundary before run ``k``: (k, runs before, runs after, level before, level
    after, the variance of one run's log median, whether the first ``MIN_RUNS`` runs after
    it lie nearer the level after)."""
    before, after = x[max(0, k - window):k], x[k:min(len(x), k + window)]
    within = w[max(0, k - window):k + len(after)]
    a, b = len(before), len(after)
    level_before, level_after = float(np.median(before)), float(np.median(after))
    pooled = (np.sum((before - before.mean()) ** 2) + np.sum((after - after.mean()) ** 2)) \
        / (a + b - 2)
    known = within[~np.isnan(within)]
    floor = float(np.median(known)) if known.size else 0.0
    midpoint = (level_before + level_after) / 2
    persists = bool(np.all((x[k:k + MIN_RUNS] - midpoint) * np.sign(level_after - level_before)
                           > 0))
    return k, a, b, level_before, level_after, max(float(pooled), floor), persists


def clearest(changes: list[Boundary], window: int = WINDOW) -> list[Boundary]:
    """Of the changes of one series, those with no clearer one (a larger ``score``)
    within ``window`` runs: the boundaries around a step all see it, but the windows of
    the step's own boundary are the ones whose runs agree best. In order of position."""
    kept: list[Boundary] = []
    for change in sorted(changes, key=lambda b: (-b.score, b.index)):
        if all(abs(change.index - k.index) >= window for k in kept):
            kept.append(change)
    return sorted(kept, key=lambda b: b.index)


def _change(series: pd.DataFrame, b: Boundary, phase: str) -> Change:
    last, first = series.iloc[b.index - 1], series.iloc[b.index]
    return Change(machine=str(first["machine"]), config_id=str(first["config_id"]),
                  phase=phase, before_run=str(last["run_id"]),
                  before_started_at=_text(last["started_at"]), after_run=str(first["run_id"]),
                  after_started_at=_text(first["started_at"]), ratio=math.exp(b.d),
                  ratio_low=math.exp(b.low), ratio_high=math.exp(b.high),
                  direction=SLOWER if b.d > 0 else FASTER,
                  before_ms=math.exp(b.level_before), after_ms=math.exp(b.level_after),
                  runs_before=b.runs_before, runs_after=b.runs_after, q_value=b.q,
                  attributed_to=attribution(last, first))


def attribution(before, after) -> tuple[str, ...]:
    """What the environment records differently in two runs (rows of ``runs``), as
    "torch 2.13.0 -> 2.14.1"; a field one of them did not record reads "unknown"."""
    return tuple(f"{label} {_text(before[column]) or 'unknown'} -> "
                 f"{_text(after[column]) or 'unknown'}"
                 for column, label in ENVIRONMENT
                 if _text(before[column]) != _text(after[column]))


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else str(value)


def read_series(store, machine: str | None, config: str | None, phase: str) -> pd.DataFrame:
    """One row per machine, configuration and run that measured it in ``phase``: the run's
    ``LEVEL`` (log of the median of its repeats' medians) and ``WITHIN`` (the median of its
    repeats' variances of that log, from their 95% intervals; NaN without one), its date and
    environment; in the order of the history. Refuses, in one line, a phase the results do
    not have, a machine the store does not hold and a ``config`` that names nothing."""
    if phase not in (*PHASES, STEP):
        raise UsageError(f"no phase {phase!r}: one of {', '.join((*PHASES, STEP))}")
    if machine is not None:
        known = sorted(str(m) for (m,) in store.execute("SELECT DISTINCT machine FROM runs")
                       if m is not None)
        if machine not in known:
            raise UsageError(f"history store {store.name} has no machine {machine!r} "
                             f"(it has: {', '.join(known) or 'no runs'})")
    env = ", ".join(f"r.{column}" for column, _ in ENVIRONMENT)
    sql = (f"SELECT r.machine, x.config_id, x.run_id, r.started_at, {env}, x.median_ms, "
           "x.ci_low_ms, x.ci_high_ms FROM results x JOIN runs r ON r.run_id = x.run_id "
           "WHERE x.phase = ? AND x.status = ? AND x.median_ms > 0")
    params: list = [phase, OK]
    if machine is not None:
        sql, params = sql + " AND r.machine = ?", [*params, machine]
    if config is not None:
        sql, params = sql + " AND strpos(x.config_id, ?) > 0", [*params, config]
    rows = store.frame(sql, params)
    if config is not None:
        if rows.empty:
            raise UsageError(f"no configuration measured in phase {phase} "
                             f"{'on ' + machine + ' ' if machine else ''}matches {config!r}")
        if (rows["config_id"] == config).any():  # a whole config_id: that one only
            rows = rows[rows["config_id"] == config]
    return _per_run(rows)


def _per_run(rows: pd.DataFrame) -> pd.DataFrame:
    columns = ["machine", "config_id", "run_id", "started_at",
               *(c for c, _ in ENVIRONMENT), LEVEL, WITHIN]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows = rows.assign(machine=rows["machine"].fillna("").astype(str))
    median = pd.to_numeric(rows["median_ms"], errors="coerce")
    low = pd.to_numeric(rows["ci_low_ms"], errors="coerce")
    high = pd.to_numeric(rows["ci_high_ms"], errors="coerce")
    rows[LEVEL] = np.log(median)
    rows[WITHIN] = log_se(low, high) ** 2  # as ``compare`` takes it
    keys = ["machine", "config_id", "run_id"]
    first = rows.groupby(keys, sort=False)[["started_at", *(c for c, _ in ENVIRONMENT)]].first()
    per_run = rows.groupby(keys, sort=False)[[LEVEL, WITHIN]].median()
    out = first.join(per_run).reset_index()
    out["when"] = pd.to_datetime(out["started_at"], utc=True, errors="coerce",
                                 format="ISO8601")
    out = out.sort_values(["machine", "config_id", "when", "run_id"], na_position="last")
    return out[columns].reset_index(drop=True)
