"""Verdicts that may stop as soon as they are decided, with their error rates kept.

A comparison that looks at its data after every few rounds and stops once it is decided
gets more chances to be wrong than one that looks once: a 95% interval examined twenty
times excludes the truth at some look far more often than 5% of the time. So the looks are
planned (a *group-sequential design*): rounds at which the data may be judged, fixed in
advance, and an error budget ``alpha`` spent over them, a share per look, by a spending
function (Lan and DeMets 1983). The Pocock-type function ``alpha ln(1 + (e - 1) t)``, t
the share of the planned looks taken, spends more at the early looks than O'Brien and
Fleming's, which suits measurements that are mostly decided early. A look at share
``alpha_k`` of the budget judges with intervals at confidence ``1 - alpha_k``; the chance of
any wrong call over every look is then at most the sum of the shares, ``alpha``, whatever
the looks' correlation (Bonferroni's inequality: safe where an exact boundary would need
the rounds' joint distribution, which a shared, drifting machine does not give).

Two budgets, because two mistakes differ in cost. Calling a change where there is none (a
false regression) is what a user acts on: ``alpha`` is small. Calling *same* (the whole
interval within the threshold) where there is a change costs only power, and a change
well beyond the threshold almost never fits the band: ``alpha_same`` is larger, so
unchanged measurements are decided in few rounds.

The estimate is Yuen's 20% trimmed mean of per-round log-ratios and its t, the spending
function and the verdicts are the judging engine's (``bench/analyze/judge.py``): a round
or two read far off by one process are trimmed.
``python -m bench.selfcheck.sequential_noise`` shows the error rates hold under this
machine's noise and a quiet one, with stopping included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.analyze.judge import (UNDECIDED, band_verdict, level_interval, pocock_spent,
                                 trimmed_means)


@dataclass(frozen=True)
class Plan:
    """Where a comparison may be judged: at ``first`` rounds, then at each look's rounds
    times ``growth`` (at least one more), ``looks`` looks in all, with ``alpha`` (a change)
    and ``alpha_same`` (no change beyond the threshold) spent over them."""

    first: int
    looks: int
    alpha: float
    alpha_same: float
    growth: float = 1.0

    def rounds(self) -> list[int]:
        """The rounds at each look."""
        out = [self.first]
        while len(out) < self.looks:
            out.append(max(out[-1] + 1, math.ceil(out[-1] * self.growth)))
        return out

    def look_at(self, rounds: int) -> int | None:
        """The 1-based look that ``rounds`` completes, or None between looks."""
        plan = self.rounds()
        return plan.index(rounds) + 1 if rounds in plan else None

    def looks_by(self, rounds: int) -> int:
        """How many looks ``rounds`` rounds have passed (0 before the first)."""
        return sum(r <= rounds for r in self.rounds())

    def level(self, look: int, same: bool = False) -> float:
        """The share of the budget look ``look`` (1-based) spends: the two-sided error its
        intervals are built at. 0 past the last look: nothing is left to spend."""
        if not 1 <= look <= self.looks:
            return 0.0
        alpha = self.alpha_same if same else self.alpha
        return (pocock_spent(alpha, look / self.looks)
                - pocock_spent(alpha, (look - 1) / self.looks))


def looks_to(first: int, growth: float, last: int) -> int:
    """How many looks a plan from ``first`` rounds, ``growth`` more each, takes to reach
    ``last`` rounds (its last look at ``last`` or just past it)."""
    looks, rounds = 1, first
    while rounds < last:
        rounds, looks = max(rounds + 1, math.ceil(rounds * growth)), looks + 1
    return looks


@dataclass(frozen=True)
class Judged:
    """One measurement at one look: the trimmed-mean ratio, its interval at the look's
    level for a change (``low``, ``high``) and for no change (``same_low``, ``same_high``),
    and the verdict."""

    ratio: float
    low: float
    high: float
    same_low: float
    same_high: float
    verdict: str
    rounds: int


def judge_rounds(log_ratios: np.ndarray, plan: Plan, look: int, threshold: float,
                 beyond: bool = False) -> list[Judged]:
    """Each row of ``log_ratios`` (measurements x rounds, NaN where a round lacks one)
    judged at look ``look`` of ``plan``. With ``beyond``, a change is only called where its
    ratio is past the threshold as well (a regression a user should act on); without, any
    change the interval shows is called (which of two setups is faster)."""
    x = np.atleast_2d(np.asarray(log_ratios, dtype=float))
    estimate, se, df, rounds = trimmed_means(x)
    low, high = level_interval(estimate, se, df, plan.level(look))
    same_low, same_high = level_interval(estimate, se, df, plan.level(look, same=True))
    ratio = np.exp(estimate)
    verdicts = band_verdict(np.exp(low), np.exp(high), np.exp(same_low), np.exp(same_high),
                            threshold, np.log(ratio) if beyond else None)
    verdicts = np.where(np.isnan(estimate), UNDECIDED, verdicts)
    return [Judged(float(r), float(np.exp(lo)), float(np.exp(hi)), float(np.exp(slo)),
                   float(np.exp(shi)), str(v), int(n))
            for r, lo, hi, slo, shi, v, n in zip(ratio, low, high, same_low, same_high,
                                                  verdicts, rounds)]


# In a run, which configuration of a comparison group is faster: judged first at the
# sweep's min_rounds, then at a quarter more rounds each look, twelve looks (10 to 137
# rounds by default), 5% spent over them all, for a change and for the same alike.
IN_RUN_LOOKS, IN_RUN_GROWTH, IN_RUN_ALPHA = 12, 1.25, 0.05


def in_run_plan(min_rounds: int) -> Plan:
    return Plan(first=max(min_rounds, 2), looks=IN_RUN_LOOKS, alpha=IN_RUN_ALPHA,
                alpha_same=IN_RUN_ALPHA, growth=IN_RUN_GROWTH)


def final_look(plan: Plan, rounds: int) -> int:
    """The look whose level a comparison that stopped after ``rounds`` rounds is judged at:
    the look those rounds completed; between looks (its budget ran out), the next one,
    whose share was never spent; past every look, the last."""
    done = plan.looks_by(rounds)
    if plan.look_at(rounds) is None:
        done += 1
    return min(max(done, 1), plan.looks)


def rounds_to_decide(judged: Judged, threshold: float) -> int | None:
    """About how many rounds in all an undecided measurement needs: an interval narrows as
    one over the square root of the rounds, so the rounds that would bring its half-width
    under the distance that decides it. None where it is decided, or cannot be."""
    if judged.verdict != UNDECIDED or judged.rounds < 2:
        return None
    centre = math.log(judged.ratio)
    half = (math.log(judged.same_high) - math.log(judged.same_low)) / 2
    # the nearer of: the band's edge (same), or 1 (a change)
    room = max(math.log1p(threshold) - abs(centre), abs(centre))
    if not math.isfinite(half) or room <= 0:
        return None
    return max(judged.rounds + 1, math.ceil(judged.rounds * (half / room) ** 2))
