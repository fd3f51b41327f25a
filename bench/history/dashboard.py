"""The dashboard's data: the whole store as one compact table, each machine's latest run
judged against its previous one, and the changes found along each machine's history.

A page over a hundred runs of hundreds of configurations must stay small and quick to
write, so the database does the heavy work: repeats collapse in SQL (the median of their
medians, the widest of their intervals), the raw samples are read only for the two runs
per machine that are compared, and then only as each unit's median. What leaves is one
table of numbers in which every string is an index into a dictionary (``compact``); the page
draws every chart from it in the browser. The SQL is what DuckDB and PostgreSQL share
(``percentile_cont ... WITHIN GROUP``, ``?`` placeholders, quoted column names).

The latest-against-previous verdicts are ``bench/history/latest.py``'s; the changes along
each machine's history are ``bench/history/changes.py``'s, only drawn here. Nothing here
writes HTML (``bench/present/history_page.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.analyze.judge import DEFAULT_THRESHOLD
from bench.analyze.run_tables import ordered
from bench.axes import DEVICE, DIMENSIONS, WORLD_SIZE, Dimension
from bench.history.changes import Change, find_changes
from bench.history.latest import LatestComparison, compare_latest, with_defaults
from bench.history.store import Store
from bench.releases import version_key
from bench.schema import OK, STEP, TIMED_PHASES

# A configuration of the page is every dimension but the device: the same configuration on
# two machines (cuda:0 here, cpu there) is one line, told apart by the device's name.
CONFIG_DIMENSIONS: tuple[Dimension, ...] = tuple(d for d in DIMENSIONS if d is not DEVICE)
RUN_FIELDS = ("run_id", "machine", "hostname", "device_name", "torch_version", "cuda_version",
              "project_commit", "started_at", "added_at")
# Times keep four significant digits: the intervals of a median are wider than that, and
# every digit dropped is a byte less per number in the page.
DIGITS = 4


def _quoted(names) -> str:
    return ", ".join(f'"{n}"' for n in names)


def read_runs(store: Store) -> pd.DataFrame:
    """One row per run, ordered by torch version, then date: the page's x axis. `date` is
    the day it started (else the day it was added), `label` its version and date."""
    runs = store.frame(f"SELECT {', '.join(RUN_FIELDS)} FROM runs")
    for column in RUN_FIELDS:
        runs[column] = runs[column].fillna("").astype(str)
    runs["machine"] = runs["machine"].where(runs["machine"] != "", runs["hostname"])
    when = runs["started_at"].where(runs["started_at"] != "", runs["added_at"])
    runs["date"] = when.str.slice(0, 10)
    runs["label"] = runs["torch_version"] + " · " + runs["date"]
    order = sorted(range(len(runs)), key=lambda i: (
        version_key(runs["torch_version"].iat[i]), when.iat[i], runs["run_id"].iat[i]))
    return runs.iloc[order].reset_index(drop=True)


def read_points(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per run, configuration (its config_id and world size), device name and phase: the
    median of its repeats' medians, and the widest of their intervals (`ci_low_ms`,
    `ci_high_ms`), which holds each repeat's; `repeats` counts them. Only measured rows.
    And apart, once per configuration, the values of its dimensions: a hundred runs of the
    same configurations would otherwise carry them a hundred times."""
    key = f'config_id, "{WORLD_SIZE.name}"'
    points = store.frame(
        f"SELECT run_id, {key}, phase, device_name, count(*) AS repeats, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY median_ms) AS median_ms, "
        "min(ci_low_ms) AS ci_low_ms, max(ci_high_ms) AS ci_high_ms "
        "FROM results WHERE status = ? AND median_ms IS NOT NULL "
        f"GROUP BY run_id, {key}, phase, device_name", (OK,))
    others = _quoted(d.name for d in CONFIG_DIMENSIONS if d is not WORLD_SIZE)
    configs = store.frame(f"SELECT DISTINCT {key}, {others} FROM results")
    return with_defaults(points), with_defaults(configs)


def _rounded(values) -> list:
    """Numbers to DIGITS significant digits, NaN as None (JSON's null)."""
    x = np.asarray(values, dtype=float)
    out = np.full(len(x), np.nan)
    finite = np.isfinite(x)
    with np.errstate(divide="ignore"):
        magnitude = np.floor(np.log10(np.abs(np.where(finite & (x != 0), x, 1.0))))
    decimals = (DIGITS - 1 - magnitude).astype(int)
    for d in np.unique(decimals[finite]):
        where = finite & (decimals == d)
        out[where] = np.round(x[where], d)
    return [None if v != v else v for v in out.tolist()]


def _codes(values: pd.Series, dictionary: list) -> list[int]:
    """Each value's index in ``dictionary``."""
    return pd.Index(dictionary, dtype=object).get_indexer(
        pd.Series(values, dtype=object)).tolist()


def _dimension_values(dimension: Dimension, values: pd.Series) -> list:
    distinct = list(pd.Series(values, dtype=object).unique())
    if dimension.kind is int:
        return sorted(distinct, key=lambda v: (v is None, v if v is not None else 0))
    if dimension.kind is bool:
        return sorted(distinct, key=lambda v: str(v).lower() == "true")
    return ordered(distinct, getattr(dimension, "order", ()))


@dataclass
class Compact:
    """The page's data: `table`, JSON-ready, and each point's run, config_id and phase
    (where a change is drawn is found by them)."""

    table: dict
    keys: pd.DataFrame

    def points_of(self, wanted: list[tuple[str, str, str]]) -> list[int]:
        """The index of the point of each (run_id, config_id, phase); -1 where none is."""
        if not wanted:
            return []
        index = pd.MultiIndex.from_frame(self.keys.astype(str))
        return index.get_indexer(pd.MultiIndex.from_tuples(wanted)).tolist()


