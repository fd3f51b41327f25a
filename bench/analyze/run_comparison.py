"""Comparison of runs: a baseline against one or more candidates, with significance.

A measurement is matched across runs by every dimension of ``bench/axes.py`` and the
phase, with the device by its *kind*: `cuda:0` on one machine meets `cuda:1` on another
(see ``device_slot``). Each repeat of each run is a unit, summed up by the median of its raw
samples. Where both sides hold several units, the ratio candidate/baseline is judged by
Welch's t over the unit medians, which sees the spread between repeats; where a side holds
one, by its departure from the common shift of its phase, against the spread of all the
phase's measurements, known as well as the time windows (comparison groups) behind it allow
(``bench.analyze.judge``): one run per side cannot tell a shift common to every
configuration from the machine's drift, so such a shift is reported, not judged. The
p-values of all measurements are adjusted together. A configuration that was not measured
on a side (`oom`, `skipped`, `nonfinite`, `error`) is listed with its status, never given a
ratio. Rendering is ``bench/present/comparison_page.py``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analyze.reader import Run, device_kind, load_run, untimed_phases
from bench.analyze.block_verdicts import COMPARED, block_verdicts, judge_blocks
from bench.analyze.judge import (DEFAULT_THRESHOLD, DRIFT, IMPROVEMENT, NO_CHANGE,
                                 REGRESSION, WELCH, adjust, detectable_change, drift, log_se,
                                 verdict, welch, welch_terms)
from bench.analyze.run_tables import ordered, unique_labels
from bench.analyze.comparison_units import UNIT, check_units_unique, unit_medians
from bench.axes import (BATCH_SIZE, DEVICE, DIMENSIONS, OPTIMIZER, OPTIMIZER_SETUP, SCENARIO,
                        SIZE, WORLD_SIZE, config_id)
from bench.errors import UsageError
from bench.schema import OK, SAMPLES_FILE, STEP

SLOT = "device_slot"
# What a measurement is matched by: every dimension, the device by its slot, and the phase.
KEY = (*(SLOT if d is DEVICE else d.name for d in DIMENSIONS), "phase")
NOT_MEASURED = "not measured"
WINDOW = "window"
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
    each with `unit_ms`, the median of its raw samples (NaN when it was not measured), and
    `within_var`, the variance of log(unit_ms) from the noise within the run, from the row's
    95% interval of the median (NaN where the row has none), and `window`, the stretch of
    time it was timed in: its run, repeat and comparison group."""
    check_units_unique(side.runs)
    results = side.results()
    # a CUDA graph's phases have no timing of their own: nothing to compare, nothing to list
    results = results[~untimed_phases(results)].reset_index(drop=True)
    results[SLOT] = device_slot(results)
    measured = results["status"] == OK
    medians = []
    for run in side.runs:
        if (measured & results["run_id"].isin(set(run.results["run_id"]))).any():
            medians.append(unit_medians(run).rename("unit_ms"))
    if medians:
        found = pd.concat(medians)
        index = pd.MultiIndex.from_frame(results[list(UNIT)])
        results["unit_ms"] = found.reindex(index).to_numpy()
    else:
        results["unit_ms"] = np.nan
    results.loc[~measured, "unit_ms"] = np.nan
    lacking = measured & results["unit_ms"].isna()
    if lacking.any():
        row = results[lacking].iloc[0]
        run = next(r for r in side.runs if row["run_id"] in set(r.results["run_id"]))
        raise UsageError(f"{run.path / SAMPLES_FILE} lacks the samples of {row['config_id']} "
                         f"({row['phase']}, repeat {row['repeat']})")
    results["within_var"] = log_se(results["ci_low_ms"], results["ci_high_ms"]) ** 2
    # the comparison group a unit was timed in, else the configuration timed alone
    group = results["group"].fillna("").astype(str)
    results[WINDOW] = (results["run_id"].astype(str) + "#" + results["repeat"].astype(str) + "#"
                       + group.where(group != "", results["config_id"]))
    return results


def key_label(row) -> str:
    """A matched configuration: its config_id with the device's slot, and its world size
    where it is not one process."""
    label = config_id({**row, DEVICE.name: row[SLOT]})
    world = row[WORLD_SIZE.name]
    return label if WORLD_SIZE.at_default(world) else f"{label} ({WORLD_SIZE.describe(world)})"


def device_text(units: pd.DataFrame) -> str:
    return ", ".join(ordered(f"{d} ({n})" for d, n in zip(units[DEVICE.name],
                                                            units["device_name"])))


