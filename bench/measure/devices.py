"""Which devices exist here, what `auto` means, and what each device is called."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from bench.errors import UsageError


def cuda_devices() -> list[str]:
    return [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def available_devices() -> list[str]:
    return ["cpu", *cuda_devices(), *(["mps"] if mps_available() else [])]


def auto_devices() -> list[str]:
    """Every available accelerator, one per distinct model (eight identical GPUs would only
    repeat one measurement eight times), else the CPU."""
    by_name: dict[str, str] = {}
    for dev in cuda_devices():
        by_name.setdefault(torch.cuda.get_device_name(dev), dev)
    accelerators = list(by_name.values()) + (["mps"] if mps_available() else [])
    return accelerators or ["cpu"]


def normalize_device(name: str) -> str:
    """A concrete, available device name (`cuda` becomes `cuda:0`), or a UsageError."""
    available = available_devices()
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device {name!r}; valid: auto, {', '.join(available)}") from None
    if device.type == "cuda":
        device = torch.device("cuda", device.index or 0)
    text = str(device)
    if text not in available:
        why = ""
        if device.type == "cuda" and not torch.cuda.is_available():
            why = f" (torch {torch.__version__} sees no CUDA device)"
        raise UsageError(f"device {name!r} is not available here{why}; "
                         f"available: auto, {', '.join(available)}")
    return text


def resolve_devices(requested: tuple[str, ...] | list[str]) -> list[str]:
    out: list[str] = []
    for name in requested:
        for dev in (auto_devices() if name == "auto" else [normalize_device(name)]):
            if dev not in out:
                out.append(dev)
    return out


def rank_devices(requested: tuple[str, ...] | list[str], local_rank: int) -> list[str]:
    """The devices of one rank of a --distributed run: a device names a kind, and each rank
    takes its own of that kind, `cuda:LOCAL_RANK` (the CPU is every rank's `cpu`)."""
    out: list[str] = []
    for name in requested:
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        if name not in ("cpu", "cuda"):
            raise UsageError(f"under --distributed a device is `cpu`, `cuda` (each rank takes "
                             f"cuda:LOCAL_RANK) or `auto`, not {name!r}")
        device = "cpu" if name == "cpu" else f"cuda:{local_rank}"
        if device not in available_devices():
            raise UsageError(f"the rank with LOCAL_RANK {local_rank} has no {device}: torch sees "
                             f"{len(cuda_devices())} CUDA device(s) here; start at most one "
                             "process per GPU (--nproc-per-node)")
        if device not in out:
            out.append(device)
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: str) -> str:
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    return cpu_model()
