"""What Slurm says of the jobs of a submission: their states, read through the command line.

``sacct`` answers for running and ended jobs alike where the cluster keeps accounting
(slurmdbd). A cluster without it says "accounting storage is disabled"; ``scontrol show
job`` then answers from the controller's memory, which keeps an ended job for
``MinJobAge`` seconds (300 by default), long enough for a waiting command polling every few
seconds. A job neither knows of is ``GONE``: the run folder and the store say what became
of it. Standard library only.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

# States after which a job does nothing more (Slurm's base states of an ended job).
ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL",
                   "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "REVOKED"})
COMPLETED = "COMPLETED"
GONE = "GONE"  # neither sacct nor scontrol knows the job (any more)
COMMAND_TIMEOUT_S = 60


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str  # Slurm's word: PENDING, RUNNING, COMPLETING, COMPLETED, CANCELLED, ...
    nodes: str = ""
    reason: str = ""

    @property
    def ended(self) -> bool:
        return self.state in ENDED or self.state == GONE


def base_state(text: str) -> str:
    """"CANCELLED by 0" -> CANCELLED; "COMPLETING+" style suffixes dropped."""
    return text.split()[0].rstrip("+") if text.split() else GONE


def parse_sacct(text: str) -> dict[str, JobState]:
    """``sacct -X -n -P -o JobID,State,NodeList,Reason`` lines, by job id."""
    states = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) >= 3 and fields[0]:
            states[fields[0]] = JobState(fields[0], base_state(fields[1]), fields[2],
                                         fields[3] if len(fields) > 3 else "")
    return states


def parse_scontrol(text: str) -> JobState | None:
    """One line of ``scontrol -o show job ID``, or None for none."""
    fields = dict(word.split("=", 1) for word in text.split() if "=" in word)
    if "JobId" not in fields:
        return None
    nodes = fields.get("NodeList", "")
    return JobState(fields["JobId"], base_state(fields.get("JobState", "")),
                    "" if nodes == "(null)" else nodes,
                    "" if fields.get("Reason") == "None" else fields.get("Reason", ""))


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)


def from_sacct(job_ids: list[str]) -> dict[str, JobState] | None:
    """The states by sacct, or None where the cluster keeps no accounting."""
    out = _run(["sacct", "-X", "-n", "-P", "-o", "JobID,State,NodeList,Reason",
                "-j", ",".join(job_ids)])
    if out.returncode != 0 or "accounting storage is disabled" in out.stdout + out.stderr:
        return None
    return parse_sacct(out.stdout)


def from_scontrol(job_id: str) -> JobState:
    out = _run(["scontrol", "-o", "show", "job", job_id])
    state = parse_scontrol(out.stdout) if out.returncode == 0 else None
    return state or JobState(job_id, GONE)


def read_states(job_ids: list[str]) -> dict[str, JobState]:
    """Each job's state, by job id."""
    if not job_ids:
        return {}
    found = from_sacct(job_ids)
    if found is None:
        return {job_id: from_scontrol(job_id) for job_id in job_ids}
    # a job just submitted can reach the accounting database a moment later
    return {job_id: found.get(job_id) or from_scontrol(job_id) for job_id in job_ids}