def _joined(units: pd.DataFrame, values: pd.Series, sep: str) -> pd.Series:
    """Per key, the distinct ``values`` in order, joined by ``sep``; most keys hold one,
    which needs no joining."""
    keys = list(KEY)
    distinct = units[keys].assign(value=values.to_numpy()).drop_duplicates()
    several = distinct.duplicated(keys, keep=False).to_numpy()
    joined = distinct[~several].set_index(keys)["value"]
    if several.any():
        joined = pd.concat([joined, distinct[several].groupby(keys, sort=False, dropna=False)[
            "value"].agg(lambda v: sep.join(ordered(v)))])
    return joined


def side_summary(units: pd.DataFrame) -> pd.DataFrame:
    """Per key (the index, in the order of first appearance): `status` and `devices` in
    words, and over its measured units `units`, `median_ms` (of the unit medians),
    `log_mean` and `log_var` (of their logarithms), `within_var` (of the log median, from
    the noise within the runs) and `window` (its first unit's time window: where the drift
    test applies, the side has that one)."""
    keys = list(KEY)
    index = pd.MultiIndex.from_frame(units[keys].drop_duplicates())
    devices = units[DEVICE.name].astype(str) + " (" + units["device_name"].astype(str) + ")"
    ok = units[units["unit_ms"].notna()].assign(log=lambda d: np.log(d["unit_ms"]))
    grouped = ok.groupby(keys, sort=False, dropna=False)
    size = grouped.size()
    out = pd.DataFrame({"status": _joined(units, units["status"], "/"),
                        "devices": _joined(units, devices, ", "),
                        "units": size, "median_ms": grouped["unit_ms"].median(),
                        "log_mean": grouped["log"].mean(), "log_var": grouped["log"].var(),
                        "within_var": grouped["within_var"].mean() / size,
                        WINDOW: grouped[WINDOW].first()}).reindex(index)
    out["units"] = out["units"].fillna(0).astype(int)
    return out


