"""The judging engine: every interval, test, multiple-comparison correction and verdict label
of the project, for every measurement of a comparison at once (numpy arrays in and out).
Whatever says "faster", "slower", "regression" or "changed" asks this module: ``compare``
(``bench/analyze/run_comparison.py``, its shifts and blocks), the paired rounds
(``bench/analyze/paired_rounds.py``), the ratios within a run and their stopping
(``bench/analyze/ratios.py``, ``bench/analyze/sequential.py``), the ratios between axis
values and device types, the history's changes and its latest-run view, and the summaries
that print their verdicts.

Why hand-written rather than scipy.stats (Student's t, Welch, Yuen's trimmed t) and
statsmodels (Benjamini-Hochberg): reading results needs numpy and pandas alone, and
``python -m bench compare`` runs where the measuring side's dependencies do; scipy is 40 MB
more for some twenty lines of arithmetic, statsmodels more again. The arithmetic is what
the libraries' is, and scipy stays the independent reference: tests/test_statistics_reference.py
holds every test here to ``scipy.stats`` (``t``, ``ttest_ind``, ``ttest_1samp``,
``false_discovery_control``, ``trim_mean``). None of them does quite what is needed either:
the tests run over thousands of measurements each with its own fractional degrees of
freedom, the trimmed mean over rows with different numbers of rounds (NaN where one is
missing) and no trimming under ``TRIM_FROM`` rounds, and the false discovery rate over
p-values some of which are NaN (nothing could be tested there), which statsmodels counts.

A side of a comparison is a list of *units*: the raw samples of one configuration and phase
from one pass over the sweep (one repeat of one run). Two kinds of noise move a median: the
samples within a pass, and the pass itself (on a shared machine the medians of two runs
differ by far more than their samples suggest, and often all in the same direction). Each
test works on the logarithms of unit medians, so a ratio is a difference:

- ``welch``: several units on each side. The spread of the unit medians shows both kinds of
  noise; Welch's t interval on their logarithms stays honest with two or three units.
- ``drift``: a single unit on a side. Nothing within a run sees the drift between runs, so
  it is estimated from the comparison itself: per phase, the median of all measurements'
  log-ratios is the common shift, and 1.4826 times their median absolute deviation about it
  is their spread (the factor makes it the standard deviation of normal data). The median
  and the MAD stay bounded while up to half of the measurements really changed, where a
  mean and a standard deviation follow a single outlier; many real changes still widen the
  spread, which makes the test less sensitive, never more lax. A measurement is judged by
  its departure from the shift, against that spread; the shift itself is reported, never
  judged. The spread is as sure as the number of *time windows* behind it, not of
  measurements: the configurations of a comparison group are timed together, so a slow
  few seconds of the machine move all of them alike (in eleven runs of the default sweep
  here, 92-97% of a measurement's run-to-run variance, by phase, is its group's), and a
  phase of 27 measurements in 9 groups holds 9 values' worth of spread.
- ``paired``: Student's t over rounds of two environments, log-ratio per round; what the
  paired rounds judge the shift of everything by.
- ``trimmed_means``: Yuen's 20% trimmed mean and its t, for paired rounds and for the
  blocks of a comparison group. On a shared machine a round's log-ratio for one
  configuration is mostly within a few percent, but now and then one of two processes reads
  a whole comparison group 20% to 50% off for as long as it lives. A mean and a standard
  deviation carry such a round into every verdict; the trimmed mean drops the most extreme
  rounds on each side, and its standard error comes from the winsorized variance, referred
  to Student's t with h - 1 degrees of freedom for h kept rounds (Yuen 1974; Wilcox,
  "Introduction to Robust Estimation and Hypothesis Testing", 4.3). Not ranks: Wilcoxon's
  signed-rank test ranks a wild round against the change highest of all, and cannot take
  in an uncertainty every measurement shares (the rounds' common level).
- ``median_shift``: the history's step between the runs before a boundary and after it.

Multiple comparisons: a comparison tests every configuration and phase at once, so
``adjust`` turns the p-values into Benjamini-Hochberg q-values, and ``verdict`` calls a
change only when it exceeds the threshold, its interval excludes no change and its q-value
is under 1 - confidence: an A/A comparison of hundreds of measurements flags nothing.
Comparisons that look again after every few rounds spend an error budget over their looks
instead (``pocock_spent``; the plans are ``bench/analyze/sequential.py``'s), and are judged
by ``band_verdict``: `same` within the threshold, a change clear of 1, else undecided.
"""

