"""What a run prints at its end: per comparison group, each configuration's time over the
group's reference with its interval and verdict (``bench/analyze/ratios.py``); the medians
of configurations timed alone; then what may have disturbed the figures and what was not
measured. A renderer of analysis tables over the run's rows as read back from disk."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from bench.analyze.judge import UNDECIDED
from bench.analyze.run_tables import ordered, setup_table, timing_blocks
from bench.axes import (AXES, BATCH_SIZE, DEVICE, OPTIMIZER, OPTIMIZER_IMPL, OPTIMIZER_SETUP,
                        SCENARIO, SIZE, WORLD_SIZE, by_name)
from bench.schema import OK, SKIPPED, STATUSES, STEP


def variant(row, leave_out: str = "") -> str:
    """The later axes where they are away from their defaults, as config_id spells them:
    `bf16 compile-modules n4` (the world size heads the table instead)."""
    return " ".join(axis.config_token(row[axis.name]) for axis in AXES
                    if axis.default is not None and axis.name != leave_out
                    and axis.in_config_id(row[axis.name]))


def _head(row, leave_out: str = "") -> dict[str, Any]:
    return {SCENARIO.name: row[SCENARIO.name], SIZE.name: row[SIZE.name],
            "optim": f"{row[OPTIMIZER.name]}/{row[OPTIMIZER_IMPL.name]}",
            "variant": variant(row, leave_out), "batch": row[BATCH_SIZE.name]}


def _sort_key(row, leave_out: str = "") -> tuple:
    return (row[SCENARIO.name], row[SIZE.name], row[OPTIMIZER.name], row[OPTIMIZER_IMPL.name],
            variant(row, leave_out), row[BATCH_SIZE.name])


def _lines(heads: list[dict], cells: list[list[str]], titles: list[str]) -> list[str]:
    """Rows of a fixed-width table: the configuration's name, then one cell per column."""
    widths = [max([len(t), *(len(c[i]) for c in cells)]) for i, t in enumerate(titles)]
    var = max((len(h["variant"]) for h in heads), default=0)
    var_head = f" {'variant':<{var}}" if var else ""
    out = [f"{SCENARIO.name:<16} {SIZE.name:<6} {'optim':<13}{var_head} {'batch':>6}  "
           + "  ".join(f"{t:<{w}}" for t, w in zip(titles, widths))]
    for h, row in zip(heads, cells):
        v = f" {h['variant']:<{var}}" if var else ""
        out.append(f"{h[SCENARIO.name]:<16} {h[SIZE.name]:<6} {h['optim']:<13}{v} "
                   f"{h['batch']:>6}  "
                   + "  ".join(f"{c:<{w}}" for c, w in zip(row, widths)).rstrip())
    return out


def _device_heading(what: str, entries: pd.DataFrame) -> str:
    world = int(entries[WORLD_SIZE.name].max())
    ranks = (f" on each of {world} ranks (batch per rank; samples/s over all of them)"
             if world > 1 else "")
    return (f"{what}, on {entries[DEVICE.name].iloc[0]} ({entries['device_name'].iloc[0]})"
            f"{ranks}:")


def ratio_tables(steps: pd.DataFrame, results: pd.DataFrame) -> list[str]:
    """Per device and compared axis: a row per group, the reference's median, then each
    value's ratio to it with its interval and verdict."""
    out = []
    reference_rows = results.drop_duplicates(["run_id", "config_id"]).set_index("config_id")
    for (device, compared), entries in steps.groupby([DEVICE.name, "compared"], sort=False):
        axis = by_name(compared)
        values = ordered([*entries["reference"], *entries["value"]], getattr(axis, "order", ()))
        threshold = float(entries["threshold"].iloc[0])
        heads, cells = [], []
        groups = sorted(entries.groupby("group", sort=False),
                        key=lambda item: _sort_key(reference_rows.loc[item[0]], compared))
        for group, members in groups:
            ref = reference_rows.loc[group]
            by_value = {str(r["value"]): r for _, r in members.iterrows()}
            row = []
            for value in values:
                if str(value) == str(members["reference"].iloc[0]):
                    row.append(f"{members['reference_ms'].iloc[0]:.3f} ms")
                elif str(value) in by_value:
                    r = by_value[str(value)]
                    row.append(f"{r['ratio']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] "
                               f"{r['verdict']}")
                else:
                    row.append("-")
            heads.append(_head(ref, compared))
            cells.append(row)
        reference = members["reference"].iloc[0]
        out.append(_device_heading(
            f"Step time per {compared.replace('_', ' ')} against `{reference}`: its median, "
            f"then each one's time over it (blocks paired round by round), its interval "
            f"(at the confidence of the look its group stopped at: 5% of error spent over "
            f"the looks) and the verdict at ±{threshold:.0%}", entries))
        out += _lines(heads, cells, [str(v) for v in values])
        out.append(took_text(entries, results))
        out.append("")
    return out


