"""What each axis a run varies changes: every configuration at another value of the axis
set against the same configuration at the axis's reference value, phase by phase.

The reference of an axis is found per run, device and scenario, since a sweep of parts can
give each scenario sizes of its own: the axis's default where the scenario ran it (fp32, no
CUDA graph, no compile), else the first of its ``order`` (`separate`, `seed`), else the
first value in sorted order: never the order rows happen to be in, which the runner
shuffles. Each run and device is a series of its own: a ratio on the CPU and one on a GPU
are never pooled.

A pair's ratio is the other value's median over the reference's. Where the two were timed
together in a comparison group (``ratios.csv``), the ratio and its interval are the paired
ones, which the machine's drift between the two cannot move. Elsewhere the interval combines
the two medians' own 95% intervals on a log scale (each half-width is 1.96 standard
errors, as in ``compare``): drift between the two configurations is not in it, so the
verdict of such a pair says so (``interval`` is `unpaired`). A verdict needs the whole
interval past the threshold, as everywhere in the project.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analyze.judge import DEFAULT_THRESHOLD, interval_verdict, ratio_interval
from bench.analyze.run_tables import measured, ordered
from bench.axes import (AXES, BATCH_SIZE, DEVICE, OPTIMIZER_IMPL, SCENARIO, Axis, config_id,
                        key)
from bench.schema import OK

# Axes every chart already draws along (scenario by figure or colour, batch size as the x
# axis): they get no view of their own.
DRAWN_ALONG = (SCENARIO, BATCH_SIZE)
PAIRED, UNPAIRED = "paired", "unpaired"


def reference_value(axis: Axis, values: list) -> object:
    """The value the others of ``axis`` are set against, among ``values``."""
    return in_order(axis, values)[0]


def in_order(axis: Axis, values) -> list:
    """``values`` distinct, reference first: the default, then ``axis.order``, then the
    rest sorted as text."""
    present = {str(v): v for v in values}
    first = [str(axis.default)] if axis.default is not None else []
    ranked = [v for v in dict.fromkeys([*first, *(str(o) for o in axis.order)]) if v in present]
    def rank(text: str):  # numbers in numeric order: batch 8 before 64
        return (0, int(text), "") if axis.kind is int and text.isdigit() else (1, 0, text)
    return [present[v] for v in ranked] + [present[v] for v in sorted(present, key=rank)
                                          if v not in ranked]


def varied_axes(results: pd.DataFrame) -> list[Axis]:
    """The axes with more than one measured value within some run, device and scenario
    (``within``), in sweep order; scenario and batch size aside: every chart draws along
    them. An axis that differs only between runs or devices (the optimizer implementation
    torch picks per device, say) is no question the run asked."""
    ok = measured(results)
    if ok.empty:
        return []
    return [axis for axis in AXES if axis not in DRAWN_ALONG
            and (ok.groupby(within(axis), sort=False)[axis.name].nunique() > 1).any()]


def within(axis: Axis) -> list[str]:
    """The columns inside which ``axis`` has a reference value of its own: each run, device
    and scenario (a sweep of parts gives each scenario its sizes), the device aside for the
    device axis itself."""
    return ["run", SCENARIO.name, *([] if axis is DEVICE else [DEVICE.name])]


def fixed_axes(results: pd.DataFrame) -> dict[str, object]:
    """The axes the run held at one value in every row, measured or not, with that value,
    in sweep order."""
    return {axis.name: results[axis.name].iloc[0] for axis in AXES
            if axis.name in results.columns and not results.empty
            and results[axis.name].astype(str).nunique() == 1}


def swept_values(results: pd.DataFrame) -> dict[str, list[tuple[str, bool]]]:
    """The other axes (scenario aside), each with its values, reference first, and whether
    any configuration at the value was measured: a value whose every configuration failed
    is still one the run swept."""
    out = {}
    for axis in AXES:
        if axis is SCENARIO or axis.name in fixed_axes(results) or axis.name not in results:
            continue
        ok = set(results.loc[results["status"] == OK, axis.name].astype(str))
        out[axis.name] = [(str(v), str(v) in ok) for v in in_order(axis, results[axis.name])]
    return out


def references(results: pd.DataFrame, axis: Axis) -> dict[tuple, object]:
    """The reference value of ``axis`` in each group of ``within(axis)``, by the group's
    key (a tuple of its values)."""
    ok = measured(results)
    return {tuple(str(k) for k in group):
            reference_value(axis, list(dict.fromkeys(rows[axis.name])))
            for group, rows in ok.groupby(within(axis), sort=False)}


def _reference_of(rows: pd.DataFrame, axis: Axis, chosen: dict[tuple, object]) -> list:
    """Each row's reference value of ``axis`` (its own value where its group has none)."""
    keys = zip(*(rows[c].astype(str) for c in within(axis)))
    return [chosen.get(tuple(k), v) for k, v in zip(keys, rows[axis.name])]