from __future__ import annotations

import math

import numpy as np

from bench.analyze.t_distribution import floats, student_t_quantile, two_sided_p

CONFIDENCE = 0.95
DEFAULT_THRESHOLD = 0.05
# 1 / (the standard normal's 75% quantile): the MAD times this estimates a normal sigma
MAD_SCALE = 1.4826
# A MAD is as precise as a standard deviation from about 37% as many values (its asymptotic
# efficiency at the normal), which sets the degrees of freedom of the drift test, counted in
# independent values: time windows (comparison groups), not measurements.
MAD_EFFICIENCY = 0.37
# A 95% order-statistic interval of a median spans about 2 x 1.96 of its standard errors.
Z_95 = 1.959964
# The variance of the median of n normal values is about pi/2 times that of their mean
# (exactly so for large n; less for 2 to 5, so this errs on the wide side).
MEDIAN_VARIANCE = math.pi / 2
TRIM = 0.2  # the share of rounds dropped at each end: the usual choice, robust and efficient
# Under this many rounds nothing is trimmed: dropping one round at each end of five leaves
# three, two degrees of freedom, and an interval too wide to decide anything. A round read
# far off widens the plain t's interval instead of faking a change.
TRIM_FROM = 8
# The detectable change: what a test finds with probability POWER at level DETECT_LEVEL.
POWER, DETECT_LEVEL = 0.80, 0.05

# Verdicts on a change (compare, paired rounds, history): past the threshold and significant.
REGRESSION, IMPROVEMENT, NO_CHANGE = "regression", "improvement", "no change"
OPEN, NOT_JUDGED = "undecided", "not judged"  # paired rounds: not decided yet; too few rounds
# Verdicts on which of two is faster (the ratios within a run, the history's directions).
FASTER, SLOWER, SAME, UNDECIDED = "faster", "slower", "same", "inconclusive"
ORDER_VERDICTS = (FASTER, SLOWER, SAME, UNDECIDED)
WELCH = "t over unit medians"
DRIFT = "departure from the common shift"
PAIRED = "paired t over rounds"


# -- intervals ----------------------------------------------------------------------------

