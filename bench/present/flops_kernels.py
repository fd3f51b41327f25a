"""The report's view of the work each configuration did: the arithmetic rate it reached
(TFLOP/s, and the fraction of the GPU's peak), the operators and kernels each phase
dispatches, and how long the host took to dispatch a step against how long the GPU took
to run it.

These are the figures that say why a step takes the time it does: a small network's step
is many small operators, each a kernel the host must launch, so its time follows the host
(launch-bound, ``bench/analyze/phase_bounds.py``) until the batch is large enough for the
arithmetic to set the pace. A CPU run has FLOPs and operators but no kernels, no peak, and
one clock for host and device, so it gets the first two charts, without what it lacks.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from bench.analyze.phase_bounds import (COMPUTE, COMPUTE_PEAK_FRACTION, LAUNCH, LAUNCH_HOST_SHARE,
                                        NEITHER, is_cuda, phase_bound)
from bench.analyze.run_tables import ordered
from bench.axes import DEVICE, key
from bench.present.charts import (BATCH, PHASE_COLORS, SCEN, Traces, grid, hover,
                                  scenario_colors)
from bench.present.labels import esc, facet, tidy
from bench.schema import PHASES, STEP, TIMED_PHASES

# One configuration of one run: the rows of its phases share these.
CONFIG = ["run", *key(), "device_name"]
# forward and backward: where the FLOPs are, when the step row has none
ARITHMETIC = PHASES[:2]
COUNTS = {"ops": ("ATen operators", "operators"), "kernels": ("CUDA kernels", "kernels")}
BOUND_WORDS = {LAUNCH: "launch-bound", COMPUTE: "compute-bound",
               NEITHER: "neither launch- nor compute-bound"}
REFERENCE_COLOR = "#888"
SPREAD = 1.25  # how far the reference lines reach past the points, on a log axis


def achieved(d: pd.DataFrame) -> pd.DataFrame:
    """Each configuration's `step` row with `tflops`, `fraction` (of the GPU's peak; NaN
    where the peak is not known) and `basis`, the phases they come from: the step's own
    figures, or else forward and backward's FLOPs over those two phases' time. Rows with
    neither are left out."""
    steps = d[d["phase"] == STEP].assign(tflops=lambda s: s["tflops_per_s"],
                                         fraction=lambda s: s["peak_fraction"], basis=STEP)
    lacking = steps["tflops"].isna()
    if lacking.any():
        parts = d[d["phase"].isin(ARITHMETIC)].assign(
            peak=lambda p: p["tflops_per_s"] / p["peak_fraction"])
        sums = parts.groupby(CONFIG, dropna=False, sort=False).agg(
            flops_sum=("flops", "sum"), ms_sum=("median_ms", "sum"), n=("phase", "count"),
            peak=("peak", "median")).reset_index()
        sums = sums[(sums["n"] == len(ARITHMETIC)) & (sums["flops_sum"] > 0)
                    & (sums["ms_sum"] > 0)]
        filled = steps[lacking].reset_index().merge(sums, on=CONFIG).set_index("index")
        tflops = filled["flops_sum"] / (filled["ms_sum"] * 1e-3) / 1e12
        steps.loc[filled.index, "tflops"] = tflops
        steps.loc[filled.index, "fraction"] = tflops / filled["peak"]
        steps.loc[filled.index, "basis"] = " + ".join(ARITHMETIC)
    return steps[steps["tflops"].notna() & (steps["tflops"] > 0)]


def rate_figure(a: pd.DataFrame) -> go.Figure:
    """Achieved TFLOP/s, and the fraction of the GPU's peak where known, against batch
    size: a row per device (panel), a line per scenario through the median of its
    configurations at each batch size, a dot per configuration where there are several."""
    panels, colors = ordered(a["panel"]), scenario_colors(a)
    measures = {"tflops": ("achieved TFLOP/s", "TFLOP/s")}
    if a["fraction"].notna().any():
        measures["fraction"] = ("fraction of the GPU's dense peak", "of peak")
    fig = grid(panels, list(measures), "Achieved arithmetic rate against batch size",
               col_titles=[f"{label} against batch size" for label, _ in measures.values()])
    traces, shown = Traces(), set()
    for r, panel in enumerate(panels, 1):
        cell = a[a["panel"] == panel]
        for c, (column, (_, unit)) in enumerate(measures.items(), 1):
            rows = cell[cell[column].notna()]
            for scenario in ordered(rows[SCEN]):
                own = rows[rows[SCEN] == scenario].sort_values(BATCH)
                rate_traces(traces, own, column, unit, colors[scenario], scenario not in shown,
                            r, c)
                shown.add(scenario)
            if column == "fraction" and not rows.empty:
                traces.add(threshold_line(rows[BATCH].min(), rows[BATCH].max()), r, c)
    fig = traces.into(fig)
    mark_empty(fig, traces, len(panels), len(measures))
    fig.update_layout(legend=dict(title_text=esc(SCEN)))
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text="batch size (samples)", row=len(panels))
    fig.update_yaxes(type="log")
    fig.update_yaxes(title_text="TFLOP/s", col=1)
    if "fraction" in measures:
        fig.update_yaxes(title_text="fraction of peak (%)", tickformat=".2~%", col=2)
    return fig


def rate_traces(traces: Traces, own: pd.DataFrame, column: str, unit: str, color: str,
                show_legend: bool, row: int, col: int) -> None:
    """One scenario's line (median per batch size) and, where a batch size has several
    configurations, a dot for each, all in the scenario's legend entry."""
    scenario = own[SCEN].iloc[0]
    line = own.groupby(BATCH)[column].agg(["median", "min", "max", "count"]).reset_index()
    fmt = (lambda v: f"{v:.2%}") if column == "fraction" else (lambda v: f"{v:.4g} {unit}")
    texts = [esc(f"{scenario}, batch size {b}: {fmt(m)}")
             + (esc(f", median of {n} configurations ({fmt(lo)} to {fmt(hi)})") if n > 1
                else "")
             for b, m, lo, hi, n in zip(line[BATCH], line["median"], line["min"],
                                        line["max"], line["count"])]
    name = esc(facet(SCEN, scenario))
    traces.add(go.Scatter(
        x=line[BATCH].tolist(), y=line["median"].tolist(), mode="lines+markers", name=name,
        legendgroup=name, showlegend=show_legend, line=dict(color=color),
        marker=dict(size=7, color=color), hovertext=texts,
        hovertemplate="%{hovertext}<extra></extra>"), row, col)
    if (line["count"] > 1).any():
        basis = [f" ({b})" if b != STEP else "" for b in own["basis"]]
        traces.add(go.Scatter(
            x=own[BATCH].tolist(), y=own[column].tolist(), mode="markers", name=name,
            legendgroup=name, showlegend=False, opacity=0.5,
            marker=dict(size=5, color=color, symbol="circle-open"),
            hovertext=hover(own, (fmt(v) + s for v, s in zip(own[column], basis))),
            hovertemplate="%{hovertext}<extra></extra>"), row, col)


