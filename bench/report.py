"""The report of one or more runs: results in, Plotly figures and tables out.

Every function here is pure (a DataFrame of results rows in, a figure or a table out) and
needs neither torch nor a GPU; ``write_report`` is the one that writes a page. Charts use
the rows whose status is `ok`; repeats of a configuration collapse to the median of their
medians, the same figure the run's summary prints. Rows that were not measured (`oom`,
`skipped`, `nonfinite`, `error`) are listed in a table instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from bench.describe import (SETUP_ORDER, VARIANT_AXES, config_hover, flatten_env, join_label,
                            ordered, unique_labels, varying)
from bench.page import Section, Table, esc, write_page
from bench.runs import CONFIG_AXES, OK, PHASES, Run

TIMED = PHASES[:3]  # forward, backward, optimizer: the phases that add up to a step
PHASE_COLORS = {"forward": "#4C78A8", "backward": "#F58518", "optimizer": "#54A24B",
                "step": "#9D755D"}
SETUP_DASH = {"separate": "solid", "single": "dash", "grouped": "dot"}
WRAP_DASH = {"joint": "solid", "per_network": "dash"}
GPU_MEMORY = {"cuda_peak_allocated_mib": "CUDA peak allocated (MiB)",
              "cuda_peak_reserved_mib": "CUDA peak reserved (MiB)",
              "nvml_used_mib_max": "NVML device memory used (MiB)",
              "nvml_process_mib_max": "NVML process memory (MiB)"}
GPU_ACTIVITY = {"gpu_util_pct_mean": "GPU utilization (%)", "sm_clock_mhz_mean": "SM clock (MHz)",
                "power_w_mean": "board power (W)"}
BREAKDOWN = {"param_bytes": "parameters", "grad_bytes": "gradients",
             "optimizer_state_bytes": "optimizer state", "activation_bytes": "activations"}
NUMERIC = ("median_ms", "iqr_ms", "n_samples", "phase_peak_allocated_mib", *GPU_MEMORY,
           *GPU_ACTIVITY, *BREAKDOWN)
# fields that differ between any two runs by construction: shown, never highlighted
ALWAYS_DIFFERENT = {"run_id", "started_at", "command_line"}
MIB = 1024 * 1024
ROW_HEIGHT = 300


def results_of(runs: Sequence[Run]) -> pd.DataFrame:
    """Every run's rows in one table, with a `run` column: the run's folder name."""
    labels = unique_labels([run.name for run in runs])
    return pd.concat([run.results.assign(run=label) for run, label in zip(runs, labels)],
                     ignore_index=True)


def tidy(results: pd.DataFrame) -> pd.DataFrame:
    """One row per measured configuration and phase, repeats collapsed to their median.

    Adds `where` (the device, and the run when there are several), `panel` (`where` plus
    the size and optimizer when those vary: what a chart facets by) and `hover` (the full
    name of the configuration). A table that is already tidy is returned as it is.
    """
    if "panel" in results.columns:
        return results
    ok = results[results["status"] == OK].copy()
    if "run" not in ok.columns:
        ok["run"] = ok["run_id"]
    for column in NUMERIC:
        ok[column] = pd.to_numeric(ok[column], errors="coerce") if column in ok else float("nan")
    keys = ["run", *CONFIG_AXES, "device_name", "batch_size", "phase"]
    grouped = ok.groupby(keys, sort=False, dropna=False)
    d = grouped[list(NUMERIC)].median().reset_index()
    d["repeats"] = grouped.size().to_numpy()
    records = d[keys].to_dict("records")
    several_runs = d["run"].nunique() > 1
    d["where"] = [(f"{r['run']}: " if several_runs else "") + f"{r['device']} ({r['device_name']})"
                  for r in records]
    extra = varying(d, ["size", "optimizer", "optimizer_impl", *VARIANT_AXES])
    d["panel"] = [join_label({"where": w, **r}, ["where", *extra])
                  for w, r in zip(d["where"], records)]
    d["hover"] = [config_hover(r) for r in records]
    return d


def _grid(rows: Sequence[str], cols: Sequence[str], title: str, *,
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


def _hover(rows: pd.DataFrame, lines) -> list[str]:
    """Each row's configuration, then its own line (the value shown)."""
    return [f"{h}<br>{esc(line)}" for h, line in zip(rows["hover"], lines)]


