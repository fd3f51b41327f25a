"""Run folders read back for the report and the comparison, checked at the door.

Whatever a user points at (a folder without results, an empty or cut-off CSV, another
schema version) ends as one ``UsageError`` line naming the file, so nothing downstream has
to guard against half a table. This module needs pandas, not torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import UsageError
from bench.schema import (AXIS_DEFAULTS, ENV_FILE, FIELDS, RESULTS_FILE, SAMPLE_FIELDS,
                          SAMPLES_FILE, SCHEMA_VERSION)

# What a configuration is, apart from its batch size; with it, the key of a measurement.
BASE_AXES = ("scenario", "size", "device", "optimizer_setup", "optimizer", "optimizer_impl")
CONFIG_AXES = (*BASE_AXES, *AXIS_DEFAULTS)  # the later axes are optional in a CSV
REQUIRED_RESULTS = ("schema_version", "run_id", "repeat", "config_id", *BASE_AXES,
                    "device_name", "batch_size", "phase", "status", "median_ms")
REQUIRED_SAMPLES = ("run_id", "repeat", "config_id", "phase", "device_ms")
PHASES = ("forward", "backward", "optimizer", "step")
OK = "ok"


@dataclass
class Run:
    """One run folder: its results table, its environment, and where its samples are."""

    path: Path
    results: pd.DataFrame
    env: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.resolve().name

    def samples(self) -> pd.DataFrame:
        return read_table(self.path / SAMPLES_FILE, REQUIRED_SAMPLES, SAMPLE_FIELDS, "device_ms")


def read_table(path: Path, required: tuple[str, ...], known: tuple[str, ...],
               timing: str) -> pd.DataFrame:
    """A CSV of this harness, or a UsageError saying in one line what is wrong with it.

    ``timing`` names the column that must be filled on every measured row; columns of
    ``known`` that the file lacks (an older writer) are added, empty.
    """
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    raw = path.read_bytes()
    if not raw.strip():
        raise UsageError(f"{path} is empty")
    # the writer ends every row with a line break; a file that does not was cut off mid-row
    if not raw.endswith(b"\n"):
        raise UsageError(f"{path} is truncated: its last line is incomplete")
    try:
        df = pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"{path} is not a readable CSV: {reason}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise UsageError(f"{path} lacks the column(s) {', '.join(missing)}; is it a file "
                         "written by this harness?")
    if df.empty:
        raise UsageError(f"{path} holds a header but no rows")
    keys = [c for c in required if c != timing]
    measured = df["status"].eq(OK) if "status" in df.columns else True
    damaged = df[keys].isna().any(axis=1) | (measured & ~untimed_phases(df) & df[timing].isna())
    if damaged.any():
        line = int(damaged.to_numpy().argmax()) + 2  # 1-based, after the header
        raise UsageError(f"{path} is truncated or damaged: line {line} has empty cells "
                         "where every row has values")
    for column in known:
        if column not in df.columns:
            df[column] = pd.NA
    return df


def untimed_phases(df: pd.DataFrame) -> pd.Series | bool:
    """Rows measured without timing: the phases of a step replayed as one CUDA graph, which
    has no boundaries inside it (only its `step` row is timed)."""
    if "cuda_graph" not in df.columns or "phase" not in df.columns:
        return False
    return df["cuda_graph"].astype(str).str.lower().eq("true") & df["phase"].ne("step")


def read_results(path: Path) -> pd.DataFrame:
    df = read_table(path, REQUIRED_RESULTS, FIELDS, "median_ms")
    versions = sorted(set(pd.to_numeric(df["schema_version"], errors="coerce").dropna()
                          .astype(int)) or {-1})
    if versions != [SCHEMA_VERSION]:
        found = ", ".join(str(v) for v in versions if v >= 0) or "none"
        raise UsageError(f"{path} has schema version {found}; this harness reads version "
                         f"{SCHEMA_VERSION}")
    for column, default in AXIS_DEFAULTS.items():  # runs written before the axis existed
        df[column] = df[column].astype(object).where(df[column].notna(), default)
    df["n_networks"] = pd.to_numeric(df["n_networks"]).astype(int)
    df["world_size"] = pd.to_numeric(df["world_size"]).astype(int)
    df["cuda_graph"] = df["cuda_graph"].map(lambda v: str(v).lower() == "true")
    df["batch_size"] = pd.to_numeric(df["batch_size"], errors="raise").astype(int)
    global_batch = pd.to_numeric(df["global_batch_size"], errors="coerce")
    df["global_batch_size"] = global_batch.fillna(df["batch_size"] * df["world_size"]).astype(int)
    df["repeat"] = pd.to_numeric(df["repeat"]).astype(int)
    for column in ("status", *BASE_AXES, "precision", "compile", "ddp_wrap", "device_name",
                   "phase", "run_id", "config_id"):
        df[column] = df[column].astype(str)
    return df


def read_env(path: Path) -> dict[str, Any]:
    """The run's env.json; a run without one still reports, saying so where it is shown."""
    if not path.is_file():
        return {"unavailable": f"no {ENV_FILE} in the run folder"}
    try:
        env = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(env, dict):
        raise UsageError(f"{path} is not an environment record (a JSON object)")
    return env


def load_run(path: str | Path) -> Run:
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"{path}: no such run folder")
    if not (path / RESULTS_FILE).is_file():
        raise UsageError(f"{path} holds no {RESULTS_FILE}; give a run folder such as "
                         "results/<run_id>")
    return Run(path, read_results(path / RESULTS_FILE), read_env(path / ENV_FILE))


def device_kind(device: str) -> str:
    """`cuda:1` -> `cuda`: runs on different machines match by the kind of device."""
    return str(device).split(":", 1)[0]


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == OK]
