"""``python -m bench run``: measure a sweep and write its run folder, or continue one.

Exit codes: 0 when every configuration was measured, ran out of memory or was skipped for
it; 1 when one raised an error or had a non-finite loss (``--fail-fast`` stops at the
first), or when the run folder could not be written (a full disk: the sweep stops there,
what is written stays, ``--resume`` continues); 2 for bad input, or a run that cannot be
resumed; 130 or 143 when SIGINT or SIGTERM stopped the sweep (the folder is left complete,
and the way to resume is printed).

``--distributed`` runs the sweep data-parallel in every process torchrun started
(``bench/sweep/data_parallel.py``); only rank 0 prints and writes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench.axes import AXES, DDP_WRAP, DEVICE
from bench.cli import user_path
from bench.commands.run_finish import finish, history_words
from bench.errors import UsageError
from bench.measure.allocator import steady_allocator
from bench.output_path import URL_LIKE
from bench.sweep.config import (COMPARE_BY, COMPARE_CHOICES, ONLY, SweepConfig,
                                default_sweep, load_sweep, parse_list)
from bench.sweep.interrupt import exit_code
from bench.sweep.loop import resume_sweep, run_sweep, work_sweep

COMPARE_DEFAULT = SweepConfig.__dataclass_fields__[COMPARE_BY].default
# where the flag is not the option's name
FLAGS = {"target_rel_ci": "--target-ci", **{axis.name: axis.option for axis in AXES}}
TIMING_OPTIONS = {"warmup_iters": int, "warmup_s": float, "min_samples": int,
                  "max_samples": int, "target_rel_ci": float, "budget_s": float,
                  "min_rounds": int, "max_rounds": int, "interleave": int,
                  "attribution_s": float}
# How long a rank waits for the others (forming the group, then in each collective) before
# the run fails: past any configuration's warm-up, torch.compile's included.
DIST_TIMEOUT_S = 600.0
MAX_DIST_TIMEOUT_S = 86400.0  # a day: a rank later than that is not coming


def add_sweep_options(p: argparse.ArgumentParser) -> None:
    """The options that say what a sweep measures and how: `run` takes them, and `submit`
    passes them on to the run of each job (``sweep_arguments``)."""
    p.add_argument("--sweep", type=user_path, help="sweep TOML file (default: bench/sweeps/"
                   "default-cuda.toml where the devices include a GPU, else default.toml)")
    for axis in AXES:  # bench/axes.py: one comma-separated list per axis
        p.add_argument(axis.option, *axis.aliases, dest=axis.name, help=axis.help)
    p.add_argument("--compare-by", metavar="AXIS",
                   help="the axis whose values are timed together, round-robin, and set against "
                   f"each other (default: {COMPARE_DEFAULT}); one of {', '.join(COMPARE_CHOICES)}")
    p.add_argument("--seed", type=int)
    p.add_argument("--repeats", type=int, help="passes over the sweep, each in a new random order")
    p.add_argument("--threads", type=int, help="torch.set_num_threads before measuring")
    p.add_argument("--workers", type=int, metavar="N",
                   help="fresh processes that each measure the whole sweep, so the run sees "
                   "the spread between processes (0: as many as that spread asks for, 2 to "
                   "4, as make bench gives; default 1); each runs --repeats passes")
    p.add_argument("--only", metavar="CONFIG_ID,... or @FILE",
                   help="measure only these configurations of the sweep (config_ids, or a "
                   "file of them, one a line)")
    t = p.add_argument_group("timing (defaults from the sweep file)")
    t.add_argument("--warmup-iters", type=int)
    t.add_argument("--warmup-s", type=float)
    t.add_argument("--min-samples", type=int)
    t.add_argument("--max-samples", type=int)
    t.add_argument("--target-ci", dest="target_rel_ci", type=float,
                   help="stop when the median's relative 95%% CI half-width is under this")
    t.add_argument("--budget-s", type=float, help="sampling time budget per configuration")
    t.add_argument("--min-rounds", type=int, help="rounds at least where configurations are "
                   "timed together (their ratios' intervals come from them)")
    t.add_argument("--max-rounds", type=int, help="rounds at most (0: no limit)")
    t.add_argument("--interleave", type=int, help="comparison groups timed at once, a round "
                   "of each in turn (0: 8 on the CPU, 1 on an accelerator)")
    t.add_argument("--attribution-s", type=float, help="seconds of each configuration's pass "
                   "that splits its phases by network, past its fewest rounds (networks.csv); 0: no "
                   "such pass")


def sweep_arguments(args: argparse.Namespace) -> list[str]:
    """The options of ``add_sweep_options`` that ``args`` holds, as a command line again."""
    argv = ["--sweep", str(args.sweep)] if args.sweep is not None else []
    names = [*(axis.name for axis in AXES), COMPARE_BY, "seed", "repeats", "threads",
             "workers", "only", *TIMING_OPTIONS]
    for name in names:
        value = getattr(args, name)
        if value is not None:
            argv += [FLAGS.get(name, "--" + name.replace("_", "-")), str(value)]
    return argv


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="time a sweep of configurations",
                       description="Comma-separated lists override the sweep file's axes.",
                       epilog="exit codes: 0 all measured, or out of memory (and skipped); "
                       "1 an error, a non-finite loss, or a run folder that could not be "
                       "written; 2 bad input, or a run that cannot be resumed; 130/143 "
                       "stopped by SIGINT/SIGTERM (the folder stays valid; the command to "
                       "resume is printed)")
    add_sweep_options(p)
    p.add_argument("--out-dir", type=user_path, help="run folder (default: results/<run_id>)")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # one of a run's workers
    d = p.add_argument_group("data-parallel, under torchrun (see bench/sweep/data-parallel.md)")
    d.add_argument("--distributed", action="store_true",
                   help="run the sweep data-parallel in every process torchrun started: each "
                   "rank on cuda:LOCAL_RANK (or the CPU), with its own batch; rank 0 writes")
    d.add_argument("--dist-timeout-s", type=float, default=DIST_TIMEOUT_S,
                   help="how long a rank waits for the others, to form the process group and "
                   "in each collective, before the run fails (default %(default)g)")
    p.add_argument("--history", metavar="STORE",
                   help="add the run, once complete, to this history store (a DuckDB file or "
                   "a postgresql:// URL; `make bench` gives results/history.duckdb)")
    p.add_argument("--trace", action="store_true",
                   help="once the sweep is measured, a profiler trace of a few iterations of "
                   "each configuration it measured, into the run folder's traces/, with its "
                   "top operators per network and phase in operators.csv (`python -m bench "
                   "trace` traces chosen configurations alone)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                   help="report.html once the run is complete (the default); --no-report: "
                   "`python -m bench report DIR` writes it later, as paired rounds' sweeps do")
    p.add_argument("--fail-fast", action="store_true",
                   help="stop at the first configuration that raises an error or has a "
                   "non-finite loss (exit code 1), instead of recording it and going on")
    p.add_argument("--resume", type=user_path, metavar="DIR",
                   help="continue the run in DIR: measure what it has not recorded yet, with "
                   "its sweep (no sweep options then)")
    p.set_defaults(main=main)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    # argv is the whole command line; what env.json records starts at the command's name
    command = argv[argv.index("run"):] if "run" in argv else ["run", *argv]
    if args.out_dir is not None and URL_LIKE.match(str(args.out_dir)):  # a store's URL
        # given as the folder would name a folder after its password, and print it
        raise UsageError(f"--out-dir {args.out_dir} is a URL, not a folder; a store's URL "
                         "goes to --history")
    if args.history is not None and not args.history.strip():  # a variable that expanded
        # to nothing: measuring a whole sweep and storing nothing is not what was asked
        raise UsageError("--history is empty; give a DuckDB file or a postgresql:// URL, or "
                         "leave it out to store nothing")
    if args.history and args.worker is None:
        from bench.history.store import check_store  # as add_to_history imports it
        from bench.history.location import check_store_apart
        check_store_apart(args.history, args.resume or args.out_dir, "--history")
        check_store(args.history)
    steady_allocator()  # before any tensor: see bench/measure/allocator.py
    common = {"argv": command, "progress": not args.quiet, "fail_fast": args.fail_fast}
    if args.distributed:
        if args.trace:
            raise UsageError("--trace traces a single process's run; trace a configuration "
                             "with `python -m bench trace` instead")
        return main_distributed(args, common)
    if getattr(args, DDP_WRAP.name) is not None:
        raise UsageError(f"{DDP_WRAP.option} applies to --distributed runs, under torchrun")
    if args.worker is not None:
        return main_worker(args)
    if args.resume is not None:
        check_resume_alone(args)
        outcome = resume_sweep(args.resume, loads=args.load, **common)
    else:
        outcome = run_sweep(sweep_from_args(args), args.out_dir, loads=args.load, **common)
    if args.trace and outcome.signum is None:
        from bench.commands.run_traces import trace_measured
        trace_measured(outcome)
    return finish(outcome, args.load, history=args.history, report=args.report)


def main_worker(args: argparse.Namespace) -> int:
    """One worker of a run (``bench/sweep/workers.py``): its passes, nothing printed but
    errors; the coordinator sums up (a configuration that failed is in the rows: exit 1
    says only that the folder could not be written)."""
    if args.resume is None or args.worker < 1:
        raise UsageError("--worker is given by a run to its workers, with --resume DIR")
    outcome = work_sweep(args.resume, args.worker)
    if outcome.signum is not None:
        return exit_code(outcome.signum)
    if outcome.write_error is not None:
        print(f"error: {outcome.write_error}", file=sys.stderr)
        return 1
    return 0


def main_distributed(args: argparse.Namespace, common: dict) -> int:
    """One rank's part. Every rank checks the command line alike, so only rank 0 says what
    is wrong with it; the others leave with the same exit code, silently."""
    from bench.sweep.data_parallel import resume_hint, run_distributed
    from bench.sweep.distributed import join

    lead = os.environ.get("RANK", "0") == "0"
    try:
        if not 0 < args.dist_timeout_s <= MAX_DIST_TIMEOUT_S:  # nan fails this too
            raise UsageError(f"--dist-timeout-s must be from 0 (excluded) to "
                             f"{MAX_DIST_TIMEOUT_S:g} s, got {args.dist_timeout_s:g}")
        if args.workers not in (None, 1) or args.worker is not None:
            raise UsageError("--workers applies to a run in one process at a time; under "
                             "--distributed each rank is one process")
        if args.resume is not None:
            check_resume_alone(args)
        config = None if args.resume is not None else sweep_from_args(args)
        world = join(args.dist_timeout_s)
    except UsageError:
        if lead:
            raise
        return 2
    try:
        outcome = run_distributed(world, config, args.out_dir, resume=args.resume, **common)
    except UsageError:
        if lead:
            raise
        return 2
    finally:
        world.close()
    if outcome is None:  # not rank 0: rank 0 reports
        return 0
    resume = resume_hint(outcome.out_dir, history_words(args.history)[0])
    return finish(outcome, args.load, resume, history=args.history)


def check_resume_alone(args: argparse.Namespace) -> None:
    given = [name for name in (*(axis.name for axis in AXES), *TIMING_OPTIONS, "seed",
                               "repeats", "threads", "workers", "only", COMPARE_BY, "sweep",
                               "out_dir")
             if getattr(args, name) is not None]
    if given:
        flag = FLAGS.get(given[0], "--" + given[0].replace("_", "-"))
        raise UsageError(f"--resume continues the sweep recorded in {args.resume}; "
                         f"it takes no {flag}")


def only_list(text: str) -> list[str]:
    """``--only``: config_ids, comma-separated, or ``@FILE`` with one a line."""
    if text.startswith("@"):
        path = user_path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--only {text[:60]!r}: cannot read {path}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
        items = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UsageError("--only names no configuration; give config_ids (as results.csv "
                         "spells them), comma-separated or one a line in @FILE")
    return items


def sweep_from_args(args: argparse.Namespace, path: Path | None = None):
    """The sweep the options describe: ``path`` (else --sweep, else the default sweep of
    the devices given) with the command line's values over it."""
    overrides = {}
    for axis in AXES:
        text = getattr(args, axis.name)
        if text is not None:
            overrides[axis.sweep_key] = parse_list(axis.option, text, axis.kind)
    for name in ("seed", "repeats", "threads", "workers", COMPARE_BY):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.only is not None:
        overrides[ONLY] = only_list(args.only)
    timing = {k: getattr(args, k) for k in TIMING_OPTIONS if getattr(args, k) is not None}
    path = path or args.sweep or default_sweep(overrides.get(DEVICE.sweep_key))
    return load_sweep(path, overrides, timing)
