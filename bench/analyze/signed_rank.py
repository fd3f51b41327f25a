"""Wilcoxon's signed-rank test and the Hodges-Lehmann estimate, for paired rounds: many
measurements at once, each with its own count of rounds.

Why not Student's t: on a shared machine a round's log-ratio for one configuration is
mostly within a few percent, but now and then one of the two processes reads a whole
comparison group 20% to 80% slower for as long as it lives. One such round inflates the
standard deviation that t divides by, and a paired t over eight rounds then misses a 10%
change that the other seven rounds all show. The signed-rank test sees only the ranks of
the rounds' |differences| and their signs: the jump counts as one round that went one
way. Its estimate, the Hodges-Lehmann median of the Walsh averages (every (d_i + d_j) / 2,
i <= j), and the interval around it come from the same exact null distribution, so the
three agree: the interval excludes 0 exactly when the test rejects at its level.

Exact: the null distribution of the positive rank sum W+ for n rounds is counted by
dynamic programming (2^n equally likely sign patterns), not approximated. A difference of
exactly 0 carries no sign and is left out (Wilcoxon's convention).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from bench.analyze.significance import CONFIDENCE


@lru_cache(maxsize=None)
def null_counts(n: int) -> np.ndarray:
    """How many of the 2^n sign patterns give W+ = 0, 1, ..., n(n+1)/2."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    return counts


def lower_tail(n: int) -> np.ndarray:
    """P(W+ <= w) for w = 0 .. n(n+1)/2."""
    counts = null_counts(n)
    return np.cumsum(counts) / counts.sum()


def critical(n: int, confidence: float = CONFIDENCE) -> int | None:
    """The zero-based order statistic of the Walsh averages where the interval starts (it
    ends as many from the top): the largest w with P(W+ <= w) <= (1 - confidence) / 2.
    None where n is too small for any, and no interval reaches ``confidence``."""
    count = int(np.searchsorted(lower_tail(n), (1 - confidence) / 2, side="right"))
    return count - 1 if count else None


def signed_rank(differences: np.ndarray, confidence: float = CONFIDENCE
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``differences`` (keys x rounds; NaN where a round is missing): the
    Hodges-Lehmann estimate, the interval's low and high ends, the two-sided exact p-value
    and the rounds counted. NaN where fewer than two rounds remain; no interval (NaN ends)
    under six rounds, where none reaches 95%. Equal |differences| are ranked in order."""
    d = np.atleast_2d(np.asarray(differences, dtype=float))
    d = np.where(d == 0, np.nan, d)
    n_rounds = np.sum(~np.isnan(d), axis=1)
    estimate, low, high, p = (np.full(len(d), np.nan) for _ in range(4))
    for n in np.unique(n_rounds):
        if n < 2:
            continue
        rows = np.flatnonzero(n_rounds == n)
        # each row's values first, sorted; the missing rounds (NaN) sort last
        values = np.sort(d[rows], axis=1)[:, :n]
        i, j = np.triu_indices(n)
        walsh = np.sort((values[:, i] + values[:, j]) / 2, axis=1)
        estimate[rows] = np.median(walsh, axis=1)
        c = critical(int(n), confidence)
        if c is not None:
            low[rows], high[rows] = walsh[:, c], walsh[:, walsh.shape[1] - 1 - c]
        ranks = np.argsort(np.argsort(np.abs(values), axis=1), axis=1) + 1
        w_plus = np.sum(np.where(values > 0, ranks, 0), axis=1)
        tail = lower_tail(int(n))
        total = n * (n + 1) // 2
        below = tail[w_plus]  # P(W+ <= w)
        above = tail[total - w_plus]  # P(W+ >= w) = P(W+ <= T - w): symmetric about T / 2
        p[rows] = np.minimum(1.0, 2 * np.minimum(below, above))
    return estimate, low, high, p, n_rounds
