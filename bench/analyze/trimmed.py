"""Yuen's trimmed mean and its standard error, for paired rounds: many measurements at once,
each with its own count of rounds.

Why trim: on a shared machine a round's log-ratio for one configuration is mostly within a
few percent, but now and then one of the two processes reads a whole comparison group 20%
to 50% off for as long as it lives. A mean and a standard deviation carry such a round into
every verdict; the 20% trimmed mean drops the most extreme rounds on each side, and its
standard error comes from the winsorized variance (the dropped rounds replaced by the
nearest kept ones), referred to Student's t with h - 1 degrees of freedom for h kept rounds
(Yuen 1974; Wilcox, "Introduction to Robust Estimation and Hypothesis Testing", 4.3).

Why not ranks: Wilcoxon's signed-rank test ranks a wild round against the change highest
of all, so one such round costs it as much as the whole change is worth, and it cannot take
in an uncertainty that every measurement shares (the rounds' common level,
``bench/analyze/paired.py``). ``python -m bench.selfcheck.paired_noise`` reports how often the
trimmed t calls an unchanged measurement at the 5% level under the noise measured here.
"""

from __future__ import annotations

import numpy as np

TRIM = 0.2  # the share of rounds dropped at each end: the usual choice, robust and efficient
# Under this many rounds nothing is trimmed: dropping one round at each end of five leaves
# three, two degrees of freedom, and an interval too wide to decide anything. A round read
# far off widens the plain t's interval instead of faking a change.
TRIM_FROM = 8


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
