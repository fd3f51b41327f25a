"""``make gpu-check``: everything a GPU machine should confirm, in one command.

1. the default sweep on ``cuda``, into ``results/gpu-check-<gpu>/``;
2. every measured row has its CUDA and NVML memory columns filled;
3. a real CUDA out-of-memory: a small sweep, into ``oom-check/`` beside the results, whose
   middle batch size needs twice the GPU's memory for its activations alone. It must be
   recorded ``oom``, the larger batch ``skipped``, the smaller one measured, the memory
   given back, and the GPU must measure a configuration again afterwards;
4. CUDA-event step timings cross-checked against ``torch.utils.benchmark`` on the same step,
   at the article's size and at a larger one;
5. gradient flow, setup equivalence and the reference loops on CUDA for every scenario (the
   real workloads at their ``tiny`` size), in fp32 and bf16;
6. the real workloads of the CUDA default sweep, briefly, into ``workloads-check/``: each
   measured at its published size, its bound and energy per step filled;
7. the axes only a GPU exercises (``bench/sweeps/gpu-axes.toml``: fp16 with a GradScaler,
   bf16, CUDA graphs, fused optimizers) into ``axes-check/``: every configuration measured,
   kernels counted, the achieved fraction of the GPU's peak filled where its peak is known,
   and a replayed CUDA graph faster than the eager step where launches bound it; then one
   ``torch.compile`` configuration, its compile time kept apart;
8. a data-parallel sweep under torchrun over every GPU present (one GPU: a world of one),
   into ``ddp-check/``: both DDP wraps measured over NCCL;
9. the per-network attribution and a trace (``bench/tools/gpu_attribution_check.py``):
   planted GPU work lands in its network and phase, the workloads of step 6 are attributed
   and add up, and a published-size DCGAN is traced into ``traces/`` with every range;
10. the networks on CUDA streams (and SAC's critics stacked) against one after the other
    (``bench/sweeps/gpu-executions.toml``), into ``executions-check/``: shared_input, CLIP and
    SAC at their published sizes, every configuration measured and each one's ratio to
    ``sequential`` given with its interval and verdict, whichever way it goes; and five steps
    of each execution ending where ``sequential`` ends, within the stated tolerance.

It prints each check, writes ``gpu_check.json`` beside the results, and exits 1 if any
check fails. It needs a few minutes on one H100. A rerun replaces the run files that the
last one left in its folders.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

import pandas as pd

from bench.analyze.reader import load_run
from bench.atomic import write_json_atomic
from bench.axes import (AXES, BATCH_SIZE, CUDA_GRAPH, DDP_WRAP, DEVICE, OPTIMIZER_SETUP,
                        PRECISION, SCENARIO, SIZE, WORLD_SIZE)
from bench.cli import user_path
from bench.correctness.check import against_reference, unchecked
from bench.correctness.loops import LOOPS
from bench.measure.configuration import measure_configuration
from bench.measure.crosscheck import cross_check
from bench.measure.devices import normalize_device
from bench import PROJECT_ROOT
from bench.measure.memory import analytic_breakdown
from bench.measure.peaks import peak_tflops
from bench.measure.timers import TimingOptions
from bench.output_path import check_links
from bench.present.summary import format_summary
from bench.schema import (ENV_FILE, NETWORKS_FILE, OK, OOM, OPERATORS_FILE, RESULTS_FILE,
                          SAMPLES_FILE, SKIPPED, STEP, SWEEP_FILE)
from bench.sweep.config import DEFAULT_CUDA_SWEEP, SWEEPS_DIR, load_sweep
from bench.sweep.loop import run_sweep
from bench.tools.gpu_attribution_check import check_attribution
from bench.tools.gpu_executions import execution_checks
from multinet import SCENARIOS, StepSpec, build_step, gradient_flow, setup_equivalence

# The cross-check passes when the two timers agree within this fraction.
CROSS_CHECK_TOLERANCE = 0.10
MEMORY_COLUMNS = ("cuda_peak_allocated_mib", "cuda_peak_reserved_mib", "nvml_used_mib_max")
# The out-of-memory sweep: the large preset, whose ConvNet keeps 4 MiB of activations per
# sample, so that a batch past any GPU's memory stays under the batch-size limit.
OOM_SPEC = StepSpec("sequential", 8, "cuda:0", "separate", "adam", "foreach", "large")
OOM_TIMING = {"warmup_iters": 1, "warmup_s": 0, "min_samples": 3, "budget_s": 0.2}
# The data-parallel check: two configurations, a few seconds each after the processes start.
DDP_SWEEP = (SCENARIO.option, "sequential", BATCH_SIZE.option, "64", OPTIMIZER_SETUP.option,
             "single", DDP_WRAP.option, "joint,per_network", "--warmup-s", "0.05",
             "--budget-s", "0.3", "--dist-timeout-s", "120", "--quiet")
DDP_TIMEOUT_S = 300
# Memory still allocated after the out-of-memory sweep beyond what was before it
# (allocator rounding, a library's workspace) that does not count as a leak.
LEAK_TOLERANCE_MIB = 64


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def check(name: str, ok: bool, detail: str, checks: list) -> None:
    checks.append({"check": name, "ok": bool(ok), "detail": detail})
    print(f"[{'PASS' if ok else 'FAIL'}] {name}: {detail}", flush=True)


def clear_run_files(folder: Path) -> None:
    """gpu-check's folders are its own; a new run refuses a folder that holds one."""
    for name in (RESULTS_FILE, SAMPLES_FILE, ENV_FILE, SWEEP_FILE, NETWORKS_FILE,
                 OPERATORS_FILE):
        (folder / name).unlink(missing_ok=True)


