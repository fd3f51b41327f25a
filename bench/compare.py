"""Comparison of runs: a baseline against one or more candidates, with significance.

A measurement is matched across runs by scenario, size, batch size, optimizer setup,
optimizer, implementation, phase and device *kind*: `cuda:0` on one machine meets `cuda:1`
on another (see ``device_slot``). For each match, the ratio of medians candidate/baseline
comes with a 95% interval and a p-value from the raw samples, in which each repeat of each
run is a unit (``bench.significance``), so the spread between runs and repeats widens the
interval; the p-values of all measurements are adjusted together. A configuration that was not measured on a side
(`oom`, `skipped`, `nonfinite`, `error`) is listed with its status, never given a ratio.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bench.describe import SETUP_ORDER, VARIANT_AXES, axes_text, ordered, unique_labels, varying
from bench.errors import UsageError
from bench.page import Section, Table, esc
from bench.report import env_table
from bench.runs import OK, PHASES, Run, device_kind, load_run, untimed_phases
from bench.significance import (CONFIDENCE, DEFAULT_THRESHOLD, IMPROVEMENT, REGRESSION,
                                RatioInterval, adjust, ratio_interval, verdict)

KEY = ("scenario", "size", "device_slot", "batch_size", "optimizer_setup", "optimizer",
       "optimizer_impl", *VARIANT_AXES, "phase")
UNIT = ("run_id", "repeat", "config_id", "phase")
COMPARED, NOT_MEASURED = "compared", "not measured"
ONLY_BASELINE, ONLY_CANDIDATE = "only in baseline", "only in candidate"
METHOD = (f"Ratios are candidate / baseline medians (with several repeats or runs on a side, "
          f"the median of their medians). Each {CONFIDENCE:.0%} interval comes from the raw "
          "samples: with one repeat of one run per side, a percentile bootstrap of the "
          "medians; with several on a side, Welch's t interval on the logarithms of the "
          "repeat medians, so the spread between repeats and runs widens it. A change is a "
          "regression or an improvement only when it exceeds the threshold, its interval "
          "excludes 1, and it stays significant after the Benjamini-Hochberg correction for "
          "testing every measurement at once (q-value under 5%).")


@dataclass
class Side:
    """One side of a comparison: one run folder, or several pooled (`DIR,DIR`)."""

    runs: list[Run]
    label: str = ""

    @property
    def folders(self) -> str:
        return "+".join(unique_labels([r.name for r in self.runs]))

    @property
    def named(self) -> str:
        """The label, with the folders when the label is not already them."""
        return self.label if self.label == self.folders else f"{self.label} ({self.folders})"

    def results(self) -> pd.DataFrame:
        return pd.concat([r.results for r in self.runs], ignore_index=True)

    def env(self) -> dict:
        """The first run's environment; a field on which pooled runs disagree shows every
        value."""
        envs = [r.env for r in self.runs]
        merged = dict(envs[0])
        for key in merged:
            values = list(dict.fromkeys(str(e.get(key)) for e in envs))
            if len(values) > 1:
                merged[key] = " | ".join(values)
        return merged


def load_side(argument: str) -> Side:
    """``DIR`` or ``DIR,DIR,...``: the runs of one side (an existing folder whose name holds
    a comma is taken whole)."""
    paths = [argument] if Path(argument).is_dir() else [p for p in argument.split(",") if p]
    if not paths:
        raise UsageError(f"{argument!r} names no run folder")
    return Side([load_run(p) for p in paths])


def device_slot(results: pd.DataFrame) -> pd.Series:
    """The device's kind, numbered when a run has several of that kind (`cuda`, `cuda#2`, in
    the order of their indexes): what matches across machines."""
    slots = pd.Series("", index=results.index, dtype=object)
    for _, rows in results.groupby("run_id", sort=False):
        devices = sorted(set(rows["device"]),
                         key=lambda d: (device_kind(d), len(d), d))  # cuda:2 before cuda:10
        seen: dict[str, int] = {}
        for device in devices:
            kind = device_kind(device)
            seen[kind] = seen.get(kind, 0) + 1
            slots[rows.index[rows["device"] == device]] = (
                kind if seen[kind] == 1 else f"{kind}#{seen[kind]}")
    return slots


def side_units(side: Side) -> pd.DataFrame:
    """The side's results rows (one per configuration, phase and repeat) keyed by ``KEY``,
    each with its raw samples as an array (`samples`, empty when it was not measured)."""
    results = side.results()
    # a CUDA graph's phases have no timing of their own: nothing to compare, nothing to list
    results = results[~untimed_phases(results)].reset_index(drop=True)
    results["device_slot"] = device_slot(results)
    measured = results["status"] == OK
    arrays = [np.empty(0)] * len(results)
    for run in side.runs:
        mine = (results["run_id"].isin(set(run.results["run_id"]))) & measured
        if not mine.any():
            continue
        samples = run.samples()
        values = pd.to_numeric(samples["device_ms"], errors="coerce").to_numpy()
        samples["repeat"] = pd.to_numeric(samples["repeat"]).astype(int)
        groups = samples.groupby(list(UNIT), sort=False).indices
        for i, row in zip(np.flatnonzero(mine.to_numpy()),
                          results.loc[mine, list(UNIT)].itertuples(index=False)):
            index = groups.get(tuple(row))
            if index is None:
                raise UsageError(f"{run.path}/samples.csv lacks the samples of "
                                 f"{row.config_id} ({row.phase}, repeat {row.repeat})")
            arrays[i] = values[index]
    results["samples"] = arrays
    return results


def key_label(row) -> str:
    """A matched configuration, like a config_id but with the device kind."""
    label = "/".join([row["scenario"], row["size"], row["device_slot"], f"bs{row['batch_size']}",
                      row["optimizer_setup"], row["optimizer"], row["optimizer_impl"]])
    variant = axes_text(row)
    return f"{label} ({variant})" if variant else label


def _median_of_units(units: list[np.ndarray]) -> float:
    return float(np.median([np.median(u) for u in units]))


def _device_text(units: pd.DataFrame) -> str:
    return ", ".join(ordered(f"{r.device} ({r.device_name})" for r in units.itertuples()))


def compare_sides(baseline: pd.DataFrame, candidate: pd.DataFrame,
                  threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """One row per key found on either side (``side_units`` tables in).

    `outcome` is `compared` (both sides measured: medians, ratio, interval, verdict),
    `not measured` (a side has the configuration but no timing, e.g. out of memory), `only in
    baseline` or `only in candidate`.
    """
    keys = list(KEY)
    base_groups = dict(tuple(baseline.groupby(keys, sort=False)))
    cand_groups = dict(tuple(candidate.groupby(keys, sort=False)))
    if not set(base_groups) & set(cand_groups):
        raise UsageError("the runs have nothing in common to compare: baseline has "
                         f"{_inventory(baseline)}; candidate has {_inventory(candidate)}")
    rows = []
    for key in dict.fromkeys([*base_groups, *cand_groups]):
        b, c = base_groups.get(key), cand_groups.get(key)
        row = dict(zip(keys, key))
        row.update(config=key_label(row), ratio=np.nan, low=np.nan, high=np.nan,
                   p_value=np.nan, method="", baseline_ms=np.nan, candidate_ms=np.nan,
                   baseline_units=0, candidate_units=0, verdict="",
                   baseline_status="/".join(ordered(b["status"])) if b is not None else "absent",
                   candidate_status="/".join(ordered(c["status"])) if c is not None else "absent",
                   baseline_device=_device_text(b) if b is not None else "",
                   candidate_device=_device_text(c) if c is not None else "")
        if b is None or c is None:
            row["outcome"] = ONLY_BASELINE if c is None else ONLY_CANDIDATE
            rows.append(row)
            continue
        b_ok = [u for u in b.loc[b["status"] == OK, "samples"] if len(u)]
        c_ok = [u for u in c.loc[c["status"] == OK, "samples"] if len(u)]
        if not b_ok or not c_ok:
            row["outcome"] = NOT_MEASURED
            rows.append(row)
            continue
        # seeded by the key: the same runs give the same intervals, whatever their order
        rng = np.random.default_rng(zlib.crc32(row["config"].encode() + key[-1].encode()))
        interval = ratio_interval(b_ok, c_ok, rng=rng)
        row.update(outcome=COMPARED, ratio=interval.ratio, low=interval.low,
                   high=interval.high, p_value=interval.p_value, method=interval.method,
                   baseline_ms=_median_of_units(b_ok), candidate_ms=_median_of_units(c_ok),
                   baseline_units=len(b_ok), candidate_units=len(c_ok))
        rows.append(row)
    table = pd.DataFrame(rows)
    # every measurement is tested at once: the verdicts hold the false discovery rate
    compared = table.index[table["outcome"] == COMPARED]
    table["q_value"] = np.nan
    table.loc[compared, "q_value"] = adjust(table.loc[compared, "p_value"].tolist())
    table.loc[compared, "verdict"] = [
        verdict(RatioInterval(r.ratio, r.low, r.high, r.p_value, r.baseline_units,
                              r.candidate_units, r.method), threshold, r.q_value)
        for r in table.loc[compared].itertuples()]
    return table


def _inventory(units: pd.DataFrame) -> str:
    return ", ".join(f"{what} {','.join(str(v) for v in ordered(units[column]))}"
                     for column, what in (("scenario", "scenarios"), ("size", "sizes"),
                                          ("device_slot", "devices"),
                                          ("batch_size", "batch sizes"),
                                          ("optimizer_setup", "setups"),
                                          ("optimizer", "optimizers")))


def side_labels(sides: Sequence[Side]) -> list[str]:
    """What tells the sides apart: torch version, device name, or both; else the folders."""
    facts = []
    for side in sides:
        results = side.results()
        facts.append((", ".join(ordered(results["torch_version"].astype(str))),
                      ", ".join(ordered(results["device_name"]))))
    torch_differs = len({f[0] for f in facts}) > 1
    device_differs = len({f[1] for f in facts}) > 1
    labels = []
    for side, (torch_version, devices) in zip(sides, facts):
        parts = ([f"torch {torch_version}"] if torch_differs else []) + \
                ([devices] if device_differs else [])
        labels.append(" · ".join(parts) or side.folders)
    if len(set(labels)) < len(labels):
        labels = [label if label == side.folders else f"{label} ({side.folders})"
                  for label, side in zip(labels, sides)]
    return unique_labels(labels)


@dataclass
class Comparison:
    baseline: Side
    candidates: list[Side]
    units: list[pd.DataFrame]  # side_units of the baseline, then of each candidate
    tables: list[pd.DataFrame]  # compare_sides of each candidate against the baseline
    threshold: float = DEFAULT_THRESHOLD

    def count(self, verdict_name: str) -> int:
        return sum(int((t["verdict"] == verdict_name).sum()) for t in self.tables)


def compare_runs(baseline: Side, candidates: Sequence[Side],
                 threshold: float = DEFAULT_THRESHOLD) -> Comparison:
    labels = side_labels([baseline, *candidates])
    for side, label in zip([baseline, *candidates], labels):
        side.label = label
    units = [side_units(side) for side in [baseline, *candidates]]
    tables = [compare_sides(units[0], u, threshold) for u in units[1:]]
    return Comparison(baseline, list(candidates), units, tables, threshold)


def comparison_hover(record: dict) -> str:
    lines = [f"{record['scenario']} · size {record['size']} · batch {record['batch_size']}",
             f"setup {record['optimizer_setup']} · {record['optimizer']}/"
             f"{record['optimizer_impl']} · phase {record['phase']}", axes_text(record)]
    lines = [line for line in lines if line]
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
    extra = varying(d, ["size", "device_slot", "optimizer", "optimizer_impl", *VARIANT_AXES])
    d["row"] = [" · ".join([r["scenario"], r["optimizer_setup"], *(str(r[c]) for c in extra)])
                for r in d.to_dict("records")]
    setup_rank = {s: i for i, s in enumerate(SETUP_ORDER)}
    first = d.drop_duplicates("row").set_index("row")
    rows = sorted(first.index, key=lambda label: (
        first.loc[label, "scenario"], setup_rank.get(first.loc[label, "optimizer_setup"], 9),
        label))
    batches = sorted(d["batch_size"].unique())
    phases = [p for p in PHASES if p in set(d["phase"])]
    ratios = d["ratio"].dropna()
    # the colours span the largest change, at least 10% and at most 2x (beyond, saturated)
    largest = float(np.abs(np.log2(ratios)).max()) if len(ratios) else 0.0
    span = min(max(largest, np.log2(1.1)), 1.0)
    ticks = [-span, -span / 2, 0, span / 2, span]
    fig = make_subplots(rows=1, cols=len(phases), shared_yaxes=True,
                        column_titles=[esc(p) for p in phases], horizontal_spacing=0.02)
    for c, phase in enumerate(phases, 1):
        cells = {(r["row"], r["batch_size"]): r
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
    sides = [comparison.baseline, *comparison.candidates]
    points: dict[str, list] = {}
    for i, units in enumerate(comparison.units):
        ok = units[(units["status"] == OK) & (units["phase"] == "step")]
        for key, rows in ok.groupby(list(KEY), sort=False):
            label = key_label(dict(zip(KEY, key)))
            points.setdefault(label, [None] * len(sides))[i] = (
                _median_of_units(list(rows["samples"])), _device_text(rows))
    points = {k: v for k, v in points.items() if v[0] is not None and any(v[1:])}
    if not points:
        return None
    fig = go.Figure()
    x = [esc(side.label) for side in sides]
    for label, values in points.items():
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


def single_units(compared: pd.DataFrame) -> bool:
    """Whether some measurement has one unit on a side: between-run spread unknown there."""
    return bool(len(compared)) and bool(
        ((compared["baseline_units"] == 1) | (compared["candidate_units"] == 1)).any())


def _units_text(compared: pd.DataFrame) -> str:
    if compared.empty:
        return "none"
    return (f"repeats per measurement, all runs of a side together: baseline "
            f"{int(compared['baseline_units'].max())}, candidate "
            f"{int(compared['candidate_units'].max())}")


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def change_rows(table: pd.DataFrame, verdict_name: str) -> pd.DataFrame:
    rows = table[table["verdict"] == verdict_name]
    return rows.sort_values("ratio", ascending=verdict_name != REGRESSION)


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
