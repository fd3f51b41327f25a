"""The report's figures. Each takes a run's rows, or the tidy table made of them once for
every figure (``bench.present.labels.tidy``: one row per measured configuration and phase,
with its panel and hover text), and returns a Plotly figure, or None when the run has
nothing to draw for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from bench.analyze.tables import ordered, scaling_table, setup_ratio_table
from bench.axes import BATCH_SIZE, DDP_WRAP, DEVICE, OPTIMIZER_SETUP, SCENARIO, WORLD_SIZE
from bench.present.labels import esc, labelled, tidy
from bench.schema import MIB, OPTIMIZER_PHASE, PHASES, STEP, TIMED_PHASES

SCEN, SETUP, BATCH = SCENARIO.name, OPTIMIZER_SETUP.name, BATCH_SIZE.name
WRAP, WORLD = DDP_WRAP.name, WORLD_SIZE.name
PHASE_COLORS = dict(zip(TIMED_PHASES, ("#4C78A8", "#F58518", "#54A24B", "#B279A2",
                                       "#9D755D")))
SETUP_DASH = dict(zip(OPTIMIZER_SETUP.order, ("solid", "dash", "dot")))
WRAP_DASH = ("solid", "dash", "dot")
GPU_MEMORY = {"cuda_peak_allocated_mib": "CUDA peak allocated (MiB)",
              "cuda_peak_reserved_mib": "CUDA peak reserved (MiB)",
              "nvml_used_mib_max": "NVML device memory used (MiB)",
              "nvml_process_mib_max": "NVML process memory (MiB)"}
GPU_ACTIVITY = {"gpu_util_pct_mean": "GPU utilization (%)", "sm_clock_mhz_mean": "SM clock (MHz)",
                "power_w_mean": "board power (W)"}
BREAKDOWN = {"param_bytes": "parameters", "grad_bytes": "gradients",
             "optimizer_state_bytes": "optimizer state", "activation_bytes": "activations"}
ROW_HEIGHT = 300


def grid(rows: Sequence[str], cols: Sequence[str], title: str, *,
         col_titles: Sequence[str] | None = None, shared_y: bool = False) -> go.Figure:
    """Panels of a figure: a row per device (and size, optimizer), a column per ``cols``.
    With one row, its name goes under the title instead of beside the panels."""
    fig = make_subplots(rows=len(rows), cols=len(cols),
                        column_titles=[esc(c) for c in col_titles or cols],
                        row_titles=[esc(r) for r in rows] if len(rows) > 1 else None,
                        shared_yaxes="rows" if shared_y else False,
                        vertical_spacing=min(0.3 / len(rows), 0.12),
                        horizontal_spacing=min(0.3 / len(cols), 0.08))
    heading = esc(title) + (f"<br><sub>{esc(rows[0])}</sub>" if len(rows) == 1 else "")
    fig.update_layout(title=heading, template="plotly_white",
                      height=140 + ROW_HEIGHT * len(rows), margin=dict(t=110))
    fig.update_annotations(font_size=12)
    return fig


class Traces:
    """Traces gathered with their panel, then added in one call: adding them one by one
    makes Plotly re-validate the figure each time."""

    def __init__(self):
        self.traces, self.rows, self.cols = [], [], []

    def add(self, trace: go.BaseTraceType, row: int, col: int) -> None:
        self.traces.append(trace)
        self.rows.append(row)
        self.cols.append(col)

    def into(self, fig: go.Figure) -> go.Figure:
        if self.traces:
            fig.add_traces(self.traces, rows=self.rows, cols=self.cols)
        return fig


def hover(rows: pd.DataFrame, lines: Iterable[str]) -> list[str]:
    """Each row's configuration, then its own line (the value shown)."""
    return [f"{h}<br>{esc(line)}" for h, line in zip(rows["hover"], lines)]


def scenario_colors(d: pd.DataFrame) -> dict[str, str]:
    palette = qualitative.Plotly
    return {s: palette[i % len(palette)] for i, s in enumerate(ordered(d[SCEN]))}


