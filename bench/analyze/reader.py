"""The one reader of a run folder: results, samples, environment and sweep, typed and
checked at the door.

Every consumer (the summary at the end of a run, a resume, the report, the comparison)
reads rows through here, so a row has the same types whether it was measured a moment ago
or months ago: each column is typed by its ``kind`` in ``bench/schema.py``, and a dimension
a CSV predates (``bench/axes.py``) reads as its default. Whatever a user points at (a
folder without results, an empty or cut-off CSV, another schema version, a cell of the
wrong type) ends as one ``UsageError`` line naming the file, so nothing downstream has to
guard against half a table. This module needs pandas, not torch.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.axes import BASE, BATCH_SIZE, CUDA_GRAPH, VARIANTS, WORLD_SIZE
from bench.analyze.integers import EXACT_IN_FLOAT, hidden_fractions, whole_numbers
from bench.analyze.run_files import (refuse_byte_order_mark, refuse_repeated_columns,
                                     refuse_special_file)
from bench.errors import UsageError
from bench.schema import (COLUMNS, ENV_FILE, NETWORK_COLUMNS, NETWORKS_FILE, OK,
                          OPERATOR_COLUMNS, OPERATORS_FILE, RESULTS_FILE, SAMPLE_COLUMNS,
                          SAMPLES_FILE, SCHEMA_VERSION, STATUSES, STEP, SWEEP_FILE, Column)

REQUIRED_RESULTS = ("schema_version", "run_id", "repeat", "config_id",
                    *(d.name for d in BASE), "device_name", "phase", "status", "median_ms")
REQUIRED_SAMPLES = ("run_id", "repeat", "config_id", "phase", "iteration", "device_ms")
RESULTS_UNIT = ["run_id", "repeat", "config_id", "phase"]  # one row each
SAMPLES_UNIT = ["run_id", "repeat", "config_id", "phase", "iteration"]
REQUIRED_NETWORKS = ("schema_version", "run_id", "repeat", "config_id", "status")
NETWORKS_UNIT = ["run_id", "repeat", "config_id", "network", "phase"]
REQUIRED_OPERATORS = ("config_id", "trace", "phase", "network", "rank", "operator")
OPERATORS_UNIT = ["config_id", "trace", "phase", "network", "rank"]
TIME_UNITS = ("ms", "s")  # columns that hold a duration: finite and never negative
BOOLEANS = {"true": True, "false": False, "": False, "True": True, "False": False}


@dataclass
class Run:
    """One run folder: its results table, its environment and sweep, and where its samples
    are."""

    path: Path
    results: pd.DataFrame
    env: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.path.resolve().name

    def samples(self) -> pd.DataFrame:
        return read_samples(self.path / SAMPLES_FILE)

    def networks(self) -> pd.DataFrame | None:
        """Each configuration's phases by network (networks.csv), or None for a run
        without the file (one written before it existed)."""
        path = self.path / NETWORKS_FILE
        return read_networks(path) if path.is_file() else None

    def operators(self) -> pd.DataFrame | None:
        """The top operators of the traced configurations (operators.csv), or None where
        nothing was traced."""
        path = self.path / OPERATORS_FILE
        return read_operators(path) if path.is_file() else None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def read_table(path: Path, required: tuple[str, ...], timing: str, *,
               allow_empty: bool = False) -> pd.DataFrame:
    """A CSV of this harness as text cells, or a UsageError saying in one line what is wrong
    with it. ``timing`` names the column that must be filled on every measured row."""
    refuse_special_file(path)
    if not path.is_file():
        raise UsageError(f"{path} is a folder, not a file" if path.is_dir()
                         else f"{path}: no such file")
    if not path.read_bytes().strip():
        raise UsageError(f"{path} is empty")
    refuse_byte_order_mark(path)  # before the line checks: it is what they would misread
    refuse_repeated_columns(path)
    # the writer ends every row with a line break; a file that does not was cut off mid-row
    if not _ends_with_newline(path):
        raise UsageError(f"{path} is truncated: its last line is incomplete (it has no line "
                         "break at its end, which the writer always writes; a line cut "
                         "within a number reads as another number, so the line is not "
                         "taken; add the line break if the line is whole)")
    try:
        # every cell as text: the schema, not pandas' guess, decides the types
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path} is not a readable CSV: {_first_line(exc)}") from None
    return check_table(df, path, required, timing, allow_empty=allow_empty)


def check_table(df: pd.DataFrame, path: Path | str, required: tuple[str, ...], timing: str,
                *, allow_empty: bool = False) -> pd.DataFrame:
    """The checks of ``read_table`` on a table of text cells already in memory."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UsageError(f"{path} lacks the column(s) {', '.join(missing)}; is it a file "
                         "written by this harness?")
    if df.empty and not allow_empty:
        raise UsageError(f"{path} holds a header but no rows")
    keys = [c for c in required if c != timing]
    measured = df["status"].eq(OK) if "status" in df.columns else True
    empty = df[keys].eq("").any(axis=1) | (measured & ~untimed_phases(df) & df[timing].eq(""))
    if empty.any():
        raise UsageError(f"{path} is truncated or damaged: line {_line(empty)} has empty "
                         "cells where every row has values")
    return df