def oom_batch_sizes(activation_bytes_per_sample: float, device_bytes: int) -> tuple[int, int, int]:
    """A batch that fits, one whose saved activations alone need twice the device's memory,
    and a larger one still."""
    past = math.ceil(2 * device_bytes / activation_bytes_per_sample)
    return OOM_SPEC.batch_size, past, 2 * past


def oom_outcome(rows: pd.DataFrame, batches: tuple[int, int, int]) -> tuple[bool, str]:
    """Whether the out-of-memory sweep recorded what it should, and what it recorded."""
    got = dict(zip(rows[BATCH_SIZE.name], rows["status"]))
    want = dict(zip(batches, (OK, OOM, SKIPPED)))
    seen = ", ".join(f"batch {b}: {got.get(b, 'missing')}" for b in batches)
    phases = len(rows) == 4 * len(batches)
    return got == want and phases, f"{seen} ({len(rows)} rows)"


def check_out_of_memory(device: str, folder: Path, checks: list) -> None:
    spec = dataclasses.replace(OOM_SPEC, device=normalize_device(device))
    device = spec.device
    probe = build_step(spec)
    per_sample = analytic_breakdown(probe).activation_bytes / spec.batch_size
    del probe
    torch.cuda.empty_cache()
    _, device_bytes = torch.cuda.mem_get_info(device)
    batches = oom_batch_sizes(per_sample, device_bytes)
    if batches[-1] > BATCH_SIZE.maximum:
        check("out of memory recorded", False, f"batch {batches[1]} would be needed, past the "
              f"limit of {BATCH_SIZE.maximum}", checks)
        return
    folder.mkdir(parents=True, exist_ok=True)
    clear_run_files(folder)
    overrides = {axis.sweep_key: [getattr(spec, axis.name)] for axis in AXES
                 if axis is not DDP_WRAP}  # one process: no DDP
    config = load_sweep(overrides={**overrides, BATCH_SIZE.sweep_key: list(batches)},
                        timing_overrides=OOM_TIMING)
    allocated_before = torch.cuda.memory_allocated(device)
    started = time.time()
    outcome = run_sweep(config, folder, argv=["gpu-check", "oom"], progress=False)
    ok, detail = oom_outcome(outcome.read().results, batches)
    check("out of memory recorded", ok and outcome.complete,
          f"{detail}, {per_sample / 2**20:.1f} MiB of activations per sample, "
          f"{device_bytes / 2**30:.0f} GiB on the GPU, {time.time() - started:.1f} s, in "
          f"{folder}", checks)
    leaked = (torch.cuda.memory_allocated(device) - allocated_before) / 2**20
    reserved = torch.cuda.memory_reserved(device) / 2**20
    after = measure_configuration(spec, TimingOptions(**OOM_TIMING))
    measured = after.status == OK and after.timing is not None
    step_ms = f"{after.timing.summary(STEP).median:.3f} ms" if measured else after.status
    check("memory given back after out of memory", leaked <= LEAK_TOLERANCE_MIB and measured,
          f"{leaked:.1f} MiB more allocated than before (tolerance {LEAK_TOLERANCE_MIB}), "
          f"{reserved:.0f} MiB reserved; batch {spec.batch_size} measured again: {step_ms}",
          checks)


