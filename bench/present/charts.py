"""The report's figures. Each takes a run's rows, or the tidy table made of them once for
every figure (``bench.present.labels.tidy``: one row per measured configuration and phase,
with its panel and hover text), and returns a Plotly figure, or None when the run has
nothing to draw for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from bench.analyze.run_tables import ordered, scaling_table, setup_ratio_table
from bench.axes import BATCH_SIZE, DDP_WRAP, DEVICE, OPTIMIZER_SETUP, SCENARIO, WORLD_SIZE
from bench.present.labels import esc, facet, labelled, tidy
from bench.schema import OPTIMIZER_PHASE, STEP, TIMED_PHASES

SCEN, SETUP, BATCH = SCENARIO.name, OPTIMIZER_SETUP.name, BATCH_SIZE.name
WRAP, WORLD = DDP_WRAP.name, WORLD_SIZE.name
PHASE_COLORS = dict(zip(TIMED_PHASES, ("#4C78A8", "#F58518", "#54A24B", "#B279A2",
                                       "#9D755D")))
SETUP_DASH = dict(zip(OPTIMIZER_SETUP.order, ("solid", "dash", "dot")))
# dashes alone are hard to tell apart on short lines: each setup has a marker too
SETUP_SYMBOL = dict(zip(OPTIMIZER_SETUP.order, ("circle", "square", "diamond")))
SMALL_MULTIPLES = 4  # scenario panels per row
WRAP_DASH = ("solid", "dash", "dot")
ROW_HEIGHT = 300


def grid(rows: Sequence[str], cols: Sequence[str], title: str, *,
         col_titles: Sequence[str] | None = None, shared_y: bool = False) -> go.Figure:
    """Panels of a figure: a row per device (and any other axis the chart does not draw), a
    column per ``cols``. Each panel's title is written across it, above it: a row's name
    (`device = cuda:0 · precision = bf16`) over its column's. With one row, the row's name
    goes under the figure's title instead."""
    columns = [esc(c) for c in col_titles or cols]
    titles = ([f"{esc(r)}<br>{c}" for r in rows for c in columns] if len(rows) > 1
              else columns)
    fig = make_subplots(rows=len(rows), cols=len(cols), subplot_titles=titles,
                        shared_yaxes="rows" if shared_y else False,
                        vertical_spacing=min(0.3 / len(rows), 0.12),
                        horizontal_spacing=min(0.3 / len(cols), 0.08))
    heading = esc(title) + (f"<br><sub>{esc(rows[0])}</sub>" if len(rows) == 1 else "")
    # a row's title sits over its panels: more rows need more room above the first
    top = 90 if len(rows) == 1 else 110
    fig.update_layout(title=heading, template="plotly_white",
                      height=top + 30 + ROW_HEIGHT * len(rows), margin=dict(t=top, b=50))
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
               col_titles=[facet(SETUP, s) for s in setups], shared_y=True)
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
    fig.update_xaxes(title_text="batch size")
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
            errors = (error_bars(values, bounds[0][rows.index], bounds[1][rows.index])
                      if bounds is not None else None)
            # grouped by scenario in the legend (its title once), a setup an entry in it
            traces.add(go.Scatter(
                x=rows[BATCH].tolist(), y=values, mode="lines+markers",
                name=esc(facet(SETUP, setup)), legendgroup=esc(facet(SCEN, scenario)),
                legendgrouptitle_text=esc(facet(SCEN, scenario)),
                showlegend=show_legend, error_y=errors,
                marker=dict(symbol=SETUP_SYMBOL.get(setup, "x"), size=7),
                line=dict(color=colors[scenario], dash=SETUP_DASH.get(setup, "dashdot")),
                hovertext=hover(rows, (f"{v:.4g} {unit}" for v in values)),
                hovertemplate="%{hovertext}<extra></extra>"), row, col)


def step_and_throughput(d: pd.DataFrame) -> list[go.Figure]:
    """Step time, then throughput, against batch size on log axes: a small panel per
    scenario (and device), each scaled to its own data, a line per optimizer setup. One
    figure per measure, so a legend holds the setups only. Empty where no configuration
    ran at two batch sizes: a line of one point says nothing the phase charts do not."""
    d = tidy(d)
    d = d[d["phase"] == STEP]
    if d.empty or d[BATCH].nunique() < 2:
        return []
    samples = d[BATCH] * d[WORLD] * 1e3
    return [per_scenario(d, d["median_ms"], (d["ci_low_ms"], d["ci_high_ms"]), "ms",
                         "Step time (ms) against batch size (bars: the median's 95% "
                         "interval)"),
            per_scenario(d, samples / d["median_ms"],
                         (samples / d["ci_high_ms"], samples / d["ci_low_ms"]), "samples/s",
                         "Throughput (samples/s) against batch size")]