def _scenario_colors(d: pd.DataFrame) -> dict[str, str]:
    palette = qualitative.Plotly
    return {s: palette[i % len(palette)] for i, s in enumerate(ordered(d["scenario"]))}


def phase_breakdown(results: pd.DataFrame, scenario: str) -> go.Figure | None:
    """Stacked forward / backward / optimizer medians per batch size, and beside each stack
    the step timed with no phase boundaries; a panel per device (row) and setup (column)."""
    d = tidy(results)
    d = d[d["scenario"] == scenario]
    if d.empty:
        return None
    panels, setups = ordered(d["panel"]), ordered(d["optimizer_setup"], SETUP_ORDER)
    fig = _grid(panels, setups, f"{scenario}: median time per phase (ms) by batch size; "
                "beside each stack, the step timed without phase boundaries",
                col_titles=[f"setup {s}" for s in setups], shared_y=True)
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        for c, setup in enumerate(setups, 1):
            cell = d[(d["panel"] == panel) & (d["optimizer_setup"] == setup)]
            for phase in PHASES:
                rows = cell[cell["phase"] == phase].sort_values("batch_size")
                if rows.empty:
                    continue
                slot = "step" if phase == "step" else "phases"
                traces.add(go.Bar(
                    x=[[str(b) for b in rows["batch_size"]], [slot] * len(rows)],
                    y=rows["median_ms"].tolist(), name=phase, legendgroup=phase,
                    showlegend=r == 1 and c == 1, marker_color=PHASE_COLORS[phase],
                    hovertext=_hover(rows, (f"median {v:.4g} ms" for v in rows["median_ms"])),
                    hovertemplate="%{hovertext}<extra></extra>"), r, c)
    fig = traces.into(fig)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="ms", col=1)
    return fig


def _lines(traces: Traces, d: pd.DataFrame, y: pd.Series, unit: str, row: int, col: int,
           show_legend: bool, colors: dict[str, str]) -> None:
    """A line per scenario and setup over batch size; ``y`` is aligned with ``d``."""
    for scenario in ordered(d["scenario"]):
        for setup in ordered(d["optimizer_setup"], SETUP_ORDER):
            rows = d[(d["scenario"] == scenario) & (d["optimizer_setup"] == setup)]
            rows = rows.sort_values("batch_size")
            if rows.empty:
                continue
            values = y[rows.index].tolist()
            name = esc(f"{scenario} · {setup}")
            traces.add(go.Scatter(
                x=rows["batch_size"].tolist(), y=values, mode="lines+markers", name=name,
                legendgroup=name, showlegend=show_legend,
                line=dict(color=colors[scenario], dash=SETUP_DASH.get(setup, "dashdot")),
                hovertext=_hover(rows, (f"{v:.4g} {unit}" for v in values)),
                hovertemplate="%{hovertext}<extra></extra>"), row, col)


def step_and_throughput(results: pd.DataFrame) -> go.Figure | None:
    """Step time and samples per second against batch size, log axes, a line per scenario
    (dashed by optimizer setup)."""
    d = tidy(results)
    d = d[d["phase"] == "step"]
    if d.empty:
        return None
    panels, colors = ordered(d["panel"]), _scenario_colors(d)
    fig = _grid(panels, ["ms", "samples/s"], "Step time and throughput against batch size",
                col_titles=["step time (ms)", "throughput (samples/s)"])
    throughput = d["batch_size"] * d["world_size"] / d["median_ms"] * 1e3
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        cell = d[d["panel"] == panel]
        _lines(traces, cell, d["median_ms"], "ms", r, 1, r == 1, colors)
        _lines(traces, cell, throughput, "samples/s", r, 2, False, colors)
    fig = traces.into(fig)
    fig.update_xaxes(type="log", title_text="batch size")
    fig.update_yaxes(type="log")
    return fig


