"""Where the step goes: the runs' per-network rows (``networks.csv``) read into one table,
the dominant network and phase of each scenario, and the attribution's own checks.

Repeats of a configuration collapse to the median of their figures, as the report's other
figures do. Pandas only: no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from bench.analyze.reader import Run
from bench.analyze.run_tables import ordered, unique_labels
from bench.axes import BATCH_SIZE, DIMENSIONS, OPTIMIZER_SETUP, SCENARIO
from bench.schema import NETWORK_COLUMNS, OK, PHASES, TARGET

NETWORK_PHASES = (*PHASES, TARGET)
KEY = ["run", "config_id", *(d.name for d in DIMENSIONS), "device_name", "network", "phase"]
FIGURES = [c.name for c in NETWORK_COLUMNS
           if c.kind in ("float", "int") and c.name not in KEY + ["schema_version", "repeat"]]


def networks_of(runs: Sequence[Run]) -> pd.DataFrame:
    """The attributed rows of every run that has ``networks.csv``, with a `run` column (the
    run's label, as ``results_of`` gives it), repeats collapsed; empty where none has."""
    labels = unique_labels([run.name for run in runs])
    tables = []
    for run, label in zip(runs, labels):
        table = run.networks()
        if table is not None:
            tables.append(table[table["status"] == OK].assign(run=label))
    if not tables or all(t.empty for t in tables):
        return pd.DataFrame(columns=[*KEY, *FIGURES, "eager_twin", "apportioned_by"])
    rows = pd.concat(tables, ignore_index=True)
    grouped = rows.groupby(KEY, sort=False, dropna=False)
    table = grouped[FIGURES].median()
    table["eager_twin"] = grouped["eager_twin"].any()
    table["apportioned_by"] = grouped["apportioned_by"].first()
    return table.reset_index()


def network_order(table: pd.DataFrame) -> list[str]:
    """Networks in the order the file lists them (the scenario's), `(outside)` last."""
    return list(dict.fromkeys(table["network"]))


def reference_cell(table: pd.DataFrame) -> pd.DataFrame:
    """One scenario's rows at its largest batch size and first setup (``separate`` where
    it was run): where a sentence about the scenario is taken from."""
    setup = ordered(table[OPTIMIZER_SETUP.name], OPTIMIZER_SETUP.order)[0]
    cell = table[table[OPTIMIZER_SETUP.name] == setup]
    return cell[cell[BATCH_SIZE.name] == cell[BATCH_SIZE.name].max()]


@dataclass(frozen=True)
class Dominant:
    scenario: str
    batch_size: int
    setup: str
    network: str
    phase: str
    ms: float
    step_ms: float  # the attributed whole: every network and phase

    @property
    def share(self) -> float:
        return self.ms / self.step_ms if self.step_ms else 0.0


def dominant(table: pd.DataFrame, scenario: str) -> Dominant | None:
    """The network and phase that took the most of ``scenario``'s step, at its largest
    batch size and first setup (the first configuration there, where several are)."""
    cell = reference_cell(table[table[SCENARIO.name] == scenario])
    if cell.empty:
        return None
    cell = cell[cell["config_id"] == cell["config_id"].iloc[0]]
    top = cell.loc[cell["median_ms"].idxmax()]
    return Dominant(scenario, int(top[BATCH_SIZE.name]), str(top[OPTIMIZER_SETUP.name]),
                    str(top["network"]), str(top["phase"]), float(top["median_ms"]),
                    float(cell["median_ms"].sum()))


@dataclass(frozen=True)
class AttributionChecks:
    configurations: int
    overhead_median: float  # over configurations
    overhead_low: float
    overhead_high: float
    gap_median: float  # |sum_gap| over configurations and phases
    gap_high: float
    apportioned: int  # configurations with an apportioned row
    eager_twins: int


def attribution_checks(table: pd.DataFrame) -> AttributionChecks | None:
    if table.empty:
        return None
    per_config = table.drop_duplicates(["run", "config_id"])
    gaps = table.drop_duplicates(["run", "config_id", "phase"])["sum_gap"].abs().dropna()
    apportioned = table[table["apportioned_ms"] > 0].drop_duplicates(["run", "config_id"])
    overhead = per_config["overhead"].dropna()
    return AttributionChecks(
        len(per_config), float(overhead.median()), float(overhead.min()),
        float(overhead.max()), float(gaps.median()) if len(gaps) else 0.0,
        float(gaps.max()) if len(gaps) else 0.0, len(apportioned),
        int(per_config["eager_twin"].sum()))
