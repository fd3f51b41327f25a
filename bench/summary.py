"""The table printed at the end of a run: step time per optimizer setup, and the winner;
then, where some configurations were not measured, how many and why."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from bench.schema import OK, SKIPPED, STATUSES
from multinet import SETUPS


def variant(row: dict[str, Any]) -> str:
    """The later axes where they are away from their defaults: `bf16 compile-modules n4`."""
    parts = []
    if row.get("precision", "fp32") != "fp32":
        parts.append(str(row["precision"]))
    if row.get("compile", "none") != "none":
        parts.append(f"compile-{row['compile']}")
    if row.get("cuda_graph") in (True, "True"):
        parts.append("graph")
    if int(row.get("n_networks", 2)) != 2:
        parts.append(f"n{row['n_networks']}")
    if row.get("ddp_wrap", "none") not in ("none", "", None):
        parts.append(f"ddp-{row['ddp_wrap']}")
    return " ".join(parts)


def world_size(row: dict[str, Any]) -> int:
    return int(row.get("world_size") or 1)  # rows read back from a CSV hold text


def step_table(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (device, scenario, size, batch size, optimizer, impl, variant) with the
    median step time of each setup (the median over repeats, when there are several)."""
    times: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    names: dict[str, str] = {}
    for row in rows:
        if row["phase"] != "step" or row["status"] != "ok" or row["median_ms"] in ("", None):
            continue
        key = (row["device"], row["scenario"], row["size"], int(row["batch_size"]),
               row["optimizer"], row["optimizer_impl"], variant(row), world_size(row))
        times[key][row["optimizer_setup"]].append(float(row["median_ms"]))
        names[row["device"]] = row["device_name"]
    table = []
    for key in sorted(times):
        device, scenario, size, batch, optimizer, impl, var, world = key
        per_setup = {s: statistics.median(v) for s, v in times[key].items()}
        fastest = min(per_setup, key=per_setup.get)
        table.append({"device": device, "device_name": names[device], "scenario": scenario,
                      "size": size, "batch_size": batch, "optimizer": optimizer,
                      "optimizer_impl": impl, "variant": var, "step_ms": per_setup,
                      "fastest": fastest, "world_size": world,
                      "samples_per_s": batch * world / per_setup[fastest] * 1e3})
    return table


def format_summary(rows: Iterable[dict[str, Any]]) -> str:
    rows = list(rows)
    table = step_table(rows)
    statuses = format_statuses(rows)
    if not table:
        return "\n".join(["No configuration was measured.", *([statuses] if statuses else [])])
    setups = [s for s in SETUPS if any(s in t["step_ms"] for t in table)]
    width = max((len(t["variant"]) for t in table), default=0)
    var_head = f" {'variant':<{width}}" if width else ""
    header = (f"{'scenario':<16} {'size':<6} {'optim':<13}{var_head} {'batch':>6} "
              + " ".join(f"{s:>9}" for s in setups) + f"  {'fastest':<9} {'samples/s':>11}")
    out = []
    for device in dict.fromkeys(t["device"] for t in table):
        entries = [t for t in table if t["device"] == device]
        world = max(t["world_size"] for t in entries)
        ranks = (f" on each of {world} ranks (batch per rank; samples/s over all of them)"
                 if world > 1 else "")
        out.append(f"Step time, median ms per optimizer setup, on {device} "
                   f"({entries[0]['device_name']}){ranks}:")
        out.append(header)
        for t in entries:
            cells = " ".join(f"{t['step_ms'][s]:>9.3f}" if s in t["step_ms"] else f"{'-':>9}"
                             for s in setups)
            optim = f"{t['optimizer']}/{t['optimizer_impl']}"
            var = f" {t['variant']:<{width}}" if width else ""
            out.append(f"{t['scenario']:<16} {t['size']:<6} {optim:<13}{var} {t['batch_size']:>6} "
                       f"{cells}  {t['fastest']:<9} {t['samples_per_s']:>11,.0f}")
        out.append("")
    noisy = sum(1 for r in rows if r.get("noisy") is True and r["phase"] == "step")
    if noisy:
        out.append(f"{noisy} step measurement(s) flagged noisy (IQR > 10% of the median).")
    if statuses:
        out.append(statuses)
    return "\n".join(out).rstrip()


def format_statuses(rows: Iterable[dict[str, Any]], listed: int = 20) -> str:
    """How many configurations ended in each status, and which failed and why; empty when
    every one was measured. Skipped ones are counted, not listed: their reason is the
    out-of-memory listed above them."""
    configs = {(str(r["repeat"]), r["config_id"]): r for r in rows}  # one row per phase
    counts = Counter(r["status"] for r in configs.values())
    if set(counts) <= {OK}:
        return ""
    head = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    out = [f"Configurations: {head}."]
    failed = [r for r in configs.values() if r["status"] not in (OK, SKIPPED)]
    for r in failed[:listed]:
        out.append(f"  {r['status']:<9} {r['config_id']} (repeat {r['repeat']}): {r['error']}")
    if len(failed) > listed:
        out.append(f"  ... and {len(failed) - listed} more; see the `error` column")
    return "\n".join(out)
