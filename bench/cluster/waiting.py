"""Waiting for a submission's jobs, saying each one's state as it changes, and what became
of each: its run complete in the store, or not and why.

A job is done when Slurm says it ended. A cancelled job is ``COMPLETING`` while its
processes finish the configuration in progress, and ended only once they are gone, so a
resubmission never finds the run folder still in use. Whether a job's run is complete is
the store's answer, not Slurm's: a run adds itself to the store once every configuration is
recorded, and never before (``python -m bench run --history``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.analyze.reader import read_json_object
from bench.cluster.slurm_states import COMPLETED, JobState, read_states
from bench.cluster.submission import Job, Submission
from bench.schema import SWEEP_FILE


@dataclass(frozen=True)
class Outcome:
    """What became of a job: its last Slurm state, its run (None where none was started)
    and whether that run is in the store."""

    job: Job
    state: JobState
    run_id: str | None
    stored: bool

    @property
    def complete(self) -> bool:
        return self.stored


def state_line(job: Job, state: JobState) -> str:
    where = f" on {state.nodes}" if state.nodes and state.state != "PENDING" else ""
    why = f" ({state.reason})" if state.reason else ""
    return (f"{dt.datetime.now():%H:%M:%S} {job.name} (job {job.slurm_id}): "
            f"{state.state}{where}{why}")


def wait_for_jobs(jobs: list[Job], poll_s: float,
                  say: Callable[[str], None] = print) -> dict[str, JobState]:
    """Poll Slurm until every job has ended, a line whenever a job's state changes; each
    job's last state, by name."""
    last: dict[str, tuple[str, str]] = {}
    while True:
        states = read_states([job.slurm_id for job in jobs])
        for job in jobs:
            state = states[job.slurm_id]
            if last.get(job.name) != (state.state, state.nodes):
                last[job.name] = (state.state, state.nodes)
                say(state_line(job, state))
        if all(states[job.slurm_id].ended for job in jobs):
            return {job.name: states[job.slurm_id] for job in jobs}
        time.sleep(poll_s)


def run_id_of(run_dir: Path) -> str | None:
    """The run a job's folder holds (its sweep.json's run_id), or None before it started."""
    path = run_dir / SWEEP_FILE
    if not path.is_file():
        return None
    run_id = read_json_object(path, "a sweep record").get("run_id")
    return str(run_id) if run_id else None


def outcomes(submission: Submission, states: dict[str, JobState],
             stored: Callable[[str], bool]) -> list[Outcome]:
    """Each job's outcome; ``stored`` says whether the store holds a run id."""
    out = []
    for job in submission.jobs:
        run_id = run_id_of(submission.run_dir(job))
        out.append(Outcome(job, states[job.name], run_id, bool(run_id) and stored(run_id)))
    return out


def outcome_line(outcome: Outcome, run_dir: Path, log: str) -> str:
    """One line for a job whose run is not complete: what Slurm said, what is kept."""
    state = outcome.state.state
    said = ("COMPLETED, but its run is not in the store (unfinished, or the store refused "
            "it: see the log)" if state == COMPLETED
            else f"{state}{' (' + outcome.state.reason + ')' if outcome.state.reason else ''}")
    kept = (f"its partial run is kept in {run_dir}" if outcome.run_id
            else "it started no run")
    return f"{outcome.job.name} (job {outcome.job.slurm_id}): {said}; {kept}; log: {log}"