def at_references(results: pd.DataFrame, axes: list[Axis]) -> pd.DataFrame:
    """The rows of ``results`` at their reference value of each of ``axes``, and those
    whose counterpart at the reference was not measured (it ran out of memory, say, where
    bf16 did not): the run as the charts that draw absolute times show it, with nothing
    measured left out of them for want of a reference."""
    if "run" not in results.columns:
        results = results.assign(run=results["run_id"])
    keep = np.ones(len(results), dtype=bool)
    ok = results["status"] == OK
    for axis in axes:
        reference = _reference_of(results, axis, references(results, axis))
        at = np.array([str(r) == str(v) for r, v in zip(reference, results[axis.name])], bool)
        columns = [c for c in pairing_key(axis) if c in results.columns]
        measured_there = set(map(tuple, results.loc[at & ok, columns].astype(str).to_numpy()))
        orphan = np.array([tuple(k) not in measured_there
                           for k in results[columns].astype(str).to_numpy()], bool)
        keep &= at | orphan
    return results[keep]


def pairing_key(axis: Axis) -> list[str]:
    """The columns a configuration and its counterpart at the reference share: every
    dimension but ``axis``. A device differs in its name too, and in the optimizer
    implementation `auto` resolves to on it (a loop on the CPU, foreach on CUDA), so a device
    is paired with another whatever implementation each ran."""
    if axis is DEVICE:
        return ["run", *key(axis, OPTIMIZER_IMPL), "phase"]
    return ["run", *key(axis), "phase", "device_name"]


