"""A bisection in words: what each comparison found, then each culprit step with its
changes (their intervals) and what env.json says changed at that step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.analyze.bisection import Bisection, Placed, changes_in
from bench.present.environment_section import field_changes

# Changes listed per step; the rest are counted.
SHOWN = 12


def interval(row: Mapping[str, Any]) -> str:
    return f"{row['ratio']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def change_line(change: Placed, names: Sequence[str]) -> str:
    first = names[0]
    text = (f"  {change.config} {change.phase}: {interval(change.at_high)} "
            f"{change.at_high['verdict']} at {names[change.high]} against {first}")
    if change.at_low is not None:
        text += (f" (at {names[change.low]}: {interval(change.at_low)}, "
                 f"{change.at_low['verdict']})")
    return text


def comparison_lines(found: Bisection, names: Sequence[str]) -> list[str]:
    end = found.count - 1
    lines = []
    for k in found.compared:
        table = found.tables[k]
        count = len(changes_in(table))
        lines.append(f"  {names[k]} against {names[0]}: {count} change{'s' * (count != 1)} "
                     f"in {len(table)} measurements" + (" (the list's ends)" if k == end
                                                        else ""))
    return lines


def bisection_text(found: Bisection, names: Sequence[str],
                   envs: Mapping[str, Mapping[str, Any]]) -> str:
    """The report; ``envs``: env.json of each environment compared, by name."""
    count = len(found.compared)
    lines = [f"Bisection over {found.count} environments ({', '.join(names)}): {count} "
             f"paired comparison{'s' * (count != 1)} against {names[0]}:",
             *comparison_lines(found, names)]
    if not found.placed:
        lines.append(f"No change between {names[0]} and {names[-1]}: nothing to bisect.")
        return "\n".join(lines)
    for (low, high), changes in found.steps().items():
        lines.append("")
        lines.append(f"First at {names[high]} (after {names[low]}): {len(changes)} "
                     f"change{'s' * (len(changes) != 1)}")
        lines += [change_line(c, names) for c in changes[:SHOWN]]
        if len(changes) > SHOWN:
            lines.append(f"  and {len(changes) - SHOWN} more")
        differs = field_changes(envs.get(names[low], {}), envs.get(names[high], {}))
        lines.append(f"  env.json from {names[low]} to {names[high]}: "
                     + ("; ".join(differs) if differs else "no field differs"))
    return "\n".join(lines)