def mark_empty(fig: go.Figure, traces: Traces, rows: int, cols: int) -> None:
    """Say so in a panel with nothing to draw (a CPU's fraction of peak or kernels, in a
    run beside a GPU's) rather than leave a blank. Placed on the page, not on the panel's
    axes: Plotly draws no axes for a panel without traces."""
    drawn = set(zip(traces.rows, traces.cols))
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            if (r, c) not in drawn:
                axes = fig.get_subplot(r, c)
                fig.add_annotation(text="not measured on this device", showarrow=False,
                                   x=sum(axes.xaxis.domain) / 2, y=sum(axes.yaxis.domain) / 2,
                                   xref="paper", yref="paper",
                                   font=dict(color=REFERENCE_COLOR))


def threshold_line(low: float, high: float) -> go.Scatter:
    """The dotted line at the compute-bound fraction of peak, across the batch sizes."""
    return go.Scatter(
        x=[low, high], y=[COMPUTE_PEAK_FRACTION] * 2, mode="lines+text",
        text=["compute-bound above", ""], textposition="top right",
        textfont=dict(color=REFERENCE_COLOR, size=11), showlegend=False, hoverinfo="skip",
        line=dict(color=REFERENCE_COLOR, dash="dot", width=1))


def count_table(d: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column``'s median, range and number of configurations per panel, scenario and
    phase. Where a scenario has the count for no phase but for its step (kernels of a
    CUDA graph, launched as one), the step's stands in."""
    rows = d[d[column].notna()]
    phased = rows[rows["phase"] != STEP]
    whole = rows[rows["phase"] == STEP]
    has_phases = set(zip(phased["panel"], phased[SCEN]))
    whole = whole[[(p, s) not in has_phases for p, s in zip(whole["panel"], whole[SCEN])]]
    rows = pd.concat([phased, whole])
    return rows.groupby(["panel", SCEN, "phase"], sort=False)[column].agg(
        ["median", "min", "max", "count"]).reset_index()


def counts_figure(d: pd.DataFrame) -> go.Figure | None:
    """Operators and (on CUDA) kernels per phase in one iteration: grouped bars, a group per
    scenario, a bar per phase, each the median over the scenario's configurations."""
    present = [m for m in COUNTS if d[m].notna().any()]
    if not present:
        return None
    tables = {m: count_table(d, m) for m in present}
    panels = ordered(pd.concat([t["panel"] for t in tables.values()]))
    fig = grid(panels, present, "Operators and kernels per phase in one iteration",
               col_titles=[f"{COUNTS[m][0]} per phase (median over configurations)"
                           for m in present])
    traces, shown = Traces(), set()
    for r, panel in enumerate(panels, 1):
        for c, metric in enumerate(present, 1):
            cell = tables[metric][tables[metric]["panel"] == panel]
            scenarios = ordered(cell[SCEN])
            for phase in TIMED_PHASES:
                rows = cell[cell["phase"] == phase].set_index(SCEN).reindex(scenarios)
                rows = rows[rows["median"].notna()]
                if rows.empty:
                    continue
                unit = COUNTS[metric][1]
                texts = ["<br>".join(esc(t) for t in (
                    panel, f"{facet(SCEN, s)} · phase {phase}",
                    f"{m:.4g} {unit} per iteration: "
                    + (f"the same in all {n} configuration(s)" if lo == hi else
                       f"the median of {n} configurations, {lo:.4g} to {hi:.4g}"),
                    "(the counts barely depend on the batch size)"))
                    for s, m, lo, hi, n in zip(rows.index, rows["median"], rows["min"],
                                               rows["max"], rows["count"])]
                traces.add(go.Bar(
                    x=rows.index.tolist(), y=rows["median"].tolist(), name=phase,
                    legendgroup=phase, showlegend=phase not in shown,
                    marker_color=PHASE_COLORS[phase], hovertext=texts,
                    hovertemplate="%{hovertext}<extra></extra>"), r, c)
                shown.add(phase)
    fig = traces.into(fig)
    mark_empty(fig, traces, len(panels), len(present))
    fig.update_layout(barmode="group", legend=dict(title_text="phase"))
    fig.update_xaxes(type="category")
    fig.update_xaxes(title_text=esc(SCEN), row=len(panels))
    for c, metric in enumerate(present, 1):
        fig.update_yaxes(title_text=f"{COUNTS[metric][1]} per iteration", col=c)
    return fig


def dispatch_table(d: pd.DataFrame) -> pd.DataFrame:
    """Each configuration's step measured on CUDA with both clocks, with `share` (host
    over device time), `above` (on or above the launch line) and its `bound`."""
    s = d[(d["phase"] == STEP) & d[DEVICE.name].map(is_cuda).astype(bool)]
    s = s[(s["median_ms"] > 0) & (s["host_median_ms"] > 0)]
    s = s.assign(share=s["host_median_ms"] / s["median_ms"])
    return s.assign(above=s["share"] >= LAUNCH_HOST_SHARE,
                    bound=[phase_bound(v, m, h, p) for v, m, h, p in zip(
                        s[DEVICE.name], s["median_ms"], s["host_median_ms"],
                        s["peak_fraction"])])


def dispatch_figure(s: pd.DataFrame) -> go.Figure:
    """Host dispatch time against device time, log-log, a point per configuration's step
    (filled on or above the launch line), with the lines y = x and y = share x."""
    panels, colors = ordered(s["panel"]), scenario_colors(s)
    fig = grid(panels, ["dispatch"], "Host dispatch time against device time, per "
               "configuration's whole step",
               col_titles=["host ms against device ms (log-log); filled: launch-bound"])
    traces, shown, ranges = Traces(), set(), []
    for r, panel in enumerate(panels, 1):
        cell = s[s["panel"] == panel]
        for scenario in ordered(cell[SCEN]):
            rows = cell[cell[SCEN] == scenario]
            name = esc(facet(SCEN, scenario))
            texts = (f"host {h:.4g} ms / device {m:.4g} ms = {q:.0%}"
                     + ": " + BOUND_WORDS.get(b, "bound not known")
                     for h, m, q, b in zip(rows["host_median_ms"], rows["median_ms"],
                                           rows["share"], rows["bound"]))
            traces.add(go.Scatter(
                x=rows["median_ms"].tolist(), y=rows["host_median_ms"].tolist(),
                mode="markers", name=name, legendgroup=name, showlegend=scenario not in shown,
                marker=dict(size=8, color=colors[scenario], line=dict(width=1.5),
                            symbol=["circle" if a else "circle-open" for a in rows["above"]]),
                hovertext=hover(rows, texts), hovertemplate="%{hovertext}<extra></extra>"),
                r, 1)
            shown.add(scenario)
        low, high = cell["median_ms"].min() / SPREAD, cell["median_ms"].max() * SPREAD
        ranges.append(host_range(cell))
        for slope, dash, label in ((1.0, "solid", "y = x: host as long as the device"),
                                   (LAUNCH_HOST_SHARE, "dash",
                                    f"y = {LAUNCH_HOST_SHARE:g} x: launch-bound on or above")):
            traces.add(go.Scatter(
                x=[low, high], y=[low * slope, high * slope], mode="lines", name=esc(label),
                legendgroup="reference", legendgrouptitle_text="reference lines",
                showlegend=r == 1, hoverinfo="skip",
                line=dict(color=REFERENCE_COLOR, dash=dash, width=1)), r, 1)
    fig = traces.into(fig)
    fig.update_layout(legend=dict(title_text=esc(SCEN)))
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text="device time (ms, median)", row=len(panels))
    fig.update_yaxes(type="log", title_text="host dispatch time (ms, median)")
    for r, (low, high) in enumerate(ranges, 1):
        fig.update_yaxes(range=[math.log10(low), math.log10(high)], row=r, col=1)
    return fig


