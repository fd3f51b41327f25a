"""How runs and configurations are named in charts, hover text and tables.

A chart shows what varies; its hover text names everything, so a point can be traced back
to its rows without reading the legend. All text that comes from the data is escaped here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from bench.page import esc

SETUP_ORDER = ("separate", "single", "grouped")


def unique_labels(names: Sequence[str]) -> list[str]:
    """``names`` with a `#2`, `#3`... suffix on repeats, so each run keeps its own label."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return out


def ordered(values: Iterable[Any], order: Sequence[Any] = ()) -> list[Any]:
    """Distinct values, those of ``order`` first in its order, then the rest sorted."""
    values = list(dict.fromkeys(values))
    first = [v for v in order if v in values]
    return first + sorted((v for v in values if v not in first), key=str)


def varying(df: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The columns of ``columns`` holding more than one value in ``df``."""
    return [c for c in columns if c in df.columns and df[c].nunique(dropna=False) > 1]


def join_label(row: Mapping[str, Any], columns: Sequence[str], sep: str = " · ") -> str:
    return sep.join(str(row[c]) for c in columns) if columns else ""


def config_hover(row: Mapping[str, Any], lines: Sequence[str] = ()) -> str:
    """The full name of a configuration, one fact per line, for a point's hover box."""
    parts = [
        f"run {row['run']}" if "run" in row else "",
        f"{row['device']} ({row['device_name']})",
        f"{row['scenario']} · size {row['size']} · batch {row['batch_size']}",
        f"setup {row['optimizer_setup']} · {row['optimizer']}/{row['optimizer_impl']}",
        axes_text(row),
    ]
    if "phase" in row and row["phase"]:
        parts.append(f"phase {row['phase']}")
    return "<br>".join(esc(p) for p in [*parts, *lines] if p)


# the later axes, shown only away from their defaults
VARIANT_AXES = ("precision", "compile", "cuda_graph", "n_networks", "ddp_wrap", "world_size")


def axes_text(row: Mapping[str, Any]) -> str:
    """`bf16 · compile modules · CUDA graph · 4 networks · DDP joint · 8 ranks`, or '' at
    the defaults."""
    parts = []
    if row.get("precision", "fp32") not in ("fp32", None):
        parts.append(str(row["precision"]))
    if row.get("compile", "none") not in ("none", None):
        parts.append(f"compile {row['compile']}")
    if row.get("cuda_graph") is True:
        parts.append("CUDA graph")
    if row.get("n_networks", 2) not in (2, None):
        parts.append(f"{row['n_networks']} networks")
    if row.get("ddp_wrap", "none") not in ("none", None):
        parts.append(f"DDP {row['ddp_wrap']}")
    if row.get("world_size", 1) not in (1, None):
        parts.append(f"{row['world_size']} ranks")
    return " · ".join(parts)


def env_value(value: Any) -> str:
    """One cell of the environment table: a GPU list, the ranks of a --distributed run, a
    package dict or a failure reason."""
    if isinstance(value, dict) and set(value) == {"unavailable"}:
        return f"unavailable: {value['unavailable']}"
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
    """env.json as `key: text`, nested dicts as `key.sub`, in the file's order."""
    out: dict[str, str] = {}
    for key, value in env.items():
        if isinstance(value, dict) and set(value) != {"unavailable"}:
            for sub, inner in value.items():
                out[f"{key}.{sub}"] = env_value(inner)
        else:
            out[key] = env_value(value)
    return out
