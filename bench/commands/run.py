"""``python -m bench run``: measure a sweep and write its run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.config import load_sweep, parse_list
from bench.errors import UsageError
from bench.report import write_report
from bench.runner import run_sweep
from bench.runs import load_run
from bench.summary import format_summary

# option -> (axis, element type)
LIST_OPTIONS = {
    "scenarios": ("scenarios", str), "sizes": ("sizes", str),
    "batch_sizes": ("batch_sizes", int), "devices": ("devices", str),
    "optimizer_setups": ("optimizer_setups", str), "optimizer": ("optimizers", str),
    "optimizer_impl": ("optimizer_impls", str),
}
TIMING_OPTIONS = {"warmup_iters": int, "warmup_s": float, "min_samples": int,
                  "max_samples": int, "target_rel_ci": float, "budget_s": float}


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="time a sweep of configurations",
                       description="Comma-separated lists override the sweep file's axes.")
    p.add_argument("--sweep", type=Path, help="sweep TOML file (default: bench/sweeps/default.toml)")
    p.add_argument("--scenarios", help="e.g. sequential,shared_input,separate_losses")
    p.add_argument("--sizes", help="network size presets, e.g. seed,wide")
    p.add_argument("--batch-sizes", help="e.g. 1,32,128")
    p.add_argument("--devices", help="cpu, cuda, cuda:N, mps or auto (every accelerator, "
                   "else the CPU)")
    p.add_argument("--optimizer-setups", help="separate,single,grouped")
    p.add_argument("--optimizer", "--optimizers", dest="optimizer", help="adam, adamw, sgd")
    p.add_argument("--optimizer-impl", help="auto, loop, foreach, fused")
    p.add_argument("--seed", type=int)
    p.add_argument("--repeats", type=int, help="passes over the sweep, each in a new random order")
    p.add_argument("--threads", type=int, help="torch.set_num_threads before measuring")
    p.add_argument("--out-dir", type=Path, help="run folder (default: results/<run_id>)")
    t = p.add_argument_group("timing (defaults from the sweep file)")
    t.add_argument("--warmup-iters", type=int)
    t.add_argument("--warmup-s", type=float)
    t.add_argument("--min-samples", type=int)
    t.add_argument("--max-samples", type=int)
    t.add_argument("--target-ci", dest="target_rel_ci", type=float,
                   help="stop when the median's relative 95%% CI half-width is under this")
    t.add_argument("--budget-s", type=float, help="sampling time budget per configuration")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(main=main)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    overrides = {}
    for option, (axis, kind) in LIST_OPTIONS.items():
        text = getattr(args, option)
        if text is not None:
            flag = "--" + option.replace("_", "-")
            overrides[axis] = parse_list(flag, text, kind)
    for name in ("seed", "repeats", "threads"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    timing = {k: getattr(args, k) for k in TIMING_OPTIONS if getattr(args, k) is not None}
    config = load_sweep(args.sweep, overrides, timing)
    outcome = run_sweep(config, args.out_dir, argv=["run", *argv[1:]], progress=not args.quiet)
    print()
    print(format_summary(outcome.rows))
    print()
    print(f"Results: {outcome.out_dir}/results.csv (samples.csv and env.json beside it)")
    try:
        report = write_report([load_run(outcome.out_dir)], outcome.out_dir / "report.html")
    except UsageError as exc:  # nothing measured to report on; the run itself is complete
        print(f"No report: {exc}")
    else:
        print(f"Report: {report}")
    return 0
