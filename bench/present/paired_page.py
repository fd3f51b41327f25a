"""Paired comparisons of environments, rendered for the terminal and a page
(``bench/analyze/paired_rounds.py`` computes them)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bench.analyze.paired_rounds import PLAN
from bench.analyze.judge import IMPROVEMENT, NO_CHANGE, NOT_JUDGED, OPEN, REGRESSION, typical
from bench.present.page import Section, Table
from bench.schema import STEP
from bench.present.change_text import as_change, as_ratio

METHOD = ("Round i of the baseline ran side by side with round i of each candidate, in "
          "fresh processes taking turns a fraction of a second apart. Per measurement, the "
          "log-ratio of the two rounds' medians is taken in every round, less that round's "
          "effect on every measurement (the level each process ran at, by median polish, "
          "about its mean over the rounds), and judged at planned looks (after rounds "
          f"{', '.join(str(r) for r in PLAN.rounds())}) until decided: the 20% trimmed mean "
          "(the mean under eight rounds) with its interval, widened by the uncertainty of the "
          "rounds' mean level. A change is called where it is past the threshold and its "
          f"interval, at its look's share of a {PLAN.alpha:g} error budget, clears 1; no "
          f"change where the interval at its share of {PLAN.alpha_same:g} lies within the "
          "threshold. A decided measurement keeps its verdict, and later rounds measure only "
          "what is undecided. The shift of every measurement at once is also judged, by "
          "Student's t over the rounds.")


def changes(table: pd.DataFrame, verdict: str) -> pd.DataFrame:
    rows = table[table["verdict"] == verdict]
    return rows.sort_values("ratio", ascending=verdict != REGRESSION)


def headline(name: str, baseline: str, table: pd.DataFrame, threshold: float) -> str:
    rounds = table.attrs.get("rounds", int(table["rounds"].max()) if len(table) else 0)
    shift = table.attrs.get("common_shift")
    decided = table["verdict"].isin([REGRESSION, IMPROVEMENT, NO_CHANGE])
    text = (f"{name} against {baseline}: {len(table)} measurements over {rounds} paired "
            f"rounds, {int(decided.sum())} decided: {len(changes(table, REGRESSION))} "
            f"regression(s), {len(changes(table, IMPROVEMENT))} improvement(s) beyond "
            f"{threshold:.0%}, {int((table['verdict'] == NO_CHANGE).sum())} with no change "
            f"past it; {int((~decided).sum())} undecided.")
    if 0 < rounds < PLAN.first:
        text += (f" With {rounds} round(s) nothing is judged: the first look comes after "
                 f"round {PLAN.first}.")
    step = table[table["phase"] == STEP]
    seen = typical(step["detectable"]) if "detectable" in table else None
    if seen is not None:
        text += (f" At the noise of these rounds a step measurement could see a change of "
                 f"~{seen:.0%} (the median of what each would have found 80% of the time).")
    if shift is not None:
        text += (f" Across every measurement the candidate is {as_change(shift['ratio'])} "
                 f"[{as_change(shift['low'])}, {as_change(shift['high'])}] "
                 f"({shift['verdict']}).")
    return text


def unjudged(table: pd.DataFrame, shown: int = 10) -> list[str]:
    """The measurements still undecided, named, each with the rounds it had and about how
    many in all would decide it (by the square root law)."""
    rows = table[table["verdict"].isin([OPEN, NOT_JUDGED])]
    if rows.empty:
        return []
    out = [f"Undecided ({len(rows)}): the interval still spans both a change past the "
           "threshold and none"]
    for r in rows.head(shown).to_dict("records"):
        more = r.get("rounds_to_decide")
        likely = (f"; about {int(more)} rounds in all would likely decide it"
                  if more == more and more is not None else "")
        out.append(f"  {r['config']} {r['phase']}: {as_change(r['ratio'])} "
                   f"[{as_change(r['low'])}, {as_change(r['high'])}] after {r['rounds']} round(s)"
                   + likely)
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
                           f"{r['candidate_ms']:>10.4g} {as_change(r['ratio']):>8}  "
                           f"[{as_change(r['low'])}, {as_change(r['high'])}]  decided after "
                           f"{r['decided_at']:.0f} rounds")
        out += unjudged(table)
    return "\n".join(out)


def paired_sections(names: Sequence[str], tables: Sequence[pd.DataFrame],
                    threshold: float) -> tuple[list[str], list[Section]]:
    sections = []
    for i, (name, table) in enumerate(zip(names[1:], tables), 1):
        body = [[r["config"], r["phase"], f"{r['baseline_ms']:.4g}", f"{r['candidate_ms']:.4g}",
                 f"{r['ratio']:.3f}", f"[{as_ratio(r['low'])}, {as_ratio(r['high'])}]",
                 "" if r["decided_at"] != r["decided_at"] else f"{r['decided_at']:.0f}",
                 r["verdict"], r["rounds"]]
                for r in table.sort_values("ratio").to_dict("records")]
        css = {REGRESSION: "regression", IMPROVEMENT: "improvement"}
        sections.append(Section(f"{name} against {names[0]}", [
            headline(name, names[0], table, threshold),
            Table(["configuration", "phase", "baseline ms", "candidate ms", "ratio",
                   "interval (at its look)", "decided after", "verdict", "rounds"], body,
                  row_classes=[css.get(r[7], "") for r in body],
                  numeric=frozenset({2, 3, 4, 6, 8}))], anchor=f"candidate-{i}"))
    return [METHOD], sections
