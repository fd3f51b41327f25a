"""Run folders with the real schema and made-up numbers, written without torch.

They stand in for GPU runs on machines that have none: the report's speed benchmark
(``bench.selfcheck.report_speed``) and the tests of the report and the comparison use them.
Times follow a simple model (a fixed cost plus a cost per sample, lognormal noise) so the
charts look like a sweep's. On a GPU the host's launches take most of the fixed cost and
the per-sample work runs near a made-up peak, so small batches come out launch-bound and
large ones compute-bound. Nothing here is a measurement.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.analyze.phase_bounds import phase_bound
from bench.analyze.reader import typed_results
from bench.atomic import write_json_atomic, write_text_atomic
from bench.axes import BATCH_SIZE, OPTIMIZER_SETUP, WORLD_SIZE, config_id
from bench.measure.stats import median_ci_ranks
from bench.schema import (COUNTER, ENV_FILE, FIELDS, OPTIMIZER_PHASE, PHASES, RESULTS_FILE,
                          SAMPLE_FIELDS, SAMPLES_FILE, SCHEMA_VERSION, STEP, TIMED_PHASES)

# share of the step each phase takes, in the model; the phases' sum exceeds the step a
# little, as the instrumentation costs
PHASE_SHARE = {PHASES[0]: 0.3, PHASES[1]: 0.5, OPTIMIZER_PHASE: 0.23, STEP: 1.0}
SETUP_COST = {"separate": 1.0, "single": 0.9, "grouped": 0.95}
# the step's time in the model: a fixed cost, more for each later scenario, and a cost per
# sample
FIXED_MS, PER_SCENARIO_MS, PER_SAMPLE_MS = 0.8, 0.1, 0.004
# On a GPU, the host's dispatch takes this share of the fixed cost at every batch size: a
# batch whose device time is little more than the fixed cost is launch-bound.
LAUNCH_SHARE = 0.94
# The per-sample work of forward and backward runs at this fraction of the made-up GPU's
# peak; the optimizer's elementwise work counts no FLOPs, as the runner counts it.
SAMPLE_PEAK_FRACTION, PEAK_TFLOPS = 0.9, 100.0
# Operators per phase in the model, whatever the batch (as counted, they do not depend on
# it): forward and backward grow with each later scenario's networks, the optimizer's with
# the setup (one optimizer per network dispatches the most). Kernels are the operators plus
# a copy or fill for one in ten, as eager CUDA launches about one kernel per operator.
FORWARD_OPS, OPS_PER_SCENARIO = 20, 6
SETUP_OPS = {"separate": 96, "single": 32, "grouped": 48}


def result_row(**values: Any) -> dict[str, Any]:
    """One results row: every column of the schema, filled as a measured CPU row unless
    ``values`` say otherwise; config_id and samples_per_s follow the other columns."""
    row: dict[str, Any] = {f: "" for f in FIELDS}
    row.update(schema_version=SCHEMA_VERSION, run_id="run-a", repeat=1, scenario="sequential",
               size="seed", device="cpu", device_name="Test CPU", batch_size=32,
               optimizer_setup="separate", optimizer="adam", optimizer_impl="loop", seed=0,
               ddp_wrap="none", world_size=1,
               phase=STEP, status="ok", clock="perf_counter", n_samples=20, median_ms=1.0,
               iqr_ms=0.05, noisy=False, threads=1, torch_version="2.13.0+cpu",
               hostname="host-a", started_at="2026-01-01T00:00:00+00:00")
    row.update(values)
    if "config_id" not in values:
        row["config_id"] = config_id(row)
    if "global_batch_size" not in values:
        row["global_batch_size"] = row[BATCH_SIZE.name] * row[WORLD_SIZE.name]
    if row["status"] != "ok":
        for column in ("clock", "n_samples", "median_ms", "iqr_ms", "noisy"):
            row[column] = values.get(column, "")
    elif "samples_per_s" not in values and row["median_ms"] not in ("", None):
        row["samples_per_s"] = row["global_batch_size"] / float(row["median_ms"]) * 1e3
    return row


def frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """``rows`` as the reader types a results.csv of them: what every consumer is given."""
    text = pd.DataFrame(list(rows)).astype(object).where(lambda d: d.notna(), "").astype(str)
    return typed_results(text, "<rows>")


def env_record(run_id: str = "run-a", **values: Any) -> dict[str, Any]:
    env = {"schema_version": SCHEMA_VERSION, "run_id": run_id,
           "started_at": "2026-01-01T00:00:00+00:00", "command_line": "bench run",
           "hostname": "host-a", "cpu_model": "Test CPU", "threads": 1,
           "torch_version": "2.13.0+cpu", "cuda_version": None,
           "nvidia_driver": {"unavailable": "no NVML"}, "gpus": []}
    env.update(values)
    return env


def _csv(fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fields)  # "\r\n" line ends, as the runner writes
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_run(folder: Path, rows: Sequence[Mapping[str, Any]],
              samples: Mapping[tuple[str, str, int], Sequence[float]] | None = None,
              env: Mapping[str, Any] | None = None,
              blocks: Mapping[tuple[str, str, int], Sequence[int]] | None = None) -> Path:
    """A run folder: ``rows`` as results.csv, ``samples`` ((config_id, phase, repeat) ->
    times in ms) as samples.csv, with the round of each sample from ``blocks`` (same keys)
    where given, ``env`` as env.json. Measured rows without samples get their median
    repeated n_samples times."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    samples = dict(samples or {})
    sample_rows = []
    for row in rows:
        if row["status"] != "ok":
            continue
        key = (row["config_id"], row["phase"], int(row["repeat"]))
        values = samples.get(key)
        if values is None:
            values = [float(row["median_ms"])] * int(row["n_samples"] or 1)
        rounds = (blocks or {}).get(key) or [""] * len(values)
        sample_rows += [{"run_id": row["run_id"], "repeat": row["repeat"],
                         "config_id": row["config_id"], "phase": row["phase"], "iteration": i,
                         "block": b, "device_ms": v, "host_ms": v}
                        for i, (v, b) in enumerate(zip(values, rounds))]
    write_text_atomic(folder / RESULTS_FILE, _csv(FIELDS, rows))
    write_text_atomic(folder / SAMPLES_FILE, _csv(SAMPLE_FIELDS, sample_rows))
    run_id = rows[0]["run_id"] if rows else "run-a"
    write_json_atomic(folder / ENV_FILE, dict(env) if env is not None else env_record(run_id))
    return folder


