"""How runs and configurations are named in charts, hover text and tables.

A chart shows what varies; its hover text names everything, so a point can be traced back
to its rows without reading the legend. All text that comes from the data is escaped here.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bench.analyze.run_tables import measured
from bench.axes import (BATCH_SIZE, DEVICE, DIMENSIONS, OPTIMIZER_SETUP, SCENARIO, Dimension,
                        variant_text)
from bench.measure.unavailable import unavailable_in_words
from bench.secrets import hide_all

# What the report's charts show by colour, line style, x axis and column: the rest that
# varies goes into the name of each panel.
DRAWN = (SCENARIO, DEVICE, BATCH_SIZE, OPTIMIZER_SETUP)


def esc(text: object) -> str:
    """Text for HTML and for Plotly labels, which decode the same entities."""
    return html.escape(str(text), quote=False)


def facet(name: str, value: object) -> str:
    """A facet's or legend entry's name of one value: `precision = bf16`. The axis is named,
    so a title reads alone, away from the legend and the sweep."""
    return f"{name} = {value}"


def varying(df: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The columns of ``columns`` holding more than one value in ``df``."""
    return [c for c in columns if c in df.columns and df[c].nunique(dropna=False) > 1]


def tidy(results: pd.DataFrame) -> pd.DataFrame:
    """One row per measured configuration and phase (``bench.analyze.run_tables.measured``),
    named for the charts: see ``labelled``. A table that is already tidy is returned as it
    is, so every chart takes either."""
    if "panel" in results.columns:
        return results
    return labelled(measured(results))


def labelled(d: pd.DataFrame, drawn: Sequence[Dimension] = DRAWN) -> pd.DataFrame:
    """``d`` with `where` (the device, and the run when there are several), `panel`
    (`where` and every dimension that varies but is not ``drawn``, each as `name = value`:
    what a chart facets by) and `hover` (the full name of the configuration)."""
    d = d.copy()
    records = d.to_dict("records")
    several_runs = "run" in d.columns and d["run"].nunique() > 1
    d["where"] = [(facet("run", r["run"]) + " · " if several_runs else "")
                  + facet(DEVICE.name, f"{r[DEVICE.name]} ({r['device_name']})"
                          if DEVICE.name in r else r["device_name"]) for r in records]
    extra = [dim for dim in DIMENSIONS if dim not in drawn
             and dim.name in varying(d, [dim.name])]
    d["panel"] = [" · ".join([w, *(facet(dim.name, r[dim.name]) for dim in extra)])
                  for w, r in zip(d["where"], records)]
    d["hover"] = [config_hover(r) for r in records]
    return d


def config_hover(row: Mapping[str, Any], lines: Sequence[str] = ()) -> str:
    """The full name of a configuration, one fact per line, for a point's hover box."""
    named = [d.describe(row[d.name]) for d in DIMENSIONS
             if d is not DEVICE and d.name in row and d.shown(row[d.name])]
    parts = [
        f"run {row['run']}" if row.get("run") else "",
        f"{row[DEVICE.name]} ({row['device_name']})" if row.get(DEVICE.name) else "",
        " · ".join(named),
        f"phase {row['phase']}" if row.get("phase") else "",
    ]
    return "<br>".join(esc(p) for p in [*parts, *lines] if p)


def axes_text(row: Mapping[str, Any]) -> str:
    """The dimensions away from their defaults: `bf16 · CUDA graph · 4 networks`."""
    return variant_text(row)


def env_value(value: Any) -> str:
    """One cell of the environment table: a GPU list, the ranks of a --distributed run, a
    package dict or why the field was not recorded, in words (`not recorded: not a git
    checkout`), older runs' raw exceptions included."""
    if isinstance(value, dict) and set(value) == {"unavailable"}:
        return f"not recorded: {unavailable_in_words(value['unavailable'])}"
    if isinstance(value, list) and value and all(isinstance(v, dict) and "rank" in v
                                                 for v in value):
        return "; ".join(
            f"rank {r['rank']}: {r.get('hostname', '?')}, "
            + ", ".join(f"{d} ({n})" for d, n in (r.get("devices") or {}).items())
            for r in value)
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "name" in v for v in value):
            return "; ".join(
                f"{g['name']} ({g.get('memory_mib', '?')} MiB, cc {g.get('capability', '?')})"
                for g in value)
        return ", ".join(str(v) for v in value) or "none"
    if value is None:
        return "-"
    return str(value)


def flatten_env(env: Mapping[str, Any]) -> dict[str, str]:
    """env.json as `key: text`, nested dicts as `key.sub`, in the file's order; a run folder
    without an env.json (the reader's ``{"unavailable": ...}``) as one `environment` row."""
    if set(env) == {"unavailable"}:
        return {"environment": env_value(dict(env))}
    env = hide_all(env)  # a run recorded before its secrets were masked shows none either
    out: dict[str, str] = {}
    for key, value in env.items():
        if isinstance(value, dict) and set(value) != {"unavailable"}:
            for sub, inner in value.items():
                out[f"{key}.{sub}"] = env_value(inner)
        else:
            out[key] = env_value(value)
    return out