def compare_sides(baseline: pd.DataFrame, candidate: pd.DataFrame,
                  threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """One row per key found on either side (``side_units`` tables in).

    `outcome` is `compared` (both sides measured: medians, ratio, interval, verdict),
    `not measured` (a side has the configuration but no timing, e.g. out of memory), `only in
    baseline` or `only in candidate`. Of a compared row: `ratio` (candidate / baseline
    median), `shift` (the common shift of its phase, the median ratio), `reference` (what
    the verdict takes as no change: the shift where a side has one unit, else 1),
    `departure` (ratio / reference) with its interval `low`, `high`, `p_value`, `q_value`,
    `method` and `verdict`.
    """
    base, cand = side_summary(baseline), side_summary(candidate)
    if not base.index.isin(cand.index).any():
        raise UsageError("the runs have nothing in common to compare: baseline has "
                         f"{_inventory(baseline)}; candidate has {_inventory(candidate)}")
    index = base.index.append(cand.index[~cand.index.isin(base.index)])
    b, c = base.reindex(index), cand.reindex(index)
    table = index.to_frame(index=False)
    table.insert(len(KEY), "config", [key_label(r) for r in table.to_dict("records")])
    in_base, in_cand = index.isin(base.index), index.isin(cand.index)
    b_units, c_units = b["units"].fillna(0).to_numpy(int), c["units"].fillna(0).to_numpy(int)
    table["outcome"] = np.where(~in_cand, ONLY_BASELINE, np.where(
        ~in_base, ONLY_CANDIDATE, np.where((b_units > 0) & (c_units > 0), COMPARED,
                                           NOT_MEASURED)))
    table["baseline_ms"] = np.where(b_units > 0, b["median_ms"], np.nan)
    table["candidate_ms"] = np.where(c_units > 0, c["median_ms"], np.nan)
    table["baseline_units"], table["candidate_units"] = b_units, c_units
    table["baseline_status"] = b["status"].fillna("absent").to_numpy()
    table["candidate_status"] = c["status"].fillna("absent").to_numpy()
    table["baseline_device"] = b["devices"].fillna("").to_numpy()
    table["candidate_device"] = c["devices"].fillna("").to_numpy()
    for column in ("ratio", "shift", "reference", "departure", "low", "high", "p_value",
                   "q_value", "detectable"):
        table[column] = np.nan
    table["method"], table["verdict"] = "", ""
    compared = (table["outcome"] == COMPARED).to_numpy()
    if compared.any():
        _judge(table, compared, b[compared], c[compared], threshold)
    return table


def _judge(table: pd.DataFrame, compared: np.ndarray, b: pd.DataFrame, c: pd.DataFrame,
           threshold: float) -> None:
    """Fill the verdict columns of the compared rows, every measurement at once."""
    ratio = table.loc[compared, "candidate_ms"].to_numpy() / \
        table.loc[compared, "baseline_ms"].to_numpy()
    phase = table.loc[compared, "phase"].to_numpy()
    within = np.nan_to_num(b["within_var"].to_numpy()) + np.nan_to_num(c["within_var"].to_numpy())
    # every measurement feeds its phase's shift and spread; those with one unit on a side
    # are judged by them, the others by Welch over their units. Measurements timed together
    # on both sides drift together: one window of evidence about the spread.
    windows = b[WINDOW].to_numpy().astype(str) + "|" + c[WINDOW].to_numpy().astype(str)
    several = (b["units"].to_numpy() >= 2) & (c["units"].to_numpy() >= 2)
    rows = table.index[compared]
    table.loc[rows, "ratio"] = ratio
    shifts, blocks, in_block = judge_blocks(table.loc[rows].assign(window=windows), threshold)
    departures = drift(np.log(ratio), phase, within, windows, basis=~in_block)
    shift = np.exp(departures["shift"])
    low, high, p = np.exp(departures["low"]), np.exp(departures["high"]), departures["p"]
    se, df = departures["se"], departures["df"]
    if several.any():
        _, w_low, w_high, w_p = welch(*(s[several] for s in (
            b["log_mean"].to_numpy(), b["log_var"].to_numpy(), b["units"].to_numpy(),
            c["log_mean"].to_numpy(), c["log_var"].to_numpy(), c["units"].to_numpy())))
        low[several], high[several], p[several] = np.exp(w_low), np.exp(w_high), w_p
        _, se[several], df[several] = welch_terms(*(s[several] for s in (
            b["log_mean"].to_numpy(), b["log_var"].to_numpy(), b["units"].to_numpy(),
            c["log_mean"].to_numpy(), c["log_var"].to_numpy(), c["units"].to_numpy())))
    reference = np.where(several, 1.0, shift)
    # every measurement is tested at once: the verdicts hold the false discovery rate
    q = adjust(p)
    table.loc[rows, "shift"] = shift
    table.loc[rows, "reference"], table.loc[rows, "departure"] = reference, ratio / reference
    table.loc[rows, "low"], table.loc[rows, "high"] = low, high
    table.loc[rows, "p_value"], table.loc[rows, "q_value"] = p, q
    table.loc[rows, "method"] = np.where(several, WELCH, DRIFT)
    table.loc[rows, "verdict"] = verdict(ratio / reference, low, high, q, threshold)
    table.loc[rows, "detectable"] = detectable_change(se, df, threshold)
    _confirm(table, rows[~several])
    block_verdicts(table, rows[~several], blocks, threshold)
    table.attrs["shifts"] = shifts


# Where one run per side stands behind a change, it must be seen in this many measurement
# windows: the configuration's other batch sizes, each timed at another moment of the run.
CONFIRMING_WINDOWS = 2


def _confirm(table: pd.DataFrame, rows: pd.Index) -> None:
    """Keep a change judged against the common shift only where the configuration's step
    changed the same way at CONFIRMING_WINDOWS batch sizes or more. On a shared machine a
    few seconds at another speed level move every configuration timed then, by up to 2-3x
    here: one window of a run cannot tell that from a change, two windows apart can."""
    table["unconfirmed"] = False
    judged = table.loc[rows]
    changed = judged["verdict"].isin([REGRESSION, IMPROVEMENT])
    if not changed.any():
        return
    family = [k for k in KEY if k not in (BATCH_SIZE.name, "phase")]
    steps = judged[changed & (judged["phase"] == STEP)]
    seen = steps.groupby([*family, "verdict"], sort=False, dropna=False)[
        BATCH_SIZE.name].nunique()
    confirmed = set(seen[seen >= CONFIRMING_WINDOWS].index)
    keys = [tuple(r) for r in judged.loc[changed, [*family, "verdict"]].itertuples(index=False)]
    lonely = judged.index[changed][[key not in confirmed for key in keys]]
    table.loc[lonely, "verdict"] = NO_CHANGE
    table.loc[lonely, "unconfirmed"] = True


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
                         "median_ms": float(group["unit_ms"].median()),
                         "devices": device_text(group)})
    table = pd.DataFrame(rows, columns=["config", "side", "median_ms", "devices"])
    sides = table.groupby("config")["side"].agg(set)
    shared = sides[sides.map(lambda s: 0 in s and len(s) > 1)].index
    return table[table["config"].isin(shared)]