# what stays the same along a line of the scaling chart, world size aside
SCALING_KEY = ["device_name", "scenario", "size", "batch_size", "optimizer_setup", "optimizer",
               "optimizer_impl", "precision", "compile", "cuda_graph", "n_networks"]


def scaling_table(results: pd.DataFrame) -> pd.DataFrame:
    """Step time, throughput and efficiency against world size, one line per configuration
    and DDP wrap, over every run given (several runs of one world size: the median).

    The batch size is per rank, so W ranks take W times the samples of one process: the
    efficiency is the throughput over W times one process's, which is one process's step
    time over the W ranks' (1: perfect scaling). One process is the run of world size 1 with
    the same DDP wrap where there is one, else the single process without DDP, which also
    becomes the line's first point."""
    d = tidy(results)
    d = d[d["phase"] == "step"]
    if d.empty or d["world_size"].nunique() < 2:
        return d.iloc[0:0]
    keys = [*SCALING_KEY, "ddp_wrap", "world_size"]
    d = d.groupby(keys, sort=False, dropna=False)["median_ms"].median().reset_index()
    plain = d[d["ddp_wrap"] == "none"].drop(columns=["ddp_wrap", "world_size"])
    lines = []
    for wrap in ordered(d.loc[d["ddp_wrap"] != "none", "ddp_wrap"], WRAP_DASH):
        own = d[d["ddp_wrap"] == wrap]
        from_plain = plain.merge(own.loc[own["world_size"] == 1, SCALING_KEY], how="left",
                                 on=SCALING_KEY, indicator=True)
        from_plain = from_plain[from_plain["_merge"] == "left_only"].drop(columns="_merge")
        lines.append(pd.concat([own, from_plain.assign(ddp_wrap=wrap, world_size=1)]))
    if not lines:
        return d.iloc[0:0]
    d = pd.concat(lines, ignore_index=True)
    one = d[d["world_size"] == 1][[*SCALING_KEY, "ddp_wrap", "median_ms"]]
    d = d.merge(one, on=[*SCALING_KEY, "ddp_wrap"], how="left", suffixes=("", "_one"))
    d["throughput"] = d["batch_size"] * d["world_size"] / d["median_ms"] * 1e3
    d["efficiency"] = d["median_ms_one"] / d["median_ms"]
    records = d.to_dict("records")
    d["panel"] = [join_label(r, ["device_name", *varying(d, ["size", "optimizer",
                                                              "optimizer_impl", "precision",
                                                              "compile", "cuda_graph",
                                                              "n_networks"])])
                  + f" · batch {r['batch_size']} per rank" for r in records]
    d["hover"] = [config_hover({**r, "run": "", "device": "", "phase": "step"}) for r in records]
    return d.sort_values("world_size")


