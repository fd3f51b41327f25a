"""A whole joint training step captured into one CUDA graph and replayed.

Replaying a graph launches every kernel of the iteration (forwards, backwards, optimizer
steps) with one call, so what is left of the step's time is the GPU's work: comparing it
with the eager step shows how much of that step was launch overhead. The recipe is
PyTorch's whole-network capture: warm up on a side stream (optimizer state and cuDNN plans
are created there), then capture one iteration. Optimizers must be ``capturable`` (Adam's
step counter then lives on the GPU), the batch stays in the same memory, and nothing in the
step may synchronize with the host (no fp16 GradScaler unless the optimizer is fused).

There are no boundaries inside a graph: ``phases()`` is empty and only the whole step is
timed.
"""

from __future__ import annotations

from typing import Protocol

import torch

WARMUP_ITERS = 3


class EagerStep(Protocol):
    """What a graph is captured from: a JointStep (multinet.step builds a GraphedStep from
    one, so this module names only what it uses of it)."""

    last_loss: torch.Tensor | None

    def run(self) -> None: ...


class GraphedStep:
    def __init__(self, step: EagerStep, warmup_iters: int = WARMUP_ITERS):
        self.step = step
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup_iters):
                step.run()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            step.run()

    def run(self) -> None:
        self.graph.replay()

    def phases(self) -> list:
        return []

    @property
    def last_loss(self) -> torch.Tensor | None:
        return self.step.last_loss  # a static tensor the replays keep writing

    def __getattr__(self, name):  # networks, optimizers, parameters(), batch, ...
        return getattr(self.step, name)
