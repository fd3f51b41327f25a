"""Comparison of runs: a baseline against one or more candidates, with significance.

A measurement is matched across runs by every dimension of ``bench/axes.py`` and the
phase, with the device by its *kind*: `cuda:0` on one machine meets `cuda:1` on another
(see ``device_slot``). For each match, the ratio of medians candidate/baseline comes with a
95% interval and a p-value from the raw samples, in which each repeat of each run is a unit
(``bench.analyze.significance``), so the spread between runs and repeats widens the
interval; the p-values of all measurements are adjusted together. A configuration that was
not measured on a side (`oom`, `skipped`, `nonfinite`, `error`) is listed with its status,
never given a ratio. Rendering is ``bench/present/comparison.py``'s.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analyze.reader import Run, device_kind, load_run, untimed_phases
from bench.analyze.significance import (DEFAULT_THRESHOLD, REGRESSION,
                                        RatioInterval, adjust, ratio_interval, verdict)
from bench.analyze.tables import ordered, unique_labels
from bench.axes import (BATCH_SIZE, DEVICE, DIMENSIONS, OPTIMIZER, OPTIMIZER_SETUP, SCENARIO,
                        SIZE, WORLD_SIZE, config_id)
from bench.errors import UsageError
from bench.schema import OK, STEP

SLOT = "device_slot"
# What a measurement is matched by: every dimension, the device by its slot, and the phase.
KEY = (*(SLOT if d is DEVICE else d.name for d in DIMENSIONS), "phase")
UNIT = ("run_id", "repeat", "config_id", "phase")
COMPARED, NOT_MEASURED = "compared", "not measured"
ONLY_BASELINE, ONLY_CANDIDATE = "only in baseline", "only in candidate"


@dataclass
class Side:
    """One side of a comparison: one run folder, or several pooled (`DIR,DIR`)."""

    runs: list[Run]
    label: str = ""

    @property
    def folders(self) -> str:
        return "+".join(unique_labels([r.name for r in self.runs]))

    @property
    def named(self) -> str:
        """The label, with the folders when the label is not already them."""
        return self.label if self.label == self.folders else f"{self.label} ({self.folders})"

    def results(self) -> pd.DataFrame:
        return pd.concat([r.results for r in self.runs], ignore_index=True)

    def env(self) -> dict:
        """The first run's environment; a field on which pooled runs disagree shows every
        value."""
        envs = [r.env for r in self.runs]
        merged = dict(envs[0])
        for key in merged:
            values = list(dict.fromkeys(str(e.get(key)) for e in envs))
            if len(values) > 1:
                merged[key] = " | ".join(values)
        return merged


def load_side(argument: str) -> Side:
    """``DIR`` or ``DIR,DIR,...``: the runs of one side (an existing folder whose name holds
    a comma is taken whole)."""
    paths = [argument] if Path(argument).is_dir() else [p for p in argument.split(",") if p]
    if not paths:
        raise UsageError(f"{argument!r} names no run folder")
    return Side([load_run(p) for p in paths])


def device_slot(results: pd.DataFrame) -> pd.Series:
    """The device's kind, numbered when a run has several of that kind (`cuda`, `cuda#2`, in
    the order of their indexes): what matches across machines."""
    slots = pd.Series("", index=results.index, dtype=object)
    for _, rows in results.groupby("run_id", sort=False):
        devices = sorted(set(rows[DEVICE.name]),
                         key=lambda d: (device_kind(d), len(d), d))  # cuda:2 before cuda:10
        seen: dict[str, int] = {}
        for device in devices:
            kind = device_kind(device)
            seen[kind] = seen.get(kind, 0) + 1
            slots[rows.index[rows[DEVICE.name] == device]] = (
                kind if seen[kind] == 1 else f"{kind}#{seen[kind]}")
    return slots


def side_units(side: Side) -> pd.DataFrame:
    """The side's results rows (one per configuration, phase and repeat) keyed by ``KEY``,
    each with its raw samples as an array (`samples`, empty when it was not measured)."""
    results = side.results()
    # a CUDA graph's phases have no timing of their own: nothing to compare, nothing to list
    results = results[~untimed_phases(results)].reset_index(drop=True)
    results[SLOT] = device_slot(results)
    measured = results["status"] == OK
    arrays = [np.empty(0)] * len(results)
    for run in side.runs:
        mine = (results["run_id"].isin(set(run.results["run_id"]))) & measured
        if not mine.any():
            continue
        samples = run.samples()
        values = samples["device_ms"].to_numpy()
        groups = samples.groupby(list(UNIT), sort=False).indices
        for i, row in zip(np.flatnonzero(mine.to_numpy()),
                          results.loc[mine, list(UNIT)].itertuples(index=False)):
            index = groups.get(tuple(row))
            if index is None:
                raise UsageError(f"{run.path}/samples.csv lacks the samples of "
                                 f"{row.config_id} ({row.phase}, repeat {row.repeat})")
            arrays[i] = values[index]
    results["samples"] = arrays
    return results


def key_label(row) -> str:
    """A matched configuration: its config_id with the device's slot, and its world size
    where it is not one process."""
    label = config_id({**row, DEVICE.name: row[SLOT]})
    world = row[WORLD_SIZE.name]
    return label if WORLD_SIZE.at_default(world) else f"{label} ({WORLD_SIZE.describe(world)})"


def median_of_units(units: list[np.ndarray]) -> float:
    """The median of the units' medians: a side's figure for a measurement."""
    return float(np.median([np.median(u) for u in units]))


def device_text(units: pd.DataFrame) -> str:
    return ", ".join(ordered(f"{d} ({n})" for d, n in zip(units[DEVICE.name],
                                                            units["device_name"])))


def compare_sides(baseline: pd.DataFrame, candidate: pd.DataFrame,
                  threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """One row per key found on either side (``side_units`` tables in).

    `outcome` is `compared` (both sides measured: medians, ratio, interval, verdict),
    `not measured` (a side has the configuration but no timing, e.g. out of memory), `only in
    baseline` or `only in candidate`.
    """
    keys = list(KEY)
    base_groups = dict(tuple(baseline.groupby(keys, sort=False)))
    cand_groups = dict(tuple(candidate.groupby(keys, sort=False)))
    if not set(base_groups) & set(cand_groups):
        raise UsageError("the runs have nothing in common to compare: baseline has "
                         f"{_inventory(baseline)}; candidate has {_inventory(candidate)}")
    rows = []
    for key in dict.fromkeys([*base_groups, *cand_groups]):
        b, c = base_groups.get(key), cand_groups.get(key)
        row = dict(zip(keys, key))
        row.update(config=key_label(row), ratio=np.nan, low=np.nan, high=np.nan,
                   p_value=np.nan, method="", baseline_ms=np.nan, candidate_ms=np.nan,
                   baseline_units=0, candidate_units=0, verdict="",
                   baseline_status="/".join(ordered(b["status"])) if b is not None else "absent",
                   candidate_status="/".join(ordered(c["status"])) if c is not None else "absent",
                   baseline_device=device_text(b) if b is not None else "",
                   candidate_device=device_text(c) if c is not None else "")
        if b is None or c is None:
            row["outcome"] = ONLY_BASELINE if c is None else ONLY_CANDIDATE
            rows.append(row)
            continue
        b_ok = [u for u in b.loc[b["status"] == OK, "samples"] if len(u)]
        c_ok = [u for u in c.loc[c["status"] == OK, "samples"] if len(u)]
        if not b_ok or not c_ok:
            row["outcome"] = NOT_MEASURED
            rows.append(row)
            continue
        # seeded by the key: the same runs give the same intervals, whatever their order
        rng = np.random.default_rng(zlib.crc32(row["config"].encode() + key[-1].encode()))
        interval = ratio_interval(b_ok, c_ok, rng=rng)
        row.update(outcome=COMPARED, ratio=interval.ratio, low=interval.low,
                   high=interval.high, p_value=interval.p_value, method=interval.method,
                   baseline_ms=median_of_units(b_ok), candidate_ms=median_of_units(c_ok),
                   baseline_units=len(b_ok), candidate_units=len(c_ok))
        rows.append(row)
    table = pd.DataFrame(rows)
    # every measurement is tested at once: the verdicts hold the false discovery rate
    compared = table.index[table["outcome"] == COMPARED]
    table["q_value"] = np.nan
    table.loc[compared, "q_value"] = adjust(table.loc[compared, "p_value"].tolist())
    table.loc[compared, "verdict"] = [
        verdict(RatioInterval(r.ratio, r.low, r.high, r.p_value, r.baseline_units,
                              r.candidate_units, r.method), threshold, r.q_value)
        for r in table.loc[compared].itertuples()]
    return table


def _inventory(units: pd.DataFrame) -> str:
    return ", ".join(f"{what} {','.join(str(v) for v in ordered(units[column]))}"
                     for column, what in ((SCENARIO.name, "scenarios"), (SIZE.name, "sizes"),
                                          (SLOT, "devices"), (BATCH_SIZE.name, "batch sizes"),
                                          (OPTIMIZER_SETUP.name, "setups"),
                                          (OPTIMIZER.name, "optimizers")))


def side_labels(sides: Sequence[Side]) -> list[str]:
    """What tells the sides apart: torch version, device name, or both; else the folders."""
    facts = []
    for side in sides:
        results = side.results()
        facts.append((", ".join(ordered(results["torch_version"].astype(str))),
                      ", ".join(ordered(results["device_name"]))))
    torch_differs = len({f[0] for f in facts}) > 1
    device_differs = len({f[1] for f in facts}) > 1
    labels = []
    for side, (torch_version, devices) in zip(sides, facts):
        parts = ([f"torch {torch_version}"] if torch_differs else []) + \
                ([devices] if device_differs else [])
        labels.append(" · ".join(parts) or side.folders)
    if len(set(labels)) < len(labels):
        labels = [label if label == side.folders else f"{label} ({side.folders})"
                  for label, side in zip(labels, sides)]
    return unique_labels(labels)


@dataclass
class Comparison:
    baseline: Side
    candidates: list[Side]
    units: list[pd.DataFrame]  # side_units of the baseline, then of each candidate
    tables: list[pd.DataFrame]  # compare_sides of each candidate against the baseline
    threshold: float = DEFAULT_THRESHOLD

    def count(self, verdict_name: str) -> int:
        return sum(int((t["verdict"] == verdict_name).sum()) for t in self.tables)


def compare_runs(baseline: Side, candidates: Sequence[Side],
                 threshold: float = DEFAULT_THRESHOLD) -> Comparison:
    labels = side_labels([baseline, *candidates])
    for side, label in zip([baseline, *candidates], labels):
        side.label = label
    units = [side_units(side) for side in [baseline, *candidates]]
    tables = [compare_sides(units[0], u, threshold) for u in units[1:]]
    return Comparison(baseline, list(candidates), units, tables, threshold)


def single_units(compared: pd.DataFrame) -> bool:
    """Whether some measurement has one unit on a side: between-run spread unknown there."""
    return bool(len(compared)) and bool(
        ((compared["baseline_units"] == 1) | (compared["candidate_units"] == 1)).any())


def change_rows(table: pd.DataFrame, verdict_name: str) -> pd.DataFrame:
    rows = table[table["verdict"] == verdict_name]
    return rows.sort_values("ratio", ascending=verdict_name != REGRESSION)


def trend_table(comparison: Comparison) -> pd.DataFrame:
    """The median step time of each configuration matched across the runs, a row per
    configuration and side (baseline first): `config`, `side`, `median_ms`, `devices`.
    Configurations measured only in the baseline are left out."""
    rows = []
    for i, units in enumerate(comparison.units):
        ok = units[(units["status"] == OK) & (units["phase"] == STEP)]
        for key, group in ok.groupby(list(KEY), sort=False):
            rows.append({"config": key_label(dict(zip(KEY, key))), "side": i,
                         "median_ms": median_of_units(list(group["samples"])),
                         "devices": device_text(group)})
    table = pd.DataFrame(rows, columns=["config", "side", "median_ms", "devices"])
    sides = table.groupby("config")["side"].agg(set)
    shared = sides[sides.map(lambda s: 0 in s and len(s) > 1)].index
    return table[table["config"].isin(shared)]
