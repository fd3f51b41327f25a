"""The environment of a run, captured once and written to ``env.json`` beside the results.

Each field is read on its own; one that cannot be read is recorded as
``{"unavailable": "<why>"}`` instead of stopping the run, the why in words where the cause
is a known one (``bench.measure.unavailable``).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench import PROJECT_ROOT
from bench.measure.allocator import allocator_state
from bench.measure.devices import cpu_model, mps_available
from bench.measure.nvml import nvml_session
from bench.measure.unavailable import reason_of
from bench.schema import SCHEMA_VERSION, TURNS_VARIABLE
from bench.secrets import hide_variable, hide_words

PACKAGES = ("torch", "numpy", "pandas", "plotly", "pytest-benchmark", "nvidia-ml-py")
# Environment variables that change what torch and its libraries do (threads, kernels,
# allocators, TF32), recorded by name: two environments that differ only in one of them
# then differ in env.json too, and a comparison or a bisection names it.
SETTING_PREFIXES = ("OMP_", "MKL_", "KMP_", "OPENBLAS_", "GOMP_", "DNNL_", "ONEDNN_", "ATEN_",
                    "TORCH_", "PYTORCH_", "CUDA_", "CUBLAS_", "CUDNN_", "NCCL_", "NVIDIA_",
                    "MULTINET_")
# What Slurm tells a job about where it runs (``python -m bench submit``).
SLURM_FIELDS = {"job_id": "SLURM_JOB_ID", "partition": "SLURM_JOB_PARTITION",
                "nodes": "SLURM_JOB_NODELIST", "cluster": "SLURM_CLUSTER_NAME",
                "gpus": "SLURM_GPUS_ON_NODE"}


def field(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception as exc:
        return {"unavailable": reason_of(exc)}


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=10, check=True)
    return out.stdout.strip()


def project_commit() -> dict[str, Any]:
    return {"commit": _git("rev-parse", "HEAD"),
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def gpus() -> list[dict[str, Any]]:
    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        out.append({"index": i, "name": p.name, "memory_mib": p.total_memory // (1024 * 1024),
                    "capability": f"{p.major}.{p.minor}",
                    "multiprocessors": p.multi_processor_count, "uuid": str(p.uuid)})
    return out


def nvidia_driver() -> str | dict[str, str]:
    nvml, reason = nvml_session()
    if nvml is None:
        return {"unavailable": reason}
    version = nvml.nvmlSystemGetDriverVersion()
    return version.decode() if isinstance(version, bytes) else version


def package_versions() -> dict[str, str | None]:
    def version(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None
    return {name: version(name) for name in PACKAGES}


def settings() -> dict[str, str]:
    # the turn-taking pipes are how a run was measured, not what it measured; a variable
    # that holds a secret (by its name, or a URL's password) is recorded masked
    return {name: hide_variable(name, value) for name, value in sorted(os.environ.items())
            if name.startswith(SETTING_PREFIXES) and name != TURNS_VARIABLE}


def slurm_job() -> dict[str, str] | None:
    """The Slurm job this run is part of, or None outside one."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    return {key: os.environ[name] for key, name in SLURM_FIELDS.items() if name in os.environ}


def physical_cores() -> int | None:
    # Distinct (physical id, core id) pairs; os.cpu_count() counts hyperthreads too.
    pairs, phys = set(), None
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            phys = value.strip()
        elif key.strip() == "core id":
            pairs.add((phys, value.strip()))
    return len(pairs) or None


# Other processes using more than this share of the machine's CPU time when a run starts
# make it a busy machine: its figures will not match a quiet one's.
BUSY_SHARE = 0.25
LOAD_WINDOW_S = 0.5


def cpu_times() -> tuple[int, int]:
    """Busy and total jiffies of all CPUs since boot, from /proc/stat (Linux)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return sum(fields) - idle, sum(fields)


def machine_load(window_s: float = LOAD_WINDOW_S) -> dict[str, Any]:
    """The share of every CPU's time that other processes used over a short window while
    this one slept, before anything was measured."""
    busy0, total0 = cpu_times()
    time.sleep(window_s)
    busy1, total1 = cpu_times()
    share = (busy1 - busy0) / max(total1 - total0, 1)
    return {"others_share": round(share, 3), "window_s": window_s,
            "busy": share > BUSY_SHARE}


def capture_environment(run_id: str, argv: list[str],
                        ranks: list[dict[str, Any]] | None = None,
                        turns_seed: int | None = None,
                        turns_cpus: list[int] | None = None) -> dict[str, Any]:
    """``ranks``: under --distributed, each rank's host and devices (rank 0 captures the
    rest of the environment on its own host). ``turns_seed``: the groups' order shared with
    the processes this one takes turns with (None: it runs alone); ``turns_cpus``: the CPUs
    they all measure on, where they are pinned."""
    env = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        # a store URL's password given on the command line is never recorded
        "command_line": field(lambda: hide_words([Path(sys.argv[0]).name, *argv])),
        "hostname": field(socket.gethostname),
        "os": field(platform.platform),
        "python": field(lambda: sys.version.split()[0]),
        "cpu_model": field(cpu_model),
        "cpu_logical_cores": field(os.cpu_count),
        "cpu_physical_cores": field(physical_cores),
        "threads": field(torch.get_num_threads),
        "torch_version": field(lambda: torch.__version__),
        "torch_git_version": field(lambda: torch.version.git_version),
        "cuda_version": field(lambda: torch.version.cuda),
        "cudnn_version": field(lambda: torch.backends.cudnn.version()
                               if torch.cuda.is_available() else None),
        "nvidia_driver": field(nvidia_driver),
        "gpu_count": field(lambda: torch.cuda.device_count() if torch.cuda.is_available() else 0),
        "gpus": field(gpus),
        "mps_available": field(mps_available),
        "project": field(project_commit),
        "packages": field(package_versions),
        "machine_load": field(machine_load),
        "allocator": field(allocator_state),
        "settings": field(settings),
    }
    if (job := field(slurm_job)) is not None:
        env["slurm"] = job
    if turns_seed is not None:  # its times were taken turn about with others'
        env["took_turns"] = {"groups_order_seed": turns_seed,
                             **({"cpus": turns_cpus} if turns_cpus else {})}
    if ranks is not None:
        env["world_size"] = len(ranks)
        env["ranks"] = ranks
    return env
