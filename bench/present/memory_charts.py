"""The report's memory and GPU-activity figures: readings per configuration against batch
size, the CUDA peak of each phase, and the analytic breakdown of memory by kind. Readings
that do not move (an SM clock locked at one frequency) are stated in words instead.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from bench.analyze.run_tables import ordered
from bench.axes import OPTIMIZER_SETUP
from bench.present.charts import (BATCH, PHASE_COLORS, SCEN, SETUP, Traces, grid, hover,
                                  lines, scenario_colors)
from bench.present.labels import facet, tidy
from bench.present.page import Table
from bench.schema import MIB, PHASES, STEP

GPU_MEMORY = {"cuda_peak_allocated_mib": "CUDA peak allocated (MiB)",
              "cuda_peak_reserved_mib": "CUDA peak reserved (MiB)",
              "nvml_used_mib_max": "NVML device memory used (MiB)",
              "nvml_process_mib_max": "NVML process memory (MiB)"}
GPU_ACTIVITY = {"gpu_util_pct_mean": "GPU utilization (%)", "sm_clock_mhz_mean": "SM clock (MHz)",
                "power_w_mean": "board power (W)"}
BREAKDOWN = {"param_bytes": "parameters", "grad_bytes": "gradients",
             "optimizer_state_bytes": "optimizer state", "activation_bytes": "activations"}
# A metric whose values all lie within this fraction of their median is stated, not drawn:
# a flat line autoscaled to ticks like "1,979.5" says nothing a sentence does not.
CONSTANT_WITHIN = 0.002


def constant_metrics(d: pd.DataFrame, metrics: dict[str, str]) -> dict[str, float]:
    """The metrics of ``metrics`` whose every value lies within ``CONSTANT_WITHIN`` of their
    median, with that median: stated in words instead of drawn."""
    d = tidy(d)
    d = d[d["phase"] == STEP]
    out = {}
    for metric in metrics:
        values = d[metric].dropna()
        if len(values) and values.median() and (
                (values.max() - values.min()) <= CONSTANT_WITHIN * abs(values.median())):
            out[metric] = float(values.median())
    return out


def per_batch_metrics(d: pd.DataFrame, metrics: dict[str, str],
                      title: str) -> go.Figure | Table | None:
    """Per-configuration columns (memory, NVML readings) against batch size, a panel per
    metric that holds any value and is not constant (``constant_metrics``); rows without
    any are left out. At one batch size, a line of one point per panel says less than a
    table: the readings are a table then."""
    d = tidy(d)
    # these columns hold the same value on every phase row of a configuration
    d = d[d["phase"] == STEP]
    steady = constant_metrics(d, metrics)
    present = [m for m in metrics if d[m].notna().any() and m not in steady]
    if not present:
        return None
    d = d[d[present].notna().any(axis=1)]
    if d[BATCH].nunique() < 2:
        return metrics_table(d, {m: metrics[m] for m in present})
    panels, colors = ordered(d["panel"]), scenario_colors(d)
    fig = grid(panels, present, title, col_titles=[metrics[m] for m in present])
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        cell = d[d["panel"] == panel]
        for c, metric in enumerate(present, 1):
            unit = metrics[metric].rsplit("(", 1)[-1].rstrip(")")
            lines(traces, cell[cell[metric].notna()], d[metric], unit, r, c,
                  r == 1 and c == 1, colors)
    fig = traces.into(fig)
    fig.update_xaxes(type="log", title_text="batch size")
    return fig


def by_batch_and_setup(rows: pd.DataFrame) -> pd.DataFrame:
    setup_rank = {s: i for i, s in enumerate(ordered(rows[SETUP], OPTIMIZER_SETUP.order))}
    return rows.assign(_setup=rows[SETUP].map(setup_rank)).sort_values(
        [BATCH, "_setup"]).drop(columns="_setup")


def batch_setup_axis(rows: pd.DataFrame) -> list[list[str]]:
    return [[str(b) for b in rows[BATCH]], rows[SETUP].tolist()]


def phase_peak_memory(d: pd.DataFrame) -> go.Figure | None:
    """CUDA peak allocated during each phase, grouped by phase, per batch size and setup."""
    d = tidy(d)
    d = d[d["phase"].isin(PHASES) & d["phase_peak_allocated_mib"].notna()]
    if d.empty:
        return None
    panels, scenarios = ordered(d["panel"]), ordered(d[SCEN])
    fig = grid(panels, scenarios, "CUDA peak allocated per phase (MiB), by batch size and "
               "optimizer setup",
               col_titles=[facet(SCEN, s) for s in scenarios])
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        for c, scenario in enumerate(scenarios, 1):
            cell = d[(d["panel"] == panel) & (d[SCEN] == scenario)]
            for phase in PHASES:
                rows = by_batch_and_setup(cell[cell["phase"] == phase])
                if rows.empty:
                    continue
                peaks = rows["phase_peak_allocated_mib"].tolist()
                traces.add(go.Bar(
                    x=batch_setup_axis(rows), y=peaks, name=phase, legendgroup=phase,
                    showlegend=r == 1 and c == 1, marker_color=PHASE_COLORS[phase],
                    hovertext=hover(rows, (f"peak {v:.4g} MiB allocated" for v in peaks)),
                    hovertemplate="%{hovertext}<extra></extra>"), r, c)
    fig = traces.into(fig)
    fig.update_layout(barmode="group")
    return fig


def memory_breakdown(d: pd.DataFrame) -> go.Figure | None:
    """The analytic breakdown (parameters, gradients, optimizer state, activations saved
    for backward) as stacked bars in MiB, per batch size and optimizer setup."""
    d = tidy(d)
    d = d[(d["phase"] == STEP) & d[list(BREAKDOWN)].notna().any(axis=1)]
    if d.empty:
        return None
    panels, scenarios = ordered(d["panel"]), ordered(d[SCEN])
    fig = grid(panels, scenarios, "Memory by kind, computed from the tensors (MiB): "
               "parameters, gradients, optimizer state, activations saved for backward",
               col_titles=[facet(SCEN, s) for s in scenarios])
    colors = dict(zip(BREAKDOWN, ("#4C78A8", "#72B7B2", "#E45756", "#EECA3B")))
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        for c, scenario in enumerate(scenarios, 1):
            rows = by_batch_and_setup(d[(d["panel"] == panel) & (d[SCEN] == scenario)])
            if rows.empty:
                continue
            for column, label in BREAKDOWN.items():
                mib = (rows[column] / MIB).tolist()
                traces.add(go.Bar(
                    x=batch_setup_axis(rows), y=mib, name=label, legendgroup=label,
                    showlegend=r == 1 and c == 1, marker_color=colors[column],
                    hovertext=hover(rows, (f"{label}: {v:.4g} MiB" for v in mib)),
                    hovertemplate="%{hovertext}<extra></extra>"), r, c)
    fig = traces.into(fig)
    fig.update_layout(barmode="stack")
    return fig


def memory_kinds(d: pd.DataFrame) -> list:
    """Beside the stacked bars, where parameters and optimizer state are slivers next to the
    activations: the same breakdown as numbers, per scenario (activations per sample, as
    they grow with the batch), and whether the optimizer setups cost different memory."""
    d = tidy(d)
    d = d[(d["phase"] == STEP) & d[list(BREAKDOWN)].notna().all(axis=1)]
    if d.empty:
        return []
    fixed = ["param_bytes", "grad_bytes", "optimizer_state_bytes"]
    rows, differ = [], []
    for (panel, scenario), cell in d.groupby(["panel", SCEN], sort=False):
        per_setup = cell.groupby(SETUP)[fixed].median().sum(axis=1)
        if per_setup.nunique() > 1:
            differ.append(scenario)
        per_sample = (cell["activation_bytes"] / cell[BATCH]).median() / MIB
        rows.append([panel, scenario, *(f"{cell[c].median() / MIB:.4g}" for c in fixed),
                     f"{per_sample:.4g}"])
    setups = d[SETUP].nunique()
    sentence = ("" if setups < 2 else
                "The optimizer setups hold different parameter, gradient and optimizer-state "
                f"memory in {', '.join(differ)}." if differ else
                f"The {setups} optimizer setups hold the same parameters, gradients and "
                "optimizer state in every scenario: they differ in time, not in memory.")
    table = Table(["where", SCEN, "parameters (MiB)", "gradients (MiB)",
                   "optimizer state (MiB)", "activations per sample (MiB)"], rows,
                  numeric=frozenset({2, 3, 4, 5}))
    return [s for s in (sentence, table) if s]


def metrics_table(d: pd.DataFrame, metrics: dict[str, str]) -> Table:
    """Each configuration's readings in a row (``d``: tidy `step` rows)."""
    d = d.sort_values(["panel", SCEN, SETUP], key=lambda s: s.astype(str))
    rows = [[panel, scenario, setup, *(f"{r[m]:.5g}" if pd.notna(r[m]) else "-"
                                       for m in metrics)]
            for panel, scenario, setup, r in zip(d["panel"], d[SCEN], d[SETUP],
                                                 d.to_dict("records"))]
    return Table(["where", SCEN, SETUP, *metrics.values()], rows,
                 numeric=frozenset(range(3, 3 + len(metrics))))