def scaling(results: pd.DataFrame) -> go.Figure | None:
    """Step time, throughput and efficiency against world size: a row per device and
    per-rank batch size, a line per scenario and optimizer setup, dashed by DDP wrap."""
    d = scaling_table(results)
    if d.empty:
        return None
    panels, colors = ordered(d["panel"]), _scenario_colors(d)
    columns = {"median_ms": "step time (ms)", "throughput": "throughput (samples/s, all ranks)",
               "efficiency": "efficiency (1 = perfect scaling)"}
    fig = _grid(panels, list(columns), "Scaling with the number of ranks (batch size per rank "
                "fixed)", col_titles=list(columns.values()))
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        cell = d[d["panel"] == panel]
        for c, (column, label) in enumerate(columns.items(), 1):
            for (scenario, setup, wrap), rows in cell.groupby(
                    ["scenario", "optimizer_setup", "ddp_wrap"], sort=True):
                rows = rows[rows[column].notna()]
                if rows.empty:
                    continue
                name = esc(f"{scenario} · {setup} · DDP {wrap}")
                values = rows[column].tolist()
                traces.add(go.Scatter(
                    x=rows["world_size"].tolist(), y=values, mode="lines+markers", name=name,
                    legendgroup=name, showlegend=r == 1 and c == 1,
                    line=dict(color=colors[scenario], dash=WRAP_DASH.get(wrap, "dot")),
                    hovertext=_hover(rows, (f"{w} rank(s): {label.split(' (')[0]} {v:.4g}"
                                            for w, v in zip(rows["world_size"], values))),
                    hovertemplate="%{hovertext}<extra></extra>"), r, c)
    fig = traces.into(fig)
    fig.update_xaxes(type="log", tickvals=sorted(set(d["world_size"])),
                     title_text="world size (ranks)")
    fig.add_hline(y=1, line_dash="dot", line_color="#888", row="all", col=3)
    return fig


def setup_ratio_table(results: pd.DataFrame) -> pd.DataFrame:
    """`single` and `grouped` against `separate`, for the optimizer phase and the step:
    their median divided by `separate`'s at the same configuration otherwise."""
    d = tidy(results)
    d = d[d["phase"].isin(["optimizer", "step"])]
    keys = ["panel", "run", "device", "device_name", "scenario", "size", "optimizer",
            "optimizer_impl", "batch_size", "phase"]
    base = d[d["optimizer_setup"] == "separate"][[*keys, "median_ms"]]
    others = d[d["optimizer_setup"].isin(["single", "grouped"])]
    merged = others.merge(base, on=keys, suffixes=("", "_separate"))
    merged["ratio"] = merged["median_ms"] / merged["median_ms_separate"]
    return merged


def setup_ratios(results: pd.DataFrame) -> go.Figure | None:
    d = setup_ratio_table(results)
    if d.empty:
        return None
    panels, colors = ordered(d["panel"]), _scenario_colors(d)
    phases = [p for p in ("optimizer", "step") if p in set(d["phase"])]
    fig = _grid(panels, phases, "Optimizer setups against `separate` (one optimizer per "
                "network): median time ratio, below 1 is faster",
                col_titles=["optimizer phase" if p == "optimizer" else "whole step"
                            for p in phases])
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        for c, phase in enumerate(phases, 1):
            cell = d[(d["panel"] == panel) & (d["phase"] == phase)]
            for scenario in ordered(cell["scenario"]):
                for setup in ordered(cell["optimizer_setup"], SETUP_ORDER):
                    rows = cell[(cell["scenario"] == scenario)
                                & (cell["optimizer_setup"] == setup)].sort_values("batch_size")
                    if rows.empty:
                        continue
                    name = esc(f"{scenario} · {setup}")
                    lines = (f"{m:.4g} ms vs {s:.4g} ms with separate: ratio {q:.3f}"
                             for m, s, q in zip(rows["median_ms"], rows["median_ms_separate"],
                                                rows["ratio"]))
                    traces.add(go.Scatter(
                        x=[str(b) for b in rows["batch_size"]], y=rows["ratio"].tolist(),
                        mode="lines+markers", name=name, legendgroup=name,
                        showlegend=r == 1 and c == 1,
                        line=dict(color=colors[scenario], dash=SETUP_DASH.get(setup, "dot")),
                        hovertext=_hover(rows, lines),
                        hovertemplate="%{hovertext}<extra></extra>"), r, c)
    fig = traces.into(fig)
    fig.add_hline(y=1, line_dash="dot", line_color="#888", row="all", col="all")
    fig.update_xaxes(type="category", title_text="batch size")
    return fig


