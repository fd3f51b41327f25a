"""The joint training step, split into phases that a timer can put boundaries between.

One iteration is ``forward`` (the networks and the loss), ``backward`` and ``optimizer``
(every optimizer's ``step``, then ``zero_grad(set_to_none=True)``). Zeroing at the end of
the optimizer phase means every iteration starts with no gradients, whichever phase a
timer begins with, and the cost of zeroing is counted with the optimizer that causes it.
``run`` executes the same three phases with no boundaries at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from multinet.errors import check_positive
from multinet.networks import size_preset
from multinet.optim import make_optimizers, resolve_impl
from multinet.scenarios import Batch, Networks, Scenario, get_scenario

PHASES = ("forward", "backward", "optimizer")


class JointStep:
    def __init__(self, scenario: Scenario, networks: Networks,
                 optimizers: list[torch.optim.Optimizer], batch: Batch):
        self.scenario = scenario
        self.networks = networks
        self.optimizers = optimizers
        self.batch = batch
        self.loss: torch.Tensor | None = None
        # The last loss, detached: kept so a caller can check it for NaN *after* timing,
        # since reading it inside the timed region would force a device sync.
        self.last_loss: torch.Tensor | None = None

    def forward(self) -> None:
        self.loss = self.scenario.loss(self.networks, self.batch)
        self.last_loss = self.loss.detach()

    def backward(self) -> None:
        self.loss.backward()
        self.loss = None  # free the graph's root now, not at the next forward

    def optimizer(self) -> None:
        for opt in self.optimizers:
            opt.step()
        self.zero_grad()

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)

    def prepare(self, phase: str) -> None:
        """Bring the step to where ``phase`` starts, by running the phases before it: a clean
        state (no graph, no gradients) for ``forward``, a fresh forward for ``backward``, a
        fresh forward and backward for ``optimizer``. For timing one phase on its own."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; valid: {', '.join(PHASES)}")
        self.loss = None
        self.zero_grad()
        for name, fn in self.phases():
            if name == phase:
                return
            fn()

    def phases(self) -> list[tuple[str, Callable[[], None]]]:
        return [("forward", self.forward), ("backward", self.backward),
                ("optimizer", self.optimizer)]

    def run(self) -> None:
        """One whole iteration with nothing between the phases."""
        self.forward()
        self.backward()
        self.optimizer()

    def parameters(self) -> list[torch.Tensor]:
        return [p for net in self.networks.values() for p in net.parameters()]


@dataclass(frozen=True)
class StepSpec:
    """Everything that decides what a step computes; the same spec builds the same step."""

    scenario: str
    batch_size: int
    device: str = "cpu"
    optimizer_setup: str = "separate"
    optimizer: str = "adam"
    optimizer_impl: str = "auto"
    size: str = "seed"
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive("batch_size", self.batch_size)


def build_step(spec: StepSpec) -> JointStep:
    """Networks, optimizers and batch for ``spec``, ready to run on ``spec.device``."""
    scenario = get_scenario(spec.scenario, size_preset(spec.size))
    networks = scenario.networks(spec.seed, spec.device)
    impl = resolve_impl(spec.optimizer_impl, spec.device)
    optimizers = make_optimizers(spec.optimizer_setup, networks, spec.optimizer, impl)
    batch = scenario.batch(spec.batch_size, spec.device, spec.seed)
    return JointStep(scenario, networks, optimizers, batch)
