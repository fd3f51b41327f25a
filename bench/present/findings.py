"""The report's opening section: what the run found, as verdicts with intervals.

Each configuration of a comparison group is set against the group's reference (by default
each optimizer setup against `separate`), from blocks paired round by round
(``bench/analyze/ratios.py``). The section gives the verdicts in a sentence, draws every
ratio with its interval (the threshold band shaded: an interval inside it is `same`), and
lists them in a table, with a sentence per scenario. Nothing is called faster on a median
alone.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from bench.analyze.judge import FASTER, ORDER_VERDICTS, SAME, SLOWER, UNDECIDED
from bench.analyze.run_tables import ordered
from bench.axes import BATCH_SIZE, DIMENSIONS, SCENARIO
from bench.present.charts import error_bars
from bench.present.labels import esc, varying
from bench.present.page import Section, Table
from bench.schema import STEP

VERDICT_COLORS = {FASTER: "#1a9850", SLOWER: "#d73027", SAME: "#4575b4",
                  UNDECIDED: "#999999"}
ROW_PX = 24


def labels(ratios: pd.DataFrame) -> list[str]:
    """Each ratio's configuration in words: what varies among them, the run where several."""
    shown = [d for d in DIMENSIONS if d.name in varying(ratios, [d.name])]
    several_runs = ratios["run_id"].nunique() > 1
    out = []
    for _, r in ratios.iterrows():
        parts = [r["run_id"]] if several_runs else []
        parts += [d.describe(r[d.name]) for d in shown if d.name != r["compared"]]
        parts.append(f"{r['value']} vs {r['reference']}")
        out.append(" · ".join(str(p) for p in parts))
    return out


def ordered_ratios(ratios: pd.DataFrame) -> pd.DataFrame:
    """Step ratios, grouped as the configurations are: scenario, batch size, then the rest."""
    steps = ratios[ratios["phase"] == STEP].copy()
    steps["label"] = labels(steps)
    return steps.sort_values([SCENARIO.name, BATCH_SIZE.name, "group", "value"],
                             kind="stable").reset_index(drop=True)


def ratio_chart(steps: pd.DataFrame) -> go.Figure:
    """Every ratio as a point with its 95% interval, coloured by verdict, on a log axis; the
    band of the threshold shaded around 1."""
    threshold = float(steps["threshold"].iloc[0])
    fig = go.Figure()
    for verdict in ORDER_VERDICTS:
        rows = steps[steps["verdict"] == verdict]
        if rows.empty:
            continue
        ratio = rows["ratio"].tolist()
        hover = [esc(f"{label}: {r:.3f} [{lo:.3f}, {hi:.3f}], {verdict}, "
                     f"{n} paired blocks")
                 for label, r, lo, hi, n in zip(rows["label"], ratio, rows["ci_low"],
                                                rows["ci_high"], rows["blocks"])]
        fig.add_trace(go.Scatter(
            x=ratio, y=[esc(label) for label in rows["label"]], mode="markers", name=verdict,
            marker=dict(color=VERDICT_COLORS[verdict], size=8),
            error_x=error_bars(ratio, rows["ci_low"], rows["ci_high"]),
            hovertext=hover, hovertemplate="%{hovertext}<extra></extra>"))
    fig.add_vrect(x0=1 - threshold, x1=1 + threshold, fillcolor="#4575b4", opacity=0.08,
                  line_width=0)
    fig.add_vline(x=1, line_dash="dot", line_color="#666")
    fig.update_layout(
        title=esc("Step time over the reference's, with intervals at the looks the groups "
                  f"stopped at (shaded: within ±{threshold:.0%}, the same)"),
        template="plotly_white", height=160 + ROW_PX * len(steps), margin=dict(l=20),
        legend=dict(title=dict(text="verdict")))
    fig.update_xaxes(type="log", title_text="ratio (below 1 is faster)")
    fig.update_yaxes(type="category", categoryorder="array",
                     categoryarray=[esc(label) for label in steps["label"]][::-1],
                     automargin=True)
    return fig


