"""The same configurations across device types, read from the history store: what a
submission to several partitions of a cluster compares (``python -m bench submit``).

A run's device type is its Slurm partition (``env.json``'s ``slurm.partition``, which the
job recorded) with the name of the device it ran on, else the device's name alone. Runs of
one type (the shards of a partition, or several submissions) pool: a configuration's time
on a type is the median of its runs' and repeats' medians, its interval the widest of
theirs, as on the dashboard. Each configuration is then set against the same configuration
on the reference type (the first given): the ratio of the two medians, with an interval
combined from the two medians' own 95% intervals on a log scale, as ``report`` does for
configurations not timed together. Two machines are never timed together, so the drift
between their runs is not in that interval; the page says so. A verdict needs the whole
interval past the threshold (``bench.analyze.judge.interval_verdict``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.analyze.judge import DEFAULT_THRESHOLD, interval_verdict, ratio_interval
from bench.axes import DEVICE, DIMENSIONS, config_id, key
from bench.history.latest import with_defaults
from bench.history.store import Store
from bench.schema import OK

CONFIG = key(DEVICE)  # a configuration, whatever device it ran on
TYPE = "device_type"


@dataclass
class HardwareComparison:
    """``types``: the device types, the reference first. ``times``: a row per type,
    configuration (``config``, its dimensions) and phase: ``median_ms``, ``ci_low_ms``,
    ``ci_high_ms``, ``runs``; and against the reference, ``ratio``, ``ratio_low``,
    ``ratio_high`` and ``verdict`` (empty on the reference's own rows). ``runs``: the runs
    read, with their type, node and job. ``missing``: run ids asked for that the store
    does not hold."""

    types: list[str]
    times: pd.DataFrame
    runs: pd.DataFrame
    missing: list[str]


def _slurm(env_json: str | None) -> dict:
    try:
        slurm = json.loads(env_json or "{}").get("slurm")
    except (ValueError, AttributeError):
        return {}
    return slurm if isinstance(slurm, dict) else {}


def read_runs(store: Store, run_ids: list[str]) -> pd.DataFrame:
    marks = ", ".join("?" * len(run_ids))
    runs = store.frame(f"SELECT run_id, device_name, torch_version, hostname, env_json FROM runs "
                       f"WHERE run_id IN ({marks})", run_ids)
    slurm = [_slurm(text) for text in runs["env_json"]]
    runs["partition"] = [s.get("partition", "") for s in slurm]
    runs["job_id"] = [s.get("job_id", "") for s in slurm]
    runs["device_name"] = runs["device_name"].fillna("").astype(str)
    runs[TYPE] = [f"{p} · {d}" if p else d for p, d in zip(runs["partition"],
                                                           runs["device_name"])]
    return runs.drop(columns="env_json")


def type_order(runs: pd.DataFrame, partitions: list[str]) -> list[str]:
    """The types in the order their partitions were given, then the others by name."""
    rank = {p: i for i, p in enumerate(partitions)}
    pairs = runs[["partition", TYPE]].drop_duplicates()
    return [t for _, t in sorted(zip(pairs["partition"], pairs[TYPE]),
                                 key=lambda pt: (rank.get(pt[0], len(rank)), pt[1]))]


def read_times(store: Store, run_ids: list[str]) -> pd.DataFrame:
    """The measured rows of the runs: their configuration, phase and interval."""
    marks = ", ".join("?" * len(run_ids))
    dims = ", ".join(f'"{d.name}"' for d in DIMENSIONS)
    rows = store.frame(f"SELECT run_id, phase, median_ms, ci_low_ms, ci_high_ms, {dims} "
                       f"FROM results WHERE run_id IN ({marks}) AND status = ? "
                       "AND median_ms > 0", [*run_ids, OK])
    return with_defaults(rows)


def against_reference(times: pd.DataFrame, reference: str, threshold: float) -> pd.DataFrame:
    """``times`` with each row's ratio to the reference type's same configuration."""
    base = times[times[TYPE] == reference][["config", "phase", "median_ms", "ci_low_ms",
                                            "ci_high_ms"]]
    out = times.merge(base, on=["config", "phase"], how="left", suffixes=("", "_ref"))
    out["ratio"] = out["median_ms"] / out["median_ms_ref"]
    out["ratio_low"], out["ratio_high"] = ratio_interval(
        out["ratio"], out["ci_low_ms"], out["ci_high_ms"], out["ci_low_ms_ref"],
        out["ci_high_ms_ref"])
    known = np.isfinite(out["ratio_low"]) & np.isfinite(out["ratio_high"])
    out["verdict"] = [interval_verdict(lo, hi, threshold) if k else "" for lo, hi, k in
                      zip(out["ratio_low"], out["ratio_high"], known)]
    out.loc[out[TYPE] == reference, ["ratio", "ratio_low", "ratio_high", "verdict"]] = \
        [1.0, 1.0, 1.0, ""]
    return out.drop(columns=["median_ms_ref", "ci_low_ms_ref", "ci_high_ms_ref"])


def compare_hardware(store: Store, run_ids: list[str], partitions: list[str] = (),
                     threshold: float = DEFAULT_THRESHOLD) -> HardwareComparison:
    """The runs ``run_ids`` of the store, configuration by configuration across their
    device types; ``partitions`` orders the types (the first is the reference)."""
    runs = read_runs(store, list(run_ids)) if run_ids else pd.DataFrame(
        columns=["run_id", "device_name", "torch_version", "hostname", "partition", "job_id",
                 TYPE])
    missing = [r for r in run_ids if r not in set(runs["run_id"])]
    types = type_order(runs, list(partitions))
    if not types:
        return HardwareComparison([], pd.DataFrame(), runs, missing)
    rows = read_times(store, list(runs["run_id"])).merge(runs[["run_id", TYPE]], on="run_id")
    rows["config"] = [config_id(r, leave_out=(DEVICE,)) for r in rows.to_dict("records")]
    pooled = rows.groupby([TYPE, "config", *CONFIG, "phase"], sort=False, dropna=False).agg(
        median_ms=("median_ms", "median"), ci_low_ms=("ci_low_ms", "min"),
        ci_high_ms=("ci_high_ms", "max"), runs=("run_id", "nunique")).reset_index()
    times = against_reference(pooled, types[0], threshold)
    order = {t: i for i, t in enumerate(types)}
    times = times.sort_values(["config", "phase", TYPE],
                              key=lambda c: c.map(order) if c.name == TYPE else c)
    return HardwareComparison(types, times.reset_index(drop=True), runs, missing)
