"""Memory per network: parameters, gradients, optimizer state and the activations each
network's forward saves for backward, read in one untimed iteration.

The same quantities as the configuration's analytic breakdown (``bench/measure/memory.py``),
split by owner: a gradient and an optimizer state belong to the network of their parameter;
a tensor saved for backward to the network whose forward was running when autograd saved
it (the loss's own, outside every network, to ``OUTSIDE``), each storage once, to the first
that saved it. Where an iteration has several updates, a network's activations and
gradients are those of the update where they are largest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from bench.measure.boundaries import OUTSIDE, NetworkBoundaries
from bench.measure.memory import _storage_key, _tensor_bytes


@dataclass
class NetworkMemory:
    param_bytes: int = 0
    grad_bytes: int = 0
    optimizer_state_bytes: int = 0
    activation_bytes: int = 0


class SavedByNetwork:
    """Bytes autograd saves for backward, per network running at the time, parameters
    excluded, each storage once."""

    def __init__(self, boundaries: NetworkBoundaries, params: list[torch.Tensor]):
        self.boundaries = boundaries
        self.param_storages = {_storage_key(p) for p in params}
        self.seen: dict[tuple[str, int], tuple[str, int]] = {}

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in self.param_storages and key not in self.seen:
            self.seen[key] = (self.boundaries.forward_owner()[0], t.untyped_storage().nbytes())
        return t

    def per_network(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for owner, nbytes in self.seen.values():
            totals[owner] += nbytes
        return totals


def survey_memory(boundaries: NetworkBoundaries) -> dict[str, NetworkMemory]:
    """Runs one iteration of the step through ``boundaries`` (its surveying iteration) and
    returns each network's memory, ``OUTSIDE`` included."""
    step = boundaries.step
    params = step.parameters()
    memory = {name: NetworkMemory(param_bytes=_tensor_bytes(net.parameters()))
              for name, net in step.networks.items()}
    memory[OUTSIDE] = NetworkMemory()

    def around(phase, run):
        if phase != "forward":
            run()
            if phase == "backward":
                _grads(step, memory)
            return
        counter = SavedByNetwork(boundaries, params)
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
            run()
        for owner, nbytes in counter.per_network().items():
            entry = memory.setdefault(owner, NetworkMemory())
            entry.activation_bytes = max(entry.activation_bytes, nbytes)

    boundaries.iteration(survey=True, around=around)
    for opt in step.optimizers:
        for p, state in opt.state.items():
            owner = boundaries.param_owner.get(id(p), OUTSIDE)
            memory[owner].optimizer_state_bytes += _tensor_bytes(state.values())
    return memory


def _grads(step, memory: dict[str, NetworkMemory]) -> None:
    for name, net in step.networks.items():
        grads = _tensor_bytes(p.grad for p in net.parameters() if p.grad is not None)
        memory[name].grad_bytes = max(memory[name].grad_bytes, grads)
