"""The comparison of runs, rendered: the terminal's list of regressions and improvements,
and the HTML page's heatmaps, trend chart and tables. Everything computed is
``bench/analyze/run_comparison.py``'s; this module only shows it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bench.analyze.block_verdicts import common_shift, single_units
from bench.analyze.run_comparison import (COMPARED, NOT_MEASURED, ONLY_BASELINE, ONLY_CANDIDATE,
                                          SLOT, Comparison, change_rows, trend_table)
from bench.analyze.judge import (CONFIDENCE, DRIFT, IMPROVEMENT, MAD_SCALE,
                                 REGRESSION)
from bench.axes import BATCH_SIZE, DEVICE, DIMENSIONS, OPTIMIZER_SETUP, SCENARIO
from bench.present.labels import esc, varying
from bench.present.shifts_text import detectable_text, shift_text
from bench.present.page import Section, Table
from bench.present.environment_section import env_table
from bench.schema import TIMED_PHASES
from bench.present.change_text import as_change, as_ratio

METHOD = (f"Ratios are candidate / baseline medians (with several repeats or runs on a side, "
          "the median of their medians), each repeat's median taken from its raw samples. "
          "Where both sides hold several repeats, the "
          f"{CONFIDENCE:.0%} interval is Welch's t interval on the logarithms of the repeat "
          "medians, so the spread between repeats and runs widens it. Where a side holds a "
          "single repeat of a single run, nothing within the run shows how far the next run "
          "would drift, so the comparison estimates it from all its measurements: per phase, "
          "the median ratio is the common shift, and the spread of the log-ratios about it "
          f"({MAD_SCALE} times their median absolute deviation, which a minority of real "
          "changes widens far less than a standard deviation) is the between-run noise. A "
          "shift common to every "
          "configuration is reported, not judged: one run per side cannot tell it from the "
          "machine's drift. Each configuration is judged by its departure from its phase's "
          "shift, against that spread and its own noise within the runs. A change is a "
          "regression or an improvement only when it (the departure, for one run per side) "
          "exceeds the threshold, its interval excludes no change, and it stays significant "
          "after the Benjamini-Hochberg correction for testing every measurement at once "
          "(q-value under 5%).")
# Drawn as the heatmap's rows and columns; the rest that varies joins the row's name.
HEATMAP_DRAWN = (SCENARIO, OPTIMIZER_SETUP, BATCH_SIZE, DEVICE)
# A heatmap taller than this is unreadable, and a table longer than this unscannable: they
# keep the rows with the most (or largest) significant changes and say how many they left out.
MAX_HEATMAP_ROWS, MAX_TABLE_ROWS = 60, 100
NEUTRAL = "#e6e6e6"  # a cell without a significant change
SIGNIFICANT = (REGRESSION, IMPROVEMENT)


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
            f"ratio {record['ratio']:.3f}"]
        if record["method"] == DRIFT:
            lines += [f"common shift of the phase {record['shift']:.3f}, departure "
                      f"{record['departure']:.3f}"]
        lines += [f"{CONFIDENCE:.0%} interval [{as_ratio(record['low'])}, "
                  f"{as_ratio(record['high'])}], "
                  f"q {record['q_value']:.2g}: {record['verdict']}"]
    else:
        lines.append(f"not compared: baseline {record['baseline_status']}, candidate "
                     f"{record['candidate_status']}")
    return "<br>".join(esc(line) for line in lines)


def heatmap_rows(d: pd.DataFrame) -> tuple[list[str], int]:
    """The heatmap's rows in order (scenario, setup, then name), at most MAX_HEATMAP_ROWS:
    those with the most significant cells, then the largest; and how many there were."""
    setup_rank = {s: i for i, s in enumerate(OPTIMIZER_SETUP.order)}
    hit = d["verdict"].isin(SIGNIFICANT)
    ranked = d.assign(hit=hit, change=np.abs(np.log(d["ratio"].where(hit))))
    score = ranked.groupby("row", sort=False).agg(hits=("hit", "sum"),
                                                  largest=("change", "max"))
    kept = score.sort_values(["hits", "largest"], ascending=False, kind="stable").index
    kept = set(kept[:MAX_HEATMAP_ROWS])
    first = d.drop_duplicates("row").set_index("row")
    rows = sorted(kept, key=lambda label: (
        first.loc[label, SCENARIO.name],
        setup_rank.get(first.loc[label, OPTIMIZER_SETUP.name], 9), label))
    return rows, len(first)


def _cell(record: dict | None) -> tuple[float | None, float | None, str, str]:
    """(colour value, neutral value, text, hover) of one cell: only a significant change is
    coloured; a compared cell without one is drawn neutral; a cell not measured shows its
    statuses."""
    if record is None:
        return None, None, "", ""
    tip = comparison_hover(record)
    if record["outcome"] != COMPARED:
        return None, None, esc(f"{record['baseline_status']} → {record['candidate_status']}"), tip
    mark = {REGRESSION: " ▲", IMPROVEMENT: " ▼"}.get(record["verdict"], "")
    shown = f"{record['ratio']:.2f}{mark}"
    if record["verdict"] in SIGNIFICANT:
        return float(np.log2(record["ratio"])), None, shown, tip
    return None, 0.0, shown, tip


def ratio_heatmap(table: pd.DataFrame, title: str) -> go.Figure | None:
    """Candidate/baseline ratios as a heatmap per phase: a row per scenario and setup (and
    whatever else varies), a column per batch size. Only significant changes are coloured,
    red slower and blue faster on a log scale, ▲ a regression, ▼ an improvement; the other
    compared cells are light grey with their ratio written; a configuration not measured on
    a side shows its statuses instead."""
    d = table[table["outcome"].isin([COMPARED, NOT_MEASURED])].copy()
    if d.empty:
        return None
    extra = [dim for dim in DIMENSIONS if dim not in HEATMAP_DRAWN
             and dim.name in varying(d, [dim.name])]
    slots = varying(d, [SLOT])
    records = d.to_dict("records")
    for r in records:
        r["row"] = " · ".join([r[SCENARIO.name], r[OPTIMIZER_SETUP.name],
                               *(r[c] for c in slots),
                               *(dim.describe(r[dim.name]) for dim in extra)])
    d["row"] = [r["row"] for r in records]
    cells = {(r["phase"], r["row"], r[BATCH_SIZE.name]): r for r in records}
    rows, total = heatmap_rows(d)
    if len(rows) < total:
        title += f" (the {len(rows)} of {total} rows with the most significant changes)"
    batches = sorted(d[BATCH_SIZE.name].unique())
    phases = [p for p in TIMED_PHASES if p in set(d["phase"])]
    ratios = d.loc[d["verdict"].isin(SIGNIFICANT), "ratio"]
    # the colours span the largest significant change, at least 10% and at most 2x
    largest = float(np.abs(np.log2(ratios)).max()) if len(ratios) else 0.0
    span = min(max(largest, np.log2(1.1)), 1.0)
    ticks = [-span, -span / 2, 0, span / 2, span]
    fig = make_subplots(rows=1, cols=len(phases), shared_yaxes=True,
                        column_titles=[esc(p) for p in phases], horizontal_spacing=0.02)
    x, y = [str(b) for b in batches], [esc(r) for r in rows]
    for c, phase in enumerate(phases, 1):
        grid = [[_cell(cells.get((phase, label, batch))) for batch in batches]
                for label in rows]
        z, neutral, text, hover = ([[cell[i] for cell in line] for line in grid]
                                   for i in range(4))
        fig.add_trace(go.Heatmap(
            z=neutral, x=x, y=y, name="no significant change", hoverinfo="skip",
            colorscale=[[0, NEUTRAL], [1, NEUTRAL]], showscale=False, xgap=2, ygap=2),
            row=1, col=c)
        fig.add_trace(go.Heatmap(
            z=z, x=x, y=y, name="significant change", text=text, texttemplate="%{text}",
            hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
            colorscale="RdBu_r", zmid=0, zmin=-span, zmax=span, showscale=c == 1, xgap=2,
            ygap=2, colorbar=dict(title=dict(text="ratio<br>(significant<br>only)"),
                                  tickvals=ticks,
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


SINGLE_UNIT_NOTE = ("a side holds a single repeat of a single run, so each configuration is "
                    "judged by its departure from the common shift of its phase, against the "
                    "spread of every configuration's ratio about that shift; runs made with "
                    "--repeats 3 are judged repeat by repeat instead")


def unconfirmed_text(compared: pd.DataFrame) -> str:
    """What departed from the shift in one measurement window only, in words."""
    lonely = compared[compared.get("unconfirmed", False) == True]  # noqa: E712
    if lonely.empty:
        return ""
    configs = lonely["config"].nunique()
    return (f"{len(lonely)} measurement(s) of {configs} configuration(s) depart from the shift "
            f"at one batch size only, one measurement window: one run per side cannot tell "
            "that from a few seconds of the machine at another speed, so they are not "
            "counted (the same change at a second batch size would be)")


def _units_text(compared: pd.DataFrame) -> str:
    if compared.empty:
        return "none"
    return (f"repeats per measurement, all runs of a side together: baseline "
            f"{int(compared['baseline_units'].max())}, candidate "
            f"{int(compared['candidate_units'].max())}")


def _amount(ratio: float) -> str:
    return f"{abs(ratio - 1):.0%} {'slower' if ratio > 1 else 'faster'}"


def _departure(record: dict, form: str = "") -> str:
    """The departure from the common shift, where it is what was judged."""
    if record["method"] != DRIFT:
        return "-"
    return form.format(record["departure"]) if form else as_change(record["departure"])


def _change_lines(rows: pd.DataFrame, width: int) -> list[str]:
    """The terminal's table of changes; where a side has one run, `vs shift` is the change
    judged (the departure from the phase's common shift) and the interval is of it."""
    shifted = single_units(rows)
    lines = [f"  {'configuration':<{width}} {'phase':<9} {'baseline ms':>11} "
             f"{'candidate ms':>12} {'change':>8} " + (f"{'vs shift':>8} " if shifted else "")
             + f" {f'{CONFIDENCE:.0%} interval':<18} {'q':>7}"]
    for r in rows.to_dict("records"):
        interval = f"[{as_change(r['low'])}, {as_change(r['high'])}]"
        lines.append(f"  {r['config']:<{width}} {r['phase']:<9} {r['baseline_ms']:>11.4g} "
                     f"{r['candidate_ms']:>12.4g} {as_change(r['ratio']):>8} "
                     + (f"{_departure(r):>8} " if shifted else "")
                     + f" {interval:<18} {r['q_value']:>7.2g}")
    return lines


def format_terminal(comparison: Comparison) -> str:
    """The regressions and improvements of each candidate, and what could not be compared."""
    out = [f"Baseline: {comparison.baseline.named}; "
           f"threshold {comparison.threshold:.0%}; {CONFIDENCE:.0%} intervals (t over repeat "
           "medians, or the departure from the common shift where a side has one run) and "
           "Benjamini-Hochberg q-values"]
    for side, table in zip(comparison.candidates, comparison.tables):
        compared = table[table["outcome"] == COMPARED]
        n_reg = int((compared["verdict"] == REGRESSION).sum())
        n_imp = int((compared["verdict"] == IMPROVEMENT).sum())
        out += ["", f"Candidate {side.named}: {len(compared)} measurements compared "
                f"({_units_text(compared)}): {n_reg} regression(s), {n_imp} improvement(s)."]
        shift = shift_text(common_shift(table, comparison.threshold), comparison.threshold)
        if shift:
            out.append(shift)
        seen = detectable_text(compared, comparison.threshold)
        if seen:
            out.append(seen)
        if single_units(compared):
            out.append(f"note: {SINGLE_UNIT_NOTE}")
        lonely = unconfirmed_text(compared)
        if lonely:
            out.append(f"note: {lonely}.")
        width = max([len(c) for c in table["config"]] + [13])
        for name, title in ((REGRESSION, "Regressions"), (IMPROVEMENT, "Improvements")):
            rows = change_rows(compared, name)
            if not rows.empty:
                out += [f"{title}:", *_change_lines(rows, width)]
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


def _capped(rows: pd.DataFrame, what: str) -> tuple[pd.DataFrame, str]:
    """At most MAX_TABLE_ROWS of ``rows`` (already in order), and a note of the rest."""
    if len(rows) <= MAX_TABLE_ROWS:
        return rows, ""
    return rows.head(MAX_TABLE_ROWS), (f"The first {MAX_TABLE_ROWS} of {len(rows)} {what} "
                                       "are listed; the terminal lists them all.")


def _change_table(rows: pd.DataFrame, css: str) -> Table:
    """Where a side has one run, `vs common shift` is the ratio judged, and the interval
    is of it."""
    shifted = single_units(rows)
    body = [[r["config"], r["phase"], f"{r['baseline_ms']:.4g}", f"{r['candidate_ms']:.4g}",
             f"{r['ratio']:.3f}", *([_departure(r, "{:.3f}")] if shifted else []),
             f"[{as_ratio(r['low'])}, {as_ratio(r['high'])}]", f"{r['q_value']:.2g}",
             f"{r['baseline_units']} / {r['candidate_units']}"] for r in rows.to_dict("records")]
    header = ["configuration", "phase", "baseline ms", "candidate ms", "ratio",
              *(["vs common shift"] if shifted else []), f"{CONFIDENCE:.0%} interval", "q",
              "repeats (base / cand.)"]
    numeric = {2, 3, 4, len(header) - 2, len(header) - 1} | ({5} if shifted else set())
    return Table(header, body, row_classes=[css] * len(body), numeric=frozenset(numeric))


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
    shift = shift_text(common_shift(table, comparison.threshold), comparison.threshold)
    section.blocks += [line for line in shift.split("\n") if line]
    seen = detectable_text(compared, comparison.threshold)
    if seen:
        section.blocks.append(seen)
    if single_units(compared):
        section.blocks.append(f"Note: {SINGLE_UNIT_NOTE}.")
    lonely = unconfirmed_text(compared)
    if lonely:
        section.blocks.append(f"Note: {lonely}.")
    section.blocks.append(ratio_heatmap(
        table, f"{side.label} / {baseline.label}: ratio of medians per phase (coloured where "
        "significant: ▲ regression, ▼ improvement; grey: no significant change)"))
    for name, css in ((REGRESSION, "regression"), (IMPROVEMENT, "improvement")):
        rows, note = _capped(change_rows(compared, name), f"{name}s")
        if len(rows):
            section.blocks += [f"{name.capitalize()}s:", _change_table(rows, css), note]
    others, note = _capped(table[table["outcome"] != COMPARED]
                           .drop_duplicates(["config", "outcome"]), "configurations")
    if len(others):
        section.blocks += [
            "Not compared: configurations missing from a side, or not measured there (out of "
            "memory, skipped, a non-finite loss, an error). They are not counted as changes.",
            Table(["configuration", "outcome", "baseline", "candidate"],
                  [[r["config"], r["outcome"], r["baseline_status"], r["candidate_status"]]
                   for r in others.to_dict("records")]), note]
    return section


def _blank(block) -> bool:
    return isinstance(block, str) and not block


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
    sections.append(Section("Environments", env_table({s.label: s.env() for s in sides}),
                            anchor="environment"))
    for section in sections:
        section.blocks = [b for b in section.blocks if b is not None and not _blank(b)]
    return intro, sections


def comparison_title(comparison: Comparison) -> str:
    return (f"multinet-bench comparison: {', '.join(s.label for s in comparison.candidates)} "
            f"against {comparison.baseline.label}")
