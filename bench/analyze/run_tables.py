"""The tables that answer a run's questions, computed once over its typed rows: each
configuration's figures with its repeats collapsed, the optimizer setups side by side,
and scaling with the number of ranks. The terminal summary and the HTML report are
renderers of these (``bench/present/``); nothing here formats text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from bench.analyze.reader import Run
from bench.axes import (BATCH_SIZE, DDP_WRAP, DEVICE, DIMENSIONS, OPTIMIZER_SETUP, WORLD_SIZE,
                        key)
from bench.schema import COLUMNS, OK, OPTIMIZER_PHASE, STEP

# What a configuration measured, as opposed to what it is: these collapse over repeats.
MEASURES = tuple(c.name for c in COLUMNS if c.kind in ("int", "float")
                 and c.name not in {d.name for d in DIMENSIONS}
                 and c.name not in ("schema_version", "repeat", "global_batch_size", "seed"))
# One configuration and phase of one run.
MEASUREMENT = ["run", *key(), "device_name", "phase"]


def ordered(values: Iterable[Any], order: Sequence[Any] = ()) -> list[Any]:
    """Distinct values, those of ``order`` first in its order, then the rest sorted."""
    values = list(dict.fromkeys(values))
    first = [v for v in order if v in values]
    return first + sorted((v for v in values if v not in first), key=str)


def unique_labels(names: Sequence[str]) -> list[str]:
    """``names`` with a `#2`, `#3`... suffix on repeats, so each run keeps its own label."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return out


def results_of(runs: Sequence[Run]) -> pd.DataFrame:
    """Every run's rows in one table, with a `run` column: the run's label (its folder
    name, `#2` on a second run of the same name)."""
    labels = unique_labels([run.name for run in runs])
    return pd.concat([run.results.assign(run=label) for run, label in zip(runs, labels)],
                     ignore_index=True)


def measured(results: pd.DataFrame) -> pd.DataFrame:
    """One row per measured configuration and phase, repeats collapsed to the median of
    their figures (the median of the medians for times), with `repeats`, their count."""
    ok = results[results["status"] == OK]
    if "run" not in ok.columns:
        ok = ok.assign(run=ok["run_id"])
    grouped = ok.groupby(MEASUREMENT, sort=False, dropna=False)
    table = grouped[list(MEASURES)].median().reset_index()
    table["repeats"] = grouped.size().to_numpy()
    return table


def timing_blocks(results: pd.DataFrame) -> tuple[int, int]:
    """The disturbed timing blocks of the measured configurations, and all their blocks.
    A configuration's blocks are written on every one of its phase rows (its phases are
    timed in the same blocks), so they are counted once, on its `step` row."""
    steps = results[(results["status"] == OK) & (results["phase"] == STEP)]
    return int(steps["disturbed_blocks"].sum()), int(steps["blocks"].sum())


def setup_table(results: pd.DataFrame) -> pd.DataFrame:
    """The step time of each optimizer setup side by side: a row per configuration apart
    from its setup, a column per setup (the median over repeats of the step medians), the
    setup with the smallest, and the samples per second that one reaches."""
    steps = measured(results)
    steps = steps[steps["phase"] == STEP]
    setup = OPTIMIZER_SETUP.name
    rows = ["run", *key(OPTIMIZER_SETUP), "device_name"]
    if steps.empty:
        return pd.DataFrame(columns=[*rows, "fastest", "samples_per_s"])
    table = steps.pivot_table(index=rows, columns=setup, values="median_ms",
                              aggfunc="median", sort=False)
    order = [s for s in OPTIMIZER_SETUP.order if s in table.columns]
    table = table[order + [s for s in table.columns if s not in order]]
    table.columns.name = None
    table = table.reset_index()
    times = table[table.columns[len(rows):]]
    table["fastest"] = times.idxmin(axis=1)
    table["samples_per_s"] = (table[BATCH_SIZE.name] * table[WORLD_SIZE.name]
                              / times.min(axis=1) * 1e3)
    return table.sort_values([DEVICE.name, *key(DEVICE, OPTIMIZER_SETUP)], kind="stable")


def setup_ratio_table(results: pd.DataFrame) -> pd.DataFrame:
    """Every setup against the reference setup (`separate`, one optimizer per network),
    for the optimizer phase and the step: its median over the reference's at the same
    configuration otherwise."""
    d = measured(results)
    d = d[d["phase"].isin([OPTIMIZER_PHASE, STEP])]
    keys = [c for c in MEASUREMENT if c != OPTIMIZER_SETUP.name]
    reference = OPTIMIZER_SETUP.order[0]
    base = d[d[OPTIMIZER_SETUP.name] == reference][[*keys, "median_ms"]]
    others = d[d[OPTIMIZER_SETUP.name] != reference]
    merged = others.merge(base, on=keys, suffixes=("", "_reference"))
    merged["ratio"] = merged["median_ms"] / merged["median_ms_reference"]
    return merged


# what stays the same along a line of the scaling chart, world size aside
SCALING_KEY = ["device_name", *key(DEVICE, DDP_WRAP, WORLD_SIZE)]


def scaling_table(results: pd.DataFrame) -> pd.DataFrame:
    """Step time, throughput and efficiency against world size, one line per configuration
    and DDP wrap, over every run given (several runs of one world size: the median).

    The batch size is per rank, so W ranks take W times the samples of one process: the
    efficiency is the throughput over W times one process's, which is one process's step
    time over the W ranks' (1: perfect scaling). One process is the run of world size 1 with
    the same DDP wrap where there is one, else the single process without DDP, which also
    becomes the line's first point."""
    d = measured(results)
    d = d[d["phase"] == STEP]
    world, wrap = WORLD_SIZE.name, DDP_WRAP.name
    if d.empty or d[world].nunique() < 2:
        return d.iloc[0:0]
    d = d.groupby([*SCALING_KEY, wrap, world], sort=False, dropna=False)["median_ms"] \
        .median().reset_index()
    plain = d[d[wrap] == DDP_WRAP.default].drop(columns=[wrap, world])
    lines = []
    for wrapped in sorted(set(d.loc[d[wrap] != DDP_WRAP.default, wrap])):
        own = d[d[wrap] == wrapped]
        from_plain = plain.merge(own.loc[own[world] == 1, SCALING_KEY], how="left",
                                 on=SCALING_KEY, indicator=True)
        from_plain = from_plain[from_plain["_merge"] == "left_only"].drop(columns="_merge")
        lines.append(pd.concat([own, from_plain.assign(**{wrap: wrapped, world: 1})]))
    if not lines:
        return d.iloc[0:0]
    d = pd.concat(lines, ignore_index=True)
    one = d[d[world] == 1][[*SCALING_KEY, wrap, "median_ms"]]
    d = d.merge(one, on=[*SCALING_KEY, wrap], how="left", suffixes=("", "_one"))
    d["throughput"] = d[BATCH_SIZE.name] * d[world] / d["median_ms"] * 1e3
    d["efficiency"] = d["median_ms_one"] / d["median_ms"]
    return d.sort_values(world)