def check_verify(device: str, checks: list[dict], scenarios=tuple(SCENARIOS)) -> None:
    """Gradient flow, setup equivalence and the reference loops on CUDA, of every scenario
    (``scenarios``: a test's few): every optimizer and implementation in fp32; under bf16
    autocast, where a tolerance of its own applies, Adam alone."""
    for precision, optimizers in (("fp32", ("adam", "adamw", "sgd")), ("bf16", ("adam",))):
        flows = [r for s in scenarios for r in gradient_flow(
            s, device=device, n_networks=3, precision=precision, size=check_size(s))]
        check(f"gradient flow on CUDA, {precision}", all(r.ok for r in flows),
              f"{len(flows)} cells", checks)
        eq = [r for s in scenarios for opt in optimizers
              for impl in ("loop", "foreach", "fused")
              for r in setup_equivalence(s, optimizer=opt, optimizer_impl=impl, device=device,
                                         n_networks=3, precision=precision,
                                         size=check_size(s))]
        worst = max(r.max_abs_diff for r in eq)
        bitwise = sum(r.bitwise for r in eq)
        check(f"setup equivalence on CUDA, {precision}", all(r.ok for r in eq),
              f"{bitwise}/{len(eq)} bitwise identical, largest difference {worst:.2e} "
              f"({eq[0].tolerance})", checks)
        combinations = [(s, opt, impl) for s in scenarios if s in LOOPS for opt in optimizers
                        for impl in ("loop", "foreach", "fused")]
        # where a tolerance cannot hold (see unchecked), the combination is left out, counted
        left_out = [c for c in combinations if unchecked(c[0], device, precision, c[2])]
        ref = [r for s, opt, impl in combinations if (s, opt, impl) not in left_out
               for r in against_reference(s, optimizer=opt, optimizer_impl=impl, device=device,
                                          n_networks=3, precision=precision)]
        failed = [f"{r.scenario}/{r.optimizer}/{r.optimizer_impl}/{r.setup}: {r.mismatch}"
                  for r in ref if not r.ok]
        skipped = sorted({f"{s} {impl}" for s, _, impl in left_out})
        check(f"against the reference loops on CUDA, {precision}", not failed,
              f"{len(ref) - len(failed)}/{len(ref)} agree, largest difference "
              f"{max(r.max_rel_diff for r in ref):.1e} of a tensor's norm ("
              + "; ".join(dict.fromkeys(f"{r.optimizer_impl} {r.tolerance}" for r in ref)) + ")"
              + (f"; not compared: {', '.join(skipped)}" if skipped else "")
              + "".join(f"; {f}" for f in failed[:3]), checks)


def check_size(scenario: str) -> str:
    return SCENARIOS[scenario].check_size()


def check_workloads(device: str, folder: Path, checks: list) -> None:
    """The real workloads of the CUDA default sweep, briefly, into ``workloads-check/``:
    every configuration measured, its bound said, its energy per step filled."""
    folder.mkdir(parents=True, exist_ok=True)
    clear_run_files(folder)
    config = load_sweep(DEFAULT_CUDA_SWEEP, {DEVICE.sweep_key: [device]},
                        {"budget_s": 0.3, "min_rounds": 6})
    # the parts alone, without the article's scenarios that the first check measured
    first, *others = config.parts
    config = dataclasses.replace(config, axes={**config.axes, **first}, parts=tuple(others))
    started = time.time()
    rows = run_sweep(config, folder, argv=["gpu-check"]).read().results
    ok_rows = rows[rows["status"] == OK]
    check("real workloads measured", len(ok_rows) == len(rows) > 0,
          f"{len(ok_rows)} of {len(rows)} rows in {time.time() - started:.0f} s, in "
          f"{folder}", checks)
    for column in ("bound", "energy_j_per_step", "energy_source"):
        filled = int(ok_rows[column].replace("", float("nan")).notna().sum()) \
            if column in ok_rows else 0
        check(f"real workloads: column {column}", filled == len(ok_rows),
              f"filled on {filled}/{len(ok_rows)}", checks)


