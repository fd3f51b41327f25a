"""A submission on disk: what was asked of the cluster, each job's run folder and Slurm ids.

``submission.json`` in the submission's folder holds every choice of the command line (the
partitions, the resources, the sweep's options, the store) and, per job, its run folder and
the Slurm job ids it has had, the latest last. ``submit --resume`` reads it back and takes
no other option, so a resumed job runs the sweep it started with, into the same folder.
The folder must be one every node sees (a shared file system): the jobs write their runs
there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.analyze.reader import read_json_object
from bench.atomic import write_json_atomic
from bench.cluster.node import NodeTask
from bench.errors import UsageError

MANIFEST = "submission.json"
VERSION = 1
RUNS, LOGS = "runs", "slurm"


@dataclass
class Job:
    """One job of a submission: a partition's run, or one shard of it."""

    name: str  # the partition, with the shard where there are several: alpha-2of3
    partition: str
    shard: int  # from 1
    run_args: list[str]  # the sweep options of its run, its shard's axis included
    slurm_ids: list[str] = field(default_factory=list)

    @property
    def slurm_id(self) -> str:
        return self.slurm_ids[-1] if self.slurm_ids else ""


@dataclass
class Submission:
    out_dir: Path
    store: str
    python: str
    jobs: list[Job]
    gpus_per_job: int = 0
    nodes: int = 1
    procs_per_node: int = 0  # 0: one process per job; else data-parallel ranks per node
    cpus_per_job: int | None = None
    time_min: int | None = None
    slurm: dict[str, str] = field(default_factory=dict)  # further sbatch options
    loads: list[str] = field(default_factory=list)
    dist_timeout_s: float | None = None

    def run_dir(self, job: Job) -> Path:
        return self.out_dir / RUNS / job.name

    def task(self, job: Job) -> NodeTask:
        return NodeTask(self.python, tuple(job.run_args), str(self.run_dir(job)), self.store,
                        tuple(self.loads), self.nodes, self.procs_per_node, self.dist_timeout_s)

    def save(self) -> None:
        data = {"version": VERSION, **dataclasses.asdict(self)}
        data["out_dir"] = str(self.out_dir)
        write_json_atomic(self.out_dir / MANIFEST, data)


def load_submission(out_dir: Path) -> Submission:
    """The submission in ``out_dir``; one line naming what is wrong with its manifest."""
    path = out_dir / MANIFEST
    if not path.is_file():
        raise UsageError(f"--resume {out_dir}: no {MANIFEST} there; give the folder a "
                         "`python -m bench submit` wrote")
    data = read_json_object(path, "a submission record")
    if data.get("version") != VERSION:
        raise UsageError(f"{path}: version {data.get('version')!r}, this harness reads "
                         f"version {VERSION}")
    try:
        jobs = [Job(**job) for job in data.pop("jobs")]
        fields = {f.name for f in dataclasses.fields(Submission)}
        values: dict[str, Any] = {k: v for k, v in data.items() if k in fields}
        return Submission(**{**values, "out_dir": out_dir.resolve(), "jobs": jobs})
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{path} is not a submission record: {exc}") from None
