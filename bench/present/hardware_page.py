"""The hardware comparison page of a submission: the same configurations across device
types, with intervals (``bench/history/hardware.py`` computes it; this only draws)."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import pandas as pd

from bench.analyze.judge import DEFAULT_THRESHOLD
from bench.history.hardware import TYPE, HardwareComparison
from bench.present.charts import error_bars
from bench.present.page import Details, Section, Table, write_page
from bench.schema import STEP


def interval_text(value: float, low: float, high: float, digits: int = 3) -> str:
    if not pd.notna(value):
        return "-"
    if not (pd.notna(low) and pd.notna(high)):
        return f"{value:.{digits}g}"
    return f"{value:.{digits}g} [{low:.{digits}g}, {high:.{digits}g}]"


def step_chart(times: pd.DataFrame, types: list[str]) -> go.Figure:
    """The step's median per configuration, a series per device type, with its interval."""
    fig = go.Figure()
    for device_type in types:
        rows = times[times[TYPE] == device_type]
        fig.add_trace(go.Scatter(
            x=rows["config"], y=rows["median_ms"], name=device_type, mode="markers",
            error_y=error_bars(rows["median_ms"], rows["ci_low_ms"], rows["ci_high_ms"]),
            hovertext=[f"{device_type}<br>{c}<br>{interval_text(m, lo, hi)} ms"
                       for c, m, lo, hi in zip(rows["config"], rows["median_ms"],
                                               rows["ci_low_ms"], rows["ci_high_ms"])],
            hoverinfo="text"))
    fig.update_layout(title="step time by device type (median, 95% interval)",
                      legend_title_text="device type", height=480,
                      margin=dict(l=60, r=20, t=60, b=160))
    fig.update_yaxes(title_text="ms", type="log")
    return fig


def wide_table(times: pd.DataFrame, types: list[str]) -> Table:
    """A row per configuration and phase: each type's time, and its ratio to the first."""
    header = ["configuration", "phase", f"{types[0]} (ms)"]
    for device_type in types[1:]:
        header += [f"{device_type} (ms)", f"{device_type} / {types[0]}", "verdict"]
    rows, classes = [], []
    for (config, phase), group in times.groupby(["config", "phase"], sort=False):
        by_type = {t: r for t, r in zip(group[TYPE], group.to_dict("records"))}
        row = [config, phase]
        for i, device_type in enumerate(types):
            r = by_type.get(device_type)
            row.append(interval_text(r["median_ms"], r["ci_low_ms"], r["ci_high_ms"])
                       if r else "not measured")
            if i:
                row += [interval_text(r["ratio"], r["ratio_low"], r["ratio_high"]) if r
                        else "-", (r["verdict"] or "no interval") if r else "-"]
        rows.append(row)
        classes.append("")
    return Table(header, rows, classes, numeric=frozenset(range(2, len(header))))


def runs_table(comparison: HardwareComparison) -> Table:
    runs = comparison.runs
    rows = [[r["run_id"], r[TYPE], r["partition"] or "-", r["job_id"] or "-",
             r["hostname"] or "-", r["torch_version"] or "-"] for r in runs.to_dict("records")]
    return Table(["run", "device type", "partition", "Slurm job", "node", "torch"], rows)


def hardware_sections(comparison: HardwareComparison, store: str, not_stored: list[str] = (),
                      threshold: float = DEFAULT_THRESHOLD) -> tuple[list[str], list[Section]]:
    types, times = comparison.types, comparison.times
    intro = [f"{len(comparison.runs)} runs from the history store {store}."]
    if not_stored:
        intro.append("Not in the store (their jobs did not complete): "
                     + ", ".join(not_stored) + ".")
    if not types:
        return intro + ["No run of this submission is in the store yet."], []
    configs = times["config"].nunique()
    intro.append(f"{configs} configuration{'s' * (configs != 1)} on {len(types)} device "
                 f"type{'s' * (len(types) != 1)}: {', '.join(types)}. Each time is the median "
                 "of a run's samples with its 95% interval. Each ratio is against "
                 f"{types[0]}, its interval combined from the two medians' own intervals: "
                 "two machines are never timed together, so the drift between their runs is "
                 f"not in it. `same`: the whole interval within ±{threshold * 100:g}% of 1; "
                 "`faster`, `slower`: it excludes 1; `inconclusive`: neither.")
    step = times[times["phase"] == STEP]
    sections = [Section("Step time by device type", [step_chart(step, types),
                                                     wide_table(step, types)], "step"),
                Section("Every phase", [Details("each phase's time and ratio, per "
                                                "configuration", [wide_table(times, types)])],
                        "phases"),
                Section("Runs", [runs_table(comparison)], "runs")]
    return intro, sections


def write_hardware_page(path: Path, comparison: HardwareComparison, store: str,
                        not_stored: list[str] = (),
                        threshold: float = DEFAULT_THRESHOLD) -> Path:
    intro, sections = hardware_sections(comparison, store, not_stored, threshold)
    return write_page(path, "multinet-bench: the same configurations across device types",
                      sections, intro)
