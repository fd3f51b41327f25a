"""A view per axis the run varies: each of its values against the axis's reference value,
phase by phase and scenario by scenario (``bench/analyze/axis_ratios.py``).

This is the question a sweep over precision, CUDA graphs or sizes is run for, so it gets a
chart of its own rather than a facet of every other chart: the page grows with the axes a
run varies, not with the product of their values. Each chart is a dot per configuration
(its ratio with its interval) on one row per scenario, a column per phase, a colour per
value; the table under it sums the dots up per scenario.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from bench.analyze.axis_ratios import (PAIRED, axis_ratios, axis_summary, in_order,
                                       varied_axes)
from bench.analyze.run_tables import ordered
from bench.axes import OPTIMIZER_SETUP, SCENARIO, Axis
from bench.present.labels import config_hover, esc, facet
from bench.present.page import Details, Section, Table
from bench.schema import TIMED_PHASES

# The optimizer setups have a section of their own, with the paired ratios of their groups.
OWN_SECTION = (OPTIMIZER_SETUP,)
ROW_PX, VALUE_PX = 34, 12


def axis_figure(ratios: pd.DataFrame, axis: Axis) -> go.Figure:
    """The dot chart of one axis's ratios."""
    phases = [p for p in TIMED_PHASES if p in set(ratios["phase"])]
    ratios = ratios.assign(row=series_rows(ratios))
    scenarios = list(dict.fromkeys(ratios.sort_values(["where", SCENARIO.name])["row"]))
    values = in_order(axis, ratios["value"])
    reference = ", ".join(ordered(ratios["reference"]))
    fig = make_subplots(rows=1, cols=len(phases), shared_yaxes=True,
                        subplot_titles=[esc(facet("phase", p)) for p in phases],
                        horizontal_spacing=0.03)
    palette = qualitative.D3
    colors = {v: palette[i % len(palette)] for i, v in enumerate(values)}
    traces, rows, cols = [], [], []
    for c, phase in enumerate(phases, 1):
        for value in values:
            cell = ratios[(ratios["phase"] == phase) & (ratios["value"] == value)]
            if cell.empty:
                continue
            texts = [config_hover(r, [f"{r['config_ms']:.4g} ms vs {r['reference_ms']:.4g} ms "
                                      f"at {axis.name} = {r['reference']}",
                                      f"ratio {r['ratio']:.3f} [{r['ci_low']:.3f}, "
                                      f"{r['ci_high']:.3f}], {r['verdict']} "
                                      f"({r['interval']})"])
                     for r in cell.to_dict("records")]
            traces.append(go.Scatter(
                x=cell["ratio"].tolist(), y=cell["row"].tolist(), mode="markers",
                name=esc(facet(axis.name, value)), legendgroup=str(value),
                showlegend=c == 1, offsetgroup=str(value), orientation="h",
                marker=dict(color=colors[value], size=8,
                            symbol=["circle" if i == PAIRED else "circle-open"
                                    for i in cell["interval"]]),
                error_x=dict(type="data", symmetric=False, thickness=1, width=2,
                             array=(cell["ci_high"] - cell["ratio"]).clip(lower=0).tolist(),
                             arrayminus=(cell["ratio"] - cell["ci_low"]).clip(lower=0)
                             .tolist()),
                hovertext=texts, hovertemplate="%{hovertext}<extra></extra>"))
            rows.append(1)
            cols.append(c)
    fig.add_traces(traces, rows=rows, cols=cols)
    fig.add_vline(x=1, line_dash="dot", line_color="#888")
    spread = ratios[["ci_low", "ratio", "ci_high"]].to_numpy(dtype=float)
    finite = spread[np.isfinite(spread) & (spread > 0)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.5, 2.0)
    # a symmetric log range around 1, so faster and slower read at the same scale
    reach = max(abs(np.log10(low)), abs(np.log10(high)), np.log10(1.1)) * 1.08
    fig.update_xaxes(type="log", range=[-reach, reach], title_text="ratio (log)")
    fig.update_yaxes(categoryorder="array", categoryarray=scenarios[::-1],
                     title_text=None)
    height = 170 + len(scenarios) * (ROW_PX + VALUE_PX * len(values))
    fig.update_layout(
        title=esc(f"{axis.name}: each value's time over {axis.name} = {reference}, "
                  "per configuration (bars: 95% interval; filled: timed together, paired)"),
        template="plotly_white", height=height, scattermode="group",
        legend=dict(title_text=esc(axis.name)), margin=dict(t=90, b=60))
    fig.update_annotations(font_size=12)
    return fig


