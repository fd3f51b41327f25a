"""Statistics of a list of timings, derived on demand from the raw samples.

The median is the headline figure because timings are skewed to the right (an interrupt or
a page fault only ever adds time); its spread is the interquartile range, and its
confidence interval comes from order statistics, so no distribution is assumed.
"""

from __future__ import annotations

import functools
import math
import statistics
from fractions import Fraction
from collections.abc import Sequence
from dataclasses import dataclass

# A configuration whose IQR is more than this fraction of its median is flagged as noisy.
NOISE_THRESHOLD = 0.10


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    q1: float
    q3: float
    mean: float
    std: float  # sample standard deviation (n - 1); 0 for a single sample
    min: float
    max: float
    ci_low: float  # 95% confidence interval of the median
    ci_high: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def rel_ci(self) -> float:
        """Half the median's confidence interval, relative to the median."""
        return (self.ci_high - self.ci_low) / 2 / self.median if self.median > 0 else math.inf

    @property
    def noisy(self) -> bool:
        return self.median <= 0 or self.iqr / self.median > NOISE_THRESHOLD


# Above this many samples the normal approximation of the binomial is used (it agrees with
# the exact ranks there, and the exact sum grows quadratically with n).
EXACT_CI_MAX_N = 300


@functools.lru_cache(maxsize=1024)
def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int]:
    """1-based ranks (j, k) such that [x_(j), x_(k)] covers the true median with about
    ``confidence``.

    The count of samples below the median is Binomial(n, 1/2), so [x_(j), x_(n+1-j)] covers
    it with probability 1 - 2 P(B <= j - 1), computed exactly in integers up to
    ``EXACT_CI_MAX_N`` samples. Below six samples no interval reaches 95% and the whole
    range is returned. Beyond, j = floor(n/2 - z sqrt(n)/2), k = ceil(1 + n/2 + z sqrt(n)/2)
    (Conover, Practical Nonparametric Statistics).
    """
    if n > EXACT_CI_MAX_N:
        half_width = statistics.NormalDist().inv_cdf((1 + confidence) / 2) * math.sqrt(n) / 2
        return max(1, math.floor(n / 2 - half_width)), min(n, math.ceil(1 + n / 2 + half_width))
    # coverage >= confidence  <=>  2 * sum_{i<j} C(n, i) <= (1 - confidence) * 2^n
    allowed = (1 - Fraction(confidence).limit_denominator(10**6)) * 2**n
    j, tail = 1, 0
    while j + 1 <= (n + 1) // 2:
        tail += math.comb(n, j - 1)
        if 2 * (tail + math.comb(n, j)) > allowed:
            break
        j += 1
    return j, n + 1 - j


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no samples to summarize")
    xs = sorted(values)
    n = len(xs)
    if n == 1:
        x = xs[0]
        return Summary(1, x, x, x, x, 0.0, x, x, x, x)
    # "inclusive" is linear interpolation between order statistics, numpy's default too
    q1, median, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    j, k = median_ci_ranks(n)
    return Summary(n=n, median=median, q1=q1, q3=q3, mean=statistics.fmean(xs),
                   std=statistics.stdev(xs), min=xs[0], max=xs[-1],
                   ci_low=xs[j - 1], ci_high=xs[k - 1])