def refuse_duplicates(df: pd.DataFrame, path: Path | str, unit: list[str]) -> None:
    """A unit (a configuration's phase in a repeat, one sample) is on one row: a second row
    would be counted as a second measurement, and an interval would shrink to nothing."""
    twice = df.duplicated(unit, keep="first")
    if twice.any():
        first = df[unit].iloc[int(twice.to_numpy().argmax())]
        where = ", ".join(f"{name} {value}" for name, value in first.items())
        raise UsageError(f"{path}: line {_line(twice)} repeats an earlier row ({where}): "
                         "the file is damaged")


def _line(mask: pd.Series) -> int:
    """The file's line number of the first row ``mask`` marks (1-based, after the header)."""
    return int(mask.to_numpy().argmax()) + 2


def untimed_phases(df: pd.DataFrame) -> pd.Series | bool:
    """Rows measured without timing: the phases of a step replayed as one CUDA graph, which
    has no boundaries inside it (only its `step` row is timed)."""
    if CUDA_GRAPH.name not in df.columns or "phase" not in df.columns:
        return False
    return df[CUDA_GRAPH.name].astype(str).str.lower().eq("true") & df["phase"].ne(STEP)


def _typed_column(path: Path, text: pd.Series, column: Column) -> pd.Series:
    text = text.astype(str)
    if column.kind == "str":
        nul = text.str.contains("\x00", regex=False)
        if nul.any():  # DuckDB keeps one, PostgreSQL refuses it: no store takes it
            raise UsageError(f"{path}: line {_line(nul)}: {column.name} holds a NUL "
                             "character, which no store keeps")
        return text
    if column.kind == "bool":
        values = text.map(BOOLEANS)
        if values.isna().any():  # rare: another spelling, or a damaged cell
            values = text.str.strip().str.lower().map(BOOLEANS)
        if values.isna().any():
            bad = values.isna()
            raise UsageError(f"{path}: line {_line(bad)}: {column.name} holds "
                             f"{text[bad].iloc[0]!r}, not true or false")
        return values.astype(bool)
    numbers = pd.to_numeric(text.where(text != ""), errors="coerce")
    if numbers.dtype == object or numbers.dtype.kind == "u":  # integers past int64
        numbers = numbers.astype(float)
    missing = numbers.isna()
    if missing.any():  # empty cells are allowed, and `nan`; anything else is damage
        stripped = text[missing].str.strip()
        bad = pd.Series(False, index=text.index)
        bad[missing] = stripped.ne("") & stripped.str.lower().ne("nan")
    else:
        bad = missing
    if column.kind == "int":  # a whole number; inf is one to np.floor, not to int64
        bad = bad | (numbers.notna() & ((numbers != np.floor(numbers.fillna(0)))
                                        | ~np.isfinite(numbers.fillna(0))))
        if not bad.any():
            bad = hidden_fractions(text, numbers)
    if column.unit in TIME_UNITS:  # no clock reads an infinite or a negative time
        bad = bad | (numbers.notna() & (~np.isfinite(numbers.fillna(0)) | (numbers < 0)))
    if bad.any():
        wanted = ("an integer" if column.kind == "int" else "a time" if column.unit in TIME_UNITS
                  else "a number")
        raise UsageError(f"{path}: line {_line(bad)}: {column.name} holds "
                         f"{text[bad].iloc[0]!r}, not {wanted}")
    if column.kind == "int":
        return whole_numbers(path, text, numbers, missing, column)
    return numbers.astype(float)