def per_scenario(d: pd.DataFrame, y: pd.Series, bounds: tuple[pd.Series, pd.Series],
                 unit: str, title: str) -> go.Figure:
    """``y`` against batch size in small multiples: a panel per (device, scenario),
    ``SMALL_MULTIPLES`` to a row, a line per setup."""
    cells = [(panel, scenario) for panel in ordered(d["panel"])
             for scenario in ordered(d[d["panel"] == panel][SCEN])]
    several = d["panel"].nunique() > 1
    names = [(f"{panel} · " if several else "") + facet(SCEN, scenario)
             for panel, scenario in cells]
    columns = min(SMALL_MULTIPLES, len(cells))
    rows = -(-len(cells) // columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[esc(n) for n in names],
                        vertical_spacing=min(0.35 / rows, 0.12), horizontal_spacing=0.06)
    heading = esc(title) + ("" if several else f"<br><sub>{esc(d['panel'].iloc[0])}</sub>")
    fig.update_layout(title=heading, template="plotly_white", height=150 + 250 * rows,
                      margin=dict(t=110), legend=dict(title_text=esc(SETUP)))
    fig.update_annotations(font_size=12)
    setups = ordered(d[SETUP], OPTIMIZER_SETUP.order)
    colors = {s: qualitative.D3[i % len(qualitative.D3)] for i, s in enumerate(setups)}
    traces = Traces()
    for i, (panel, scenario) in enumerate(cells):
        cell = d[(d["panel"] == panel) & (d[SCEN] == scenario)]
        for setup in setups:
            rows_ = cell[cell[SETUP] == setup].sort_values(BATCH)
            if rows_.empty:
                continue
            values = y[rows_.index].tolist()
            traces.add(go.Scatter(
                x=rows_[BATCH].tolist(), y=values, mode="lines+markers",
                name=esc(facet(SETUP, setup)), legendgroup=setup, showlegend=i == 0,
                error_y=error_bars(values, bounds[0][rows_.index], bounds[1][rows_.index]),
                marker=dict(symbol=SETUP_SYMBOL.get(setup, "x"), size=7, color=colors[setup]),
                line=dict(color=colors[setup], dash=SETUP_DASH.get(setup, "dashdot")),
                hovertext=hover(rows_, (f"{v:.4g} {unit}" for v in values)),
                hovertemplate="%{hovertext}<extra></extra>"), i // columns + 1, i % columns + 1)
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
               col_titles=[facet("phase", p) for p in phases])
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
                    texts = (f"{m:.4g} ms vs {s:.4g} ms with {reference}: ratio {q:.3f}"
                             for m, s, q in zip(rows["median_ms"], rows["median_ms_reference"],
                                                rows["ratio"]))
                    traces.add(go.Scatter(
                        x=[str(b) for b in rows[BATCH]], y=rows["ratio"].tolist(),
                        mode="lines+markers", showlegend=r == 1 and c == 1,
                        **legend_entry(scenario, SETUP, setup),
                        line=dict(color=colors[scenario], dash=SETUP_DASH.get(setup, "dot")),
                        hovertext=hover(rows, texts),
                        hovertemplate="%{hovertext}<extra></extra>"), r, c)
    fig = traces.into(fig)
    fig.add_hline(y=1, line_dash="dot", line_color="#888", row="all", col="all")
    fig.update_xaxes(type="category", title_text="batch size")
    ratio_axis(fig, d["ratio"])
    return fig


def legend_entry(scenario: str, axis: str, value: object) -> dict:
    """A line's legend entry: under its scenario's title, named by its value of the axis
    compared, so 20 lines read as a few scenarios of a few values each."""
    return dict(name=esc(facet(axis, value)), legendgroup=esc(facet(SCEN, scenario)),
                legendgrouptitle_text=esc(facet(SCEN, scenario)))


def ratio_axis(fig: go.Figure, ratios: pd.Series) -> None:
    """Log y axes, symmetric about 1 (x0.8 is as far down as x1.25 is up) and scaled to the
    ratios: an interval much wider than them runs off the panel instead of flattening
    every line against 1."""
    values = ratios[ratios > 0].to_numpy(dtype=float)
    reach = max(float(np.abs(np.log10(values)).max()) if values.size else 0.0,
                math.log10(1.1)) * 1.5
    fig.update_yaxes(type="log", range=[-reach, reach])
    fig.update_layout(legend_groupclick="toggleitem")


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
               col_titles=[facet("phase", p) for p in phases])
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        for c, phase in enumerate(phases, 1):
            cell = d[(d["panel"] == panel) & (d["phase"] == phase)]
            for (scenario, value), rows in cell.groupby([SCEN, "value"], sort=True):
                rows = rows.sort_values(BATCH)
                ratio = rows["ratio"].tolist()
                texts = (f"{m:.4g} ms vs {s:.4g} ms: ratio {q:.3f} [{lo:.3f}, {hi:.3f}], {v}"
                         for m, s, q, lo, hi, v in zip(rows["config_ms"], rows["reference_ms"],
                                                       ratio, rows["ci_low"], rows["ci_high"],
                                                       rows["verdict"]))
                traces.add(go.Scatter(
                    x=[str(b) for b in rows[BATCH]], y=ratio, mode="lines+markers",
                    showlegend=r == 1 and c == 1,
                    **legend_entry(scenario, rows["compared"].iloc[0], value),
                    error_y=error_bars(ratio, rows["ci_low"], rows["ci_high"]),
                    line=dict(color=colors[scenario], dash=SETUP_DASH.get(value, "dot")),
                    hovertext=hover(rows, texts), hovertemplate="%{hovertext}<extra></extra>"),
                    r, c)
    fig = traces.into(fig)
    fig.add_hline(y=1, line_dash="dot", line_color="#888", row="all", col="all")
    fig.update_xaxes(type="category", title_text="batch size")
    ratio_axis(fig, d["ratio"])
    return fig
