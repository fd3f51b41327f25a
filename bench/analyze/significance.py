"""Is a change in a median real? Intervals for the ratio of two medians, and the verdict.

A side of a comparison is a list of *units*: the raw samples of one configuration and phase
from one pass over the sweep (one repeat of one run). Two kinds of noise move a median: the
samples within a pass, and the pass itself (on a shared machine the medians of two passes
differ by far more than their samples suggest). The interval uses what the data can show:

- one unit on each side: only the noise within the pass is known. The interval is a
  percentile bootstrap of candidate/baseline medians over the raw samples.
- several units on a side: each unit's median carries its own within-pass noise, so the
  spread of the unit medians measures both kinds. The interval is Welch's t interval on the
  logarithms of the unit medians (a side with a single unit borrows the other side's
  spread), which stays honest with two or three units, where a bootstrap of so few is too
  narrow.

Each interval comes with the p-value of the same test. A comparison tests every
configuration and phase at once, so ``adjust`` turns the p-values into Benjamini-Hochberg
q-values, and ``verdict`` calls a change only when it exceeds the threshold, its interval
excludes 1 and its q-value is under 1 - confidence: an A/A comparison of hundreds of
measurements flags nothing.

Resampling the samples of a unit goes through the law of its median's rank: for an odd
resample size m out of n sorted values, the resampled median is the order statistic x_(j)
with P(j <= J) = P(Binomial(m, J/n) >= (m+1)/2) = P(Beta((m+1)/2, (m+1)/2) <= J/n), so one
Beta draw gives one resampled median exactly, at O(1) cost instead of O(n). Even counts
resample n - 1 values (a slightly wider interval, never a narrower one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 10_000  # enough for p-values down to 1e-4, which the q-values of large sweeps need
CONFIDENCE = 0.95
DEFAULT_THRESHOLD = 0.05

REGRESSION, IMPROVEMENT, NO_CHANGE = "regression", "improvement", "no change"
BOOTSTRAP, WELCH = "bootstrap over samples", "t over unit medians"


@dataclass(frozen=True)
class RatioInterval:
    """candidate / baseline (the ratio of the medians of the unit medians), its interval,
    the p-value of no change, and how much data stood behind it."""

    ratio: float
    low: float
    high: float
    p_value: float
    baseline_units: int
    candidate_units: int
    method: str


def _median_of_units(units: Sequence[np.ndarray]) -> float:
    return float(np.median([np.median(u) for u in units]))


def resampled_medians(sorted_values: np.ndarray, count: int,
                      rng: np.random.Generator) -> np.ndarray:
    """``count`` medians of bootstrap resamples of one unit (see the module's docstring)."""
    n = len(sorted_values)
    if n == 1:
        return np.full(count, sorted_values[0])
    m = n if n % 2 else n - 1
    half = (m + 1) / 2
    ranks = np.ceil(rng.beta(half, half, size=count) * n).astype(np.int64)
    return sorted_values[np.clip(ranks, 1, n) - 1]


def _bootstrap(baseline: np.ndarray, candidate: np.ndarray, confidence: float,
               resamples: int, rng: np.random.Generator) -> tuple[float, float, float]:
    base = resampled_medians(np.sort(baseline), resamples, rng)
    cand = resampled_medians(np.sort(candidate), resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = cand / base
    alpha = 1 - confidence
    low, high = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    # the share of resamples on the far side of 1, twice: the percentile interval excludes 1
    # exactly when this is under alpha
    tail = min(np.count_nonzero(ratios <= 1), np.count_nonzero(ratios >= 1))
    return float(low), float(high), min(1.0, 2 * (tail + 1) / (resamples + 1))


def _welch(baseline: np.ndarray, candidate: np.ndarray,
           confidence: float) -> tuple[float, float, float]:
    """Interval of exp(mean log candidate - mean log baseline) from the unit medians."""
    nb, nc = len(baseline), len(candidate)
    vb = baseline.var(ddof=1) if nb > 1 else None
    vc = candidate.var(ddof=1) if nc > 1 else None
    if vb is None or vc is None:  # a lone unit: the other side's spread stands for it
        pooled = vc if vb is None else vb
        se2, df = pooled * (1 / nb + 1 / nc), max(nb, nc) - 1
    else:
        se2 = vb / nb + vc / nc
        df = se2 ** 2 / ((vb / nb) ** 2 / (nb - 1) + (vc / nc) ** 2 / (nc - 1)) if se2 else 1.0
    diff = candidate.mean() - baseline.mean()
    if se2 <= 0:  # identical medians within each side: nothing to blur the difference
        return math.exp(diff), math.exp(diff), 1.0 if diff == 0 else 0.0
    se = math.sqrt(se2)
    t = student_t_quantile(1 - (1 - confidence) / 2, df)
    p = 2 * (1 - student_t_cdf(abs(diff) / se, df))
    return math.exp(diff - t * se), math.exp(diff + t * se), p


def ratio_interval(baseline: Sequence[Sequence[float]], candidate: Sequence[Sequence[float]],
                   *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                   rng: np.random.Generator | None = None) -> RatioInterval:
    """candidate / baseline medians with an interval and a p-value (see the module's
    docstring for which). ``baseline`` and ``candidate`` are lists of units, each a
    non-empty list of samples."""
    if not baseline or not candidate or not all(len(u) for u in (*baseline, *candidate)):
        raise ValueError("each side needs at least one unit, and each unit a sample")
    base = [np.asarray(u, dtype=float) for u in baseline]
    cand = [np.asarray(u, dtype=float) for u in candidate]
    if len(base) == 1 and len(cand) == 1:
        rng = rng if rng is not None else np.random.default_rng(0)
        low, high, p = _bootstrap(base[0], cand[0], confidence, resamples, rng)
        method = BOOTSTRAP
    else:
        low, high, p = _welch(np.log([np.median(u) for u in base]),
                              np.log([np.median(u) for u in cand]), confidence)
        method = WELCH
    return RatioInterval(_median_of_units(cand) / _median_of_units(base), low, high, p,
                         len(base), len(cand), method)


def adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg q-values: calling every q under alpha a change keeps the expected
    share of false calls among them under alpha, however many measurements are tested."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    q, running = [1.0] * m, 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = min(1.0, running)
    return q


def verdict(interval: RatioInterval, threshold: float = DEFAULT_THRESHOLD,
            q_value: float | None = None, confidence: float = CONFIDENCE) -> str:
    """A regression is slower by more than ``threshold`` with the whole interval above 1
    (an improvement: faster, below 1), and, among many, a q-value under 1 - confidence."""
    if q_value is not None and q_value >= 1 - confidence:
        return NO_CHANGE
    if interval.ratio > 1 + threshold and interval.low > 1:
        return REGRESSION
    if interval.ratio < 1 - threshold and interval.high < 1:
        return IMPROVEMENT
    return NO_CHANGE


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b), by its continued fraction (modified Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on this side only
        return 1.0 - _betainc(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x)) / a
    tiny, f, c, d = 1e-300, 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2 == 0:
            numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-12:
            break
    return front * (f - 1.0)


def student_t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t >= 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p, for p > 0.5, by Newton's method from 0: the distribution
    function is concave there, so the steps climb to the root without overshooting it."""
    scale = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    t = 0.0
    for _ in range(200):
        step = (p - student_t_cdf(t, df)) / (scale * (1 + t * t / df) ** (-(df + 1) / 2))
        t += step
        if step < 1e-10 * max(1.0, t):
            break
    return t
