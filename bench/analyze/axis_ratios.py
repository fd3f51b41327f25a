"""What each axis a run varies changes: every configuration at another value of the axis
set against the same configuration at the axis's reference value, phase by phase.

The reference of an axis is found per scenario, since a sweep of parts can give each
scenario sizes of its own: the axis's default where the scenario ran it (fp32, no CUDA
graph, no compile), else the first of its ``order`` (`separate`), else the first value the
run measured (a sweep's values are run in the order it lists them).

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

from bench.analyze.ratios import DEFAULT_THRESHOLD, verdict
from bench.analyze.significance import Z_95
from bench.analyze.tables import measured, ordered
from bench.axes import AXES, BATCH_SIZE, DEVICE, SCENARIO, Axis, config_id, key

# Axes every chart already draws along (scenario by figure or colour, batch size as the x
# axis): they get no view of their own.
DRAWN_ALONG = (SCENARIO, BATCH_SIZE)
PAIRED, UNPAIRED = "paired", "unpaired"


def reference_value(axis: Axis, values: list) -> object:
    """The value the others of ``axis`` are set against, among ``values`` (in the order
    they were measured)."""
    present = {str(v): v for v in values}
    if axis.default is not None and str(axis.default) in present:
        return present[str(axis.default)]
    for value in axis.order:
        if str(value) in present:
            return present[str(value)]
    return values[0]


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
    """The axes the run held at one value, with that value, in sweep order."""
    ok = measured(results)
    return {axis.name: ok[axis.name].iloc[0] for axis in AXES
            if axis.name in ok.columns and not ok.empty and ok[axis.name].nunique() == 1}


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
    """The rows of ``results`` at their reference value of each of ``axes``: the run as the
    charts that draw absolute times show it."""
    if "run" not in results.columns:
        results = results.assign(run=results["run_id"])
    keep = np.ones(len(results), dtype=bool)
    for axis in axes:
        reference = _reference_of(results, axis, references(results, axis))
        keep &= np.array([str(r) == str(v) for r, v in zip(reference, results[axis.name])],
                         dtype=bool)
    return results[keep]


def axis_ratios(results: pd.DataFrame, axis: Axis, paired: pd.DataFrame | None = None,
                threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """A row per configuration away from its scenario's reference value of ``axis`` and
    phase: `value`, `reference`, both medians (`config_ms`, `reference_ms`), `ratio`, its
    interval (`ci_low`, `ci_high`), `interval` (`paired` or `unpaired`) and `verdict`.
    ``paired`` is the run's ratios.csv rows, where it has them."""
    ok = measured(results)
    columns = ["run", *key(), "device_name", "phase", "config_ms", "reference_ms", "value",
               "reference", "ratio", "ci_low", "ci_high", "interval", "verdict", "config_id"]
    if ok.empty:
        return pd.DataFrame(columns=columns)
    ok = ok.assign(reference=_reference_of(ok, axis, references(results, axis)))
    is_reference = [str(v) == str(r) for v, r in zip(ok[axis.name], ok["reference"])]
    base, other = ok[is_reference], ok[[not r for r in is_reference]]
    # the same configuration but for this axis (a device differs in its name too)
    join = ["run", *key(axis), "phase", *([] if axis is DEVICE else ["device_name"])]
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
    half = np.sqrt(_log_se(pairs["ci_low_ms"], pairs["ci_high_ms"]) ** 2
                   + _log_se(pairs["ci_low_ms_reference"], pairs["ci_high_ms_reference"]) ** 2)
    out["ci_low"] = out["ratio"] * np.exp(-Z_95 * half)
    out["ci_high"] = out["ratio"] * np.exp(Z_95 * half)
    out["interval"] = UNPAIRED
    out["config_id"] = [config_id(r) for r in out.to_dict("records")]
    out = _with_paired(out, paired)
    out["verdict"] = [verdict(lo, hi, threshold) if np.isfinite(lo) and np.isfinite(hi)
                      else "no interval" for lo, hi in zip(out["ci_low"], out["ci_high"])]
    return out[columns].reset_index(drop=True)


def _log_se(low: pd.Series, high: pd.Series) -> np.ndarray:
    """The standard error of a median's logarithm from its 95% interval (NaN without one)."""
    low, high = low.to_numpy(dtype=float), high.to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((low > 0) & (high >= low), np.log(high / low) / (2 * Z_95), np.nan)


def _with_paired(out: pd.DataFrame, paired: pd.DataFrame | None) -> pd.DataFrame:
    """The paired ratio and interval where the run timed the pair together."""
    if paired is None or paired.empty:
        return out
    index = {(c, p): (r, lo, hi) for c, p, r, lo, hi in zip(
        paired["config_id"], paired["phase"], paired["ratio"], paired["ci_low"],
        paired["ci_high"])}
    for i, (cid, phase) in enumerate(zip(out["config_id"], out["phase"])):
        found = index.get((cid, phase))
        if found is not None:
            out.loc[out.index[i], ["ratio", "ci_low", "ci_high", "interval"]] = [
                *found, PAIRED]
    return out


def axis_summary(ratios: pd.DataFrame) -> pd.DataFrame:
    """Per scenario, value and phase: how many configurations, the geometric mean ratio
    and the range, and how many of them each verdict."""
    if ratios.empty:
        return pd.DataFrame(columns=[SCENARIO.name, "value", "phase", "configurations",
                                     "geomean", "lowest", "highest", "verdicts"])
    rows = []
    for (scenario, value, phase), cell in ratios.groupby(
            [SCENARIO.name, "value", "phase"], sort=False):
        counts = cell["verdict"].value_counts()
        rows.append({SCENARIO.name: scenario, "value": value, "phase": phase,
                     "configurations": len(cell),
                     "geomean": float(np.exp(np.log(cell["ratio"]).mean())),
                     "lowest": float(cell["ratio"].min()), "highest": float(cell["ratio"].max()),
                     "verdicts": ", ".join(f"{n} {v}" for v, n in counts.items())})
    table = pd.DataFrame(rows)
    order = {v: i for i, v in enumerate(ordered(ratios[SCENARIO.name]))}
    return table.sort_values(SCENARIO.name, key=lambda s: s.map(order),
                             kind="stable").reset_index(drop=True)
