"""The report of one or more runs: results in, one HTML page of figures and tables out.

Every function here is pure (runs in, sections out) and needs neither torch nor a GPU;
``write_report`` is the one that writes a page. Charts (``bench/present/charts.py``) use the
rows whose status is `ok`; repeats of a configuration collapse to the median of their
medians, the same figure the run's summary prints. Rows that were not measured (`oom`,
`skipped`, `nonfinite`, `error`) are listed in a table instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bench.analyze.ratios import paired_ratios
from bench.analyze.reader import Run
from bench.analyze.run_tables import ordered, results_of, timing_blocks, unique_labels
from bench.axes import SCENARIO, WORLD_SIZE
from bench.analyze.axis_ratios import at_references, fixed_axes, swept_values, varied_axes
from bench.present.axis_views import axis_views_section
from bench.present.charts import (paired_setup_ratios, phase_breakdown, scaling, setup_ratios,
                                  step_and_throughput)
from bench.present.memory_charts import (GPU_ACTIVITY, GPU_MEMORY, constant_metrics,
                                         memory_breakdown, memory_kinds, per_batch_metrics,
                                         phase_peak_memory)
from bench.present.bounds_section import bounds_section
from bench.present.findings import findings_section
from bench.present.environment_section import env_table
from bench.present.labels import DRAWN, facet, tidy
from bench.present.networks_section import where_the_step_goes
from bench.present.page import Details, Section, Table, write_page
from bench.present.flops_kernels import work_figures
from bench.schema import OK

NOISY_LISTED = 20


def runs_without_gpu(d: pd.DataFrame) -> list[str]:
    """Runs none of whose measured rows carry a CUDA or NVML figure."""
    d = tidy(d)
    columns = [*GPU_MEMORY, *GPU_ACTIVITY]
    with_gpu = set(d.loc[d[columns].notna().any(axis=1), "run"])
    return [run for run in ordered(d["run"]) if run not in with_gpu]


def noise_summary(results: pd.DataFrame) -> str:
    ok = results[results["status"] == OK]
    noisy = int(ok["noisy"].sum())  # each phase row is a measurement of its own
    disturbed, blocks = timing_blocks(results)
    text = (f"{noisy} of {len(ok)} measurements have an interquartile range over 10% of their "
            "median: their medians are less certain, and a comparison of them needs more "
            "samples or repeats." if noisy else
            "No measurement is flagged noisy (IQR over 10% of the median).")
    if disturbed:
        text += (f" {disturbed} of {blocks} timing blocks were disturbed: the process got "
                 "well under its usual share of the CPU in them (another process took it).")
    return text


def noisy_table(results: pd.DataFrame, listed: int = NOISY_LISTED) -> Table | None:
    """The noisiest measurements first, at most ``listed`` of them."""
    ok = results[(results["status"] == OK) & results["noisy"]]
    if ok.empty:
        return None
    ok = ok.assign(_spread=ok["iqr_ms"] / ok["median_ms"]).sort_values(
        "_spread", ascending=False).head(listed)
    median, iqr = ok["median_ms"], ok["iqr_ms"]
    runs = ok["run"] if "run" in ok.columns else ok["run_id"]
    rows = [[run, config, repeat, phase, f"{m:.4g}", f"{q:.4g}", f"{q / m:.0%}" if m > 0 else "-"]
            for run, config, repeat, phase, m, q in zip(runs, ok["config_id"], ok["repeat"],
                                                        ok["phase"], median, iqr)]
    return Table(["run", "configuration", "repeat", "phase", "median ms", "IQR ms",
                  "IQR / median"], rows, numeric=frozenset({2, 4, 5, 6}))


def not_measured_table(results: pd.DataFrame) -> Table | None:
    """Configurations with a status other than `ok`, once each (their phase rows agree)."""
    bad = results[results["status"] != OK]
    if bad.empty:
        return None
    if "run" not in bad.columns:
        bad = bad.assign(run=bad["run_id"])
    bad = bad.drop_duplicates(["run", "repeat", "config_id"])
    rows = [list(r) for r in zip(bad["run"], bad["config_id"], bad["repeat"], bad["status"],
                                  bad["error"])]
    return Table(["run", "configuration", "repeat", "status", "reason"], rows,
                 numeric=frozenset({2}))


def axes_sentence(raw: pd.DataFrame, focused: list) -> str:
    """The axes held at one value, stated once here rather than in every facet title; those
    swept (a value none of whose configurations was measured said so); and where the charts
    of absolute times stand on the varied ones."""
    fixed = fixed_axes(raw)
    swept = swept_values(raw)
    text = ("Held at one value: " + ", ".join(facet(k, v) for k, v in fixed.items()) + "."
            if fixed else "")
    if swept:
        text += " Swept: " + "; ".join(
            f"{name} ({', '.join(v if ok else f'{v}: not measured' for v, ok in values)})"
            for name, values in swept.items()) + "."
    if focused:
        text += (" The charts of times and memory show each scenario at the reference value "
                 f"of {', '.join(a.name for a in focused)}; the other values are set against "
                 "it under 'What each varied axis changes'.")
    return text.strip()


def report_sections(runs: Sequence[Run]) -> tuple[list[str], list[Section]]:
    """The page's introduction and its sections, figures included."""
    raw = results_of(runs)
    # the charts of absolute times draw scenario, device, batch size and setup; every other
    # axis the run varies has a view of its own, so they show its reference value only
    focused = [a for a in varied_axes(raw) if a not in DRAWN]
    focus = at_references(raw, focused)
    results = tidy(focus)  # once for every figure
    ratios = pd.concat([paired_ratios(run) for run in runs], ignore_index=True)
    measured = raw[raw["status"] == OK].drop_duplicates(["run", "repeat", "config_id"])
    missing = raw[raw["status"] != OK].drop_duplicates(["run", "repeat", "config_id"])
    statuses = ", ".join(f"{n} {s}" for s, n in missing["status"].value_counts().items())
    intro = [f"{len(runs)} run(s): {', '.join(ordered(raw['run']))}. "
             f"{len(measured)} configuration(s) measured"
             + (f", {len(missing)} not measured ({statuses})" if len(missing) else "") + ". "
             "Times are medians over each configuration's timed iterations (over its repeats "
             "too, when it has several); hover a point for its full configuration.",
             axes_sentence(raw, focused)]

    timing = Section("Time per phase", anchor="phases")
    for scenario in ordered(results[SCENARIO.name]):
        timing.blocks.append(phase_breakdown(results, scenario))
    throughput = Section("Step time and throughput", step_and_throughput(results) or [
        "No configuration was measured." if results.empty else
        "Every measured configuration ran at one batch size: its step time is in the charts "
        "above, its throughput the batch over it."], anchor="scaling")
    ranks = Section("Scaling with the number of ranks", anchor="ranks")
    world = results[WORLD_SIZE.name]
    if world.nunique() > 1:
        ranks.blocks = [
            "Runs with different world sizes side by side: each `--distributed` rank takes "
            "its own batch of the size shown, so with perfect scaling the step time stays "
            "that of one process and the throughput grows with the ranks. Efficiency is one "
            "process's step time over the ranks' (with the same DDP wrap where a run of one "
            "rank has it, else the single process without DDP).", scaling(raw)]
    elif (world > 1).any():
        ranks.blocks = ["This run is data-parallel over "
                        f"{int(world.max())} ranks; report it together with "
                        "a run of another world size (a single-process run of the same sweep, "
                        "say) to see how it scales."]
    setups = Section("Optimizer setups compared", [
        "`single` (one optimizer over every parameter) and `grouped` (one optimizer, a "
        "parameter group per network) relative to `separate` (one optimizer per network), "
        "for the optimizer phase and the whole step. Where they were timed together, the "
        "ratios come from blocks paired round by round, with their intervals; else from the "
        "medians, with none.",
        paired_setup_ratios(ratios) or setup_ratios(raw)
        or "This run has no `separate` setup with another to compare."], anchor="setups")

    memory = Section("Memory and GPU activity", anchor="memory")
    no_gpu = runs_without_gpu(results)
    if no_gpu:
        memory.blocks.append(
            f"{', '.join(no_gpu)} ran without a GPU: there are no CUDA or NVML memory, "
            "utilization, clock or power figures for "
            + ("it." if len(no_gpu) == 1 else "them."))
    steady = {**constant_metrics(results, GPU_MEMORY), **constant_metrics(results, GPU_ACTIVITY)}
    labels = {**GPU_MEMORY, **GPU_ACTIVITY}
    memory.blocks += [
        per_batch_metrics(results, GPU_MEMORY, "GPU memory against batch size: CUDA "
                          "allocator peaks and NVML readings (MiB)"),
        phase_peak_memory(results),
        memory_breakdown(results),
        *memory_kinds(results),
        per_batch_metrics(results, GPU_ACTIVITY, "GPU utilization, SM clock and power, "
                          "means over the NVML readings taken while timing"),
        "Constant over every configuration, so not drawn: " + "; ".join(
            f"{labels[m].split(' (')[0]} at {v:.5g} {labels[m].rsplit('(', 1)[-1].rstrip(')')}"
            for m, v in steady.items()) + "." if steady else None,
    ]

    quality = Section("Noisy measurements", [noise_summary(raw)], anchor="noisy")
    noisy = noisy_table(raw)
    if noisy:
        quality.blocks.append(Details(f"the {len(noisy.rows)} noisiest measurements", [noisy]))

    views = axis_views_section(raw, ratios)
    # every configuration, not the reference values only: a CUDA graph or bf16 moves a step
    # between launch- and compute-bound, which is what these charts show
    work = Section("Work: FLOPs, operators, kernels, host and device time",
                   work_figures(raw), anchor="work")
    where = where_the_step_goes(runs, focus)
    sections = [findings_section(ratios, raw), timing, *([where] if where else []), throughput,
                *([ranks] if ranks.blocks else []),
                setups, *([views] if views else []), memory, *([work] if work.blocks else []),
                bounds_section(raw), quality]
    unmeasured = not_measured_table(raw)
    if unmeasured:
        sections.append(Section("Not measured", [
            "Configurations that did not yield timings: out of memory (`oom`), skipped after "
            "a smaller batch ran out of memory (`skipped`), a non-finite loss (`nonfinite`) "
            "or another error (`error`). The charts leave them out.", unmeasured],
            anchor="not-measured"))
    labels = unique_labels([run.name for run in runs])
    *said, table = env_table(dict(zip(labels, (r.env for r in runs))))
    sections.append(Section("Environment", [*said, Details(
        f"every field of env.json, side by side ({len(table.rows)})", [table])],
        anchor="environment"))
    for section in sections:
        section.blocks = [b for b in section.blocks if b is not None]
    return intro, sections


def report_title(runs: Sequence[Run]) -> str:
    return "multinet-bench report: " + ", ".join(unique_labels([r.name for r in runs]))


def write_report(runs: Sequence[Run], out: Path) -> Path:
    """The one call that turns runs into a page on disk (written atomically)."""
    intro, sections = report_sections(runs)
    return write_page(out, report_title(runs), sections, intro)