def check_gpu_axes(device: str, folder: Path, checks: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    clear_run_files(folder)
    config = load_sweep(SWEEPS_DIR / "gpu-axes.toml", {DEVICE.sweep_key: [device]})
    started = time.time()
    rows = run_sweep(config, folder, argv=["gpu-check", "axes"], progress=False).read().results
    ok = rows[rows["status"] == OK]
    check("CUDA axes measured", len(ok) == len(rows) and len(rows) > 0,
          f"{len(ok)}/{len(rows)} rows ok (precision x CUDA graph x size x scenario), "
          f"{time.time() - started:.0f} s, in {folder}", checks)
    steps = ok[ok["phase"] == STEP]
    counted = int(steps["kernels"].notna().sum())
    check("kernels counted", counted == len(steps), f"{counted}/{len(steps)} step rows", checks)
    with_peak = steps["peak_fraction"].dropna()
    best = float(with_peak.max()) if len(with_peak) else 0.0
    known = len(steps) > 0 and peak_tflops(steps["device_name"].iloc[0], "bf16") is not None
    check("fraction of peak", len(with_peak) > 0 if known else True,
          f"on {len(with_peak)}/{len(steps)} step rows; best {best:.1%} of the published peak"
          + ("" if known else " (this GPU's peak is not in bench/measure/peaks.py)"), checks)
    keys = [SCENARIO.name, SIZE.name, PRECISION.name]
    eager = {tuple(k): m for *k, m in steps.loc[~steps[CUDA_GRAPH.name],
                                                [*keys, "median_ms"]].itertuples(index=False)}
    graphed = {tuple(k): m for *k, m in steps.loc[steps[CUDA_GRAPH.name],
                                                  [*keys, "median_ms"]].itertuples(index=False)}
    launch_bound = [k for k in graphed if k[1] == "seed" and k in eager]  # the article's size
    faster = [k for k in launch_bound if graphed[k] < eager[k]]
    detail = "; ".join(f"{'/'.join(k)}: {eager[k]:.3f} -> {graphed[k]:.3f} ms"
                       for k in sorted(graphed) if k in eager)
    check("CUDA graph replay beats eager where launch-bound",
          launch_bound and len(faster) == len(launch_bound), detail, checks)

    spec = StepSpec("sequential", 64, normalize_device(device), "single", "adam", "fused",
                    compile="modules")
    result = measure_configuration(spec, TimingOptions(warmup_s=0, budget_s=0.5))
    compiled = result.status == OK and result.timing is not None
    check("torch.compile configuration", compiled,
          f"compile {result.timing.first_iter_s:.1f} s, then step "
          f"{result.timing.summary(STEP).median:.3f} ms" if compiled
          else f"{result.status}: {result.error}", checks)


def write_pages(out_dir: Path) -> None:
    """The report of the sweeps, where plotly is installed (not a check: the figures are in
    the CSV files either way)."""
    try:
        from bench.present.report_page import write_report
    except ImportError as exc:
        print(f"No report: {exc.name} is not installed", flush=True)
        return
    runs = [load_run(folder) for folder in (out_dir, out_dir / "axes-check")
            if (folder / RESULTS_FILE).exists()]
    print(f"Report: {write_report(runs, out_dir / 'report.html')}", flush=True)


def check_ddp(folder: Path, checks: list, device: str = "cuda",
              nproc: int | None = None) -> None:
    """The DDP sweep in a torchrun of its own, one process per GPU (``nproc`` and ``device``
    let the CPU stand in for the GPUs in a test)."""
    nproc = nproc or torch.cuda.device_count()
    folder.mkdir(parents=True, exist_ok=True)
    clear_run_files(folder)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", str(nproc), "-m", "bench", "run", "--distributed",
               DEVICE.option, device, *DDP_SWEEP, "--out-dir", str(folder)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    started = time.time()
    try:
        proc = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True,
                              text=True, timeout=DDP_TIMEOUT_S)
        code, errors = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, errors = "timeout", f"no result within {DDP_TIMEOUT_S} s"
    rows = (load_run(folder).results if (folder / RESULTS_FILE).exists()
            else pd.DataFrame(columns=["status", WORLD_SIZE.name, "backend", DDP_WRAP.name]))
    ok = rows[rows["status"] == OK]
    backend = "nccl" if device == "cuda" else "gloo"
    world = bool(((rows[WORLD_SIZE.name] == nproc) & (rows["backend"] == backend)).all())
    wraps = set(ok[DDP_WRAP.name])
    detail = (f"{len(ok)}/{len(rows)} rows ok over {nproc} rank(s) ({backend}), wraps "
              f"{', '.join(sorted(wraps)) or 'none'}, {time.time() - started:.0f} s, in {folder}")
    if code != 0:
        lines = [line for line in errors.splitlines() if line.strip()]
        detail += f"; exit {code}: {lines[-1] if lines else 'no output'}"
    check("DDP sweep under torchrun", code == 0 and len(rows) > 0 and len(ok) == len(rows)
          and world and wraps == set(DDP_WRAP.valid_values()), detail, checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench gpu-check",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=user_path, help="default: results/gpu-check-<gpu name>")
    parser.add_argument("--device", default="cuda:0")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(f"error: no CUDA device (torch {torch.__version__}); gpu-check needs one",
              file=sys.stderr)
        return 2
    started = time.time()
    gpu = torch.cuda.get_device_name(args.device)
    out_dir = args.out_dir or Path("results") / f"gpu-check-{slug(gpu)}"
    checks: list[dict] = []
    check_links(out_dir, "--out-dir")  # the system would say "File exists"
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_run_files(out_dir)
    config = load_sweep(overrides={DEVICE.sweep_key: [args.device]})
    rows = run_sweep(config, out_dir, argv=["gpu-check"]).read().results
    print(format_summary(rows), flush=True)
    ok_rows = rows[rows["status"] == OK]
    check("sweep", len(ok_rows) == len(rows) and len(rows) > 0,
          f"{len(ok_rows)} of {len(rows)} rows measured, in {out_dir}", checks)
    for column in MEMORY_COLUMNS:
        filled = int(ok_rows[column].notna().sum())
        check(f"column {column}", filled == len(ok_rows), f"filled on {filled}/{len(ok_rows)}",
              checks)
    phase_rows = ok_rows[ok_rows["phase"] != STEP]
    filled = int(phase_rows["phase_peak_allocated_mib"].notna().sum())
    check("column phase_peak_allocated_mib", filled == len(phase_rows),
          f"filled on {filled}/{len(phase_rows)} phase rows", checks)
    check_out_of_memory(args.device, out_dir / "oom-check", checks)

    crosschecks = []
    options = TimingOptions(budget_s=0.6)
    for size, batch in (("seed", 32), ("large", 256)):
        cc = cross_check(StepSpec("sequential", batch, args.device, "separate", "adam",
                                  "foreach", size), options, rounds=5, min_run_time=0.3)
        crosschecks.append(cc.as_dict())
        check(f"events vs blocked_autorange ({cc.config})",
              abs(cc.ratio - 1) <= CROSS_CHECK_TOLERANCE,
              f"harness {cc.harness_ms:.4f} ms, torch.utils.benchmark {cc.reference_ms:.4f} ms, "
              f"ratio {cc.ratio:.3f} (tolerance {CROSS_CHECK_TOLERANCE:.0%}); phases sum to "
              f"{cc.phase_sum_ratio:.3f} x step", checks)

    check_verify(args.device, checks)

    check_workloads(args.device, out_dir / "workloads-check", checks)
    check_gpu_axes(args.device, out_dir / "axes-check", checks)
    check_ddp(out_dir / "ddp-check", checks)
    check_attribution(args.device, out_dir, checks, check)
    folder = out_dir / "executions-check"
    folder.mkdir(parents=True, exist_ok=True)
    clear_run_files(folder)
    for name, ok, detail in execution_checks(args.device, folder):
        check(name, ok, detail, checks)

    write_pages(out_dir)
    passed = all(c["ok"] for c in checks)
    write_json_atomic(out_dir / "gpu_check.json", {
        "gpu": gpu, "torch_version": torch.__version__, "passed": passed,
        "wall_s": round(time.time() - started, 1), "checks": checks,
        "cross_checks": crosschecks})
    print(f"\ngpu-check {'passed' if passed else 'FAILED'} in {time.time() - started:.0f} s; "
          f"results in {out_dir}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
