"""What a job does on its node: the sweep, in a process of its own, into the job's run folder
and the history store.

A job runs ``python -m bench run`` (single process), or, data-parallel, the torchrun path
(``python -m bench launch ... -m bench run --distributed``) once per node: Slurm's
``srun`` starts this function on every node of the job, each node then starts its ranks,
and the nodes meet at the first node's address, on a port drawn from the job id so that
every node computes the same one without a word between them.

A run folder that already holds a run (``sweep.json``) is continued (``--resume``), else a
new run starts there: the same task resumes whatever stopped it (``submit --resume``, or
Slurm requeueing a preempted job). The run stops cleanly on SIGTERM, which Slurm sends to
every process of a cancelled, preempted or timed-out job before killing it: the
configuration in progress is finished and written. It ignores SIGUSR2, which submitit asks
Slurm to send before the time limit: the run's own ending is the SIGTERM after it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.schema import SWEEP_FILE

# Data-parallel jobs meet on MASTER_PORT_BASE + (job id % MASTER_PORT_SPAN): unprivileged
# ports below the usual ephemeral range, so no two jobs of a node share one.
MASTER_PORT_BASE, MASTER_PORT_SPAN = 20000, 12000


@dataclass(frozen=True)
class NodeTask:
    """Everything a job needs on its node; pickled with the job by submitit."""

    python: str
    run_args: tuple[str, ...]  # the sweep options of this job's run (its shard included)
    run_dir: str
    store: str
    loads: tuple[str, ...] = ()
    nodes: int = 1
    procs_per_node: int = 0  # 0: one process, no torchrun; else ranks per node
    dist_timeout_s: float | None = None


def bench_command(task: NodeTask, resume: bool, distributed: bool) -> list[str]:
    """``bench [--load F] run ...``: continue the folder's run, or start one there."""
    loads = [word for path in task.loads for word in ("--load", path)]
    what = ["--resume", task.run_dir] if resume else [*task.run_args, "--out-dir", task.run_dir]
    parallel = ["--distributed"] if distributed else []
    if distributed and task.dist_timeout_s is not None:
        parallel += ["--dist-timeout-s", f"{task.dist_timeout_s:g}"]
    return ["bench", *loads, "run", *parallel, *what, "--history", task.store, "--quiet"]


def master_port(job_id: str) -> int:
    digits = "".join(c for c in job_id if c.isdigit()) or "0"
    return MASTER_PORT_BASE + int(digits) % MASTER_PORT_SPAN


def node_command(task: NodeTask, resume: bool, node_rank: int = 0, master: str = "",
                 job_id: str = "0") -> list[str]:
    """The command this node runs: the sweep alone, or its ranks under torchrun."""
    if task.procs_per_node == 0:
        return [task.python, "-m", *bench_command(task, resume, distributed=False)]
    rendezvous = f"timeout={task.dist_timeout_s:g}" if task.dist_timeout_s else ""
    return [task.python, "-m", "bench", "launch", "--nnodes", str(task.nodes),
            "--node-rank", str(node_rank), "--nproc-per-node", str(task.procs_per_node),
            "--rdzv-endpoint", f"{master}:{master_port(job_id)}",
            *(["--rdzv-conf", rendezvous] if rendezvous else []),
            "-m", *bench_command(task, resume, distributed=True)]


def _ignore_usr2() -> None:
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def run_on_node(task: NodeTask) -> int:
    """The job: the sweep's exit code (``python -m bench run``'s). Where submitit leaves
    this function early (it requeues a preempted job, or gives up on a timed-out one), the
    run is asked to stop after its configuration in progress, and waited for."""
    resume = (Path(task.run_dir) / SWEEP_FILE).exists()
    if task.procs_per_node == 0:
        command = node_command(task, resume)
    else:
        import submitit  # on a node of a submitted job: installed where it was submitted
        env = submitit.JobEnvironment()
        command = node_command(task, resume, env.node, env.hostnames[0], env.job_id)
    print(f"[{Path(task.run_dir).name}] {' '.join(command)}", flush=True)
    process = subprocess.Popen(command, preexec_fn=_ignore_usr2, stdout=sys.stdout,
                               stderr=sys.stderr)
    try:
        return process.wait()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait()