def model_work(device: str, batch: int, phase: str, median_ms: float,
               host_ms: float) -> dict[str, Any]:
    """A GPU row's host time, FLOPs, TFLOP/s, peak fraction and bound in the model."""
    def flops(p: str) -> float:
        share = PHASE_SHARE[p] if p in PHASES[:2] else 0.0
        return SAMPLE_PEAK_FRACTION * PEAK_TFLOPS * 1e12 * PER_SAMPLE_MS * 1e-3 * batch * share

    work = round(flops(PHASES[0]) + flops(PHASES[1]) if phase == STEP else flops(phase))
    row: dict[str, Any] = {"host_median_ms": host_ms, "flops": work}
    if work:
        row["tflops_per_s"] = work / (median_ms * 1e-3) / 1e12
        row["peak_fraction"] = row["tflops_per_s"] / PEAK_TFLOPS
    row["bound"] = phase_bound(device, median_ms, host_ms, row.get("peak_fraction"))
    return row


def model_counts(s: int, setup: str, phase: str) -> dict[str, int]:
    """A GPU row's `ops` and `kernels` in the model, for the ``s``-th scenario; the `step`
    row gets the phases' sums, as the runner writes it."""
    forward = FORWARD_OPS + OPS_PER_SCENARIO * s
    ops = {PHASES[0]: forward, PHASES[1]: 2 * forward + 5,
           OPTIMIZER_PHASE: SETUP_OPS.get(setup, SETUP_OPS["separate"])}
    kernels = {p: n + n // 10 for p, n in ops.items()}
    ops[STEP], kernels[STEP] = sum(ops.values()), sum(kernels.values())
    return {"ops": ops[phase], "kernels": kernels[phase]}


def model_energy(batch: int, step_ms: float, power_w: float, source: str) -> dict[str, Any]:
    """The energy columns in the model: the board's power over the step's time."""
    if not source:
        return {}
    joules = power_w * step_ms / 1e3
    return {"energy_j_per_step": joules, "samples_per_j": batch / joules,
            "energy_source": source}


def sweep_run(folder: Path, *, scenarios: Sequence[str], batch_sizes: Sequence[int],
              setups: Sequence[str] = ("separate", "single", "grouped"),
              device: str = "cuda:0", device_name: str = "Synthetic GPU",
              samples_per_phase: int = 200, repeats: int = 1, slowdown: float = 1.0,
              run_id: str = "synthetic", seed: int = 0, limit: int | None = None,
              rounds: int = 0, energy_source: str = COUNTER,
              env: Mapping[str, Any] | None = None) -> Path:
    """A whole sweep in the model: every scenario x batch size x setup (the first ``limit``
    of them), every phase, with CUDA, NVML, work (FLOPs, peak fraction, operators and
    kernels: ``model_counts``), host time, bound and energy columns filled on a `cuda`
    device (energy from ``energy_source``: `counter`, `estimate`, or "" for none).
    ``slowdown`` scales every time. With ``rounds``, the setups of each scenario and batch
    size form a comparison group timed in that many rounds: each round's samples share a
    slowdown of the machine (lognormal, 5%), as configurations timed together do. ``env``
    replaces fields of env.json (`torch_version`, `hostname`, `started_at`, ...); the rows'
    `torch_version`, `hostname` and `started_at` follow it."""
    rng = np.random.default_rng(seed)
    gpu = device.startswith("cuda")
    rows, samples = [], {}
    configs = [(s, scenario, batch, setup) for s, scenario in enumerate(scenarios)
               for batch in batch_sizes for setup in setups][:limit]
    blocks = {}
    for repeat in range(1, repeats + 1):
        drift = float(rng.lognormal(0, 0.01))  # repeats differ a little, as on a real machine
        round_drift = {key: rng.lognormal(0, 0.05, max(rounds, 1))
                       for key in {(scenario, batch) for _, scenario, batch, _ in configs}}
        for s, scenario, batch, setup in configs:
            cost = SETUP_COST.get(setup, 1.0)
            step_ms = (FIXED_MS + PER_SCENARIO_MS * s + PER_SAMPLE_MS * batch) * cost
            config = {}
            if gpu:
                allocated = 60 + 0.2 * batch + 4 * s
                config = dict(
                    cuda_peak_allocated_mib=allocated,
                    cuda_peak_reserved_mib=allocated * 1.2 + 2,
                    nvml_used_mib_max=allocated * 1.2 + 700,
                    nvml_process_mib_max=allocated * 1.2 + 500,
                    gpu_util_pct_mean=min(95.0, 5 + 0.1 * batch),
                    sm_clock_mhz_mean=1980.0, power_w_mean=120 + 0.05 * batch,
                    temperature_c_max=40, nvml_samples=15)
                config.update(model_energy(batch, step_ms * slowdown * drift,
                                           config["power_w_mean"], energy_source))
            config.update(param_bytes=129116, grad_bytes=129116,
                          optimizer_state_bytes=258272,
                          activation_bytes=2400 * batch * (1 + s))
            for phase in PHASE_SHARE:
                median = step_ms * PHASE_SHARE[phase] * slowdown * drift
                values = median * rng.lognormal(0, 0.04, samples_per_phase)
                block = np.arange(samples_per_phase) * max(rounds, 1) // samples_per_phase
                if rounds:
                    values = values * round_drift[(scenario, batch)][block]
                q1, q2, q3 = np.quantile(values, [0.25, 0.5, 0.75])
                low, high = median_ci_ranks(samples_per_phase)
                ordered = np.sort(values)
                row = result_row(
                    run_id=run_id, repeat=repeat, scenario=scenario, device=device,
                    device_name=device_name, batch_size=batch, optimizer_setup=setup,
                    optimizer_impl="foreach" if gpu else "loop", phase=phase,
                    clock="cuda_event" if gpu else "perf_counter",
                    n_samples=samples_per_phase, median_ms=float(q2),
                    ci_low_ms=float(ordered[low - 1]), ci_high_ms=float(ordered[high - 1]),
                    iqr_ms=float(q3 - q1), noisy=bool((q3 - q1) / q2 > 0.1),
                    **{"torch_version": "2.13.0+cu130" if gpu else "2.13.0+cpu",
                       **{k: v for k, v in (env or {}).items()
                          if k in ("torch_version", "hostname", "started_at")}},
                    **config)
                if gpu and phase != STEP:
                    row["phase_peak_allocated_mib"] = config[
                        "cuda_peak_allocated_mib"] * (0.8 + 0.1 * TIMED_PHASES.index(phase))
                if gpu:
                    launch_ms = (FIXED_MS + PER_SCENARIO_MS * s) * cost * LAUNCH_SHARE
                    row.update(model_work(device, batch, phase, float(q2),
                                          launch_ms * PHASE_SHARE[phase] * slowdown * drift))
                    row.update(model_counts(s, setup, phase))
                if rounds:
                    row["group"] = config_id({**row, OPTIMIZER_SETUP.name: setups[0]})
                    blocks[(row["config_id"], phase, repeat)] = block.tolist()
                rows.append(row)
                samples[(row["config_id"], phase, repeat)] = values.tolist()
    gpus = [{"index": 0, "name": device_name, "memory_mib": 81079, "capability": "9.0"}]
    env = env_record(run_id, **{"gpus": gpus if gpu else [],
                                "cuda_version": "13.0" if gpu else None,
                                "torch_version": rows[0]["torch_version"], **(env or {})})
    return write_run(folder, rows, samples, env, blocks)
