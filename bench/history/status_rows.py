"""What a results.csv row holds must agree with its status, as the writer leaves it: a row
not measured (`oom`, `skipped`, `error`, `nonfinite`) says why in ``error`` and has no
figures; a measured row of a run a sweep planned has every figure that is empty only where
a row was not measured. Checked on the file's text, before typing: an empty `noisy` cell
reads as False, and an empty number as NaN, which a store keeps as NULL.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.analyze.reader import untimed_phases
from bench.errors import UsageError
from bench.schema import COLUMNS, NOT_OK, OK

# the figures a row has unless it was not measured (empty then, and only then)
FIGURES = tuple(c.name for c in COLUMNS if c.empty_when == NOT_OK)
# and those empty where it was not measured, or for some other reason too
NOT_MEASURED_EMPTY = tuple(c.name for c in COLUMNS if c.empty_when.startswith(NOT_OK))


def check_rows_match_status(path: Path, *, planned: bool) -> None:
    """Refuse in one line a row whose figures disagree with its status. ``planned``: the
    run was measured by a sweep that planned it (a suite imported without one may lack some
    figures on a measured row)."""
    text = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    lacking = [name for name in ("status", "error") if name not in text]
    if lacking:
        raise UsageError(f"{path} lacks the column(s) {', '.join(lacking)}: every row says "
                         "what became of its configuration")
    blank = text.apply(lambda column: column.str.strip().str.lower().isin(("", "nan")))
    status = text["status"]
    not_ok = status.ne(OK)
    said = status.eq(OK) & ~blank["error"]
    if said.any():
        raise UsageError(f"{path}: line {_line(said)}: error holds "
                         f"{text['error'][said].iloc[0]!r:.40} on a measured row: error says "
                         "why a configuration was not measured")
    silent = not_ok & blank["error"]
    if silent.any():
        raise UsageError(f"{path}: line {_line(silent)}: status is {status[silent].iloc[0]} "
                         "but error is empty: a configuration not measured says why")
    for name in NOT_MEASURED_EMPTY:
        filled = not_ok & ~blank[name] if name in text else None
        if filled is not None and filled.any():
            raise UsageError(f"{path}: line {_line(filled)}: {name} holds "
                             f"{text[name][filled].iloc[0]!r:.40} on a row whose status is "
                             f"{status[filled].iloc[0]}: a configuration not measured has no "
                             "figures")
    if not planned:
        return
    # a step replayed as one CUDA graph times its step row alone: its phases have no figures
    timed = status.eq(OK) & ~untimed_phases(text)
    for name in FIGURES:
        lacking = timed & blank[name] if name in text else None
        if lacking is not None and lacking.any():
            raise UsageError(f"{path}: line {_line(lacking)}: {name} is empty on a measured "
                             "row: a measured configuration has every figure")


def _line(mask: pd.Series) -> int:
    return int(mask.to_numpy().argmax()) + 2