def typed(path: Path, df: pd.DataFrame, columns: tuple[Column, ...]) -> pd.DataFrame:
    """Every column of ``columns`` typed by its kind; a column the file lacks (an older
    writer) is added, empty."""
    out = {}
    for column in columns:
        text = df[column.name] if column.name in df.columns else pd.Series("", index=df.index)
        out[column.name] = values = _typed_column(path, text, column)
        if column.empty_when == "never" and column.kind in ("int", "float") \
                and column.name in df.columns and values.isna().any():
            raise UsageError(f"{path}: line {_line(values.isna())}: {column.name} holds "
                             f"{text[values.isna()].iloc[0]!r}, where every row has a number")
    return pd.DataFrame(out, index=df.index)


def read_results(path: Path, *, allow_empty: bool = False) -> pd.DataFrame:
    return typed_results(read_table(path, REQUIRED_RESULTS, "median_ms",
                                    allow_empty=allow_empty), path)


def typed_results(df: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    """A results table of text cells (as a CSV holds them), typed and checked; ``path``
    names where it came from in error messages."""
    # `1.0` is 1, as in any integer column
    df["schema_version"] = df["schema_version"].str.replace(r"^\s*(\d+)\.0*\s*$", r"\1",
                                                            regex=True)
    versions = sorted(set(df["schema_version"]))
    if df.empty:
        versions = [str(SCHEMA_VERSION)]
    if versions != [str(SCHEMA_VERSION)]:
        raise UsageError(f"{path} has schema version {', '.join(versions)}; this harness "
                         f"reads version {SCHEMA_VERSION}")
    for dimension in VARIANTS:  # runs written before the dimension existed
        if dimension.name not in df.columns:
            df[dimension.name] = ""
        df[dimension.name] = df[dimension.name].mask(df[dimension.name].eq(""),
                                                     str(dimension.default))
    df = typed(path, df, COLUMNS)
    unknown = ~df["status"].isin(STATUSES)
    if unknown.any():
        raise UsageError(f"{path}: line {_line(unknown)}: status holds "
                         f"{df.loc[unknown, 'status'].iloc[0]!r:.60}, not one of "
                         f"{', '.join(STATUSES)}")
    unmeasured = (df["status"] == OK) & ~untimed_phases(df) & df["median_ms"].isna()
    if unmeasured.any():
        raise UsageError(f"{path}: line {_line(unmeasured)}: median_ms is not a number on a "
                         "measured row")
    refuse_duplicates(df, path, RESULTS_UNIT)
    df["global_batch_size"] = (df["global_batch_size"]
                               .fillna(df[BATCH_SIZE.name] * df[WORLD_SIZE.name])
                               .astype(np.int64))
    return df


def read_samples(path: Path, *, allow_empty: bool = False) -> pd.DataFrame:
    """samples.csv, typed. Millions of rows: pandas parses the numbers itself, and only a
    file it refuses goes through the slow, cell-by-cell check that names the bad line.
    ``allow_empty``: a run that measured nothing may have no samples, or none but a header."""
    refuse_special_file(path)
    if allow_empty and not path.exists():
        return typed(path, pd.DataFrame(columns=list(REQUIRED_SAMPLES), dtype=str),
                     SAMPLE_COLUMNS)
    refuse_byte_order_mark(path)  # pandas' fast parse would drop it without a word
    refuse_repeated_columns(path)  # and would read the second of a name as NAME.1
    dtypes = {"float": float, "int": np.int64, "str": str}
    # an integer column that may be empty is read as float, NaN where it is
    blank = {c.name: [""] for c in SAMPLE_COLUMNS if c.empty_when != "never"}
    kinds = {c.name: float if c.name in blank else dtypes[c.kind] for c in SAMPLE_COLUMNS}
    try:
        with warnings.catch_warnings():  # a damaged cell's cast warns; the slow path names it
            warnings.simplefilter("ignore", RuntimeWarning)
            df = pd.read_csv(path, encoding="utf-8", keep_default_na=False, na_values=blank,
                             dtype=kinds)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, ValueError, OverflowError):
        df = None  # OverflowError: an integer past 64 bits
    if df is None or not set(REQUIRED_SAMPLES) <= set(df.columns) or df.empty \
            or not _ends_with_newline(path) or _has_gaps(df) or _not_whole(df, blank):
        df = typed(path, read_table(path, REQUIRED_SAMPLES, "device_ms",
                                    allow_empty=allow_empty), SAMPLE_COLUMNS)
    for column in SAMPLE_COLUMNS:  # an older writer's file
        if column.name not in df.columns:
            df[column.name] = np.nan
    refuse_duplicates(df, path, SAMPLES_UNIT)
    return df


