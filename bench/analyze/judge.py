"""Is a change in a median real? Intervals for ratios of medians, p-values and verdicts,
computed for every measurement of a comparison at once (numpy arrays in and out).

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
- ``paired``: Student's t over rounds of two environments, log-ratio per round; what
  ``bench/analyze/paired_rounds.py`` judges the shift of everything by (each measurement it
  judges by a trimmed mean, ``bench/analyze/trimmed.py``, through ``t_interval``).

A comparison tests every configuration and phase at once, so ``adjust`` turns the p-values
into Benjamini-Hochberg q-values, and ``verdict`` calls a change only when it exceeds the
threshold, its interval excludes no change and its q-value is under 1 - confidence: an A/A
comparison of hundreds of measurements flags nothing.
"""

from __future__ import annotations

import math

import numpy as np

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

REGRESSION, IMPROVEMENT, NO_CHANGE = "regression", "improvement", "no change"
WELCH = "t over unit medians"
DRIFT = "departure from the common shift"
PAIRED = "paired t over rounds"

_lgamma = np.vectorize(math.lgamma, otypes=[float])


def _floats(*values) -> list[np.ndarray]:
    return [np.asarray(v, dtype=float) for v in np.broadcast_arrays(*values)]


def _scalar_or_array(result: np.ndarray, *inputs) -> float | np.ndarray:
    return float(result) if all(np.ndim(i) == 0 for i in inputs) else result


