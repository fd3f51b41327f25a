"""What every reference loop is and records, apart from the scenario it writes out.

A loop builds its networks (named as the harness names them, in the harness's order, each
from the global RNG as the reference code builds it), its optimizers (the reference code's,
over the networks it trains), and draws its batches from a generator. One ``iteration``
runs the reference code's updates and records, per update, its loss and the gradients
right after its backward: of the networks the update trains, and of the untrained ones (a
frozen teacher, target networks), which must have none.

A network is an ``nn.Module``, or a list of tensors where the reference code keeps a bare
tensor (SAC's ``log_alpha``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn as nn

# The autocast dtype of each precision, stated here rather than taken from the harness.
AUTOCAST = {"fp32": None, "bf16": torch.bfloat16}
ADAM = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}

Net = nn.Module | list[torch.Tensor]
Nets = dict[str, Net]
Batch = dict[str, torch.Tensor]
Gradients = dict[str, list[torch.Tensor | None]]
Forward = Callable[[], contextlib.AbstractContextManager]


def make_optimizer(name: str, params) -> torch.optim.Optimizer:
    """The optimizer ``name`` as documented, with the harness's stated learning rates
    (Adam's is the article's; SGD has momentum so that it, too, keeps state per parameter)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=0.001)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=0.001)
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01, momentum=0.9)
    raise KeyError(f"no reference for optimizer {name!r}")


def forward_context(device: str, precision: str) -> contextlib.AbstractContextManager:
    """Where a loss is computed: under autocast for a reduced precision, plainly for fp32."""
    dtype = AUTOCAST[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def parameters(net: Net) -> list[torch.Tensor]:
    return list(net.parameters()) if isinstance(net, nn.Module) else list(net)


def buffers(net: Net) -> list[torch.Tensor]:
    """Running statistics and the like: a batch norm's move with every forward in train mode."""
    return list(net.buffers()) if isinstance(net, nn.Module) else []


def moved(net: Net, device: str) -> Net:
    if isinstance(net, nn.Module):
        return net.to(device)
    return [t.detach().to(device).requires_grad_(t.requires_grad) for t in net]


@dataclass
class Record:
    """What one iteration did: per update, its loss and the gradients it left."""

    losses: list[torch.Tensor] = field(default_factory=list)
    gradients: list[Gradients] = field(default_factory=list)


def gradients(nets: Nets, names: Iterable[str]) -> Gradients:
    return {name: [None if p.grad is None else p.grad.detach().clone()
                   for p in parameters(nets[name])] for name in names}


class Loop:
    """A scenario with one loss: the article's loop, one backward and every optimizer."""

    # The harness's size names the loop is written at; the first is the one checked when
    # none is named.
    sizes: ClassVar[tuple[str, ...]] = ("seed",)
    # Networks no optimizer owns.
    untrained: ClassVar[frozenset[str]] = frozenset()
    # Why the loop is held to the harness only where the harness runs its very arithmetic
    # (bitwise: the CPU, loop or foreach), not within a tolerance; "" where it can be.
    bitwise_only: ClassVar[str] = ""
    # Precisions at which the loop cannot be compared with the harness, and why.
    unchecked_precisions: ClassVar[dict[str, str]] = {}

    def __init__(self, size: str | None = None):
        self.size = size or self.sizes[0]
        if self.size not in self.sizes:
            raise ValueError(f"the reference loop {type(self).__name__} is written at sizes "
                             f"{', '.join(self.sizes)}, not {self.size!r}")

    def networks(self, n_networks: int) -> Nets:
        raise NotImplementedError

    def optimizer(self, kind: str, params) -> torch.optim.Optimizer:
        """The optimizer ``kind`` over ``params`` with the reference code's hyperparameters."""
        return make_optimizer(kind, params)

    def optimizers(self, nets: Nets, kind: str) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per trained network, the article's way."""
        return {name: self.optimizer(kind, parameters(net)) for name, net in nets.items()
                if name not in self.untrained}

    def batch(self, batch_size: int, g: torch.Generator) -> Batch:
        raise NotImplementedError

    def loss(self, nets: Nets, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def record(self, record: Record, loss: torch.Tensor, nets: Nets, trains) -> None:
        """After an update's backward: its loss, the gradients of the networks it trains and
        of the untrained ones."""
        record.losses.append(loss.detach().clone())
        record.gradients.append(gradients(nets, [*trains, *sorted(self.untrained)]))

    def iteration(self, nets: Nets, optimizers: dict[str, torch.optim.Optimizer],
                  batch: Batch, forward: Forward) -> Record:
        for opt in optimizers.values():
            opt.zero_grad()
        with forward():
            loss = self.loss(nets, batch)
        loss.backward()
        record = Record()
        self.record(record, loss, nets, nets)
        for opt in optimizers.values():
            opt.step()
        return record
