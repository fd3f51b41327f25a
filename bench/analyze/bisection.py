"""Where, in an ordered list of environments, each change first appears: bisection by paired
comparisons against the first environment.

Environments 0..n-1 (torch releases in order, say). The first comparison sets the last
against the first: the measurements it calls a regression or an improvement are the
changes to place; where it finds none there is nothing to bisect (one comparison). Each
change then lies between a last environment known without it (``low``, at first 0) and a
first known with it (``high``, at first n-1); the midpoint of an open interval is compared
against the first environment, and every change whose interval holds it moves one end:
to the midpoint's side that it resembles. A change is *there* at an environment when its
log-ratio against the first is past half of its log-ratio at the last: nearer the changed
level than the first's. That rule decides every comparison, where verdicts can be
inconclusive, and it places a change that came in two smaller steps at the step that took it
past half its size. Intervals close when ``high = low + 1``: the culprit step is from
``low`` to ``high``. Changes that share their intervals share their comparisons, so a list
of n environments with one culprit takes 1 + ceil(log2(n - 1)) comparisons (3 for five).

The premise of bisection holds here too: a change that appears and goes again within the
list is not seen at its ends, and is not looked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.analyze.judge import IMPROVEMENT, REGRESSION

MEASUREMENT = ["config", "phase"]


@dataclass(frozen=True)
class Placed:
    """A change placed at its culprit step, from environment ``low`` to ``high``: the
    measurement's row of the comparison of ``high`` against the first (`ratio`, `low`,
    `high`, `verdict`: the change as it appears there), and of ``low`` against the first
    (None where ``low`` is the first itself)."""

    config: str
    phase: str
    low: int
    high: int
    at_high: dict
    at_low: dict | None


@dataclass
class Bisection:
    """``compared``: the environments compared against the first, in the order compared;
    ``tables``: their comparisons' tables by environment; ``placed``: every change at its
    step, by step then measurement."""

    count: int
    compared: list[int] = field(default_factory=list)
    tables: dict[int, pd.DataFrame] = field(default_factory=dict)
    placed: list[Placed] = field(default_factory=list)

    def steps(self) -> dict[tuple[int, int], list[Placed]]:
        out: dict[tuple[int, int], list[Placed]] = {}
        for change in self.placed:
            out.setdefault((change.low, change.high), []).append(change)
        return out


def changes_in(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["verdict"].isin([REGRESSION, IMPROVEMENT])]


def rows_by_measurement(table: pd.DataFrame) -> dict[tuple[str, str], dict]:
    return {(r["config"], r["phase"]): r for r in table.to_dict("records")}


def there(at: dict | None, at_end: dict) -> bool:
    """Whether a change (its row at the last environment, ``at_end``) is there at an
    environment (its row there, ``at``; None where that comparison lacks it)."""
    if at is None or not np.isfinite(at["ratio"]) or at["ratio"] <= 0:
        return False
    full = math.log(at_end["ratio"])
    return math.log(at["ratio"]) * math.copysign(1.0, full) > abs(full) / 2


def bisect(count: int, compare: Callable[[int], pd.DataFrame]) -> Bisection:
    """Place every change between environment 0 and ``count - 1``; ``compare(k)`` compares
    environment k against environment 0 and returns one row per measurement (``config``,
    ``phase``, ``ratio``, ``low``, ``high``, ``verdict``)."""
    if count < 2:
        raise ValueError("a bisection needs two environments or more")
    found = Bisection(count)

    def compared(k: int) -> dict[tuple[str, str], dict]:
        if k not in found.tables:
            found.tables[k] = compare(k)
            found.compared.append(k)
        return rows_by_measurement(found.tables[k])

    end = compared(count - 1)
    open_ = {m: [0, count - 1] for m in rows_by_measurement(changes_in(found.tables[count - 1]))}
    while unresolved := [m for m, (lo, hi) in open_.items() if hi - lo > 1]:
        lo, hi = open_[unresolved[0]]
        k = (lo + hi) // 2
        rows = compared(k)
        for m, interval in open_.items():
            if interval[0] < k < interval[1]:
                # there at k: it appeared by k (k is the new high); else after k
                interval[1 if there(rows.get(m), end[m]) else 0] = k
    for m, (lo, hi) in sorted(open_.items(), key=lambda item: (item[1], item[0])):
        at_low = rows_by_measurement(found.tables[lo]).get(m) if lo else None
        found.placed.append(Placed(m[0], m[1], lo, hi,
                                   rows_by_measurement(found.tables[hi])[m], at_low))
    return found
