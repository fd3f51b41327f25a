"""A real single-node Slurm cluster for the submission tests, started in a temporary folder.

Debian's `munge`, `slurmctld` and `slurmd`: a munge daemon with a fresh key on a socket of
its own, a controller and one node daemon with every state, spool, pid and log file in the
folder, on free local ports, with the partitions the test asks for (all on this machine's
one node). No accounting daemon (it needs a database server), so `sacct` says accounting
is disabled and job states come from `scontrol`, as on any cluster without slurmdbd.
Clients find the cluster through ``SLURM_CONF``; ``env()`` gives it. Stopped and removed
afterwards. Where the binaries are absent, ``find_binaries`` says so and the tests skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.postgres_server import free_port

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo")
# A job's processes get SIGTERM, then SIGKILL this long after (Slurm's KillWait): time for a
# sweep to finish the configuration in progress and write it.
KILL_WAIT_S = 30


def find_binaries() -> tuple[bool, str]:
    missing = [name for name in BINARIES
               if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]
    if missing:
        return False, (f"no {', '.join(missing)}: apt-get install slurmctld slurmd "
                       "slurm-client munge")
    return True, ""


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def slurm_conf(root: Path, node: str, cpus: int, partitions: tuple[str, ...]) -> str:
    ports = (free_port(), free_port())
    lines = [
        "ClusterName=benchtest", f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={ports[0]}", f"SlurmdPort={ports[1]}",
        f"SlurmUser={os.environ.get('USER') or 'root'}" if os.geteuid() else "SlurmUser=root",
        "AuthType=auth/munge", f"AuthInfo=socket={root / 'munge.socket'}",
        "CredType=cred/munge",
        f"StateSaveLocation={root / 'state'}", f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}", f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}", f"SlurmdLogFile={root / 'slurmd.log'}",
        # no cgroups in a test: processes are tracked through /proc
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        "SchedulerType=sched/builtin", "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core", "MpiDefault=none", "ReturnToService=2",
        f"KillWait={KILL_WAIT_S}", "MinJobAge=3600",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN",
    ]
    for i, name in enumerate(partitions):
        lines.append(f"PartitionName={name} Nodes={node} MaxTime=INFINITE State=UP "
                     f"OverSubscribe=FORCE:4{' Default=YES' if i == 0 else ''}")
    return "\n".join(lines) + "\n"


class SlurmCluster:
    def __init__(self, partitions: tuple[str, ...] = ("alpha", "beta")):
        self.partitions = partitions
        self.root = Path(tempfile.mkdtemp(prefix="bench-slurm-"))
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.processes: list[subprocess.Popen] = []

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _daemon(self, *argv: str) -> None:
        log = open(self.root / f"{Path(argv[0]).name}.out", "w")
        self.processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                               env=self.env(), start_new_session=True))

    def start(self) -> SlurmCluster:
        for folder in ("state", "spool"):
            (self.root / folder).mkdir()
        # munged checks that nobody else can write the folders above its socket
        self.root.chmod(0o755)
        key = self.root / "munge.key"
        subprocess.run([_binary("mungekey"), "--create", "--keyfile", str(key)], check=True,
                       capture_output=True, timeout=30)
        self._daemon(_binary("munged"), "--foreground", "--force",
                     f"--socket={self.root / 'munge.socket'}", f"--key-file={key}",
                     f"--log-file={self.root / 'munged.log'}",
                     f"--pid-file={self.root / 'munged.pid'}",
                     f"--seed-file={self.root / 'munged.seed'}")
        self._wait_for(lambda: (self.root / "munge.socket").exists(), "munged")
        self.conf.write_text(slurm_conf(self.root, self.node, os.cpu_count() or 1,
                                        self.partitions))
        self._daemon(_binary("slurmctld"), "-D", "-i", "-f", str(self.conf))
        self._daemon(_binary("slurmd"), "-D", "-f", str(self.conf), "-N", self.node)
        self._wait_for(self._node_idle, "the node to be idle")
        return self

    def _node_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True,
                             env=self.env(), timeout=30)
        return out.returncode == 0 and out.stdout.split()[:1] == ["idle"]

    def _wait_for(self, ready, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [p.args[0] for p in self.processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(p.read_text()[-2000:] for p in self.root.glob("*.out"))
                raise RuntimeError(f"Slurm test cluster: waiting for {what} failed "
                                   f"({', '.join(dead) or 'timed out'}):\n{logs}")
            time.sleep(0.3)

    def command(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        return subprocess.run(argv, capture_output=True, text=True, env=self.env(),
                              timeout=timeout)

    def stop(self) -> None:
        self.command("scancel", "--full", "--user", str(os.getuid()))
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