def t_interval(estimate, se, df, confidence: float = CONFIDENCE):
    """(low, high, p-value) of ``estimate`` with standard error ``se`` and ``df`` degrees of
    freedom: Student's t. A zero standard error (identical values within each side) leaves
    nothing to blur the estimate: p is 1 where it is 0, else 0. NaN where ``se`` or ``df``
    is undefined."""
    estimate, se, df = floats(estimate, se, df)
    positive = (se > 0) & (df > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(positive, student_t_quantile(1 - (1 - confidence) / 2,
                                                  np.where(positive, df, 1.0)), 0.0)
        z = np.abs(estimate) / np.where(positive, se, 1.0)
        tail = two_sided_p(z, df)
    p = np.where(positive, tail, np.where(estimate == 0, 1.0, 0.0))
    undefined = np.isnan(se) | np.isnan(df) | np.isnan(estimate)
    p = np.where(undefined, np.nan, p)
    return estimate - t * se, estimate + t * se, p


def unique_quantiles(p: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Student's t quantiles, each distinct (p, df) pair solved once: a comparison's keys
    share a few of them (the rounds they have, one level per look), and each solution is
    an iteration over the incomplete beta function."""
    pairs, where = np.unique(np.stack([p.ravel(), df.ravel()]), axis=1, return_inverse=True)
    return np.asarray(student_t_quantile(pairs[0], pairs[1]))[where.ravel()].reshape(p.shape)


def level_interval(estimate, se, df, level):
    """Two-sided interval of log-ratios at error ``level`` (arrays or scalars); where the
    standard error is 0, the estimate itself."""
    estimate, se, df, level = (np.asarray(v, dtype=float) for v in
                               np.broadcast_arrays(estimate, se, df, level))
    usable = (df > 0) & (level > 0) & (level < 1)
    with np.errstate(invalid="ignore"):
        t = np.where(usable, unique_quantiles(np.where(usable, 1 - level / 2, 0.75),
                                              np.where(usable, df, 1.0)), np.inf)
    with np.errstate(invalid="ignore"):  # no bounds (t infinite) times no spread
        half = np.where(se > 0, t * se, 0.0)
    half = np.where(usable | (se == 0), half, np.inf)
    return estimate - half, estimate + half


def log_se(low, high) -> np.ndarray:
    """The standard error of a median's logarithm from its 95% interval ``low``..``high``
    (NaN without one): the half-width of the interval is 1.96 standard errors."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((low > 0) & (high >= low), np.log(high / low) / (2 * Z_95), np.nan)


def ratio_interval(ratio, low, high, reference_low, reference_high):
    """The 95% interval of ``ratio`` = median / reference median, from the two medians'
    own 95% intervals, their logarithms' errors added in quadrature."""
    half = np.sqrt(log_se(low, high) ** 2 + log_se(reference_low, reference_high) ** 2)
    return ratio * np.exp(-Z_95 * half), ratio * np.exp(Z_95 * half)


# -- tests --------------------------------------------------------------------------------

def welch_terms(base_mean, base_var, base_n, cand_mean, cand_var, cand_n):
    """(difference, standard error, Welch-Satterthwaite degrees of freedom) of cand_mean -
    base_mean, the means and variances of each side's log unit medians. Every side needs
    two units or more."""
    bm, bv, bn, cm, cv, cn = floats(base_mean, base_var, base_n, cand_mean, cand_var, cand_n)
    if np.any(bn < 2) or np.any(cn < 2):
        raise ValueError("Welch's t needs at least two units on each side")
    wb, wc = bv / bn, cv / cn
    se2 = wb + wc
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(se2 > 0, se2 ** 2 / (wb ** 2 / (bn - 1) + wc ** 2 / (cn - 1)), 1.0)
    return cm - bm, np.sqrt(se2), df


def welch(base_mean, base_var, base_n, cand_mean, cand_var, cand_n,
          confidence: float = CONFIDENCE):
    """(difference, low, high, p) of cand_mean - base_mean by Welch's t (``welch_terms``)."""
    diff, se, df = welch_terms(base_mean, base_var, base_n, cand_mean, cand_var, cand_n)
    low, high, p = t_interval(diff, se, df, confidence)
    return diff, low, high, p


def mad_spread(deviations) -> float:
    """MAD_SCALE x the median absolute deviation: a normal sigma that a minority of outliers
    does not move."""
    return MAD_SCALE * float(np.median(np.abs(deviations)))


def mad_df(independent) -> np.ndarray:
    """The degrees of freedom of a MAD over ``independent`` values' worth of evidence."""
    return np.maximum(1.0, MAD_EFFICIENCY * np.asarray(independent, dtype=float))


def drift(log_ratio, phase, within_var, window=None, confidence: float = CONFIDENCE,
          basis=None):
    """Each measurement's departure from the common shift of its phase, for one unit a side.

    ``log_ratio``: log(candidate / baseline median) per measurement; ``phase``: the group
    whose shift applies; ``within_var``: the variance of the log-ratio from the noise within
    the runs (0 where unknown); ``window``: which measurements were timed together (their
    comparison group on both sides), None where each was timed alone. Per phase: shift =
    median(log_ratio), spread = ``mad_spread`` of log_ratio - shift. The spread holds the
    within-run noise of a typical measurement already, so the between-run part is spread^2
    - median(within_var), and each measurement adds its own within-run variance to it: a
    noisy one gets a wider interval. The departure is referred to Student's t with
    ``mad_df(k - 1)`` degrees of freedom for k windows in the phase: measurements timed
    together drift together, so they count once in how well the spread is known.

    ``basis``: the measurements the shift and spread are taken from (all where None): a
    scenario or batch size that moved as a whole (``bench/analyze/shifts.py``) is left out,
    so that the others are judged against what did not move.

    Returns a dict of arrays: shift, spread, departure (log_ratio - shift), se, df, low,
    high (of the departure) and p.
    """
    d, w = floats(log_ratio, within_var)
    w = np.where(np.isnan(w), 0.0, w)
    phase = np.asarray(phase)
    window = np.arange(len(d)) if window is None else np.asarray(window)
    basis = np.ones(len(d), dtype=bool) if basis is None else np.asarray(basis, dtype=bool)
    shift, spread, between, windows = (np.zeros_like(d) for _ in range(4))
    for value in np.unique(phase):
        mine = phase == value
        base = mine & basis if (mine & basis).any() else mine
        centre = np.median(d[base])
        scale = mad_spread(d[base] - centre)
        shift[mine], spread[mine] = centre, scale
        windows[mine] = len(np.unique(window[base]))
        between[mine] = max(scale ** 2 - float(np.median(w[base])), 0.0)
    se = np.sqrt(between + w)
    df = mad_df(windows - 1)
    departure = d - shift
    low, high, p = t_interval(departure, se, df, confidence)
    return dict(shift=shift, spread=spread, departure=departure, se=se, df=df, low=low,
                high=high, p=p)


def paired(mean, sd, rounds, confidence: float = CONFIDENCE):
    """(low, high, p) of the mean of per-round log-ratios (``mean``, their standard deviation
    ``sd`` over ``rounds`` rounds): the paired t-test, df = rounds - 1. NaN under two
    rounds."""
    mean, sd, n = floats(mean, sd, rounds)
    enough = n >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(enough, sd / np.sqrt(n), np.nan)
    return t_interval(mean, se, np.where(enough, n - 1, np.nan), confidence)


def trimmed_means(values: np.ndarray, trim: float = TRIM
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``values`` (measurements x rounds; NaN where a round is missing): the
    trimmed mean, its standard error, its degrees of freedom and the rounds counted. With n
    rounds, g = floor(trim x n) are dropped at each end (none under TRIM_FROM rounds: the
    mean and Student's t) and h = n - 2g kept; the standard
    error is sqrt((n - 1) s_w^2 / (h (h - 1))), s_w^2 the winsorized variance. NaN where
    fewer than two rounds remain."""
    x = np.atleast_2d(np.asarray(values, dtype=float))
    n_rounds = np.sum(~np.isnan(x), axis=1)
    estimate, se, df = (np.full(len(x), np.nan) for _ in range(3))
    for n in np.unique(n_rounds):
        if n < 2:
            continue
        rows = np.flatnonzero(n_rounds == n)
        ordered = np.sort(x[rows], axis=1)[:, :n]  # the missing rounds (NaN) sort last
        g = int(np.floor(trim * n)) if n >= TRIM_FROM else 0
        h = n - 2 * g
        estimate[rows] = ordered[:, g:n - g].mean(axis=1)
        winsorized = np.clip(ordered, ordered[:, [g]], ordered[:, [n - g - 1]])
        se[rows] = np.sqrt((n - 1) * winsorized.var(axis=1, ddof=1) / (h * (h - 1)))
        df[rows] = h - 1
    return estimate, se, df, n_rounds


def median_shift(level_before, level_after, before, after, var, threshold: float):
    """The step between two windows of runs, judged from their levels (the median of each
    window's log medians, ``before`` and ``after`` runs) and ``var``, the variance of one
    run's log median. Arrays in; a dict of arrays out: d (after - before), se (of medians:
    MEDIAN_VARIANCE), df, low, high, p, and ``clear``: the step is past the threshold and
    past both sides' 95% intervals of their levels (they overlap while it is within both)."""
    d = level_after - level_before
    df = (before + after - 2).astype(float)
    se = np.sqrt(var * MEDIAN_VARIANCE * (1 / before + 1 / after))
    low, high, p = t_interval(d, se, df)
    t = np.asarray(student_t_quantile(1 - (1 - CONFIDENCE) / 2, df))
    reach = t * np.sqrt(var * MEDIAN_VARIANCE) * (1 / np.sqrt(before) + 1 / np.sqrt(after))
    clear = (np.abs(np.expm1(d)) > threshold) & (np.abs(d) > reach)
    return dict(d=d, se=se, df=df, low=low, high=high, p=p, clear=clear)


# -- multiple comparisons -----------------------------------------------------------------

def adjust(p_values) -> np.ndarray:
    """Benjamini-Hochberg q-values: calling every q under alpha a change keeps the expected
    share of false calls among them under alpha, however many measurements are tested. A NaN
    p-value is left out of the count and gets a NaN q-value."""
    p = np.asarray(p_values, dtype=float)
    q = np.full(len(p), np.nan)
    tested = np.flatnonzero(~np.isnan(p))  # NaN: nothing could be tested there
    m = len(tested)
    if m == 0:
        return q
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return q


def pocock_spent(alpha: float, share: float) -> float:
    """The error budget ``alpha`` a sequential plan has spent once ``share`` of its planned
    looks are taken: the Pocock-type spending function alpha ln(1 + (e - 1) share)."""
    return alpha * math.log(1 + (math.e - 1) * min(max(share, 0.0), 1.0))


# -- verdicts -----------------------------------------------------------------------------

def verdict(ratio, low, high, q_value=0.0, threshold: float = DEFAULT_THRESHOLD,
            confidence: float = CONFIDENCE):
    """A regression is slower by more than ``threshold`` with the whole interval above 1 (an
    improvement: faster, below 1), and a q-value under 1 - confidence. Ratios and interval
    ends as ratios, not logarithms; a NaN q-value (nothing to test) is no change."""
    ratio, low, high, q = floats(ratio, low, high, q_value)
    significant = q < 1 - confidence
    out = np.where(significant & (ratio > 1 + threshold) & (low > 1), REGRESSION,
                   np.where(significant & (ratio < 1 - threshold) & (high < 1), IMPROVEMENT,
                            NO_CHANGE)).astype(object)
    return str(out) if out.ndim == 0 else out


def band_verdict(low, high, same_low, same_high, threshold: float, log_ratio=None,
                 labels: tuple[str, str, str, str] = ORDER_VERDICTS):
    """`same` when the no-change interval (``same_low``..``same_high``) lies within [1 - t,
    1 + t]; else `slower` (`faster`) when the change interval lies above (below) 1; else
    undecided. The band is checked first: a change that is significant but within the
    threshold is `same`. Given ``log_ratio``, a change is called only where it is past the
    threshold as well (what a user should act on), and a NaN is undecided. Ratios in, one
    label per element out; ``labels``: (faster, slower, same, undecided) as the caller
    names them."""
    faster, slower, same, undecided = labels
    low, high, same_low, same_high = (np.asarray(v, dtype=float)
                                      for v in (low, high, same_low, same_high))
    past = True if log_ratio is None else np.abs(log_ratio) > np.log1p(threshold)
    inside = (same_low >= 1 - threshold) & (same_high <= 1 + threshold)
    out = np.where(inside, same, np.where(past & (low > 1), slower,
                                          np.where(past & (high < 1), faster, undecided)))
    if log_ratio is not None:
        out = np.where(np.isnan(log_ratio), undecided, out)
    return out.astype(object)


def interval_verdict(low: float, high: float, threshold: float) -> str:
    """The verdict of one interval of a ratio: `same` within [1 - t, 1 + t], else `faster`
    below 1, `slower` above, else `inconclusive`."""
    return str(band_verdict(low, high, low, high, threshold))


def detectable_change(se, df, threshold: float):
    """Per measurement, the smallest change (a fraction: 0.45 is 45%) its test finds with
    probability POWER at level DETECT_LEVEL, from its standard error and degrees of freedom:
    exp((t(0.975, df) + t(0.80, df)) se) - 1, at least the threshold (nothing smaller is
    called a change anyway); NaN where the standard error is unknown. A planning figure, not
    a verdict: a detectable change of 45% says a 20% regression there would most likely go
    unseen, which is the usual case with one run per side on a shared machine."""
    se, df = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(se, df))
    usable = np.isfinite(se) & np.isfinite(df) & (df > 0)
    safe_df = np.where(usable, df, 1.0)
    factor = (student_t_quantile(1 - DETECT_LEVEL / 2, safe_df)
              + student_t_quantile(POWER, safe_df))
    with np.errstate(over="ignore"):
        change = np.expm1(factor * np.where(usable, se, 0.0))
    return np.where(usable, np.maximum(change, threshold), np.nan)


def typical(changes) -> float | None:
    """The median detectable change of a set of measurements, or None where none is known."""
    values = np.asarray(changes, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None


def rounds_for(change: float, detectable: float, rounds: int) -> int | None:
    """About how many rounds (or units) in all would make ``change`` detectable where
    ``detectable`` is with ``rounds``: the standard error falls as one over the square root
    of the count."""
    if not (change > 0 and detectable > 0 and rounds > 0):
        return None
    return max(rounds, math.ceil(rounds * (math.log1p(detectable) / math.log1p(change)) ** 2))
