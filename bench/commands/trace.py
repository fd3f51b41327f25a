"""``python -m bench trace``: a profiler trace of a few iterations of each chosen
configuration, with a named range for every phase and network, into a run folder's
``traces/``, and their top operators per network and phase into its ``operators.csv``
(``bench/sweep/traces.py``). Nothing is timed: a trace is never taken inside a timed pass.

The configurations are chosen as ``run`` chooses them: a sweep file (the default sweep
where none is given) and the same axis options. ``--out-dir`` may be a run folder, whose
report then links the traces.
"""

from __future__ import annotations

import argparse

import torch

from bench.axes import AXES, DEVICE
from bench.cli import user_path
from bench.errors import UsageError
from bench.measure.tracing import TRACED_STEPS
from bench.output_path import check_links
from bench.sweep.config import default_sweep, expand, load_sweep, parse_list
from bench.sweep.traces import trace_into

MAX_STEPS = 100


def add_parser(sub) -> None:
    p = sub.add_parser("trace", help="profiler traces of chosen configurations",
                       description="Writes DIR/traces/<config>.pt.trace.json (Chrome trace "
                       "format: Perfetto, chrome://tracing, TensorBoard's PyTorch profiler "
                       "plugin) and DIR/operators.csv. Comma-separated lists override the "
                       "sweep file's axes, as for `run`.")
    p.add_argument("--out-dir", type=user_path, required=True, metavar="DIR",
                   help="where to write: a run folder, or a new folder")
    p.add_argument("--sweep", type=user_path, help="sweep TOML file (default: as for `run`)")
    for axis in AXES:
        p.add_argument(axis.option, *axis.aliases, dest=axis.name, help=axis.help)
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int, default=TRACED_STEPS,
                   help="iterations traced per configuration (default %(default)s)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads before tracing")
    p.set_defaults(main=main)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    if not 1 <= args.steps <= MAX_STEPS:
        raise UsageError(f"--steps must be an integer from 1 to {MAX_STEPS}, got {args.steps}")
    if args.out_dir.exists() and not args.out_dir.is_dir():
        raise UsageError(f"--out-dir {args.out_dir} is a file, not a folder")
    check_links(args.out_dir, "--out-dir")  # before tracing, not when the first is written
    overrides = {axis.sweep_key: parse_list(axis.option, getattr(args, axis.name), axis.kind)
                 for axis in AXES if getattr(args, axis.name) is not None}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.threads is not None:
        overrides["threads"] = args.threads
    config = load_sweep(args.sweep or default_sweep(overrides.get(DEVICE.sweep_key)), overrides)
    specs = expand(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    for path in trace_into(args.out_dir, specs, args.steps):
        print(f"Trace: {path}")
    print(f"Operators: {args.out_dir / 'operators.csv'}")
    return 0
