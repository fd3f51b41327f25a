"""What a comparison could have seen: the smallest change each measurement would have been
found to have, at the noise it had.

A comparison that finds nothing says two different things: nothing changed, or nothing
*could* have been seen. With one run per side on a shared machine, the second is the usual
case: the spread between runs dwarfs a 10% change. So every measurement gets its
*detectable change*: the change its test finds 80% of the time at the 5% level, from its
own standard error ``se`` and degrees of freedom ``df``:
``exp((t(0.975, df) + t(0.80, df)) se) - 1``, at least the threshold (nothing smaller is
called a change anyway). It is a planning figure, not a verdict: a measurement whose
detectable change is 45% says that a 20% regression there would most likely go unseen.
"""

from __future__ import annotations

import math

import numpy as np

from bench.analyze.judge import student_t_quantile

POWER, LEVEL = 0.80, 0.05


def detectable_change(se, df, threshold: float):
    """Per measurement, the smallest change (a fraction: 0.45 is 45%) found with
    probability POWER at level LEVEL; NaN where the standard error is unknown."""
    se, df = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(se, df))
    usable = np.isfinite(se) & np.isfinite(df) & (df > 0)
    safe_df = np.where(usable, df, 1.0)
    factor = (student_t_quantile(1 - LEVEL / 2, safe_df)
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
