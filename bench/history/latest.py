"""Each machine's latest run against its previous one, judged by the comparison's rules.

The verdicts are those of ``bench/analyze/run_comparison.py``, as ``compare`` gives them for two
run folders: a stored run is read back as a ``Run`` whose samples are its unit medians,
computed by the database, which is all a comparison takes from its samples. So only two
runs per machine are read from the samples table, and only as one number per unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analyze.run_comparison import Side, compare_sides, side_units
from bench.analyze.reader import Run
from bench.analyze.judge import DEFAULT_THRESHOLD
from bench.analyze.run_tables import ordered
from bench.axes import VARIANTS
from bench.errors import UsageError
from bench.history.store import Store
from bench.schema import COLUMNS


class StoredRun(Run):
    """A run read back from the store. Its samples are its unit medians, computed by the
    database: a comparison takes nothing else from them (``bench.analyze.comparison_units``)."""

    def __init__(self, run_id: str, results: pd.DataFrame, units: pd.DataFrame):
        super().__init__(Path(run_id), results, {})
        self.units = units

    def samples(self) -> pd.DataFrame:
        return self.units


def with_defaults(frame: pd.DataFrame) -> pd.DataFrame:
    """A dimension the store gained after a run was added is empty in that run's rows: it
    reads as its default, as the run folder reader reads a CSV that predates it."""
    out = frame.copy()
    for dimension in VARIANTS:
        if dimension.name in out.columns:
            values = out[dimension.name].astype(object)
            out[dimension.name] = values.where(values.notna(), dimension.default)
    return out


def typed_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The store's results rows typed as the run folder reader types them: what the
    comparison expects (NaN for an empty number, "" for an empty text)."""
    out = with_defaults(frame)
    for column in COLUMNS:
        if column.name not in out.columns:
            continue
        values = out[column.name]
        if column.kind == "str":
            out[column.name] = values.where(values.notna(), "").astype(str)
        elif column.kind == "bool":
            out[column.name] = values.astype(object).where(values.notna(), False).astype(bool)
        else:
            numbers = pd.to_numeric(values, errors="coerce")
            whole = column.kind == "int" and not numbers.isna().any()
            out[column.name] = numbers.astype(np.int64) if whole else numbers.astype(float)
    return out


@dataclass
class LatestComparison:
    """A machine's latest run against its previous one: `table` is ``compare_sides``'s
    (None, with `problem` saying why, where they have nothing in common)."""

    machine: str
    previous: dict
    latest: dict
    table: pd.DataFrame | None
    problem: str = ""


def latest_pairs(runs: pd.DataFrame) -> list[tuple[str, dict, dict]]:
    """Per machine with two runs or more, (machine, previous run, latest run), by date."""
    pairs = []
    for machine in ordered(runs["machine"]):
        mine = runs[runs["machine"] == machine]
        if len(mine) < 2:
            continue
        mine = mine.sort_values(["started_at", "added_at", "run_id"])
        pairs.append((machine, mine.iloc[-2].to_dict(), mine.iloc[-1].to_dict()))
    return pairs


def compare_latest(store: Store, runs: pd.DataFrame,
                   threshold: float = DEFAULT_THRESHOLD) -> list[LatestComparison]:
    """Each machine's latest run against its previous one, by the comparison's rules."""
    pairs = latest_pairs(runs)
    if not pairs:
        return []
    ids = sorted({p[key]["run_id"] for p in pairs for key in (1, 2)})
    marks = ", ".join("?" * len(ids))
    results = typed_rows(store.frame(f"SELECT * FROM results WHERE run_id IN ({marks})",
                                        ids))
    units = store.frame(
        'SELECT run_id, "repeat", config_id, phase, '
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY device_ms) AS device_ms FROM samples "
        f'WHERE run_id IN ({marks}) GROUP BY run_id, "repeat", config_id, phase '
        'ORDER BY run_id, "repeat", config_id, phase', ids)
    stored = {run_id: StoredRun(run_id, results[results["run_id"] == run_id].reset_index(
        drop=True), units[units["run_id"] == run_id].reset_index(drop=True))
        for run_id in ids}
    out = []
    for machine, previous, latest in pairs:
        try:
            table = compare_sides(side_units(Side([stored[previous["run_id"]]])),
                                  side_units(Side([stored[latest["run_id"]]])), threshold)
            out.append(LatestComparison(machine, previous, latest, table))
        except UsageError as exc:
            out.append(LatestComparison(machine, previous, latest, None, str(exc)))
    return out
