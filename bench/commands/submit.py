"""``python -m bench submit``: the same sweep on several partitions (GPU types) of a Slurm
cluster, each job adding its run to one history store, then one page comparing them.

One job per partition given (``--partition A100,H100``), or ``--shards`` jobs per partition
each measuring a share of the configurations (``bench/cluster/shards.py``). Each job runs
``python -m bench run`` on its node (under torchrun, data-parallel, with ``--distributed``)
into ``OUT_DIR/runs/<job>`` and adds the run to ``--history`` once complete. The command
waits, a line per change of a job's state, names every job whose run did not complete (its
partial run is kept), and writes ``OUT_DIR/hardware.html`` from the store.
``--resume OUT_DIR`` waits for the jobs still queued or running and submits again those
that ended without a complete run: each continues its run where it stopped. The guide:
``bench/cluster/README.md``.

Exit codes: 0 every job's run is complete and stored; 1 a job ended without one (named);
2 bad input (nothing submitted); 130 or 143 when the command was stopped while waiting
(the jobs go on; ``--resume`` waits for them again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
from pathlib import Path

from bench.cli import user_path
from bench.cluster.shards import shard_options
from bench.cluster.slurm_states import GONE, JobState, read_states
from bench.cluster.submission import MANIFEST, Job, Submission, load_submission
from bench.cluster.submitter import check_partitions, import_submitit, job_log, submit_job
from bench.cluster.waiting import outcome_line, outcomes, wait_for_jobs
from bench.commands.run import add_sweep_options, sweep_arguments, sweep_from_args
from bench.errors import UsageError
from bench.history.add import stored_fingerprint
from bench.history.hardware import compare_hardware
from bench.history.location import DUCKDB, locate
from bench.history.store import open_store, store_url
from bench.output_path import check_links, check_output, resolved
from bench.present.hardware_page import write_hardware_page
from bench.sweep.config import DEFAULT_CUDA_SWEEP, DEFAULT_SWEEP, parse_list
from bench.sweep.interrupt import SIGNALS, Interrupted, exit_code

PAGE = "hardware.html"
POLL_S = 10.0
# The options of a new submission, refused beside --resume (the manifest holds them).
NEW_ONLY = ("partition", "gpus_per_job", "shards", "nodes", "distributed", "procs_per_node",
            "cpus_per_job", "time_min", "slurm", "history", "out_dir", "dist_timeout_s")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "submit", help="run a sweep on a Slurm cluster's partitions into one history store",
        description="Submit the same sweep to each partition (GPU type) of a Slurm cluster "
        "through submitit, one job each; every job runs `python -m bench run` on its node and "
        "adds its run to the history store. Waits, showing each job's state, then writes a "
        "page of the same configurations across the device types. Sweep options are "
        "`run`'s.", epilog="exit codes: 0 every run complete and stored; 1 a job ended "
        "without a complete run (named; --resume continues it); 2 bad input; 130/143 "
        "stopped while waiting (the jobs go on; --resume waits again)")
    s = p.add_argument_group("the cluster")
    s.add_argument("--partition", metavar="P1,P2", help="partitions, one job each (the first "
                   "is the reference of the comparison)")
    s.add_argument("--gpus-per-job", type=int, default=0, help="GPUs per node of each job "
                   "(default 0: a CPU job)")
    s.add_argument("--shards", type=int, default=1, help="jobs per partition, each measuring "
                   "a share of the sweep's configurations (default 1)")
    s.add_argument("--nodes", type=int, default=1, help="nodes per job (more than one needs "
                   "--distributed)")
    s.add_argument("--distributed", action="store_true", help="data-parallel: torchrun on "
                   "every node of the job, --procs-per-node ranks each")
    s.add_argument("--procs-per-node", type=int, help="ranks per node under --distributed "
                   "(default: --gpus-per-job)")
    s.add_argument("--dist-timeout-s", type=float, help="`run --dist-timeout-s`, and how long "
                   "the nodes wait for each other to meet")
    s.add_argument("--cpus-per-job", type=int, help="CPUs per node of each job (default: the "
                   "partition's)")
    s.add_argument("--time-min", type=int, help="time limit of each job, in minutes "
                   "(default: the partition's)")
    s.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="a further sbatch option, e.g. account=team or qos=high (repeatable)")
    p.add_argument("--history", metavar="STORE", help="the history store every job adds its "
                   "run to: a postgresql:// URL for a team, or a DuckDB file on a file system "
                   "the nodes share (default: $BENCH_HISTORY, else results/history.duckdb)")
    p.add_argument("--out-dir", type=user_path, help="the submission's folder, on a file "
                   "system the nodes share (default: results/submit-<time>)")
    p.add_argument("--out", type=user_path, help=f"the comparison page (default: OUT_DIR/{PAGE})")
    p.add_argument("--poll-s", type=float, default=POLL_S,
                   help=f"seconds between two looks at the jobs' states (default {POLL_S:g})")
    p.add_argument("--resume", type=user_path, metavar="OUT_DIR",
                   help="wait for this submission's jobs, submitting again each that ended "
                   "without a complete run; it continues that run")
    p.add_argument("--fail-fast", action="store_true", help="`run --fail-fast` in every job")
    add_sweep_options(p)
    p.set_defaults(main=main)


def positive(name: str, value: int | None, low: int = 1) -> None:
    if value is not None and value < low:
        raise UsageError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")


def slurm_options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for text in pairs:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--slurm {text!r}: expected KEY=VALUE, e.g. account=team")
        options[name.strip().replace("-", "_")] = value
    return options


def ranks_per_node(args: argparse.Namespace) -> int:
    """0 for one process per job, else the ranks torchrun starts on each node."""
    if not args.distributed:
        if args.nodes > 1 or args.procs_per_node is not None:
            raise UsageError(f"{'--nodes' if args.nodes > 1 else '--procs-per-node'} is for "
                             "data-parallel jobs: add --distributed")
        return 0
    procs = args.procs_per_node or args.gpus_per_job
    if procs < 1:
        raise UsageError("--distributed on CPU nodes needs --procs-per-node N (ranks per node)")
    return procs


def the_store(given: str | None) -> str:
    """The store every job writes to, absolute where it is a file; it must open here, to
    write (a new DuckDB file is made now, with its tables)."""
    url = store_url(given)
    location = locate(url)
    if location.secrets:  # it would be written into submission.json and every job's script
        raise UsageError(f"--history {location.name}: a submission keeps its store's URL on "
                         "disk for its jobs, so the URL may hold no password: give it in "
                         "~/.pgpass or a service file, where every node's libpq finds it")
    if location.kind == DUCKDB:
        url = str(Path(location.target).resolve())
    with open_store(url, write=True):
        pass
    return url


def new_submission(args: argparse.Namespace) -> Submission:
    """The jobs the options describe, checked before anything is submitted."""
    for name in ("gpus_per_job",):
        positive(name, getattr(args, name), low=0)
    for name in ("shards", "nodes", "procs_per_node", "cpus_per_job", "time_min"):
        positive(name, getattr(args, name))
    if not args.partition:
        raise UsageError("--partition is required: the partitions (GPU types) to run on, "
                         "e.g. --partition A100,H100")
    partitions = list(dict.fromkeys(parse_list("--partition", args.partition)))
    procs = ranks_per_node(args)
    if args.sweep is not None:
        args.sweep = resolved(args.sweep)  # the jobs start elsewhere
    default = DEFAULT_CUDA_SWEEP if args.gpus_per_job else DEFAULT_SWEEP
    config = sweep_from_args(args, path=args.sweep or default)  # bad options: refused here
    shards = shard_options(config, args.shards)
    run_args = sweep_arguments(args) + (["--fail-fast"] if args.fail_fast else [])
    if args.shards > 1 and args.sweep is None:
        run_args = ["--sweep", str(default), *run_args]  # the sweep the shards were cut from
    out_dir = (args.out_dir or Path("results") / f"submit-{dt.datetime.now():%Y%m%d-%H%M%S}")
    check_links(out_dir, "--out-dir")  # made once the jobs are known: say now if it cannot be
    jobs = [Job(p if len(shards) == 1 else f"{p}-{i}of{len(shards)}", p, i,
                [*run_args, *extra]) for p in partitions for i, extra in enumerate(shards, 1)]
    return Submission(resolved(out_dir), the_store(args.history), sys.executable, jobs,
                      args.gpus_per_job, args.nodes, procs, args.cpus_per_job, args.time_min,
                      slurm_options(args.slurm), [str(Path(f).resolve()) for f in args.load],
                      args.dist_timeout_s)


def start(args: argparse.Namespace) -> Submission:
    import_submitit()
    submission = new_submission(args)
    check_partitions(sorted({job.partition for job in submission.jobs}))
    if (submission.out_dir / MANIFEST).exists():
        raise UsageError(f"--out-dir {submission.out_dir} already holds a submission; "
                         f"continue it with --resume {submission.out_dir}")
    submission.out_dir.mkdir(parents=True, exist_ok=True)
    for job in submission.jobs:
        submit_job(submission, job)
        submission.save()  # a later job refused still leaves the earlier ones on record
        print(f"Submitted {job.name} (partition {job.partition}) as job {job.slurm_id}: "
              f"{submission.run_dir(job)}")
    return submission


def check_resume_alone(args: argparse.Namespace) -> None:
    defaults = {"gpus_per_job": 0, "shards": 1, "nodes": 1, "distributed": False, "slurm": []}
    given = [n for n in NEW_ONLY if getattr(args, n) != defaults.get(n)]
    given += [flag for flag in sweep_arguments(args) if flag.startswith("--")]
    if given:
        flag = given[0] if given[0].startswith("--") else "--" + given[0].replace("_", "-")
        raise UsageError(f"--resume continues the submission recorded in {args.resume}; it "
                         f"takes no {flag}")


def resume(args: argparse.Namespace) -> Submission:
    """The submission again: jobs still queued or running are waited for; those that ended
    without a complete run are submitted again, to continue it."""
    check_resume_alone(args)
    submission = load_submission(args.resume)
    states = {job.name: s for job, s in zip(submission.jobs, _states(submission))}
    with open_store(submission.store) as store:
        done = outcomes(submission, states, lambda run_id: _stored(store, run_id))
    for outcome in done:
        job = outcome.job
        if outcome.complete or not outcome.state.ended:
            print(f"{job.name} (job {job.slurm_id}): "
                  f"{'complete' if outcome.complete else outcome.state.state}")
            continue
        old = job.slurm_id
        submit_job(submission, job)
        submission.save()
        print(f"Submitted {job.name} again as job {job.slurm_id} (job {old} ended "
              f"{outcome.state.state}); it continues {submission.run_dir(job)}")
    return submission


def _states(submission: Submission) -> list[JobState]:
    found = read_states([job.slurm_id for job in submission.jobs if job.slurm_id])
    return [found.get(job.slurm_id, JobState(job.slurm_id, GONE)) for job in submission.jobs]


def _stored(store, run_id: str) -> bool:
    return stored_fingerprint(store, run_id) is not None


def finish(submission: Submission, args: argparse.Namespace) -> int:
    """Wait, name the jobs without a complete run, write the page from the store."""
    states = wait_for_jobs(submission.jobs, args.poll_s)
    with open_store(submission.store) as store:
        done = outcomes(submission, states, lambda run_id: _stored(store, run_id))
        stored = [o.run_id for o in done if o.complete]
        comparison = compare_hardware(store, stored,
                                      [job.partition for job in submission.jobs])
        name = store.name
    failed = [o for o in done if not o.complete]
    for outcome in failed:
        print(outcome_line(outcome, submission.run_dir(outcome.job),
                           job_log(submission, outcome.job)), file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(done)} jobs without a complete run; to continue them: "
              f"python -m bench submit --resume {submission.out_dir}", file=sys.stderr)
    page = write_hardware_page(args.out or submission.out_dir / PAGE, comparison, name,
                               [o.job.name for o in failed])
    print(f"Hardware comparison: {page} ({len(stored)} of {len(done)} runs, store {name})")
    return 1 if failed else 0


def _interrupt(signum: int, frame) -> None:
    raise Interrupted(signum)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    if not args.poll_s > 0:  # nan too
        raise UsageError(f"--poll-s must be a positive number of seconds, got {args.poll_s}")
    if args.out is not None:
        check_output(args.out)
    submission = resume(args) if args.resume is not None else start(args)
    for signum in SIGNALS:
        signal.signal(signum, _interrupt)
    try:
        return finish(submission, args)
    except Interrupted as stop:
        print(f"{stop}: stopped waiting; the jobs go on. To wait for them again: python -m "
              f"bench submit --resume {submission.out_dir}", file=sys.stderr)
        return exit_code(stop.signum)