def phase_breakdown(d: pd.DataFrame, scenario: str) -> go.Figure | None:
    """Stacked forward / backward / optimizer medians per batch size, and beside each stack
    the step timed with no phase boundaries; a panel per device (row) and setup (column)."""
    d = tidy(d)
    d = d[d[SCEN] == scenario]
    if d.empty:
        return None
    panels, setups = ordered(d["panel"]), ordered(d[SETUP], OPTIMIZER_SETUP.order)
    fig = grid(panels, setups, f"{scenario}: median time per phase (ms) by batch size; "
               "beside each stack, the step timed without phase boundaries",
               col_titles=[OPTIMIZER_SETUP.describe(s) for s in setups], shared_y=True)
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        for c, setup in enumerate(setups, 1):
            cell = d[(d["panel"] == panel) & (d[SETUP] == setup)]
            for phase in TIMED_PHASES:
                rows = cell[cell["phase"] == phase].sort_values(BATCH)
                if rows.empty:
                    continue
                slot = STEP if phase == STEP else "phases"
                medians = rows["median_ms"].tolist()
                # stacked phases share one bar: the interval is drawn on the unbroken step
                errors = (error_bars(medians, rows["ci_low_ms"], rows["ci_high_ms"])
                          if phase == STEP else None)
                traces.add(go.Bar(
                    x=[[str(b) for b in rows[BATCH]], [slot] * len(rows)],
                    y=medians, name=phase, legendgroup=phase, error_y=errors,
                    showlegend=r == 1 and c == 1, marker_color=PHASE_COLORS[phase],
                    hovertext=hover(rows, (f"median {v:.4g} ms" for v in rows["median_ms"])),
                    hovertemplate="%{hovertext}<extra></extra>"), r, c)
    fig = traces.into(fig)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="ms", col=1)
    return fig


def error_bars(values: Sequence[float], low: Sequence[float],
               high: Sequence[float]) -> dict:
    """Plotly error bars from an interval around each value (the median's, say)."""
    return dict(type="data", symmetric=False, thickness=1, width=3,
                array=[max(h - v, 0) for v, h in zip(values, high)],
                arrayminus=[max(v - lo, 0) for v, lo in zip(values, low)])


def lines(traces: Traces, d: pd.DataFrame, y: pd.Series, unit: str, row: int, col: int,
          show_legend: bool, colors: dict[str, str],
          bounds: tuple[pd.Series, pd.Series] | None = None) -> None:
    """A line per scenario and setup over batch size; ``y`` (and ``bounds``, an interval
    around it drawn as error bars) is aligned with ``d``."""
    for scenario in ordered(d[SCEN]):
        for setup in ordered(d[SETUP], OPTIMIZER_SETUP.order):
            rows = d[(d[SCEN] == scenario) & (d[SETUP] == setup)].sort_values(BATCH)
            if rows.empty:
                continue
            values = y[rows.index].tolist()
            name = esc(f"{scenario} · {setup}")
            errors = (error_bars(values, bounds[0][rows.index], bounds[1][rows.index])
                      if bounds is not None else None)
            traces.add(go.Scatter(
                x=rows[BATCH].tolist(), y=values, mode="lines+markers", name=name,
                legendgroup=name, showlegend=show_legend, error_y=errors,
                line=dict(color=colors[scenario], dash=SETUP_DASH.get(setup, "dashdot")),
                hovertext=hover(rows, (f"{v:.4g} {unit}" for v in values)),
                hovertemplate="%{hovertext}<extra></extra>"), row, col)