def compact(runs: pd.DataFrame, points: pd.DataFrame, configs: pd.DataFrame) -> Compact:
    """One table of the whole store, in columns: `runs` (per run: id, machine, version,
    date, label, device_name), `configs` (per configuration, a code per dimension), `points`
    (run, config, phase, device_name: codes; median, low, high: ms) and the
    dictionaries the codes index (`dimensions`, `phases`, `devices`, `versions`,
    `machines`). Each string is written once."""
    points = points[points["run_id"].isin(runs["run_id"])].reset_index(drop=True)
    key = ["config_id", WORLD_SIZE.name]
    names = [d.name for d in CONFIG_DIMENSIONS]
    # a configuration of the page leaves the device out: config_ids on several devices
    # are one configuration
    configs = configs.merge(points[key].drop_duplicates(), on=key)
    configs["config"] = configs.groupby(names, sort=False, dropna=False).ngroup()
    distinct = configs.drop_duplicates("config").sort_values("config")
    config = points[key].merge(configs[[*key, "config"]], on=key, how="left")["config"]
    dimensions, codes = [], {}
    for dim in CONFIG_DIMENSIONS:
        values = _dimension_values(dim, distinct[dim.name])
        dimensions.append({"name": dim.name, "values": [str(v) for v in values],
                           "labels": [dim.describe(v) for v in values]})
        codes[dim.name] = _codes(distinct[dim.name], values)
    # number the configurations in the order of their values, axis by axis: the page opens
    # on the first
    order = np.lexsort([np.asarray(codes[d.name], dtype=int) for d in CONFIG_DIMENSIONS[::-1]])
    renumber = np.empty(len(order), dtype=int)
    renumber[order] = np.arange(len(order))
    codes = {name: [values[i] for i in order] for name, values in codes.items()}
    present = set(points["phase"].unique())
    phases = [p for p in TIMED_PHASES if p in present] + sorted(present - set(TIMED_PHASES))
    device_names = points["device_name"].fillna("")
    devices = ordered([*device_names.unique(), *runs["device_name"].unique()])
    versions = list(runs["torch_version"].unique())  # runs are in version order
    machines = ordered(runs["machine"].unique())
    table = {
        "dimensions": dimensions, "configs": codes, "config_count": int(len(distinct)),
        "phases": phases, "default_phase": STEP if STEP in phases else (phases or [""])[0],
        "devices": devices, "versions": versions, "machines": machines,
        "runs": {"id": list(runs["run_id"]), "label": list(runs["label"]),
                 "date": list(runs["date"]), "machine": _codes(runs["machine"], machines),
                 "version": _codes(runs["torch_version"], versions),
                 "device_name": _codes(runs["device_name"], devices)},
        "points": {"run": _codes(points["run_id"], list(runs["run_id"])),
                   "config": renumber[config.to_numpy(dtype=int)].tolist(),
                   "phase": _codes(points["phase"], phases),
                   "device_name": _codes(device_names, devices),
                   "median": _rounded(points["median_ms"]),
                   "low": _rounded(points["ci_low_ms"]),
                   "high": _rounded(points["ci_high_ms"])},
        "changes": None,
    }
    return Compact(table, points[["run_id", "config_id", "phase"]])


def change_markers(changes: list[Change], data: Compact) -> tuple[dict | None, str]:
    """The changes as the page draws them, in columns: `point` (the point after the change),
    `before` (the run before it, -1 where it is not drawn), `ratio`, `direction` and
    `attributed` (text); and a note of those that could not be placed. Drawn, never judged
    again here."""
    if not changes:
        return None, ""
    points = data.points_of([(c.after_run, c.config_id, c.phase) for c in changes])
    run_index = {r: i for i, r in enumerate(data.table["runs"]["id"])}
    drawn = [(p, c) for p, c in zip(points, changes) if p >= 0]
    markers = {"point": [p for p, _ in drawn],
               "before": [run_index.get(c.before_run, -1) for _, c in drawn],
               "ratio": _rounded([c.ratio for _, c in drawn]),
               "direction": [c.direction for _, c in drawn],
               "attributed": ["; ".join(c.attributed_to) for _, c in drawn]}
    missed = len(changes) - len(drawn)
    note = f"{missed} change(s) name a run or configuration not drawn here" if missed else ""
    return (markers if drawn else None), note


@dataclass
class Dashboard:
    """Everything the page shows: the runs in version and date order, the compact table,
    each machine's latest comparison, and notes (what could not be shown, and why)."""

    store: str
    runs: pd.DataFrame
    data: Compact
    latest: list[LatestComparison]
    threshold: float
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.runs.empty


def build_dashboard(store: Store, threshold: float = DEFAULT_THRESHOLD,
                    changes=None) -> Dashboard:
    """The dashboard of ``store``; ``changes`` replaces those ``find_changes`` finds in the
    store where given."""
    runs = read_runs(store)
    points, configs = read_points(store)
    configurations = points.groupby("run_id")["config_id"].nunique()
    runs["configurations"] = runs["run_id"].map(configurations).fillna(0).astype(int)
    data = compact(runs, points, configs)
    notes = []
    if changes is None:
        changes = find_changes(store, threshold=threshold) if not runs.empty else []
    data.table["changes"], note = change_markers(changes, data)
    if note:
        notes.append(note[0].upper() + note[1:] + ".")
    latest = compare_latest(store, runs, threshold)
    return Dashboard(store.name, runs, data, latest, threshold, notes)
