"""The report's section on what bounds each configuration, and on its energy.

Each configuration's `step` row decides: its bound (``bench/analyze/phase_bounds.py``) is
computed again from the figures the report shows (the median over repeats of the host
time, the device time and the peak fraction), so a run written before the `bound` column
existed gets it too. The section says in words which configurations measured the host
(launch-bound) and which the GPU's arithmetic (compute-bound), why CUDA graphs and
torch.compile move a configuration between the two, and lists every one in a table; where
the run has energy figures, a chart draws the samples per joule of each configuration,
estimates marked.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from bench.analyze.phase_bounds import (COMPUTE, COMPUTE_PEAK_FRACTION, LAUNCH, LAUNCH_HOST_SHARE,
                                        NEITHER, is_cuda, phase_bound)
from bench.analyze.run_tables import measured
from bench.axes import BATCH_SIZE, COMPILE, CUDA_GRAPH, DEVICE, SCENARIO, config_id
from bench.present.labels import config_hover, esc
from bench.present.page import Details, Section, Table
from bench.schema import COUNTER, ESTIMATE, STEP

NAMED = 12  # configurations named in a sentence; the table lists them all
BAR_PX = 22
SOURCE_COLORS = {COUNTER: "#4C78A8", ESTIMATE: "#BAB0AC"}


def step_bounds(results: pd.DataFrame) -> pd.DataFrame:
    """One row per measured configuration (its `step` row, repeats collapsed), with its
    `config` (config_id, after the run where several), `bound` and `energy_source`."""
    d = measured(results)
    d = d[d["phase"] == STEP].reset_index(drop=True)
    if d.empty:
        return d.assign(config=[], config_id=[], bound=[], energy_source=[])
    records = d.to_dict("records")
    ids = [config_id(r) for r in records]
    several = d["run"].nunique() > 1
    d["config"] = [f"{r['run']}: {i}" if several else i for r, i in zip(records, ids)]
    d["config_id"] = ids
    d["bound"] = [phase_bound(r[DEVICE.name], r["median_ms"], r["host_median_ms"],
                              r["peak_fraction"]) for r in records]
    sources = energy_sources(results)
    d["energy_source"] = [sources.get((r["run"], i), "") for r, i in zip(records, ids)]
    return d.sort_values(["run", SCENARIO.name, BATCH_SIZE.name, "config"],
                         kind="stable").reset_index(drop=True)


def energy_sources(results: pd.DataFrame) -> dict[tuple[str, str], str]:
    """How each (run, config_id)'s energy was read; `estimate` if any repeat's was."""
    runs = results["run"] if "run" in results.columns else results["run_id"]
    filled = results["energy_source"] != ""
    out: dict[tuple[str, str], str] = {}
    for run, cid, source in zip(runs[filled], results.loc[filled, "config_id"],
                                results.loc[filled, "energy_source"]):
        if out.get((run, cid)) != ESTIMATE:
            out[(run, cid)] = source
    return out


def named(configs: list[str]) -> str:
    shown = ", ".join(configs[:NAMED])
    return shown + (f" and {len(configs) - NAMED} more" if len(configs) > NAMED else "")


def _fmt(value: float, spec: str = ".4g") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, spec)


def bound_table(d: pd.DataFrame) -> Table:
    rows = [[c, b or "-", _fmt(h), _fmt(m),
             _fmt(h / m, ".0%") if m and not math.isnan(h) else "-", _fmt(p, ".1%")]
            for c, b, h, m, p in zip(d["config"], d["bound"], d["host_median_ms"],
                                     d["median_ms"], d["peak_fraction"])]
    return Table(["configuration", "bound", "host ms", "device ms", "host / device",
                  "peak fraction"], rows, numeric=frozenset({2, 3, 4, 5}))


def bound_summary(d: pd.DataFrame) -> str:
    by = {b: d.loc[d["bound"] == b, "config"].tolist() for b in (LAUNCH, COMPUTE, NEITHER)}
    parts = [f"Of {len(d)} configuration(s) measured on CUDA (their whole step),"]
    parts.append(f"{len(by[LAUNCH])} measured the host (launch-bound): "
                 f"{named(by[LAUNCH])}." if by[LAUNCH] else "none is launch-bound.")
    parts.append(f"{len(by[COMPUTE])} are compute-bound: {named(by[COMPUTE])}."
                 if by[COMPUTE] else "None is compute-bound.")
    if by[NEITHER]:
        parts.append(f"{len(by[NEITHER])} are neither (memory bandwidth, or kernels too "
                     "small to fill the GPU yet long enough to hide their launches).")
    return " ".join(parts)


WHY = (
    f"A configuration is launch-bound when the host's dispatch time is at least "
    f"{LAUNCH_HOST_SHARE:.0%} of the device time: the GPU finishes each kernel about as soon "
    "as the host issues the next and idles between them, so the timing measured the host, "
    "not the GPU. It is compute-bound when it reaches at least "
    f"{COMPUTE_PEAK_FRACTION:.0%} of the GPU's published dense peak for its precision. "
    "A CUDA graph replays every kernel of the step with one launch, so the host's dispatch "
    "time drops out: a launch-bound step captured in a graph runs at the GPU's pace. "
    "torch.compile fuses kernels, so the step makes fewer launches and moves the same way. "
    "Neither changes the arithmetic: a compute-bound step gains little from them. Each "
    "phase's bound is in results.csv (`bound`).")


def variants_note(d: pd.DataFrame) -> str | None:
    """Which configurations of the run use a CUDA graph or torch.compile, if any."""
    graphs = int(d[CUDA_GRAPH.name].astype(str).str.lower().eq("true").sum())
    compiled = int((d[COMPILE.name].astype(str) != str(COMPILE.default)).sum())
    if not graphs and not compiled:
        return None
    return (f"This run has {graphs} configuration(s) replayed as a CUDA graph and "
            f"{compiled} compiled: compare their bound with their eager twins' below.")


def energy_chart(d: pd.DataFrame) -> go.Figure | None:
    """Samples per joule of each configuration, one bar each; estimates (mean power x time)
    drawn in grey and hatched."""
    d = d[d["samples_per_j"].notna() & (d["samples_per_j"] > 0)]
    if d.empty:
        return None
    fig = go.Figure()
    for source, rows in d.groupby("energy_source", sort=True):
        estimate = source == ESTIMATE
        name = "estimate (mean power x time)" if estimate else "energy counter"
        texts = [config_hover(r, [f"{s:.4g} samples/J, {j:.4g} J per step ({name})"])
                 for r, s, j in zip(rows.to_dict("records"), rows["samples_per_j"],
                                    rows["energy_j_per_step"])]
        fig.add_trace(go.Bar(
            x=rows["samples_per_j"].tolist(), y=[esc(c) for c in rows["config"]],
            orientation="h", name=name,
            marker=dict(color=SOURCE_COLORS.get(source, "#4C78A8"),
                        pattern_shape="/" if estimate else ""),
            hovertext=texts, hovertemplate="%{hovertext}<extra></extra>"))
    order = [esc(c) for c in d["config"]][::-1]  # the table's order, top to bottom
    fig.update_layout(title="Samples per joule of each configuration (higher is better; "
                      "hatched: estimated from mean power x time)", template="plotly_white",
                      height=160 + BAR_PX * len(d), margin=dict(l=20, t=80),
                      yaxis=dict(categoryorder="array", categoryarray=order, automargin=True))
    fig.update_xaxes(title_text="samples / J")
    return fig


def bounds_section(results: pd.DataFrame) -> Section:
    """The section: in words, then the table, then the energy chart where there is one."""
    section = Section("What bounds each configuration", anchor="bounds")
    d = step_bounds(results)
    if d.empty:
        section.blocks.append("No configuration was measured: no bound is computed.")
        return section
    cuda = d[[is_cuda(v) for v in d[DEVICE.name]]]
    if cuda.empty:
        kinds = sorted({str(v).split(":", 1)[0] for v in d[DEVICE.name]})
        where = "on the CPU" if kinds == ["cpu"] else f"on {', '.join(kinds)}, not CUDA"
        section.blocks.append(f"Measured {where}: no launch/compute bound is computed (it "
                              "needs the separate host and device clocks of CUDA).")
        return section
    if len(cuda) < len(d):
        section.blocks.append(f"{len(d) - len(cuda)} configuration(s) were measured without "
                              "CUDA: no bound is computed for them.")
    section.blocks += [bound_summary(cuda), WHY, variants_note(cuda),
                       Details(f"every configuration's bound ({len(cuda)})", [bound_table(cuda)])]
    chart = energy_chart(cuda)
    if chart is not None:
        counted = int((cuda["energy_source"] == COUNTER).sum())
        estimated = int((cuda["energy_source"] == ESTIMATE).sum())
        text = ["Samples per joule: the batch over the energy of one step."]
        if counted:
            text.append(f"{counted} configuration(s) have it from NVML's energy counter, read "
                        "before and after each of their timed blocks.")
        if estimated:
            text.append(f"{estimated} ran on a GPU without the counter: theirs is the "
                        "comparison group's mean board power times the step's time, an "
                        "estimate (hatched), which sets the configurations of a group apart "
                        "only by their times.")
        section.blocks += [" ".join(text), chart]
    else:
        section.blocks.append("No energy figures: NVML's energy counter and power were not "
                              "read in this run.")
    section.blocks = [b for b in section.blocks if b is not None]
    return section