def host_range(cell: pd.DataFrame) -> tuple[float, float]:
    """The host axis of a panel: its points, and both reference lines where they start (at
    the shortest device time), so each line shows whatever the host times' spread; lines
    drawn on across the device times leave it where the points do."""
    first = cell["median_ms"].min()
    return (min(cell["host_median_ms"].min(), LAUNCH_HOST_SHARE * first) / SPREAD,
            max(cell["host_median_ms"].max(), first) * SPREAD)


def rate_text(a: pd.DataFrame) -> str:
    several = a.groupby(["panel", SCEN, BATCH]).size().max() > 1
    parts = ["Floating-point operations per second each configuration reached over its whole "
             "step (FLOPs as FlopCounterMode counts them: matrix products and convolutions; "
             "the optimizer's elementwise work counts 0), against batch size on log axes: "
             "a line per scenario"
             + (" through the median of its configurations at each batch size, a dot per "
                "configuration." if several else ".")]
    other = int((a["basis"] != STEP).sum())
    if other:
        parts.append(f"{other} configuration(s) have no FLOPs on their step row: theirs is "
                     "forward and backward's FLOPs over those two phases' time.")
    if a["fraction"].notna().any():
        parts.append(f"Beside it, the same as a fraction of the GPU's published dense peak "
                     f"for the precision: at {COMPUTE_PEAK_FRACTION:.0%} or above (the dotted "
                     "line), the arithmetic sets the pace (compute-bound).")
    else:
        parts.append("No fraction of peak is drawn: the device's peak is not known (a CPU, "
                     "or a GPU missing from the table of peaks).")
    return " ".join(parts)


