"""The table printed at the end of a run: step time per optimizer setup, and the winner;
then, where some configurations were not measured, how many and why. A renderer of
``bench.analyze.tables.setup_table`` over the run's rows as read back from disk."""

from __future__ import annotations

import pandas as pd

from bench.analyze.tables import setup_table
from bench.axes import (AXES, BATCH_SIZE, DEVICE, OPTIMIZER, OPTIMIZER_IMPL, OPTIMIZER_SETUP,
                        SCENARIO, SIZE, WORLD_SIZE)
from bench.schema import OK, SKIPPED, STATUSES, STEP


def variant(row) -> str:
    """The later axes where they are away from their defaults, as config_id spells them:
    `bf16 compile-modules n4` (the world size heads the table instead)."""
    return " ".join(axis.config_token(row[axis.name]) for axis in AXES
                    if axis.default is not None and axis.in_config_id(row[axis.name]))


def format_summary(results: pd.DataFrame) -> str:
    table = setup_table(results)
    statuses = format_statuses(results)
    if table.empty:
        return "\n".join(["No configuration was measured.", *([statuses] if statuses else [])])
    setups = [c for c in table.columns if c in set(results[OPTIMIZER_SETUP.name])]
    variants = [variant(r) for _, r in table.iterrows()]
    table = table.assign(variant=variants).sort_values(
        [DEVICE.name, SCENARIO.name, SIZE.name, BATCH_SIZE.name, OPTIMIZER.name,
         OPTIMIZER_IMPL.name, "variant", WORLD_SIZE.name], kind="stable")
    width = max((len(v) for v in variants), default=0)
    var_head = f" {'variant':<{width}}" if width else ""
    header = (f"{SCENARIO.name:<16} {SIZE.name:<6} {'optim':<13}{var_head} {'batch':>6} "
              + " ".join(f"{s:>9}" for s in setups) + f"  {'fastest':<9} {'samples/s':>11}")
    out = []
    for device, entries in table.groupby(DEVICE.name, sort=False):
        world = int(entries[WORLD_SIZE.name].max())
        ranks = (f" on each of {world} ranks (batch per rank; samples/s over all of them)"
                 if world > 1 else "")
        out.append(f"Step time, median ms per optimizer setup, on {device} "
                   f"({entries['device_name'].iloc[0]}){ranks}:")
        out.append(header)
        for _, t in entries.iterrows():
            cells = " ".join(f"{t[s]:>9.3f}" if pd.notna(t[s]) else f"{'-':>9}" for s in setups)
            optim = f"{t[OPTIMIZER.name]}/{t[OPTIMIZER_IMPL.name]}"
            var = f" {t['variant']:<{width}}" if width else ""
            out.append(f"{t[SCENARIO.name]:<16} {t[SIZE.name]:<6} {optim:<13}{var} "
                       f"{t[BATCH_SIZE.name]:>6} {cells}  {t['fastest']:<9} "
                       f"{t['samples_per_s']:>11,.0f}")
        out.append("")
    noisy = int((results["noisy"] & (results["phase"] == STEP)
                 & (results["status"] == OK)).sum())
    if noisy:
        out.append(f"{noisy} step measurement(s) flagged noisy (IQR > 10% of the median).")
    if statuses:
        out.append(statuses)
    return "\n".join(out).rstrip()


def format_statuses(results: pd.DataFrame, listed: int = 20) -> str:
    """How many configurations ended in each status, and which failed and why; empty when
    every one was measured. Skipped ones are counted, not listed: their reason is the
    out-of-memory listed above them."""
    configs = results.drop_duplicates(["repeat", "config_id"])  # one row per phase
    counts = configs["status"].value_counts()
    if set(counts.index) <= {OK}:
        return ""
    head = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s, 0))
    out = [f"Configurations: {head}."]
    failed = configs[~configs["status"].isin([OK, SKIPPED])]
    for _, r in failed.head(listed).iterrows():
        out.append(f"  {r['status']:<9} {r['config_id']} (repeat {r['repeat']}): {r['error']}")
    if len(failed) > listed:
        out.append(f"  ... and {len(failed) - listed} more; see the `error` column")
    return "\n".join(out)