def _span(values: pd.Series, form: str) -> str:
    low, high = values.min(), values.max()
    if low == high:
        return form.format(low)
    return f"{form.format(low)} to {form.format(high)} (median {form.format(values.median())})"


def took_text(steps: pd.DataFrame, results: pd.DataFrame) -> str:
    """How many verdicts were decided, and what they took: rounds, seconds and looks."""
    decided = int((steps["verdict"] != UNDECIDED).sum())
    groups = steps.groupby(["run_id", "group"], sort=False)
    rounds = groups["blocks"].max()
    looks = groups["look"].max() if "look" in steps else pd.Series(dtype=float)
    measured = results[(results["phase"] == STEP) & (results["status"] == OK)]
    seconds = measured.groupby(["run_id", "group"])["measure_s"].sum(min_count=1).reindex(rounds.index)
    text = (f"Verdicts: {decided} of {len(steps)} decided"
            + (f" ({decided / len(steps):.0%})" if len(steps) > 1 else "")
            + f"; the groups took {_span(rounds, '{:.0f}')} rounds")
    if seconds.notna().all():
        text += f", {_span(seconds, '{:.1f}')} s of sampling"
    if len(looks) and looks.notna().all():
        text += f", stopping at look {_span(looks, '{:.0f}')}"
    return text + "."


def median_tables(results: pd.DataFrame) -> list[str]:
    """Configurations timed alone: the median step time of each setup side by side."""
    table = setup_table(results)
    out = []
    if table.empty:
        return out
    setups = [c for c in table.columns if c in set(results[OPTIMIZER_SETUP.name])]
    table = table.assign(variant=[variant(r) for _, r in table.iterrows()])
    for _, entries in table.groupby(DEVICE.name, sort=False):
        entries = entries.sort_values([SCENARIO.name, SIZE.name, BATCH_SIZE.name,
                                       OPTIMIZER.name, OPTIMIZER_IMPL.name, "variant"])
        heads = [_head(r) for _, r in entries.iterrows()]
        cells = [[f"{r[s]:.3f}" if pd.notna(r[s]) else "-" for s in setups]
                 + [f"{r['samples_per_s']:,.0f}"] for _, r in entries.iterrows()]
        out.append(_device_heading("Step time, median ms per optimizer setup, timed alone",
                                   entries))
        out += _lines(heads, cells, [*setups, "samples/s (best)"])
        out.append("")
    return out


def format_summary(results: pd.DataFrame, ratios: pd.DataFrame | None = None,
                   env: dict | None = None) -> str:
    steps = (ratios[ratios["phase"] == STEP] if ratios is not None and len(ratios)
             else pd.DataFrame(columns=["config_id", "group"]))
    in_groups = set(steps["config_id"]) | set(steps["group"])
    alone = results[~results["config_id"].isin(in_groups)]
    out = ratio_tables(steps, results) if len(steps) else []
    out += median_tables(alone)
    if not out:
        out = ["No configuration was measured."]
    out += notes(results, env or {})
    statuses = format_statuses(results)
    if statuses:
        out.append(statuses)
    return "\n".join(out).rstrip()


def notes(results: pd.DataFrame, env: dict) -> list[str]:
    """What may have disturbed the figures: noise, stolen CPU, a busy machine."""
    ok = results[(results["status"] == OK) & (results["phase"] == STEP)]
    out = []
    noisy = int(ok["noisy"].sum())
    if noisy:
        out.append(f"{noisy} step measurement(s) flagged noisy (IQR > 10% of the median).")
    disturbed, blocks = timing_blocks(results)
    if disturbed:
        out.append(f"{disturbed} of {blocks} timing blocks were disturbed: the process got "
                   "well under its usual share of the CPU in them (another process took it). "
                   "Ratios pair blocks round by round, so they suffer least.")
    # env.json is the user's file too: a field edited away or mistyped is said, not raised
    load = env.get("machine_load") if isinstance(env.get("machine_load"), dict) else {}
    if load.get("busy") is True:
        share = load.get("others_share")
        used = (f"{share:.0%} of its CPU time" if isinstance(share, (int, float))
                and not isinstance(share, bool) and math.isfinite(share)
                else "a share of its CPU time that env.json does not record")
        out.append(f"The machine was busy when the run started: other processes used {used}. "
                   "Its figures are less comparable with a quiet machine's than its ratios "
                   "are.")
    return out


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
