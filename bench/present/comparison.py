"""The comparison of runs, rendered: the terminal's list of regressions and improvements,
and the HTML page's heatmaps, trend chart and tables. Everything computed is
``bench/analyze/comparison.py``'s; this module only shows it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bench.analyze.comparison import (COMPARED, NOT_MEASURED, ONLY_BASELINE, ONLY_CANDIDATE,
                                      SLOT, Comparison, change_rows, single_units,
                                      trend_table)
from bench.analyze.significance import CONFIDENCE, IMPROVEMENT, REGRESSION
from bench.axes import BATCH_SIZE, DEVICE, DIMENSIONS, OPTIMIZER_SETUP, SCENARIO
from bench.present.labels import esc, varying
from bench.present.page import Section, Table
from bench.present.report import env_table
from bench.schema import TIMED_PHASES

METHOD = (f"Ratios are candidate / baseline medians (with several repeats or runs on a side, "
          f"the median of their medians). Each {CONFIDENCE:.0%} interval comes from the raw "
          "samples: with one repeat of one run per side, a percentile bootstrap of the "
          "medians; with several on a side, Welch's t interval on the logarithms of the "
          "repeat medians, so the spread between repeats and runs widens it. A change is a "
          "regression or an improvement only when it exceeds the threshold, its interval "
          "excludes 1, and it stays significant after the Benjamini-Hochberg correction for "
          "testing every measurement at once (q-value under 5%).")
# Drawn as the heatmap's rows and columns; the rest that varies joins the row's name.
HEATMAP_DRAWN = (SCENARIO, OPTIMIZER_SETUP, BATCH_SIZE, DEVICE)


def comparison_hover(record: dict) -> str:
    named = [d.describe(record[d.name]) for d in DIMENSIONS
             if d is not DEVICE and d.shown(record[d.name])]
    lines = [" · ".join(named), f"phase {record['phase']}"]
    if record["outcome"] == COMPARED:
        lines += [
            f"baseline {record['baseline_ms']:.4g} ms on {record['baseline_device']} "
            f"({record['baseline_units']} repeat(s))",
            f"candidate {record['candidate_ms']:.4g} ms on {record['candidate_device']} "
            f"({record['candidate_units']} repeat(s))",
            f"ratio {record['ratio']:.3f}, {CONFIDENCE:.0%} interval [{record['low']:.3f}, "
            f"{record['high']:.3f}], q {record['q_value']:.2g}: {record['verdict']}"]
    else:
        lines.append(f"not compared: baseline {record['baseline_status']}, candidate "
                     f"{record['candidate_status']}")
    return "<br>".join(esc(line) for line in lines)


def ratio_heatmap(table: pd.DataFrame, title: str) -> go.Figure | None:
    """Candidate/baseline ratios as a heatmap per phase: a row per scenario and setup (and
    whatever else varies), a column per batch size. Red is slower, blue faster, on a log
    scale; ▲ marks a regression, ▼ an improvement; a configuration not measured on a side
    shows its statuses instead."""
    d = table[table["outcome"].isin([COMPARED, NOT_MEASURED])].copy()
    if d.empty:
        return None
    extra = [dim for dim in DIMENSIONS if dim not in HEATMAP_DRAWN
             and dim.name in varying(d, [dim.name])]
    slots = varying(d, [SLOT])
    d["row"] = [" · ".join([r[SCENARIO.name], r[OPTIMIZER_SETUP.name], *(r[c] for c in slots),
                            *(dim.describe(r[dim.name]) for dim in extra)])
                for r in d.to_dict("records")]
    setup_rank = {s: i for i, s in enumerate(OPTIMIZER_SETUP.order)}
    first = d.drop_duplicates("row").set_index("row")
    rows = sorted(first.index, key=lambda label: (
        first.loc[label, SCENARIO.name],
        setup_rank.get(first.loc[label, OPTIMIZER_SETUP.name], 9), label))
    batches = sorted(d[BATCH_SIZE.name].unique())
    phases = [p for p in TIMED_PHASES if p in set(d["phase"])]
    ratios = d["ratio"].dropna()
    # the colours span the largest change, at least 10% and at most 2x (beyond, saturated)
    largest = float(np.abs(np.log2(ratios)).max()) if len(ratios) else 0.0
    span = min(max(largest, np.log2(1.1)), 1.0)
    ticks = [-span, -span / 2, 0, span / 2, span]
    fig = make_subplots(rows=1, cols=len(phases), shared_yaxes=True,
                        column_titles=[esc(p) for p in phases], horizontal_spacing=0.02)
    for c, phase in enumerate(phases, 1):
        cells = {(r["row"], r[BATCH_SIZE.name]): r
                 for r in d[d["phase"] == phase].to_dict("records")}
        z, text, hover = [], [], []
        for label in rows:
            z.append([]), text.append([]), hover.append([])
            for batch in batches:
                record = cells.get((label, batch))
                if record is None:
                    value, shown, tip = None, "", ""
                elif record["outcome"] == COMPARED:
                    mark = {REGRESSION: " ▲", IMPROVEMENT: " ▼"}.get(record["verdict"], "")
                    value, shown = float(np.log2(record["ratio"])), f"{record['ratio']:.2f}{mark}"
                    tip = comparison_hover(record)
                else:
                    value = None
                    shown = esc(f"{record['baseline_status']} → {record['candidate_status']}")
                    tip = comparison_hover(record)
                z[-1].append(value), text[-1].append(shown), hover[-1].append(tip)
        fig.add_trace(go.Heatmap(
            z=z, x=[str(b) for b in batches], y=[esc(r) for r in rows], text=text,
            texttemplate="%{text}", hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>", colorscale="RdBu_r", zmid=0,
            zmin=-span, zmax=span, showscale=c == 1, xgap=2, ygap=2,
            colorbar=dict(title=dict(text="ratio"), tickvals=ticks,
                          ticktext=[f"{2 ** t:.2f}" for t in ticks])), row=1, col=c)
    fig.update_xaxes(type="category", title_text="batch size")
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(title=esc(title), template="plotly_white",
                      height=200 + 30 * len(rows))
    return fig


def trend_chart(comparison: Comparison) -> go.Figure | None:
    """Median step time of each matched configuration across the runs, baseline first: a
    line per configuration; the x axis is labelled by what tells the runs apart."""
    table = trend_table(comparison)
    if table.empty:
        return None
    sides = [comparison.baseline, *comparison.candidates]
    x = [esc(side.label) for side in sides]
    fig = go.Figure()
    for label, rows in table.groupby("config", sort=False):
        points = dict(zip(rows["side"], zip(rows["median_ms"], rows["devices"])))
        values = [points.get(i) for i in range(len(sides))]
        hover = [esc(label) + "<br>" + esc(f"{side.label}: {v[0]:.4g} ms on {v[1]}")
                 if v else "" for side, v in zip(sides, values)]
        fig.add_trace(go.Scatter(
            x=x, y=[v[0] if v else None for v in values], mode="lines+markers",
            name=esc(label), hovertext=hover, hovertemplate="%{hovertext}<extra></extra>"))
    fig.update_layout(title="Step time per configuration across the runs (median ms)",
                      template="plotly_white", height=600,
                      yaxis=dict(type="log", title_text="ms"),
                      xaxis=dict(type="category", title_text="run"))
    return fig


SINGLE_UNIT_NOTE = ("a side holds a single repeat of a single run, so the intervals know the "
                    "noise within a run but not the spread between runs; on a shared "
                    "machine, compare runs made with --repeats 3")


def _units_text(compared: pd.DataFrame) -> str:
    if compared.empty:
        return "none"
    return (f"repeats per measurement, all runs of a side together: baseline "
            f"{int(compared['baseline_units'].max())}, candidate "
            f"{int(compared['candidate_units'].max())}")


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def format_terminal(comparison: Comparison) -> str:
    """The regressions and improvements of each candidate, and what could not be compared."""
    out = [f"Baseline: {comparison.baseline.named}; "
           f"threshold {comparison.threshold:.0%}; {CONFIDENCE:.0%} intervals (bootstrap over "
           "samples, or t over repeat medians) and Benjamini-Hochberg q-values"]
    for side, table in zip(comparison.candidates, comparison.tables):
        compared = table[table["outcome"] == COMPARED]
        n_reg = int((compared["verdict"] == REGRESSION).sum())
        n_imp = int((compared["verdict"] == IMPROVEMENT).sum())
        out += ["", f"Candidate {side.named}: {len(compared)} measurements compared "
                f"({_units_text(compared)}): {n_reg} regression(s), {n_imp} improvement(s)."]
        if single_units(compared):
            out.append(f"note: {SINGLE_UNIT_NOTE}")
        width = max([len(c) for c in table["config"]] + [13])
        for name, title in ((REGRESSION, "Regressions"), (IMPROVEMENT, "Improvements")):
            rows = change_rows(compared, name)
            if rows.empty:
                continue
            out.append(f"{title}:")
            out.append(f"  {'configuration':<{width}} {'phase':<9} {'baseline ms':>11} "
                       f"{'candidate ms':>12} {'change':>8}  {f'{CONFIDENCE:.0%} interval':<18} "
                       f"{'q':>7}")
            for r in rows.to_dict("records"):
                interval = f"[{_pct(r['low'])}, {_pct(r['high'])}]"
                out.append(f"  {r['config']:<{width}} {r['phase']:<9} {r['baseline_ms']:>11.4g} "
                           f"{r['candidate_ms']:>12.4g} {_pct(r['ratio']):>8}  {interval:<18} "
                           f"{r['q_value']:>7.2g}")
        missing = table[table["outcome"] == NOT_MEASURED].drop_duplicates("config")
        if len(missing):
            out.append("Not compared, not measured on a side (listed, not counted as changes):")
            for r in missing.to_dict("records"):
                out.append(f"  {r['config']:<{width}} baseline {r['baseline_status']}, "
                           f"candidate {r['candidate_status']}")
        for outcome in (ONLY_BASELINE, ONLY_CANDIDATE):
            configs = table.loc[table["outcome"] == outcome, "config"].nunique()
            if configs:
                out.append(f"{configs} configuration(s) {outcome} (listed in the HTML page).")
    return "\n".join(out)


def _change_table(rows: pd.DataFrame, css: str) -> Table:
    body = [[r["config"], r["phase"], f"{r['baseline_ms']:.4g}", f"{r['candidate_ms']:.4g}",
             f"{r['ratio']:.3f}", f"[{r['low']:.3f}, {r['high']:.3f}]", f"{r['q_value']:.2g}",
             f"{r['baseline_units']} / {r['candidate_units']}"] for r in rows.to_dict("records")]
    return Table(["configuration", "phase", "baseline ms", "candidate ms", "ratio",
                  f"{CONFIDENCE:.0%} interval", "q", "repeats (base / cand.)"], body,
                 row_classes=[css] * len(body), numeric=frozenset({2, 3, 4, 6, 7}))


def candidate_section(comparison: Comparison, index: int) -> Section:
    side, table = comparison.candidates[index], comparison.tables[index]
    baseline = comparison.baseline
    compared = table[table["outcome"] == COMPARED]
    section = Section(f"{side.label} against {baseline.label}", anchor=f"candidate-{index + 1}")
    section.blocks.append(
        f"Candidate {side.folders} against baseline {baseline.folders}: {len(compared)} "
        f"measurements compared, {int((compared['verdict'] == REGRESSION).sum())} "
        f"regression(s), {int((compared['verdict'] == IMPROVEMENT).sum())} improvement(s) "
        f"beyond {comparison.threshold:.0%} ({_units_text(compared)}).")
    if single_units(compared):
        section.blocks.append(f"Note: {SINGLE_UNIT_NOTE}.")
    section.blocks.append(ratio_heatmap(table, f"{side.label} / {baseline.label}: ratio of "
                                        "medians per phase (▲ regression, ▼ improvement)"))
    for name, css in ((REGRESSION, "regression"), (IMPROVEMENT, "improvement")):
        rows = change_rows(compared, name)
        if len(rows):
            section.blocks += [f"{name.capitalize()}s:", _change_table(rows, css)]
    others = table[table["outcome"] != COMPARED].drop_duplicates(["config", "outcome"])
    if len(others):
        section.blocks += [
            "Not compared: configurations missing from a side, or not measured there (out of "
            "memory, skipped, a non-finite loss, an error). They are not counted as changes.",
            Table(["configuration", "outcome", "baseline", "candidate"],
                  [[r["config"], r["outcome"], r["baseline_status"], r["candidate_status"]]
                   for r in others.to_dict("records")])]
    return section


def comparison_sections(comparison: Comparison) -> tuple[list[str], list[Section]]:
    sides = [comparison.baseline, *comparison.candidates]
    intro = [f"Baseline: {comparison.baseline.named}. Candidate(s): "
             f"{', '.join(s.named for s in comparison.candidates)}. Threshold: "
             f"{comparison.threshold:.0%}.", METHOD]
    sections = [candidate_section(comparison, i) for i in range(len(comparison.candidates))]
    if len(comparison.candidates) > 1:
        trend = trend_chart(comparison)
        if trend is not None:
            sections.append(Section("Across the runs", [trend], anchor="trend"))
    envs = env_table({s.label: s.env() for s in sides})
    differs = [row[0] for row, css in zip(envs.rows, envs.row_classes) if css]
    sections.append(Section("Environments", [
        ("What differs: " + ", ".join(differs) + "." if differs
         else "The environments agree on every field (run ids and times aside)."), envs],
        anchor="environment"))
    for section in sections:
        section.blocks = [b for b in section.blocks if b is not None]
    return intro, sections


def comparison_title(comparison: Comparison) -> str:
    return (f"multinet-bench comparison: {', '.join(s.label for s in comparison.candidates)} "
            f"against {comparison.baseline.label}")
