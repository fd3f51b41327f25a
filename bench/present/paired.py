"""Paired comparisons of environments, rendered for the terminal and a page
(``bench/analyze/paired.py`` computes them)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bench.analyze.paired import MIN_ROUNDS, NOT_JUDGED
from bench.analyze.significance import CONFIDENCE, IMPROVEMENT, REGRESSION
from bench.present.page import Section, Table
from bench.tools.paired import DEFAULT_ROUNDS

METHOD = ("Round i of the baseline ran side by side with round i of each candidate, in "
          "fresh processes taking turns a fraction of a second apart. Per measurement, the "
          "log-ratio of the two rounds' medians is taken in every round, less that round's "
          "effect on every measurement (the level each process ran at, by median polish, "
          "about its mean over the rounds), and a change is judged over the rounds: Yuen's "
          f"20% trimmed mean with its {CONFIDENCE:.0%} interval, widened by the uncertainty "
          "of the rounds' mean level, Benjamini-Hochberg q-values over every measurement, "
          "and the threshold. The shift of every measurement at once is also judged, by "
          "Student's t over the rounds.")


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def changes(table: pd.DataFrame, verdict: str) -> pd.DataFrame:
    rows = table[table["verdict"] == verdict]
    return rows.sort_values("ratio", ascending=verdict != REGRESSION)


def headline(name: str, baseline: str, table: pd.DataFrame, threshold: float) -> str:
    rounds = int(table["rounds"].max()) if len(table) else 0
    shift = table.attrs.get("common_shift")
    text = (f"{name} against {baseline}: {len(table)} measurements over {rounds} paired "
            f"rounds, {len(changes(table, REGRESSION))} regression(s), "
            f"{len(changes(table, IMPROVEMENT))} improvement(s) beyond {threshold:.0%}.")
    if 0 < rounds < MIN_ROUNDS:
        text += (f" With {rounds} rounds no measurement is judged: under {MIN_ROUNDS} the "
                 "trimmed mean trims nothing, and one process that read a group far off "
                 f"would decide; {DEFAULT_ROUNDS} rounds find a 10% change reliably on a "
                 "shared machine.")
    if shift is not None:
        text += (f" Across every measurement the candidate is {_pct(shift['ratio'])} "
                 f"[{_pct(shift['low'])}, {_pct(shift['high'])}] "
                 f"({shift['verdict']}).")
    return text


def unjudged(table: pd.DataFrame, shown: int = 10) -> list[str]:
    """The measurements with too few paired rounds to judge (a configuration that failed
    in most rounds on one side), named: where the whole comparison is short, the headline
    says so instead."""
    rows = table[table["verdict"] == NOT_JUDGED]
    if rows.empty or len(rows) == len(table):
        return []
    out = [f"Not judged, under {MIN_ROUNDS} paired rounds ({len(rows)}):"]
    out += [f"  {r['config']} {r['phase']}: {r['rounds']} round(s)"
            for r in rows.head(shown).to_dict("records")]
    if len(rows) > shown:
        out.append(f"  and {len(rows) - shown} more (the page lists them)")
    return out


def paired_terminal(names: Sequence[str], tables: Sequence[pd.DataFrame],
                    threshold: float) -> str:
    out = [METHOD]
    for name, table in zip(names[1:], tables):
        out += ["", headline(name, names[0], table, threshold)]
        width = max([len(c) for c in table["config"]] + [13]) if len(table) else 13
        for verdict, title in ((REGRESSION, "Regressions"), (IMPROVEMENT, "Improvements")):
            rows = changes(table, verdict)
            if rows.empty:
                continue
            out.append(f"{title}:")
            for r in rows.to_dict("records"):
                out.append(f"  {r['config']:<{width}} {r['phase']:<9} {r['baseline_ms']:>10.4g} "
                           f"{r['candidate_ms']:>10.4g} {_pct(r['ratio']):>8}  "
                           f"[{_pct(r['low'])}, {_pct(r['high'])}]  q {r['q_value']:.2g}")
        out += unjudged(table)
    return "\n".join(out)


def paired_sections(names: Sequence[str], tables: Sequence[pd.DataFrame],
                    threshold: float) -> tuple[list[str], list[Section]]:
    sections = []
    for i, (name, table) in enumerate(zip(names[1:], tables), 1):
        body = [[r["config"], r["phase"], f"{r['baseline_ms']:.4g}", f"{r['candidate_ms']:.4g}",
                 f"{r['ratio']:.3f}", f"[{r['low']:.3f}, {r['high']:.3f}]",
                 f"{r['q_value']:.2g}", r["verdict"], r["rounds"]]
                for r in table.sort_values("ratio").to_dict("records")]
        css = {REGRESSION: "regression", IMPROVEMENT: "improvement"}
        sections.append(Section(f"{name} against {names[0]}", [
            headline(name, names[0], table, threshold),
            Table(["configuration", "phase", "baseline ms", "candidate ms", "ratio",
                   f"{CONFIDENCE:.0%} interval", "q", "verdict", "rounds"], body,
                  row_classes=[css.get(r[7], "") for r in body],
                  numeric=frozenset({2, 3, 4, 6, 8}))], anchor=f"candidate-{i}"))
    return [METHOD], sections