def step_and_throughput(d: pd.DataFrame) -> go.Figure | None:
    """Step time and samples per second against batch size, log axes, a line per scenario
    (dashed by optimizer setup)."""
    d = tidy(d)
    d = d[d["phase"] == STEP]
    if d.empty:
        return None
    panels, colors = ordered(d["panel"]), scenario_colors(d)
    fig = grid(panels, ["ms", "samples/s"], "Step time and throughput against batch size "
               "(bars: the median's 95% interval)",
               col_titles=["step time (ms)", "throughput (samples/s)"])
    samples = d[BATCH] * d[WORLD] * 1e3
    throughput = samples / d["median_ms"]
    times = (d["ci_low_ms"], d["ci_high_ms"])
    rates = (samples / d["ci_high_ms"], samples / d["ci_low_ms"])
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        cell = d[d["panel"] == panel]
        lines(traces, cell, d["median_ms"], "ms", r, 1, r == 1, colors, times)
        lines(traces, cell, throughput, "samples/s", r, 2, False, colors, rates)
    fig = traces.into(fig)
    fig.update_xaxes(type="log", title_text="batch size")
    fig.update_yaxes(type="log")
    return fig


def scaling(results: pd.DataFrame) -> go.Figure | None:
    """Step time, throughput and efficiency against world size: a row per device and
    per-rank batch size, a line per scenario and optimizer setup, dashed by DDP wrap."""
    d = scaling_table(results)
    if d.empty:
        return None
    d = labelled(d, drawn=(SCENARIO, DEVICE, OPTIMIZER_SETUP, DDP_WRAP, WORLD_SIZE))
    d["panel"] += [f" · batch {b} per rank" for b in d[BATCH]]
    panels, colors = ordered(d["panel"]), scenario_colors(d)
    columns = {"median_ms": "step time (ms)", "throughput": "throughput (samples/s, all ranks)",
               "efficiency": "efficiency (1 = perfect scaling)"}
    fig = grid(panels, list(columns), "Scaling with the number of ranks (batch size per rank "
               "fixed)", col_titles=list(columns.values()))
    dashes = {w: WRAP_DASH[i % len(WRAP_DASH)] for i, w in enumerate(ordered(d[WRAP]))}
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        cell = d[d["panel"] == panel]
        for c, (column, label) in enumerate(columns.items(), 1):
            for (scenario, setup, wrap), rows in cell.groupby([SCEN, SETUP, WRAP], sort=True):
                rows = rows[rows[column].notna()]
                if rows.empty:
                    continue
                name = esc(f"{scenario} · {setup} · {DDP_WRAP.describe(wrap)}")
                values = rows[column].tolist()
                traces.add(go.Scatter(
                    x=rows[WORLD].tolist(), y=values, mode="lines+markers", name=name,
                    legendgroup=name, showlegend=r == 1 and c == 1,
                    line=dict(color=colors[scenario], dash=dashes[wrap]),
                    hovertext=hover(rows, (f"{w} rank(s): {label.split(' (')[0]} {v:.4g}"
                                           for w, v in zip(rows[WORLD], values))),
                    hovertemplate="%{hovertext}<extra></extra>"), r, c)
    fig = traces.into(fig)
    fig.update_xaxes(type="log", tickvals=sorted(set(d[WORLD])),
                     title_text="world size (ranks)")
    fig.add_hline(y=1, line_dash="dot", line_color="#888", row="all", col=3)
    return fig


