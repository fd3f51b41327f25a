"""Jobs handed to Slurm through submitit: one sbatch per job, the node's part pickled with it.

submitit writes each job's sbatch script, its pickled function (``bench.cluster.node``) and
its log under the submission's ``slurm/`` folder, runs the function on the node through
``srun`` (once per node) and pickles what it returned beside the log. Job states are read
apart from it (``bench/cluster/slurm_states.py``), since submitit's own come from
``sacct`` alone. submitit is an extra (``pip install -e '.[cluster]'``): without it the
command says so in one line.
"""

from __future__ import annotations

import subprocess
from typing import Any

from bench.cluster.node import run_on_node
from bench.cluster.submission import LOGS, Job, Submission
from bench.errors import UsageError

INSTALL = "pip install -e '.[cluster]' (or pip install submitit)"


def import_submitit():
    try:
        import submitit
    except ImportError:
        raise UsageError(f"submitting to Slurm needs submitit: {INSTALL}") from None
    return submitit


def known_partitions() -> list[str]:
    """The cluster's partitions, as ``sinfo`` lists them (the default one marked ``*``)."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True,
                             timeout=60)
    except FileNotFoundError:
        raise UsageError("no Slurm here: `sinfo` is not on PATH (submit from a machine of "
                         "the cluster, a login node)") from None
    if out.returncode != 0:
        reason = (out.stderr.strip().splitlines() or ["no answer"])[0]
        raise UsageError(f"Slurm does not answer: sinfo: {reason}")
    return [name.rstrip("*") for name in out.stdout.split()]


def check_partitions(partitions: list[str]) -> None:
    known = known_partitions()
    unknown = [p for p in partitions if p not in known]
    if unknown:
        raise UsageError(f"--partition: no partition {unknown[0]!r} on this cluster; it has: "
                         f"{', '.join(known) or 'none'}")


def sbatch_parameters(submission: Submission, job: Job) -> dict[str, Any]:
    """submitit's names for the job's sbatch options. One task per node: the node's part
    starts its own ranks (torchrun), where it has several."""
    parameters: dict[str, Any] = {
        "partition": job.partition, "nodes": submission.nodes, "ntasks_per_node": 1,
        "job_name": f"bench-{job.name}", "stderr_to_stdout": True,
        # no time given: the partition's default limit, not submitit's five minutes
        "time": submission.time_min,
    }
    if submission.gpus_per_job:
        parameters["gpus_per_node"] = submission.gpus_per_job
    if submission.cpus_per_job:
        parameters["cpus_per_task"] = submission.cpus_per_job
    if submission.slurm:
        parameters["additional_parameters"] = dict(submission.slurm)
    return parameters


def submit_job(submission: Submission, job: Job) -> str:
    """Hand ``job`` to Slurm; its new job id, also recorded in the job."""
    submitit = import_submitit()
    executor = submitit.SlurmExecutor(folder=submission.out_dir / LOGS / "%j",
                                      python=submission.python)
    executor.update_parameters(**sbatch_parameters(submission, job))
    try:
        handle = executor.submit(run_on_node, submission.task(job))
    except subprocess.CalledProcessError as exc:
        output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) \
            else str(exc.output or exc)
        reason = (output.strip().splitlines() or [str(exc)])[-1]
        raise UsageError(f"sbatch refused job {job.name}: {reason}") from None
    job.slurm_ids.append(str(handle.job_id))
    return str(handle.job_id)


def job_log(submission: Submission, job: Job) -> str:
    """Where the job's output is: submitit's log of its latest Slurm job."""
    return str(submission.out_dir / LOGS / job.slurm_id / f"{job.slurm_id}_0_log.out")