def counts_text(d: pd.DataFrame) -> str:
    text = ("ATen operators each phase dispatches in one iteration"
            + (", and CUDA kernels it launches," if d["kernels"].notna().any() else ",")
            + " a bar per phase: the median over each scenario's configurations (batch sizes, "
            "optimizer setups), since the counts barely depend on the batch size. Each "
            "operator is at least one launch for the host: many small ones make a step "
            "launch-bound.")
    if not d["kernels"].notna().any():
        text += " No kernels were counted: none of these configurations ran on CUDA."
    return text


def dispatch_text(s: pd.DataFrame) -> str:
    launch, above = int((s["bound"] == LAUNCH).sum()), int(s["above"].sum())
    text = (f"Of {len(s)} configuration(s) measured on CUDA (their whole step), {launch} "
            f"{'is' if launch == 1 else 'are'} launch-bound: the host took at least "
            f"{LAUNCH_HOST_SHARE:.0%} of the device's time to dispatch the step, so the GPU "
            "waited on the host (filled points, on or above the dashed line).")
    if above > launch:
        text += (f" {above - launch} more on or above the line reach "
                 f"{COMPUTE_PEAK_FRACTION:.0%} of the peak: compute-bound, a GPU busy enough "
                 "to keep the host waiting on a full queue.")
    return text


def work_figures(results: pd.DataFrame) -> list:
    """The blocks of the work view: for each chart the run can draw, a sentence and the
    figure (Plotly), in order: the arithmetic rate against batch size, the operators and
    kernels per phase, host dispatch against device time. Empty when the run has none of
    these figures."""
    d = tidy(results)
    if d.empty:
        return []
    # a row of panels per device (and run) only: every other axis is in each point's hover,
    # and a panel per precision or CUDA graph would multiply the page by their values
    d = d.assign(panel=d["where"])
    blocks: list = []
    a = achieved(d)
    if not a.empty:
        blocks += [rate_text(a), rate_figure(a)]
    counts = counts_figure(d)
    if counts is not None:
        blocks += [counts_text(d), counts]
    s = dispatch_table(d)
    if not s.empty:
        blocks += [dispatch_text(s), dispatch_figure(s)]
    return blocks