def t_interval(estimate, se, df, confidence: float = CONFIDENCE):
    """(low, high, p-value) of ``estimate`` with standard error ``se`` and ``df`` degrees of
    freedom: Student's t. A zero standard error (identical values within each side) leaves
    nothing to blur the estimate: p is 1 where it is 0, else 0. NaN where ``se`` or ``df``
    is undefined."""
    estimate, se, df = _floats(estimate, se, df)
    positive = (se > 0) & (df > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(positive, student_t_quantile(1 - (1 - confidence) / 2,
                                                  np.where(positive, df, 1.0)), 0.0)
        z = np.abs(estimate) / np.where(positive, se, 1.0)
        tail = _betainc(df / 2, 0.5, df / (df + z * z))  # P(|T| >= z), two-sided
    p = np.where(positive, tail, np.where(estimate == 0, 1.0, 0.0))
    undefined = np.isnan(se) | np.isnan(df) | np.isnan(estimate)
    p = np.where(undefined, np.nan, p)
    return estimate - t * se, estimate + t * se, p


def welch_terms(base_mean, base_var, base_n, cand_mean, cand_var, cand_n):
    """(difference, standard error, Welch-Satterthwaite degrees of freedom) of cand_mean -
    base_mean, the means and variances of each side's log unit medians. Every side needs
    two units or more."""
    bm, bv, bn, cm, cv, cn = _floats(base_mean, base_var, base_n, cand_mean, cand_var, cand_n)
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


def drift(log_ratio, phase, within_var, window=None, confidence: float = CONFIDENCE,
          basis=None):
    """Each measurement's departure from the common shift of its phase, for one unit a side.

    ``log_ratio``: log(candidate / baseline median) per measurement; ``phase``: the group
    whose shift applies; ``within_var``: the variance of the log-ratio from the noise within
    the runs (0 where unknown); ``window``: which measurements were timed together (their
    comparison group on both sides), None where each was timed alone. Per phase: shift =
    median(log_ratio), spread = MAD_SCALE x median |log_ratio - shift|. The spread holds the
    within-run noise of a typical measurement already, so the between-run part is spread^2
    - median(within_var), and each measurement adds its own within-run variance to it: a
    noisy one gets a wider interval. The departure is referred to Student's t with
    MAD_EFFICIENCY x (k - 1) degrees of freedom (at least 1) for k windows in the phase:
    measurements timed together drift together, so they count once in how well the spread
    is known.

    ``basis``: the measurements the shift and spread are taken from (all where None): a
    scenario or batch size that moved as a whole (``bench/analyze/shifts.py``) is left out,
    so that the others are judged against what did not move.

    Returns a dict of arrays: shift, spread, departure (log_ratio - shift), se, df, low,
    high (of the departure) and p.
    """
    d, w = _floats(log_ratio, within_var)
    w = np.where(np.isnan(w), 0.0, w)
    phase = np.asarray(phase)
    window = np.arange(len(d)) if window is None else np.asarray(window)
    basis = np.ones(len(d), dtype=bool) if basis is None else np.asarray(basis, dtype=bool)
    shift, spread, between, windows = (np.zeros_like(d) for _ in range(4))
    for value in np.unique(phase):
        mine = phase == value
        base = mine & basis if (mine & basis).any() else mine
        centre = np.median(d[base])
        scale = MAD_SCALE * np.median(np.abs(d[base] - centre))
        shift[mine], spread[mine] = centre, scale
        windows[mine] = len(np.unique(window[base]))
        between[mine] = max(scale ** 2 - float(np.median(w[base])), 0.0)
    se = np.sqrt(between + w)
    df = np.maximum(1.0, MAD_EFFICIENCY * (windows - 1))
    departure = d - shift
    low, high, p = t_interval(departure, se, df, confidence)
    return dict(shift=shift, spread=spread, departure=departure, se=se, df=df, low=low,
                high=high, p=p)


def paired(mean, sd, rounds, confidence: float = CONFIDENCE):
    """(low, high, p) of the mean of per-round log-ratios (``mean``, their standard deviation
    ``sd`` over ``rounds`` rounds): the paired t-test, df = rounds - 1. NaN under two
    rounds."""
    mean, sd, n = _floats(mean, sd, rounds)
    enough = n >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(enough, sd / np.sqrt(n), np.nan)
    return t_interval(mean, se, np.where(enough, n - 1, np.nan), confidence)


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


def verdict(ratio, low, high, q_value=0.0, threshold: float = DEFAULT_THRESHOLD,
            confidence: float = CONFIDENCE):
    """A regression is slower by more than ``threshold`` with the whole interval above 1 (an
    improvement: faster, below 1), and a q-value under 1 - confidence. Ratios and interval
    ends as ratios, not logarithms; a NaN q-value (nothing to test) is no change."""
    ratio, low, high, q = _floats(ratio, low, high, q_value)
    significant = q < 1 - confidence
    out = np.where(significant & (ratio > 1 + threshold) & (low > 1), REGRESSION,
                   np.where(significant & (ratio < 1 - threshold) & (high < 1), IMPROVEMENT,
                            NO_CHANGE)).astype(object)
    return str(out) if out.ndim == 0 else out


def _betainc(a, b, x) -> np.ndarray:
    """Regularized incomplete beta I_x(a, b), by its continued fraction (modified Lentz),
    for arrays: iterates until every element has converged."""
    a, b, x = _floats(a, b, x)
    flip = x > (a + 1) / (a + b + 2)  # the fraction converges fast on this side only
    a, b, y = np.where(flip, b, a), np.where(flip, a, b), np.where(flip, 1 - x, x)
    tiny = 1e-300
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        front = np.exp(_lgamma(a + b) - _lgamma(a) - _lgamma(b)
                       + a * np.log(y) + b * np.log1p(-y)) / a
        f, c, d = np.ones_like(y), np.ones_like(y), np.zeros_like(y)
        done = np.isnan(y)
        for i in range(400):
            m = i // 2
            if i == 0:
                numerator = np.ones_like(y)
            elif i % 2 == 0:
                numerator = m * (b - m) * y / ((a + 2 * m - 1) * (a + 2 * m))
            else:
                numerator = -(a + m) * (a + b + m) * y / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1.0 + numerator * d
            d = 1.0 / np.where(np.abs(d) > tiny, d, tiny)
            c = 1.0 + numerator / c
            c = np.where(np.abs(c) > tiny, c, tiny)
            f = np.where(done, f, f * c * d)
            done |= np.abs(1.0 - c * d) < 1e-12
            if done.all():
                break
        out = front * (f - 1.0)
    out = np.where(flip, 1.0 - out, out)
    return np.where(x <= 0, 0.0, np.where(x >= 1, 1.0, out))


def student_t_cdf(t, df):
    """P(T <= t) for Student's t with ``df`` degrees of freedom; scalars or arrays."""
    tt, dd = _floats(t, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = 0.5 * _betainc(dd / 2, 0.5, dd / (dd + tt * tt))
    return _scalar_or_array(np.where(tt >= 0, 1 - tail, tail), t, df)


def student_t_quantile(p, df):
    """The t with P(T <= t) = p, for p > 0.5, by Newton's method from 0: the distribution
    function is concave there, so the steps climb to the root without overshooting it.
    Scalars or arrays; each element stops when its step is negligible."""
    pp, dd = _floats(p, df)
    scale = np.exp(_lgamma((dd + 1) / 2) - _lgamma(dd / 2)) / np.sqrt(dd * math.pi)
    t = np.zeros_like(dd)
    done = np.isnan(dd) | np.isnan(pp)
    for _ in range(200):
        step = (pp - student_t_cdf(t, dd)) / (scale * (1 + t * t / dd) ** (-(dd + 1) / 2))
        t = np.where(done, t, t + step)
        done |= step < 1e-10 * np.maximum(1.0, t)
        if done.all():
            break
    return _scalar_or_array(t, p, df)
