"""The report's section "Where the step goes": per scenario, each network's time in each
phase as stacked bars at every batch size and optimizer setup, the memory of each network,
a sentence naming the network and phase that dominate, the attribution's own checks, and
the links to the run's profiler traces with their top operators.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from bench.analyze.networks import (NETWORK_PHASES, AttributionChecks, Dominant,
                                    attribution_checks, dominant, network_order, networks_of)
from bench.analyze.reader import Run
from bench.analyze.run_tables import ordered
from bench.axes import BATCH_SIZE, OPTIMIZER_SETUP, SCENARIO
from bench.present.charts import Traces, grid
from bench.present.labels import esc, facet, labelled
from bench.present.memory_charts import BREAKDOWN
from bench.present.page import Details, Links, Section, Table
from bench.schema import MIB, OUTSIDE, TRACES_DIR

SCEN, SETUP, BATCH = SCENARIO.name, OPTIMIZER_SETUP.name, BATCH_SIZE.name
PHASE_PATTERNS = dict(zip(NETWORK_PHASES, ("", "/", "x", ".")))
OUTSIDE_COLOR = "#BAB0AC"
MEMORY_COLORS = dict(zip(BREAKDOWN, ("#4C78A8", "#72B7B2", "#E45756", "#EECA3B")))
OPERATORS_SHOWN = 3  # per network and phase, in the report's tables


def network_colors(networks: Sequence[str]) -> dict[str, str]:
    palette = qualitative.Dark2
    colors = {n: palette[i % len(palette)] for i, n in enumerate(n for n in networks
                                                                  if n != OUTSIDE)}
    return {**colors, OUTSIDE: OUTSIDE_COLOR}


def time_by_network(d: pd.DataFrame, scenario: str) -> go.Figure | None:
    """Stacked bars of each network's median time in each phase (colour: network; pattern:
    phase) per batch size; a panel per device (row) and setup (column)."""
    d = d[d[SCEN] == scenario]
    if d.empty:
        return None
    panels, setups = ordered(d["panel"]), ordered(d[SETUP], OPTIMIZER_SETUP.order)
    networks = network_order(d)
    colors = network_colors(networks)
    fig = grid(panels, setups, f"{scenario}: where the step goes, each network's median time "
               "per phase (ms) by batch size", col_titles=[facet(SETUP, s) for s in setups],
               shared_y=True)
    traces, shown = Traces(), set()
    for r, panel in enumerate(panels, 1):
        for c, setup in enumerate(setups, 1):
            cell = d[(d["panel"] == panel) & (d[SETUP] == setup)]
            for phase in NETWORK_PHASES:
                for network in networks:
                    rows = cell[(cell["phase"] == phase) & (cell["network"] == network)]
                    rows = rows.sort_values(BATCH)
                    if rows.empty or not (rows["median_ms"] > 0).any():
                        continue
                    name = f"{network} · {phase}"
                    traces.add(go.Bar(
                        x=[str(b) for b in rows[BATCH]], y=rows["median_ms"].tolist(),
                        name=esc(name), legendgroup=esc(name), showlegend=name not in shown,
                        marker=dict(color=colors[network],
                                    pattern_shape=PHASE_PATTERNS.get(phase, "")),
                        hovertext=[bar_hover(row) for row in rows.to_dict("records")],
                        hovertemplate="%{hovertext}<extra></extra>"), r, c)
                    shown.add(name)
    fig = traces.into(fig)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="ms", col=1)
    fig.update_xaxes(title_text="batch size", type="category")
    return fig


def bar_hover(row: dict) -> str:
    share = f" ({row['share']:.0%} of the phase)" if pd.notna(row.get("share")) else ""
    lines = [row["hover"], esc(f"{row['network']} · {row['phase']}: {row['median_ms']:.4g} ms"
                               + share)]
    if row.get("apportioned_ms", 0) > 0:
        lines.append(esc(f"{row['apportioned_ms']:.4g} ms of it apportioned by "
                         f"{row['apportioned_by']}"))
    return "<br>".join(lines)


def memory_by_network(d: pd.DataFrame, scenario: str) -> go.Figure | None:
    """Each network's memory by kind (MiB), stacked, a panel per batch size, at the
    scenario's first setup (the setups hold the same memory per network)."""
    d = d[(d[SCEN] == scenario) & (d["phase"] == NETWORK_PHASES[0])]
    if d.empty:
        return None
    setup = ordered(d[SETUP], OPTIMIZER_SETUP.order)[0]
    d = d[d[SETUP] == setup]
    panels, batches = ordered(d["panel"]), sorted(d[BATCH].unique())
    fig = grid(panels, [str(b) for b in batches], f"{scenario}: memory per network (MiB), "
               f"setup {setup}", col_titles=[facet(BATCH, b) for b in batches])
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        for c, batch in enumerate(batches, 1):
            rows = d[(d["panel"] == panel) & (d[BATCH] == batch)]
            for column, label in BREAKDOWN.items():
                mib = (rows[column] / MIB).tolist()
                traces.add(go.Bar(
                    x=[esc(n) for n in rows["network"]], y=mib, name=label, legendgroup=label,
                    showlegend=r == 1 and c == 1, marker_color=MEMORY_COLORS[column],
                    hovertext=[esc(f"{n}: {label} {v:.4g} MiB") for n, v in
                               zip(rows["network"], mib)],
                    hovertemplate="%{hovertext}<extra></extra>"), r, c)
    fig = traces.into(fig)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="MiB", col=1)
    return fig


def possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def dominant_sentence(top: Dominant) -> str:
    return (f"{top.scenario}: at batch {top.batch_size} with setup {top.setup}, "
            f"{possessive(top.network)} {top.phase} takes the most of the step, {top.ms:.3g} ms "
            f"of {top.step_ms:.3g} ms attributed ({top.share:.0%}).")


def checks_sentence(checks: AttributionChecks) -> str:
    text = (f"Each configuration's networks were attributed in a pass of their own after its "
            f"timing ({checks.configurations} configurations). Their boundaries cost the step "
            f"{checks.overhead_median:+.1%} (median; from {checks.overhead_low:+.1%} to "
            f"{checks.overhead_high:+.1%}) against the unbroken step timed in the same pass, "
            f"and each phase's networks add up to the phase's own time within "
            f"{checks.gap_median:.1%} (median over configurations and phases; at most "
            f"{checks.gap_high:.1%}): networks.csv's `sum_gap` says it per row. `(outside)` is "
            "the work outside every network: the loss, the glue between networks.")
    if checks.apportioned:
        text += (f" In {checks.apportioned} configuration(s) one optimizer call updated several "
                 "networks at once (a foreach or fused step over `single`'s one group): its "
                 "time is split among them by parameter elements, and the hover box says so.")
    if checks.eager_twins:
        text += (f" {checks.eager_twins} compiled or graphed configuration(s) were attributed "
                 "on the same step uncompiled.")
    return text


def trace_blocks(runs: Sequence[Run]) -> list:
    """Links to the runs' traces, relative to the first run's folder (where `run` writes
    the report), and each trace's top operators per network and phase."""
    if not runs:
        return []
    home, links, blocks = Path(runs[0].path), [], []
    for run in runs:
        for path in sorted((Path(run.path) / TRACES_DIR).glob("*.pt.trace.json")):
            links.append((path.name, os.path.relpath(path, home)))
        operators = run.operators()
        if operators is not None:
            blocks += operator_tables(operators)
    if not links:
        return []
    return ["Profiler traces (Chrome trace format: open them in ui.perfetto.dev, "
            "chrome://tracing or TensorBoard's PyTorch profiler plugin), with a range for every "
            "phase (`phase:...`) and every network (`network:...`):", Links(links), *blocks]


def operator_tables(operators: pd.DataFrame) -> list[Details]:
    out = []
    for trace, rows in operators.groupby("trace", sort=False):
        rows = rows[rows["rank"] <= OPERATORS_SHOWN]
        device = rows["device_ms"].notna().any()
        table = Table(["phase", "network", "rank", "operator", "calls", "self host ms",
                       *(["device ms"] if device else [])],
                      [[r["phase"], r["network"], r["rank"], r["operator"], f"{r['calls']:.3g}",
                        f"{r['self_host_ms']:.3g}",
                        *([f"{r['device_ms']:.3g}"] if device else [])]
                       for r in rows.to_dict("records")],
                      numeric=frozenset({2, 4, 5, 6}))
        out.append(Details(f"top operators per network and phase, per iteration: {trace}",
                           [table]))
    return out


def where_the_step_goes(runs: Sequence[Run], focus: pd.DataFrame | None = None) -> Section | None:
    """The section, or None for runs without networks.csv. ``focus``, where given, holds
    the report's (run, config_id) pairs: the configurations its other charts draw."""
    table = networks_of(runs)
    if table.empty:
        return None
    if focus is not None:
        keep = set(zip(focus["run"], focus["config_id"]))
        table = table[[k in keep for k in zip(table["run"], table["config_id"])]]
    d = labelled(table)
    section = Section("Where the step goes", anchor="networks")
    checks = attribution_checks(table)
    if checks:
        section.blocks.append(checks_sentence(checks))
    for scenario in ordered(d[SCEN]):
        top = dominant(table, scenario)
        section.blocks += [dominant_sentence(top) if top else None,
                           time_by_network(d, scenario), memory_by_network(d, scenario)]
    section.blocks += trace_blocks(runs)
    section.blocks = [b for b in section.blocks if b is not None]
    return section