def setup_ratios(results: pd.DataFrame) -> go.Figure | None:
    """Every setup against the reference setup, for the optimizer phase and the step."""
    d = setup_ratio_table(results)
    if d.empty:
        return None
    d = labelled(d)
    panels, colors = ordered(d["panel"]), scenario_colors(d)
    phases = [p for p in (OPTIMIZER_PHASE, STEP) if p in set(d["phase"])]
    reference = OPTIMIZER_SETUP.order[0]
    fig = grid(panels, phases, f"Optimizer setups against `{reference}` (one optimizer per "
               "network): median time ratio, below 1 is faster",
               col_titles=["optimizer phase" if p == OPTIMIZER_PHASE else "whole step"
                           for p in phases])
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        for c, phase in enumerate(phases, 1):
            cell = d[(d["panel"] == panel) & (d["phase"] == phase)]
            for scenario in ordered(cell[SCEN]):
                for setup in ordered(cell[SETUP], OPTIMIZER_SETUP.order):
                    rows = cell[(cell[SCEN] == scenario) & (cell[SETUP] == setup)]
                    rows = rows.sort_values(BATCH)
                    if rows.empty:
                        continue
                    name = esc(f"{scenario} · {setup}")
                    texts = (f"{m:.4g} ms vs {s:.4g} ms with {reference}: ratio {q:.3f}"
                             for m, s, q in zip(rows["median_ms"], rows["median_ms_reference"],
                                                rows["ratio"]))
                    traces.add(go.Scatter(
                        x=[str(b) for b in rows[BATCH]], y=rows["ratio"].tolist(),
                        mode="lines+markers", name=name, legendgroup=name,
                        showlegend=r == 1 and c == 1,
                        line=dict(color=colors[scenario], dash=SETUP_DASH.get(setup, "dot")),
                        hovertext=hover(rows, texts),
                        hovertemplate="%{hovertext}<extra></extra>"), r, c)
    fig = traces.into(fig)
    fig.add_hline(y=1, line_dash="dot", line_color="#888", row="all", col="all")
    fig.update_xaxes(type="category", title_text="batch size")
    return fig


def paired_setup_ratios(ratios: pd.DataFrame) -> go.Figure | None:
    """Each configuration over its group's reference against batch size, for the optimizer
    phase and the step, with the intervals from blocks paired round by round."""
    d = ratios[ratios["phase"].isin([OPTIMIZER_PHASE, STEP])]
    if d.empty:
        return None
    d = labelled(d.reset_index(drop=True))
    panels, colors = ordered(d["panel"]), scenario_colors(d)
    phases = [p for p in (OPTIMIZER_PHASE, STEP) if p in set(d["phase"])]
    references = ", ".join(f"`{r}`" for r in ordered(d["reference"]))
    fig = grid(panels, phases, f"Against {references}, timed together: time ratio with its 95% "
               "interval, below 1 is faster",
               col_titles=["optimizer phase" if p == OPTIMIZER_PHASE else "whole step"
                           for p in phases])
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        for c, phase in enumerate(phases, 1):
            cell = d[(d["panel"] == panel) & (d["phase"] == phase)]
            for (scenario, value), rows in cell.groupby([SCEN, "value"], sort=True):
                rows = rows.sort_values(BATCH)
                name = esc(f"{scenario} · {value}")
                ratio = rows["ratio"].tolist()
                texts = (f"{m:.4g} ms vs {s:.4g} ms: ratio {q:.3f} [{lo:.3f}, {hi:.3f}], {v}"
                         for m, s, q, lo, hi, v in zip(rows["config_ms"], rows["reference_ms"],
                                                       ratio, rows["ci_low"], rows["ci_high"],
                                                       rows["verdict"]))
                traces.add(go.Scatter(
                    x=[str(b) for b in rows[BATCH]], y=ratio, mode="lines+markers", name=name,
                    legendgroup=name, showlegend=r == 1 and c == 1,
                    error_y=error_bars(ratio, rows["ci_low"], rows["ci_high"]),
                    line=dict(color=colors[scenario], dash=SETUP_DASH.get(value, "dot")),
                    hovertext=hover(rows, texts), hovertemplate="%{hovertext}<extra></extra>"),
                    r, c)
    fig = traces.into(fig)
    fig.add_hline(y=1, line_dash="dot", line_color="#888", row="all", col="all")
    fig.update_xaxes(type="category", title_text="batch size")
    return fig


def per_batch_metrics(d: pd.DataFrame, metrics: dict[str, str],
                      title: str) -> go.Figure | None:
    """Per-configuration columns (memory, NVML readings) against batch size, a panel per
    metric that holds any value; rows without any are left out."""
    d = tidy(d)
    # these columns hold the same value on every phase row of a configuration
    d = d[d["phase"] == STEP]
    present = [m for m in metrics if d[m].notna().any()]
    if not present:
        return None
    d = d[d[present].notna().any(axis=1)]
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
               "optimizer setup")
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
               "parameters, gradients, optimizer state, activations saved for backward")
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