def per_batch_metrics(results: pd.DataFrame, metrics: dict[str, str],
                      title: str) -> go.Figure | None:
    """Per-configuration columns (memory, NVML readings) against batch size, a panel per
    metric that holds any value; rows without any are left out."""
    d = tidy(results)
    # these columns hold the same value on every phase row of a configuration
    d = d[d["phase"] == "step"]
    present = [m for m in metrics if d[m].notna().any()]
    if not present:
        return None
    d = d[d[present].notna().any(axis=1)]
    panels, colors = ordered(d["panel"]), _scenario_colors(d)
    fig = _grid(panels, present, title, col_titles=[metrics[m] for m in present])
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        cell = d[d["panel"] == panel]
        for c, metric in enumerate(present, 1):
            unit = metrics[metric].rsplit("(", 1)[-1].rstrip(")")
            _lines(traces, cell[cell[metric].notna()], d[metric], unit, r, c,
                   r == 1 and c == 1, colors)
    fig = traces.into(fig)
    fig.update_xaxes(type="log", title_text="batch size")
    return fig


def _by_batch_and_setup(rows: pd.DataFrame) -> pd.DataFrame:
    setup_rank = {s: i for i, s in enumerate(ordered(rows["optimizer_setup"], SETUP_ORDER))}
    return rows.assign(_setup=rows["optimizer_setup"].map(setup_rank)).sort_values(
        ["batch_size", "_setup"]).drop(columns="_setup")


def _batch_setup_axis(rows: pd.DataFrame) -> list[list[str]]:
    return [[str(b) for b in rows["batch_size"]], rows["optimizer_setup"].tolist()]


def phase_peak_memory(results: pd.DataFrame) -> go.Figure | None:
    """CUDA peak allocated during each phase, grouped by phase, per batch size and setup."""
    d = tidy(results)
    d = d[d["phase"].isin(TIMED) & d["phase_peak_allocated_mib"].notna()]
    if d.empty:
        return None
    panels, scenarios = ordered(d["panel"]), ordered(d["scenario"])
    fig = _grid(panels, scenarios, "CUDA peak allocated per phase (MiB), by batch size and "
                "optimizer setup")
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        for c, scenario in enumerate(scenarios, 1):
            cell = d[(d["panel"] == panel) & (d["scenario"] == scenario)]
            for phase in TIMED:
                rows = _by_batch_and_setup(cell[cell["phase"] == phase])
                if rows.empty:
                    continue
                peaks = rows["phase_peak_allocated_mib"].tolist()
                traces.add(go.Bar(
                    x=_batch_setup_axis(rows), y=peaks, name=phase, legendgroup=phase,
                    showlegend=r == 1 and c == 1, marker_color=PHASE_COLORS[phase],
                    hovertext=_hover(rows, (f"peak {v:.4g} MiB allocated" for v in peaks)),
                    hovertemplate="%{hovertext}<extra></extra>"), r, c)
    fig = traces.into(fig)
    fig.update_layout(barmode="group")
    return fig


def memory_breakdown(results: pd.DataFrame) -> go.Figure | None:
    """The analytic breakdown (parameters, gradients, optimizer state, activations saved
    for backward) as stacked bars in MiB, per batch size and optimizer setup."""
    d = tidy(results)
    d = d[(d["phase"] == "step") & d[list(BREAKDOWN)].notna().any(axis=1)]
    if d.empty:
        return None
    panels, scenarios = ordered(d["panel"]), ordered(d["scenario"])
    fig = _grid(panels, scenarios, "Memory by kind, computed from the tensors (MiB): "
                "parameters, gradients, optimizer state, activations saved for backward")
    colors = dict(zip(BREAKDOWN, ("#4C78A8", "#72B7B2", "#E45756", "#EECA3B")))
    traces = Traces()
    for r, panel in enumerate(panels, 1):
        for c, scenario in enumerate(scenarios, 1):
            rows = _by_batch_and_setup(d[(d["panel"] == panel) & (d["scenario"] == scenario)])
            if rows.empty:
                continue
            for column, label in BREAKDOWN.items():
                mib = (rows[column] / MIB).tolist()
                traces.add(go.Bar(
                    x=_batch_setup_axis(rows), y=mib, name=label, legendgroup=label,
                    showlegend=r == 1 and c == 1, marker_color=colors[column],
                    hovertext=_hover(rows, (f"{label}: {v:.4g} MiB" for v in mib)),
                    hovertemplate="%{hovertext}<extra></extra>"), r, c)
    fig = traces.into(fig)
    fig.update_layout(barmode="stack")
    return fig


