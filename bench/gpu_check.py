"""``make gpu-check``: everything a GPU machine should confirm, in one command.

1. the default sweep on ``cuda``, into ``results/gpu-check-<gpu>/``;
2. CUDA-event step timings cross-checked against ``torch.utils.benchmark`` on the same step,
   at the article's size and at a larger one;
3. every measured row has its CUDA and NVML memory columns filled;
4. gradient flow and setup equivalence on CUDA (``verify --device cuda``).

It prints each check, writes ``gpu_check.json`` beside the results, and exits 1 if any
check fails. It needs a few minutes on one H100.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch

from bench.config import load_sweep
from bench.crosscheck import cross_check
from bench.atomic import write_json_atomic
from bench.runner import run_sweep
from bench.summary import format_summary
from bench.timers import TimingOptions
from multinet import StepSpec, gradient_flow, setup_equivalence

# The cross-check passes when the two timers agree within this fraction.
CROSS_CHECK_TOLERANCE = 0.10
MEMORY_COLUMNS = ("cuda_peak_allocated_mib", "cuda_peak_reserved_mib", "nvml_used_mib_max")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def check(name: str, ok: bool, detail: str, checks: list) -> None:
    checks.append({"check": name, "ok": bool(ok), "detail": detail})
    print(f"[{'PASS' if ok else 'FAIL'}] {name}: {detail}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make gpu-check", description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=Path, help="default: results/gpu-check-<gpu name>")
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

    config = load_sweep(overrides={"devices": [args.device]})
    outcome = run_sweep(config, out_dir, argv=["gpu-check"])
    print(format_summary(outcome.rows), flush=True)
    ok_rows = [r for r in outcome.rows if r["status"] == "ok"]
    check("sweep", len(ok_rows) == len(outcome.rows) and ok_rows,
          f"{len(ok_rows)} of {len(outcome.rows)} rows measured, in {out_dir}", checks)
    for column in MEMORY_COLUMNS:
        filled = sum(1 for r in ok_rows if r.get(column) not in ("", None))
        check(f"column {column}", filled == len(ok_rows), f"filled on {filled}/{len(ok_rows)}",
              checks)
    phase_rows = [r for r in ok_rows if r["phase"] != "step"]
    filled = sum(1 for r in phase_rows if r.get("phase_peak_allocated_mib") not in ("", None))
    check("column phase_peak_allocated_mib", filled == len(phase_rows),
          f"filled on {filled}/{len(phase_rows)} phase rows", checks)

    crosschecks = []
    options = TimingOptions(budget_s=1.0)
    for size, batch in (("seed", 32), ("large", 256)):
        cc = cross_check(StepSpec("sequential", batch, args.device, "separate", "adam",
                                  "foreach", size), options, rounds=3, min_run_time=0.5)
        crosschecks.append(cc.as_dict())
        check(f"events vs blocked_autorange ({cc.config})",
              abs(cc.ratio - 1) <= CROSS_CHECK_TOLERANCE,
              f"harness {cc.harness_ms:.4f} ms, torch.utils.benchmark {cc.reference_ms:.4f} ms, "
              f"ratio {cc.ratio:.3f} (tolerance {CROSS_CHECK_TOLERANCE:.0%}); phases sum to "
              f"{cc.phase_sum_ratio:.3f} x step", checks)

    flows = [r for s in ("sequential", "shared_input", "separate_losses")
             for r in gradient_flow(s, device=args.device)]
    check("gradient flow on CUDA", all(r.ok for r in flows), f"{len(flows)} cells", checks)
    eq = [r for s in ("sequential", "shared_input", "separate_losses")
          for opt in ("adam", "adamw", "sgd") for impl in ("loop", "foreach", "fused")
          for r in setup_equivalence(s, optimizer=opt, optimizer_impl=impl, device=args.device)]
    worst = max(r.max_abs_diff for r in eq)
    bitwise = sum(r.bitwise for r in eq)
    check("setup equivalence on CUDA", all(r.ok for r in eq),
          f"{bitwise}/{len(eq)} bitwise identical, largest difference {worst:.2e} "
          f"({eq[0].tolerance})", checks)

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
