"""Integer columns read exactly: what a CSV spells is what every store keeps.

pandas reads a column with one float spelling (`1.0`) or an empty cell as floats, and a
float holds an integer exactly only below 2**53; every store keeps an integer column in 64
bits (BIGINT), and would wrap a larger value round to another number. So the few values past
2**53 are read again from their text, exactly, and a value no store or float could keep is
refused by line.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import UsageError
from bench.schema import Column

INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1
EXACT_IN_FLOAT = 2.0 ** 53


def line_of(mask: pd.Series) -> int:
    """The file's line number of the first row ``mask`` marks (1-based, after the header)."""
    return int(mask.to_numpy().argmax()) + 2


def whole_numbers(path: Path, text: pd.Series, numbers: pd.Series, missing: pd.Series,
                   column: Column) -> pd.Series:
    """An integer column's values, each exactly as written: int64 where every row has one,
    else float, NaN where empty. pandas reads a column with one float spelling (`1.0`) or an
    empty cell as floats, which round an integer past 2**53: those few are read from their
    text. Past 64 bits, a store would wrap a value round; past 2**53 in a column with empty
    cells, a float would round it: both are refused."""
    far = numbers.notna() & (numbers.abs() >= EXACT_IN_FLOAT)
    if not far.any():
        return numbers.astype(np.int64) if not missing.any() else numbers.astype(float)
    rows = np.flatnonzero(far.to_numpy())
    exact = [_exact_int(text.iloc[i]) for i in rows]  # Python's ints: no rounding
    for wrong, why in (([v is None for v in exact], "not an integer"),
                       ([v is not None and not INT64_MIN <= v <= INT64_MAX for v in exact],
                        "out of range (a 64-bit integer)"),
                       ([bool(missing.any())] * len(exact),
                        "past 2**53 in a column with empty cells, which would round it")):
        if any(wrong):
            row = rows[wrong.index(True)]
            raise UsageError(f"{path}: line {row + 2}: {column.name} holds "
                             f"{text.iloc[row]!r:.40}, {why}")
    values = numbers.where(~far, 0).astype(np.int64).to_numpy(copy=True)
    values[rows] = np.array(exact, dtype=np.int64)
    return pd.Series(values, index=text.index)


def _exact_int(text: str) -> int | None:
    """The integer ``text`` spells (``12``, ``1e3``, ``9007199254740993``), exactly; None
    where it spells a fraction."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return int(value) if value.is_finite() and value == value.to_integral_value() else None


def hidden_fractions(text: pd.Series, numbers: pd.Series) -> pd.Series:
    """Cells spelled with a point or an exponent whose number is not whole, though its float
    is (`9007199254740990.7` is 9007199254740991.0 to a float): read exactly from the text."""
    spelled = numbers.notna() & text.str.contains(r"[.eE]", regex=True)
    hidden = pd.Series(False, index=text.index)
    if spelled.any():
        hidden[spelled] = text[spelled].map(lambda cell: _exact_int(cell) is None)
    return hidden
