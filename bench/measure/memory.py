"""Memory of a configuration: measured peaks per device, and an analytic breakdown.

The analytic breakdown (parameters, gradients, optimizer state, activations saved for
backward) is computed on every device, so a CPU-only run explains its memory too. All of it
is taken in untimed passes after timing: reading or resetting allocator statistics inside a
timed region would add host work to what is measured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.schema import MIB
from multinet.step import JointStep


@dataclass(frozen=True)
class Breakdown:
    param_bytes: int
    grad_bytes: int
    optimizer_state_bytes: int
    activation_bytes: int


def _storage_key(t: torch.Tensor) -> tuple[str, int]:
    return (str(t.device), t.untyped_storage().data_ptr())


class SavedTensorCounter:
    """Counts the bytes autograd saves for backward, parameters excluded. Counted per
    storage, so a tensor saved by two operations (a ReLU's output that the next Linear also
    saves) or saved as a view counts once, at its storage's size."""

    def __init__(self, params: list[torch.Tensor]):
        self.param_storages = {_storage_key(p) for p in params}
        self.seen: dict[tuple[str, int], int] = {}

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in self.param_storages:
            self.seen[key] = t.untyped_storage().nbytes()
        return t

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)

    @property
    def total(self) -> int:
        return sum(self.seen.values())


def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def analytic_breakdown(step: JointStep) -> Breakdown:
    """Runs one full iteration (untimed), stage by stage: forwards under saved-tensor hooks,
    gradients read after each backward, the optimizer's state read at the end. Where an
    iteration has several updates, activations and gradients are those of the largest."""
    params = step.parameters()
    activation = grads = 0
    counter = None
    for phase, fn in step.phases():
        if phase == "forward":
            counter = SavedTensorCounter(params)
            with counter.hooks():
                fn()
            activation = max(activation, counter.total)
            continue
        fn()
        if phase == "backward":
            grads = max(grads, _tensor_bytes(p.grad for p in params if p.grad is not None))
    state = sum(_tensor_bytes(s.values()) for opt in step.optimizers for s in opt.state.values())
    return Breakdown(_tensor_bytes(params), grads, state, activation)


def cuda_phase_peaks(step: JointStep, device: torch.device) -> dict[str, float]:
    """Peak CUDA memory allocated during each phase of one untimed iteration, in MiB.

    The caching allocator counts at allocation time, on the host, so resetting the peak at
    each phase's start attributes every allocation to the phase that asked for it without
    synchronizing."""
    peaks: dict[str, float] = {}
    for name, fn in step.phases():
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        peaks[name] = max(peaks.get(name, 0.0), torch.cuda.max_memory_allocated(device) / MIB)
    return peaks


class RssPeak:
    """Peak resident memory of this process over a span, in MiB (Linux).

    Writing 5 to /proc/self/clear_refs resets the kernel's high-water mark (VmHWM), so the
    peak read at the end belongs to this span alone. Where that is not possible the
    lifetime peak is reported and ``scope`` says so.
    """

    def __init__(self) -> None:
        self.scope = "span"
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.scope = "process"

    def read_mib(self) -> float | None:
        try:
            status = Path("/proc/self/status").read_text()
        except OSError:
            return _ru_maxrss_mib()
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) / 1024 if match else _ru_maxrss_mib()


def _ru_maxrss_mib() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    import sys
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, else KiB