def runs_without_gpu(results: pd.DataFrame) -> list[str]:
    """Runs none of whose measured rows carry a CUDA or NVML figure."""
    d = tidy(results)
    columns = [*GPU_MEMORY, *GPU_ACTIVITY]
    with_gpu = set(d.loc[d[columns].notna().any(axis=1), "run"])
    return [run for run in ordered(d["run"]) if run not in with_gpu]


def noisy_table(results: pd.DataFrame) -> Table | None:
    ok = results[(results["status"] == OK) & (results["noisy"] == True)]  # noqa: E712
    if ok.empty:
        return None
    median = pd.to_numeric(ok["median_ms"], errors="coerce")
    iqr = pd.to_numeric(ok["iqr_ms"], errors="coerce")
    runs = ok["run"] if "run" in ok.columns else ok["run_id"]
    rows = [[run, config, repeat, phase, f"{m:.4g}", f"{q:.4g}", f"{q / m:.0%}" if m > 0 else "-"]
            for run, config, repeat, phase, m, q in zip(runs, ok["config_id"], ok["repeat"],
                                                        ok["phase"], median, iqr)]
    return Table(["run", "configuration", "repeat", "phase", "median ms", "IQR ms",
                  "IQR / median"], rows, numeric=frozenset({2, 4, 5, 6}))


def not_measured_table(results: pd.DataFrame) -> Table | None:
    """Configurations with a status other than `ok`, once each (their phase rows agree)."""
    bad = results[results["status"] != OK]
    if bad.empty:
        return None
    if "run" not in bad.columns:
        bad = bad.assign(run=bad["run_id"])
    bad = bad.drop_duplicates(["run", "repeat", "config_id"])
    reasons = bad["error"].fillna("") if "error" in bad.columns else [""] * len(bad)
    rows = [list(r) for r in zip(bad["run"], bad["config_id"], bad["repeat"], bad["status"],
                                  reasons)]
    return Table(["run", "configuration", "repeat", "status", "reason"], rows,
                 numeric=frozenset({2}))


def env_table(envs: dict[str, dict]) -> Table:
    """env.json of each run side by side; rows where the runs differ are highlighted."""
    flat = {label: flatten_env(env) for label, env in envs.items()}
    keys = list(dict.fromkeys(k for f in flat.values() for k in f))
    rows, classes = [], []
    for key in keys:
        values = [flat[label].get(key, "-") for label in flat]
        rows.append([key, *values])
        differs = len(flat) > 1 and len(set(values)) > 1 and key not in ALWAYS_DIFFERENT
        classes.append("differs" if differs else "")
    return Table(["field", *flat], rows, row_classes=classes)