def verdict_table(steps: pd.DataFrame, took: pd.Series) -> Table:
    """A row per ratio, with what its verdict took: the paired rounds, the look it was
    taken at (and that look's confidence), and its group's sampling seconds."""
    body = [[r["label"], f"{r['reference_ms']:.4g}", f"{r['config_ms']:.4g}",
             f"{r['ratio']:.3f}", f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]", r["verdict"],
             r["blocks"], _look(r), _seconds(took.get((r["run_id"], r["group"])))]
            for _, r in steps.iterrows()]
    css = {FASTER: "improvement", SLOWER: "regression"}
    return Table(["configuration", "reference ms", "ms", "ratio", "interval", "verdict",
                  "paired rounds", "look (confidence)", "group's seconds"], body,
                 row_classes=[css.get(r["verdict"], "") for _, r in steps.iterrows()],
                 numeric=frozenset({1, 2, 3, 6, 8}))


def _verdict_counts(cell: pd.DataFrame) -> str:
    """`2 faster (0.104 to 0.669), 1 slower (2.43), 3 inconclusive`: each verdict's count
    and, where it says faster or slower, the range of those ratios."""
    parts = []
    for verdict in ORDER_VERDICTS:
        ratios = cell.loc[cell["verdict"] == verdict, "ratio"]
        if ratios.empty:
            continue
        low, high = ratios.min(), ratios.max()
        span = f"{low:.3g}" if len(ratios) == 1 else f"{low:.3g} to {high:.3g}"
        parts.append(f"{len(ratios)} {verdict}"
                     + (f" ({span})" if verdict in (FASTER, SLOWER) else ""))
    return ", ".join(parts)


def scenario_sentences(steps: pd.DataFrame) -> list[str]:
    """One sentence per scenario and compared value: what its step time did against the
    reference, over every configuration of it."""
    out = []
    for scenario in ordered(steps[SCENARIO.name]):
        rows = steps[steps[SCENARIO.name] == scenario]
        for (compared, reference, value), cell in rows.groupby(
                ["compared", "reference", "value"], sort=False):
            out.append(f"{scenario}: `{value}` against `{reference}` "
                       f"({compared.replace('_', ' ')}) over {len(cell)} configuration"
                       f"{'s' if len(cell) > 1 else ''}: {_verdict_counts(cell)}.")
    return out


def _look(row) -> str:
    look, confidence = row.get("look"), row.get("confidence")
    if look != look or look is None:
        return ""
    return f"{int(look)} ({confidence:.2%})"


def _seconds(value) -> str:
    return "" if value is None or value != value else f"{value:.1f}"


def group_seconds(results: pd.DataFrame | None) -> pd.Series:
    """Per (run_id, group): the sampling seconds its configurations took together."""
    if results is None or "measure_s" not in results:
        return pd.Series(dtype=float)
    steps = results[(results["phase"] == STEP) & (results["group"] != "")]
    return steps.groupby(["run_id", "group"])["measure_s"].sum(min_count=1)


def findings_section(ratios: pd.DataFrame | None,
                     results: pd.DataFrame | None = None) -> Section:
    section = Section("Findings", anchor="findings")
    if ratios is None or ratios[ratios["phase"] == STEP].empty:
        section.blocks.append(
            "No comparison group in this run: every configuration was timed alone, so the "
            "charts below show medians, and no verdict is drawn from two of them.")
        return section
    steps = ordered_ratios(ratios)
    counts = steps["verdict"].value_counts()
    compared = ", ".join(ordered(steps["compared"]))
    references = ", ".join(f"`{r}`" for r in ordered(steps["reference"]))
    said = ", ".join(f"{counts[v]} {v}" for v in ORDER_VERDICTS if counts.get(v, 0))
    section.blocks += [
        f"Each {compared.replace('_', ' ')} against {references}, timed together round by "
        f"round in one process, the ratio of the step time taken per round: {said}. "
        f"`same` means the whole interval lies within ±{steps['threshold'].iloc[0]:.0%}; "
        "`faster` and `slower` that it excludes 1; `inconclusive` neither. A group stopped "
        "as soon as its verdicts were decided at a planned look; each look spends a share "
        "of a 5% error budget, so an interval is at the confidence of its look, and the "
        "table says what each verdict took.",
        *scenario_sentences(steps), ratio_chart(steps),
        verdict_table(steps, group_seconds(results))]
    return section
