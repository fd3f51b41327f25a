"""Shifts and what a comparison could have seen, in words (``bench/analyze/shifts.py`` and
``bench/analyze/judge.py`` compute them): for the terminal, the comparison page and
the history's dashboard alike."""

from __future__ import annotations

import pandas as pd

from bench.analyze.block_verdicts import CommonShift, single_units
from bench.analyze.judge import IMPROVEMENT, REGRESSION, rounds_for, typical
from bench.schema import STEP
from bench.present.change_text import as_change


def _amount(ratio: float) -> str:
    return f"{abs(ratio - 1):.0%} {'slower' if ratio > 1 else 'faster'}"


def shift_text(shift: CommonShift | None, threshold: float) -> str:
    """The shifts in words: of everything where the measurements agree on one, and of each
    block named (one scenario, one batch size); "" where nothing moved together."""
    if shift is None:
        return ""
    lines = []
    if shift.phases:
        per_phase = ", ".join(f"{p} {as_change(r)}" for p, r in shift.phases.items())
        if shift.throughout:
            text = (f"The candidate is {_amount(shift.ratio)} throughout (every phase's "
                    f"measurements agree on it: {per_phase})")
        else:
            moved = [f"{_amount(r)} in the {p} phase" for p, r in shift.phases.items()]
            text = f"The candidate is {', '.join(moved)}, common to its configurations"
        if shift.single:
            text += (": one run per side cannot tell this from machine drift, so it is not "
                     "counted as a change; a configuration is flagged only where it departs "
                     "from its phase's shift")
        lines.append(text + ".")
    by_block: dict[tuple, list] = {}
    for entry in shift.blocks:
        by_block.setdefault((entry[0].dimension, str(entry[0].value)), []).append(entry)
    lines += [block_text(entries) for entries in by_block.values()]
    return "\n".join(lines)


def block_text(entries: list) -> str:
    """One block that moved against the rest (a scenario, a batch size), in words: in which
    phases, by how much, with what interval, and the verdict."""
    first = entries[0][0]
    names = {v for _, _, v in entries}
    judged = ("a regression" if names == {REGRESSION} else "an improvement"
              if names == {IMPROVEMENT} else "not significant at this noise"
              if not names & {REGRESSION, IMPROVEMENT} else "a change, in some phases")
    phases = "; ".join(
        f"{b.phase} {as_change(b.relative)}"
        + (f" [{as_change(b.low)}, {as_change(b.high)}]" if b.low == b.low else "")
        + f" ({b.agree} of its {b.measurements} measurements moved with it)"
        for b, _, _ in entries)
    others = ", ".join(f"{b.phase} {as_change(b.others)}" for b, _, _ in entries)
    q_value = max(q for _, q, _ in entries)
    return (f"{first.dimension} = {first.value} is {_amount(first.relative)} than the rest: "
            f"{phases}; the others held ({others}); q <= {q_value:.2g}: {judged}.")


def detectable_text(compared: pd.DataFrame, threshold: float) -> str:
    """What the comparison could have seen, per the step measurements' detectable change."""
    step = compared[compared["phase"] == STEP]
    change = typical(step["detectable"] if "detectable" in step else [])
    if change is None:
        return ""
    if change <= threshold * 1.01:
        return (f"Every change past {threshold:.0%} was detectable here (the step "
                "measurements' noise allows it).")
    if single_units(compared):
        how = ("one run per side; a run made with more workers (`--workers N`) or paired "
               "rounds (`python -m bench paired`) sees smaller changes")
    else:
        units = int(min(step["baseline_units"].min(), step["candidate_units"].min()))
        wanted = rounds_for(threshold * 2, change, units)
        how = (f"{units} units (workers or repeats) per side"
               + (f"; about {wanted} per side would show a {threshold * 2:.0%} change"
                  if wanted else ""))
    return (f"At the noise these runs had, changes under ~{change:.0%} were invisible here "
            f"(the median over the step measurements of the change each would have found "
            f"80% of the time; {how}).")