def axis_ratios(results: pd.DataFrame, axis: Axis, paired: pd.DataFrame | None = None,
                threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """A row per configuration away from its scenario's reference value of ``axis`` and
    phase: `value`, `reference`, both medians (`config_ms`, `reference_ms`), `ratio`, its
    interval (`ci_low`, `ci_high`), `interval` (`paired` or `unpaired`) and `verdict`.
    ``paired`` is the run's ratios.csv rows, where it has them."""
    ok = measured(results)
    columns = ["run", "where", *key(), "device_name", "phase", "config_ms", "reference_ms",
               "value", "reference", "ratio", "ci_low", "ci_high", "interval", "verdict",
               "config_id"]
    if ok.empty:
        return pd.DataFrame(columns=columns)
    ok = ok.assign(reference=_reference_of(ok, axis, references(results, axis)))
    is_reference = [str(v) == str(r) for v, r in zip(ok[axis.name], ok["reference"])]
    base, other = ok[is_reference], ok[[not r for r in is_reference]]
    join = pairing_key(axis)
    pairs = other.merge(base[[*join, "median_ms", "ci_low_ms", "ci_high_ms"]], on=join,
                        suffixes=("", "_reference"))
    # a CUDA graph's phase rows have no time of their own: nothing to set against
    pairs = pairs[(pairs["median_ms"] > 0) & (pairs["median_ms_reference"] > 0)]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    out = pairs.assign(value=pairs[axis.name].astype(str),
                       reference=pairs["reference"].astype(str),
                       config_ms=pairs["median_ms"], reference_ms=pairs["median_ms_reference"])
    out["ratio"] = out["config_ms"] / out["reference_ms"]
    out["ci_low"], out["ci_high"] = ratio_interval(
        out["ratio"], pairs["ci_low_ms"].to_numpy(), pairs["ci_high_ms"].to_numpy(),
        pairs["ci_low_ms_reference"].to_numpy(), pairs["ci_high_ms_reference"].to_numpy())
    out["interval"] = UNPAIRED
    out["config_id"] = [config_id(r) for r in out.to_dict("records")]
    out["where"] = _where(out, axis)
    out = _with_paired(out, paired, axis, _run_ids(results))
    out["verdict"] = [interval_verdict(lo, hi, threshold) if np.isfinite(lo) and np.isfinite(hi)
                      else "no interval" for lo, hi in zip(out["ci_low"], out["ci_high"])]
    return out[columns].reset_index(drop=True)


def _where(out: pd.DataFrame, axis: Axis) -> list[str]:
    """Which series a pair belongs to: its run (where there are several) and device (but
    for the device axis itself). Pairs of two series are never pooled."""
    several = out["run"].nunique() > 1
    return [" · ".join(p for p in ((f"run {r}" if several else ""),
                                   ("" if axis is DEVICE else f"{d} ({n})")) if p)
            for r, d, n in zip(out["run"], out[DEVICE.name], out["device_name"])]


def _run_ids(results: pd.DataFrame) -> dict[str, str]:
    """Each run's label (its folder's name) to its run_id, which ratios.csv records."""
    if "run" not in results.columns:
        return {r: r for r in results["run_id"].unique()}
    return dict(zip(results["run"], results["run_id"]))


def _with_paired(out: pd.DataFrame, paired: pd.DataFrame | None, axis: Axis,
                 run_ids: dict[str, str]) -> pd.DataFrame:
    """The paired ratio and interval where the run timed the pair together: a group of the
    same run that compared this axis, against the same reference value."""
    if paired is None or paired.empty:
        return out
    paired = paired[paired["compared"] == axis.name]
    index = {(run, c, p, str(ref)): (r, lo, hi) for run, c, p, ref, r, lo, hi in zip(
        paired["run_id"], paired["config_id"], paired["phase"], paired["reference"],
        paired["ratio"], paired["ci_low"], paired["ci_high"])}
    for i, (run, cid, phase, ref) in enumerate(zip(out["run"], out["config_id"], out["phase"],
                                                    out["reference"])):
        found = index.get((run_ids.get(run, run), cid, phase, str(ref)))
        if found is not None:
            out.loc[out.index[i], ["ratio", "ci_low", "ci_high", "interval"]] = [
                *found, PAIRED]
    return out


def axis_summary(ratios: pd.DataFrame) -> pd.DataFrame:
    """Per series (``where``), scenario, value and phase: how many configurations, the
    geometric mean ratio and the range, and how many of them each verdict."""
    if ratios.empty:
        return pd.DataFrame(columns=["where", SCENARIO.name, "value", "phase",
                                     "configurations", "geomean", "lowest", "highest",
                                     "verdicts"])
    rows = []
    for (where, scenario, value, phase), cell in ratios.groupby(
            ["where", SCENARIO.name, "value", "phase"], sort=False):
        counts = cell["verdict"].value_counts()
        rows.append({"where": where, SCENARIO.name: scenario, "value": value, "phase": phase,
                     "configurations": len(cell),
                     "geomean": float(np.exp(np.log(cell["ratio"]).mean())),
                     "lowest": float(cell["ratio"].min()), "highest": float(cell["ratio"].max()),
                     "verdicts": ", ".join(f"{n} {v}" for v, n in counts.items())})
    table = pd.DataFrame(rows)
    order = {v: i for i, v in enumerate(ordered(ratios[SCENARIO.name]))}
    return table.sort_values(["where", SCENARIO.name],
                             key=lambda s: s.map(order) if s.name == SCENARIO.name else s,
                             kind="stable").reset_index(drop=True)