def read_networks(path: Path) -> pd.DataFrame:
    """networks.csv, typed and checked: an attributed row names its network and phase and
    has its time; every row is of this schema version; no network and phase twice."""
    df = read_table(path, REQUIRED_NETWORKS, "median_ms", allow_empty=True)
    cells = df.reindex(columns=["network", "phase", "median_ms"], fill_value="")
    unnamed = df["status"].eq(OK) & cells.eq("").any(axis=1)
    if unnamed.any():
        raise UsageError(f"{path} is truncated or damaged: line {_line(unnamed)} has empty "
                         "cells where every attributed row has values")
    # `1.0` is 1, as in any integer column
    df["schema_version"] = df["schema_version"].str.replace(r"^\s*(\d+)\.0*\s*$", r"\1",
                                                            regex=True)
    versions = sorted(set(df["schema_version"])) or [str(SCHEMA_VERSION)]
    if versions != [str(SCHEMA_VERSION)]:
        raise UsageError(f"{path} has schema version {', '.join(versions)}; this harness "
                         f"reads version {SCHEMA_VERSION}")
    df = typed(path, df, NETWORK_COLUMNS)
    refuse_duplicates(df, path, NETWORKS_UNIT)
    return df


def read_operators(path: Path) -> pd.DataFrame:
    """operators.csv, typed and checked."""
    df = typed(path, read_table(path, REQUIRED_OPERATORS, "calls", allow_empty=True),
               OPERATOR_COLUMNS)
    refuse_duplicates(df, path, OPERATORS_UNIT)
    return df


def _not_whole(df: pd.DataFrame, read_as_float: dict[str, list[str]]) -> bool:
    """Whether an integer column holds a fraction, an infinity or a number a float rounds
    (past 2**53), or a text column a NUL: the slow path reads them exactly, or names the
    line."""
    for column in SAMPLE_COLUMNS:
        if column.name not in df:
            continue
        if column.kind == "str" and df[column.name].astype(str).str.contains(
                "\x00", regex=False).any():
            return True
        if column.kind != "int":
            continue
        # an int64 column too: pandas parses `9007199254740995.0` through a float
        values = df[column.name].dropna().to_numpy(dtype=float)
        if not (np.isfinite(values).all() and (values == np.floor(values)).all()
                and (np.abs(values) < EXACT_IN_FLOAT).all()):
            return True
    return False


def _has_gaps(df: pd.DataFrame) -> bool:
    """Cells the fast parse lets through that the schema does not: an empty key, an empty,
    infinite or negative time, a fraction or infinity in an integer column. The slow path
    names the line."""
    if df["device_ms"].isna().any():
        return True
    # text columns: object, or pandas' own string dtype
    if any(df[c].eq("").any() for c in REQUIRED_SAMPLES
           if not pd.api.types.is_numeric_dtype(df[c])):
        return True
    for column in SAMPLE_COLUMNS:
        values = df.get(column.name)
        if values is None or values.dtype.kind != "f":
            continue
        infinite = values.notna() & ~np.isfinite(values.fillna(0))
        if column.unit in TIME_UNITS and (infinite | (values < 0)).any():
            return True
        whole = values.fillna(0)  # an empty cell (NaN) is allowed here, not a fraction
        if column.kind == "int" and (infinite | (whole != np.floor(whole))).any():
            return True
    return False


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return False
        f.seek(-1, 2)
        return f.read(1) == b"\n"


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``, or a UsageError naming the file."""
    refuse_special_file(path)
    refuse_byte_order_mark(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # nested past Python's stack
        raise UsageError(f"{path} is not valid JSON: {_first_line(exc)}") from None
    except OSError as exc:
        raise UsageError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not {what} (a JSON object)")
    return data


def read_env(path: Path) -> dict[str, Any]:
    """The run's env.json; a run without one still reports, saying so where it is shown."""
    if not path.is_file():
        return {"unavailable": f"no {ENV_FILE} in the run folder"}
    return read_json_object(path, "an environment record")


def load_run(path: str | Path, *, allow_empty: bool = False) -> Run:
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"{path}: no such run folder")
    if not (path / RESULTS_FILE).is_file():
        raise UsageError(f"{path} holds no {RESULTS_FILE}; give a run folder such as "
                         "results/<run_id>")
    sweep_path = path / SWEEP_FILE
    sweep = read_json_object(sweep_path, "a sweep record") if sweep_path.is_file() else None
    return Run(path, read_results(path / RESULTS_FILE, allow_empty=allow_empty),
               read_env(path / ENV_FILE), sweep)


def device_kind(device: str) -> str:
    """`cuda:1` -> `cuda`: runs on different machines match by the kind of device."""
    return str(device).split(":", 1)[0]