def report_sections(runs: Sequence[Run]) -> tuple[list[str], list[Section]]:
    """The page's introduction and its sections, figures included."""
    raw = results_of(runs)
    results = tidy(raw)  # once for every figure
    measured = raw[raw["status"] == OK].drop_duplicates(["run", "repeat", "config_id"])
    missing = raw[raw["status"] != OK].drop_duplicates(["run", "repeat", "config_id"])
    statuses = ", ".join(f"{n} {s}" for s, n in missing["status"].value_counts().items())
    intro = [f"{len(runs)} run(s): {', '.join(ordered(raw['run']))}. "
             f"{len(measured)} configuration(s) measured"
             + (f", {len(missing)} not measured ({statuses})" if len(missing) else "") + ". "
             "Times are medians over each configuration's timed iterations (over its repeats "
             "too, when it has several); hover a point for its full configuration."]

    timing = Section("Time per phase", anchor="phases")
    for scenario in ordered(results["scenario"]):
        timing.blocks.append(phase_breakdown(results, scenario))
    throughput = Section("Step time and throughput", [step_and_throughput(results)],
                         anchor="scaling")
    ranks = Section("Scaling with the number of ranks", anchor="ranks")
    if results["world_size"].nunique() > 1:
        ranks.blocks = [
            "Runs with different world sizes side by side: each `--distributed` rank takes "
            "its own batch of the size shown, so with perfect scaling the step time stays "
            "that of one process and the throughput grows with the ranks. Efficiency is one "
            "process's step time over the ranks' (with the same DDP wrap where a run of one "
            "rank has it, else the single process without DDP).", scaling(results)]
    elif (results["world_size"] > 1).any():
        ranks.blocks = ["This run is data-parallel over "
                        f"{int(results['world_size'].max())} ranks; report it together with "
                        "a run of another world size (a single-process run of the same sweep, "
                        "say) to see how it scales."]
    setups = Section("Optimizer setups compared", [
        "`single` (one optimizer over every parameter) and `grouped` (one optimizer, a "
        "parameter group per network) relative to `separate` (one optimizer per network), "
        "for the optimizer phase and the whole step.",
        setup_ratios(results) or "This run has no `separate` setup with another to compare."],
        anchor="setups")

    memory = Section("Memory and GPU activity", anchor="memory")
    no_gpu = runs_without_gpu(results)
    if no_gpu:
        memory.blocks.append(
            f"{', '.join(no_gpu)} ran without a GPU: there are no CUDA or NVML memory, "
            "utilization, clock or power figures for "
            + ("it." if len(no_gpu) == 1 else "them."))
    memory.blocks += [
        per_batch_metrics(results, GPU_MEMORY, "GPU memory against batch size: CUDA "
                          "allocator peaks and NVML readings (MiB)"),
        phase_peak_memory(results),
        memory_breakdown(results),
        per_batch_metrics(results, GPU_ACTIVITY, "GPU utilization, SM clock and power, "
                          "means over the NVML readings taken while timing"),
    ]

    quality = Section("Noisy measurements", anchor="noisy")
    noisy = noisy_table(raw)
    quality.blocks.append(
        "Phases whose interquartile range exceeds 10% of their median: their medians are "
        "less certain, and a comparison of them needs more samples or repeats."
        if noisy else "No measurement is flagged noisy (IQR over 10% of the median).")
    if noisy:
        quality.blocks.append(noisy)

    sections = [timing, throughput, *([ranks] if ranks.blocks else []), setups, memory,
                quality]
    unmeasured = not_measured_table(raw)
    if unmeasured:
        sections.append(Section("Not measured", [
            "Configurations that did not yield timings: out of memory (`oom`), skipped after "
            "a smaller batch ran out of memory (`skipped`), a non-finite loss (`nonfinite`) "
            "or another error (`error`). The charts leave them out.", unmeasured],
            anchor="not-measured"))
    labels = unique_labels([run.name for run in runs])
    sections.append(Section("Environment", [env_table(dict(zip(labels, (r.env for r in runs))))],
                            anchor="environment"))
    for section in sections:
        section.blocks = [b for b in section.blocks if b is not None]
    return intro, sections


def report_title(runs: Sequence[Run]) -> str:
    return "multinet-bench report: " + ", ".join(unique_labels([r.name for r in runs]))


def write_report(runs: Sequence[Run], out: Path) -> Path:
    """The one call that turns runs into a page on disk (written atomically)."""
    intro, sections = report_sections(runs)
    return write_page(out, report_title(runs), sections, intro)