def series_rows(ratios: pd.DataFrame) -> list[str]:
    """The chart's row of each pair: its scenario, and its run and device where the ratios
    come from several (a ratio on the CPU and one on a GPU are two rows, never one)."""
    several = ratios["where"].nunique() > 1
    return [f"{s} · {w}" if several and w else str(s)
            for s, w in zip(ratios[SCENARIO.name], ratios["where"])]


def summary_table(ratios: pd.DataFrame, axis: Axis) -> Table:
    table = axis_summary(ratios)
    rows = [[w, s, facet(axis.name, v), p, n, f"{g:.3f}", f"{lo:.3f} to {hi:.3f}", verdicts]
            for w, s, v, p, n, g, lo, hi, verdicts in table.itertuples(index=False)]
    return Table(["where", SCENARIO.name, "value", "phase", "configurations",
                  "geometric mean ratio", "range", "verdicts"], rows, numeric=frozenset({4, 5}))


def headline(ratios: pd.DataFrame, axis: Axis) -> str:
    """One sentence per value: its step against the reference, over every scenario."""
    steps = ratios[ratios["phase"] == TIMED_PHASES[-1]]
    if steps.empty:
        steps = ratios
    parts = []
    several = steps["where"].nunique() > 1
    for (where, value), cell in steps.groupby(["where", "value"], sort=False):
        counts = cell["verdict"].value_counts()
        geomean = float(np.exp(np.log(cell["ratio"]).mean()))
        parts.append(f"{facet(axis.name, value)}{f' on {where}' if several else ''}: "
                     f"{cell['phase'].iloc[0]} time x{geomean:.3f} "
                     f"of {axis.name} = {cell['reference'].iloc[0]} (geometric mean of "
                     f"{len(cell)} configuration(s); "
                     + ", ".join(f"{n} {v}" for v, n in counts.items()) + ")")
    unpaired = (ratios["interval"] != PAIRED).any()
    return ("; ".join(parts) + "."
            + (" Unfilled dots were not timed together with their reference: their "
               "interval holds the two medians' own uncertainty, not the machine's drift "
               "between them, so a small difference may be the machine's." if unpaired else ""))


def axis_views_section(results: pd.DataFrame, paired: pd.DataFrame | None) -> Section | None:
    """The section of views, or None when the run varies no axis but those drawn
    everywhere (scenario, batch size) and the optimizer setups."""
    axes = [a for a in varied_axes(results) if a not in OWN_SECTION]
    if not axes:
        return None
    section = Section("What each varied axis changes", [
        "For each axis the run varies, every configuration at another value against the "
        "same configuration at the axis's reference value (its default, else the first of "
        "its order: seed, loop, adam, ...): a ratio under 1 is faster. A verdict needs the "
        "whole 95% interval beyond 5% of 1. The charts of time per phase, step time and "
        "memory show these reference values (and any configuration whose counterpart there "
        "was not measured); the setups and work charts show every value."], anchor="axes")
    for axis in axes:
        ratios = axis_ratios(results, axis, paired)
        if ratios.empty:
            section.blocks.append(f"{axis.name}: no configuration was measured at two of its "
                                  "values with everything else equal.")
            continue
        section.blocks += [headline(ratios, axis), axis_figure(ratios, axis),
                           Details(f"{axis.name}: per scenario and phase",
                                   [summary_table(ratios, axis)])]
    return section
