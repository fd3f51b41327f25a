"""Paired comparisons of environments, rendered for the terminal and a page
(``bench/analyze/paired.py`` computes them)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bench.analyze.significance import CONFIDENCE, IMPROVEMENT, REGRESSION
from bench.present.page import Section, Table

METHOD = ("Round i of the baseline ran side by side with round i of each candidate, in "
          "fresh processes taking turns a fraction of a second apart. Per measurement, the "
          "log-ratio of the two rounds' medians is taken in every round, less the round's "
          "median over every measurement (the level each process ran at), and a change is "
          "judged from those departures over the rounds: Wilcoxon's signed-rank test, the "
          f"Hodges-Lehmann estimate with its exact {CONFIDENCE:.0%} interval, "
          "Benjamini-Hochberg q-values over every measurement, and the threshold. The "
          "shift of every measurement at once is judged by Student's t over the rounds.")


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
    if 0 < rounds < 6:
        text += (f" With {rounds} rounds no measurement can be called a change: the "
                 f"signed-rank test's smallest p-value is then 2 / 2^{rounds} = "
                 f"{2 / 2 ** rounds:.3g}, and no interval reaches {CONFIDENCE:.0%}; about "
                 "ten rounds are needed.")
    if shift is not None:
        text += (f" Across every measurement the candidate is {_pct(shift['ratio'])} "
                 f"[{_pct(shift['low'])}, {_pct(shift['high'])}] "
                 f"({shift['verdict']}).")
    return text


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
