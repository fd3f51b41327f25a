"""Work per phase, counted once per configuration in untimed passes: floating-point
operations (``torch.utils.flop_counter.FlopCounterMode``), operators dispatched, and on
CUDA the kernels launched.

FLOPs and operators are counted on an eager step: the arithmetic is the same whether or not
the step is compiled, and dispatch modes do not mix with compiled code. Kernels are counted
on the step as it is timed, compiled or not, since fewer launches is what compiling buys.
FlopCounterMode counts the matrix products and convolutions (2 per multiply-add); the
optimizer's elementwise updates count as 0 FLOPs, and its cost shows in operators and
kernels instead.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from multinet.step import JointStep


class OperatorCounter(TorchDispatchMode):
    """Counts ATen operators as they are dispatched (one per eager kernel, near enough)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def count_phases(step: JointStep) -> tuple[dict[str, int], dict[str, int]]:
    """FLOPs and operators per phase over one iteration of ``step`` (which it advances)."""
    flops: Counter[str] = Counter()
    ops: Counter[str] = Counter()
    for phase, fn in step.phases():
        counter = FlopCounterMode(display=False)
        with counter, OperatorCounter() as dispatched:
            fn()
        flops[phase] += counter.get_total_flops()
        ops[phase] += dispatched.count
    return dict(flops), dict(ops)


def cuda_kernels(step) -> dict[str, int]:
    """Kernels (and device memcpy/memset) launched per phase over one iteration, from the
    profiler's CUDA activity. A step without phases (a CUDA graph) is counted whole, under
    ``step``."""
    from torch.profiler import ProfilerActivity, profile

    kernels: Counter[str] = Counter()
    for phase, fn in step.phases() or [("step", step.run)]:
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        kernels[phase] += sum(1 for e in prof.events()
                              if e.device_type == torch.autograd.DeviceType.CUDA)
    return dict(kernels)
