"""Is a change in a median real? A hierarchical bootstrap of the ratio of two medians.

Each side of a comparison is a list of *units*: the raw samples of one configuration and
phase from one pass over the sweep (one repeat of one run). On a shared machine the medians
of two passes differ by far more than the samples within a pass suggest, so the bootstrap
resamples at both levels: first the units, with replacement, then the samples inside each
drawn unit. A side's statistic is the median of its units' medians (the sample median when
it has one unit), and the interval is the 2.5th to 97.5th percentile of candidate/baseline
over the resamples (a percentile bootstrap).

Resampling the samples of a unit is done through the law of its median's rank: for an odd
resample size m out of n sorted values, the resampled median is the order statistic x_(j)
with P(j <= J) = P(Binomial(m, J/n) >= (m+1)/2) = P(Beta((m+1)/2, (m+1)/2) <= J/n), so one
Beta draw gives one resampled median exactly, at O(1) cost instead of O(n). Even counts
resample n - 1 values (a slightly wider interval, never a narrower one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95
DEFAULT_THRESHOLD = 0.05

REGRESSION, IMPROVEMENT, NO_CHANGE = "regression", "improvement", "no change"


@dataclass(frozen=True)
class RatioInterval:
    """candidate / baseline, with its confidence interval and how much data stood behind it."""

    ratio: float
    low: float
    high: float
    baseline_units: int
    candidate_units: int


def _median_of_units(units: Sequence[np.ndarray]) -> float:
    return float(np.median([np.median(u) for u in units]))


def _resampled_medians(sorted_values: np.ndarray, count: int,
                       rng: np.random.Generator) -> np.ndarray:
    """``count`` medians of bootstrap resamples of one unit (see the module's docstring)."""
    n = len(sorted_values)
    if n == 1:
        return np.full(count, sorted_values[0])
    m = n if n % 2 else n - 1
    half = (m + 1) / 2
    ranks = np.ceil(rng.beta(half, half, size=count) * n).astype(np.int64)
    return sorted_values[np.clip(ranks, 1, n) - 1]


def bootstrap_medians(units: Sequence[Sequence[float]], resamples: int,
                      rng: np.random.Generator) -> np.ndarray:
    """The side's statistic (median of unit medians) over ``resamples`` two-level resamples."""
    sorted_units = [np.sort(np.asarray(u, dtype=float)) for u in units]
    k = len(sorted_units)
    if k == 1:
        return _resampled_medians(sorted_units[0], resamples, rng)
    # each resample draws k units with replacement; each draw resamples that unit anew
    picks = rng.integers(0, k, size=(resamples, k))
    medians = np.empty((resamples, k))
    for unit, values in enumerate(sorted_units):
        where = picks == unit
        medians[where] = _resampled_medians(values, int(where.sum()), rng)
    return np.median(medians, axis=1)


def ratio_interval(baseline: Sequence[Sequence[float]], candidate: Sequence[Sequence[float]],
                   *, resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                   rng: np.random.Generator | None = None) -> RatioInterval:
    """candidate / baseline medians with a percentile interval from a hierarchical bootstrap.

    ``baseline`` and ``candidate`` are lists of units, each a non-empty list of samples.
    """
    if not baseline or not candidate or not all(len(u) for u in (*baseline, *candidate)):
        raise ValueError("each side needs at least one unit, and each unit a sample")
    rng = rng if rng is not None else np.random.default_rng(0)
    base = bootstrap_medians(baseline, resamples, rng)
    cand = bootstrap_medians(candidate, resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = cand / base
    alpha = (1 - confidence) / 2
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    return RatioInterval(_median_of_units(candidate) / _median_of_units(baseline),
                         float(low), float(high), len(baseline), len(candidate))


def verdict(interval: RatioInterval, threshold: float = DEFAULT_THRESHOLD) -> str:
    """A regression is slower by more than ``threshold`` with the whole interval above 1; an
    improvement faster by more than ``threshold`` with the whole interval below 1."""
    if interval.ratio > 1 + threshold and interval.low > 1:
        return REGRESSION
    if interval.ratio < 1 - threshold and interval.high < 1:
        return IMPROVEMENT
    return NO_CHANGE
