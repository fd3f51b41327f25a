"""A comparison's shifts judged, and their verdicts given to the measurements that moved
with them (``bench/analyze/shifts.py`` finds them): a scenario 30% slower against the
others is a regression of each of its measurements, with one run per side too, where one
measurement against the machine's drift could not be."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.analyze.shifts import Shift, find_shifts, moved, q_values
from bench.analyze.judge import IMPROVEMENT, REGRESSION, verdict

BLOCK = "moved with its block"
COMPARED = "compared"  # a compare_sides row measured on both sides


def judge_blocks(rows: pd.DataFrame, threshold: float) -> tuple[list, list, np.ndarray]:
    """Every phase's shifts with their q-values and verdicts; those judged significant
    beyond the threshold (the blocks), and which rows moved with one."""
    shifts = find_shifts(rows, threshold)
    q = q_values(shifts)
    named = []
    for shift, q_value in zip(shifts, q):
        judged = verdict(shift.relative, shift.low, shift.high, q_value, threshold)
        named.append((shift, float(q_value), str(judged)))
    blocks = [(s, q_value, v) for s, q_value, v in named if v in (REGRESSION, IMPROVEMENT)]
    in_block = np.zeros(len(rows), dtype=bool)
    for shift, _, _ in blocks:
        in_block |= moved(rows, shift)
    return named, blocks, in_block


def block_verdicts(table: pd.DataFrame, rows: pd.Index, blocks: list,
                   threshold: float) -> None:
    """A measurement judged against its phase's shift that moved with a block judged
    significant takes the block's verdict, where its own change is past the threshold: one
    run per side sees a block against the rest, where it cannot see one measurement against
    the drift."""
    judged = table.loc[rows]
    for shift, q_value, name in blocks:
        mine = moved(judged, shift) & (np.abs(np.log(judged["ratio"].to_numpy(dtype=float)
                                                     / shift.others)) > np.log1p(threshold))
        chosen = judged.index[mine]
        table.loc[chosen, "verdict"] = name
        table.loc[chosen, "method"] = f"{BLOCK}: {shift.dimension} = {shift.value}"
        table.loc[chosen, "low"], table.loc[chosen, "high"] = shift.low, shift.high
        table.loc[chosen, "q_value"] = q_value
        table.loc[chosen, "unconfirmed"] = False


@dataclass(frozen=True)
class CommonShift:
    """How the candidate moved as a whole: `ratio`, the median ratio over every compared
    measurement; `phases`, the shift of each phase whose measurements agree on one past the
    threshold; `throughout`, whether every phase did, the same way; `single`, whether one
    run per side stands behind it (then a shift of everything cannot be told from the
    machine's drift); `blocks`, the blocks named (one scenario, one batch size, ...), each
    with its q-value and verdict."""

    ratio: float
    phases: dict[str, float]
    throughout: bool
    single: bool
    blocks: tuple[tuple[Shift, float, str], ...] = ()


def common_shift(table: pd.DataFrame, threshold: float) -> CommonShift | None:
    """The shifts of a ``compare_sides`` table, where some phase's measurements moved
    together past the threshold (all of them, or a block of them); None otherwise."""
    compared = table[table["outcome"] == COMPARED]
    if compared.empty:
        return None
    shifts = table.attrs.get("shifts", [])
    phases = {s.phase: s.ratio for s, _, _ in shifts if s.dimension is None}
    blocks = tuple(entry for entry in shifts if entry[0].dimension is not None)
    if not phases and not blocks:
        return None
    same_way = len({r > 1 for r in phases.values()}) == 1
    ratio = float(np.exp(np.median(np.log(compared["ratio"]))))
    return CommonShift(ratio, phases, same_way and set(phases) == set(compared["phase"]),
                       single_units(compared), blocks)


def single_units(compared: pd.DataFrame) -> bool:
    """Whether some measurement has one unit on a side: judged against the common shift
    (or with the block it moved with)."""
    return bool(((compared["baseline_units"] < 2) | (compared["candidate_units"] < 2)).any())
