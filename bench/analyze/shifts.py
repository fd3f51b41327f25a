"""What a change between two runs moved together: every configuration, or the
configurations of one scenario, one batch size, one setup; and whether they agree.

A comparison's measurements often move in blocks. A slower torch moves everything; a
kernel change moves one scenario; a new allocator moves the large batches. Summing that up
by one median ratio misdescribes it: a scenario 40% slower beside another unchanged has a
median of +18%, which no configuration shows. So per phase:

- a shift is *common* only where the configurations agree on it: at least ``AGREEMENT`` of
  the phase's measurements moved the same way by more than half the shift;
- otherwise each dimension the measurements differ in (scenario, batch size, setup, ...)
  is tried as the explanation: per value, the median log-ratio of its measurements against
  the median of the others, its measurements agreeing as above. The spread it is judged
  against is what is left once every value's median is taken out (1.4826 x the median
  absolute residual), and it is as sure as the time windows (comparison groups) behind it,
  as in ``bench/analyze/judge.py``'s drift test. The dimension whose values explain
  the most (the smallest residual spread) is the one named.

Where one run per side stands behind the measurements, a shift of everything cannot be told
from the machine's drift and is reported, not judged; a shift of one scenario against the
others can be, since the drift moves them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.analyze.judge import adjust, mad_df, mad_spread, t_interval
from bench.axes import DEVICE, DIMENSIONS, WORLD_SIZE

# The share of a block's measurements that must move the same way, by more than half the
# block's shift, for the shift to be called theirs.
AGREEMENT = 0.75
# What a shift of a block may be named by: the dimensions a reader knows a sweep by.
NAMEABLE = tuple(d.name for d in DIMENSIONS if d not in (DEVICE, WORLD_SIZE))


@dataclass(frozen=True)
class Shift:
    """A block of a phase's measurements that moved together: ``dimension`` = ``value``
    (None, None: every measurement), its median ``ratio``, the ``others``' median ratio
    (1 where it is every measurement), how many ``measurements`` it holds and how many of
    them ``agree``; the interval (``low``, ``high``) and ``p`` of its ratio to the others',
    NaN where it is not judged (everything, with one run per side)."""

    phase: str
    dimension: str | None
    value: object
    ratio: float
    others: float
    measurements: int
    agree: int
    low: float = float("nan")
    high: float = float("nan")
    p: float = float("nan")

    @property
    def relative(self) -> float:
        """The block's ratio over the others': its change, where the others held."""
        return self.ratio / self.others


def agreeing(log_ratio: np.ndarray, centre: float, reference: float = 0.0) -> int:
    """How many moved from ``reference`` the way ``centre`` did, by over half as much."""
    step = centre - reference
    return int(np.sum(np.sign(step) * (log_ratio - reference) > abs(step) / 2))


def common(phase: str, log_ratio: np.ndarray, threshold: float) -> Shift | None:
    """The shift of every measurement of ``phase``, where it is past the threshold and
    they agree on it."""
    centre = float(np.median(log_ratio))
    agree = agreeing(log_ratio, centre)
    if abs(centre) <= np.log1p(threshold) or agree < AGREEMENT * len(log_ratio):
        return None
    return Shift(phase, None, None, float(np.exp(centre)), 1.0, len(log_ratio), agree)


def held(medians: dict[str, float], threshold: float) -> set[str]:
    """The values that did not move: the one whose median is nearest no change, and those
    within the threshold of it. With two values, one 40% slower, it is the other that held,
    not the slower one that is "29% faster than the rest"."""
    nearest = min(medians, key=lambda v: abs(medians[v]))
    return {v for v, m in medians.items() if abs(m - medians[nearest]) <= np.log1p(threshold)}


def block_shifts(phase: str, rows: pd.DataFrame, dimension: str,
                 threshold: float) -> tuple[float, list[Shift]]:
    """The residual spread once ``dimension``'s values are taken out, and the values whose
    measurements moved together past the threshold, each judged against those that held."""
    x = rows["log_ratio"].to_numpy()
    values = rows[dimension].astype(str).to_numpy()
    medians = {v: float(np.median(x[values == v])) for v in np.unique(values)}
    residual = x - np.array([medians[v] for v in values])
    spread = mad_spread(residual)
    windows = rows["window"].to_numpy()
    df = mad_df(len(np.unique(windows)) - len(medians))
    steady = np.isin(values, sorted(held(medians, threshold)))
    rest = float(np.median(x[steady]))
    found = []
    for value, centre in medians.items():
        mine = values == value
        if steady[mine].any():
            continue
        agree = agreeing(x[mine], centre, rest)
        if abs(centre - rest) <= np.log1p(threshold) or agree < AGREEMENT * mine.sum():
            continue
        se = spread * np.sqrt(1 / len(np.unique(windows[mine]))
                              + 1 / len(np.unique(windows[steady])))
        low, high, p = t_interval(centre - rest, se, df)
        found.append(Shift(phase, dimension, rows.loc[mine, dimension].iloc[0],
                           float(np.exp(centre)), float(np.exp(rest)), int(mine.sum()),
                           agree, float(np.exp(low)), float(np.exp(high)), float(p)))
    return spread, found


def phase_shifts(phase: str, rows: pd.DataFrame, threshold: float) -> list[Shift]:
    """The shifts of one phase's compared rows (``log_ratio``, ``window`` and the
    dimensions): the common one where they agree, else the blocks of the dimension that
    explains them best."""
    x = rows["log_ratio"].to_numpy()
    shift = common(phase, x, threshold)
    if shift is not None:
        return [shift]
    best: tuple[float, list[Shift]] | None = None
    for dimension in NAMEABLE:
        if dimension not in rows or rows[dimension].nunique() < 2:
            continue
        spread, found = block_shifts(phase, rows, dimension, threshold)
        if found and (best is None or spread < best[0]):
            best = (spread, found)
    return best[1] if best else []


def find_shifts(compared: pd.DataFrame, threshold: float) -> list[Shift]:
    """Every phase's shifts, from the compared rows of a comparison (``ratio``, ``phase``,
    ``window`` and the dimensions)."""
    rows = compared.assign(log_ratio=np.log(compared["ratio"].to_numpy(dtype=float)))
    out = []
    for phase, mine in rows.groupby("phase", sort=False):
        out += phase_shifts(str(phase), mine, threshold)
    return out


def q_values(shifts: list[Shift]) -> np.ndarray:
    """Benjamini-Hochberg over the judged blocks (NaN for the rest): every block of every
    phase is one more test."""
    return adjust(np.array([s.p for s in shifts], dtype=float))


def moved(compared: pd.DataFrame, shift: Shift) -> np.ndarray:
    """Which of ``compared``'s rows belong to ``shift``'s block and moved with it."""
    mine = (compared["phase"] == shift.phase).to_numpy().copy()
    if shift.dimension is not None:
        mine &= (compared[shift.dimension].astype(str) == str(shift.value)).to_numpy()
    x = np.log(compared["ratio"].to_numpy(dtype=float))
    step = np.log(shift.ratio) - np.log(shift.others)
    return mine & (np.sign(step) * (x - np.log(shift.others)) > abs(step) / 2)

