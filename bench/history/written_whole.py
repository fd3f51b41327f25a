"""What a run folder holds when this harness's sweep wrote it, beyond each cell's type.

The typed reader (``bench/analyze/reader.py``) is lenient where it must be: it reads the
runs of older writers, which lacked later columns, and pages and comparisons only need
what they show. A run the store keeps for good is held to what the writer of this schema
leaves: every column of the schema in the headers of results.csv and samples.csv, and none
other (a store keeps those; a column left out would be stored empty), no empty cell where the schema says a
row always has one, a start time in ISO 8601, axis columns that agree with the
configuration's id (which names them), and counts and indices never below zero.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from bench.axes import AXES, config_id
from bench.errors import UsageError
from bench.schema import (COLUMNS, FIELDS, OK, PLAN_KEY, RESULTS_FILE, SAMPLE_FIELDS,
                          SAMPLES_FILE, SWEEP_FILE, Column)

# integer columns that may be negative: a seed is any integer torch takes
SIGNED = {"seed"}


def refuse_nothing_measured(folder: Path, sweep: dict[str, Any] | None) -> None:
    """A results.csv with a header and no rows: a run stopped before its first
    configuration was recorded (resumable, where its sweep planned it), or damage."""
    plan = (sweep or {}).get(PLAN_KEY)
    if isinstance(plan, list) and plan:
        raise UsageError(f"{folder}: the run is not complete (0 of {len(plan)} "
                         "configurations measured yet); `python -m bench run --resume "
                         f"{folder}` completes it, and a run is stored once complete")
    raise UsageError(f"{folder / RESULTS_FILE} holds a header but no rows")


def check_columns(folder: Path) -> None:
    """Refuse in one line a results.csv or samples.csv (of a run its sweep planned) whose
    header lacks a column of the schema or has one it does not write."""
    for name, fields in ((RESULTS_FILE, FIELDS), (SAMPLES_FILE, SAMPLE_FIELDS)):
        path = folder / name
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                header = [column.strip() for column in next(csv.reader(handle), [])]
        except FileNotFoundError:
            continue  # a run with nothing measured has no samples: its reader says so
        lacking = [column for column in fields if column not in header]
        if lacking:
            raise UsageError(f"{path} lacks the column(s) {', '.join(lacking[:5])}, which the "
                             f"sweep that wrote it (see its {SWEEP_FILE}) writes")
        other = [column for column in header if column not in fields]
        if other:
            raise UsageError(f"{path} has the column(s) {', '.join(other[:5])!r:.80}, which no "
                             "sweep writes: a run is stored as its sweep wrote it")


def refuse_negative_counts(path: Path, table: pd.DataFrame, columns: tuple[Column, ...]) -> None:
    """Counts, sizes and indices are never negative."""
    for column in columns:
        if column.kind != "int" or column.name in SIGNED or column.name not in table:
            continue
        below = table[column.name].lt(0).fillna(False).to_numpy(dtype=bool)
        if below.any():
            raise UsageError(f"{path}: line {int(below.argmax()) + 2}: {column.name} holds "
                             f"{table[column.name].iloc[int(below.argmax())]}, and it is "
                             "never negative")


def check_written_whole(path: Path, results: pd.DataFrame) -> None:
    """Refuse in one line a results.csv (of a run its sweep planned) that lacks a column
    of the schema, leaves a cell empty that every row fills, gives a start time that is
    not ISO 8601, or names a configuration other than its axis columns say."""
    text = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    lacking = [c.name for c in COLUMNS if c.name not in text.columns]
    if lacking:
        raise UsageError(f"{path} lacks the column(s) {', '.join(lacking[:5])}, which the "
                         f"sweep that wrote it (see its {SWEEP_FILE}) writes on every row")
    for column in COLUMNS:
        if column.empty_when != "never":
            continue
        blank = text[column.name].str.strip().eq("").to_numpy()
        if blank.any():
            raise UsageError(f"{path}: line {int(blank.argmax()) + 2}: {column.name} is "
                             "empty, and every row has one")
    for line, value in enumerate(text["started_at"], start=2):
        try:
            dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise UsageError(f"{path}: line {line}: started_at holds {value!r:.40}, not a "
                             "time in ISO 8601 (2026-12-06T21:49:52+00:00)") from None
    check_filled_alike(path, text)
    axes = [axis.name for axis in AXES]
    for line, row in zip(range(2, len(results) + 2), results[["config_id", *axes]].to_dict(
            "records")):
        named = config_id(row)
        if named != row["config_id"]:
            raise UsageError(f"{path}: line {line}: config_id {row['config_id']!r:.80} names "
                             f"another configuration than the row's axes ({named:.80})")


def check_filled_alike(path: Path, text: pd.DataFrame) -> None:
    """Cells the schema lets be empty only for a whole run or configuration, or only where
    what they derive from is: `worker` on every row or none (a run measured by workers, or
    not), a configuration's `group` the same on all its rows, and `tflops_per_s` wherever a
    measured phase has flops (more than none) and a time."""
    blank = text.apply(lambda column: column.str.strip().eq(""))
    if blank["worker"].any() and not blank["worker"].all():
        line = int(blank["worker"].ne(blank["worker"].iloc[0]).to_numpy().argmax())
        raise UsageError(f"{path}: line {line + 2}: worker is empty on some rows and not on "
                         "others: a run is measured by workers or it is not")
    groups = text.groupby(["repeat", "config_id"], sort=False)["group"].nunique(dropna=False)
    if (groups > 1).any():
        repeat, config = groups.index[int((groups > 1).to_numpy().argmax())]
        raise UsageError(f"{path}: {config} (repeat {repeat}) names more than one group on "
                         "its rows: a configuration is timed in one group, or alone")
    flops = pd.to_numeric(text["flops"], errors="coerce").fillna(0)
    derived = (text["status"].eq(OK) & flops.gt(0) & ~blank["median_ms"]
               & blank["tflops_per_s"]).to_numpy()
    if derived.any():
        raise UsageError(f"{path}: line {int(derived.argmax()) + 2}: tflops_per_s is empty "
                         "where flops (more than none) and median_ms are not: it is derived "
                         "from them")
