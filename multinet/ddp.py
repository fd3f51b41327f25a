"""Data parallelism over several networks: DistributedDataParallel, wrapped two ways.

- ``joint``: one DDP owns every network (through ``JointModule``) and brackets each update's
  whole forward, so all gradients share one reducer and its buckets;
- ``per_network``: each network has its own DDP, with its own reducer and buckets, whose
  all-reduces start as that network's backward finishes.

Either way the gradients are averaged over the ranks during backward, so W ranks with a batch
of B each compute what one process computes on the W batches concatenated (every loss is a
mean over the batch). DDP needs an initialized process group (torchrun, then
``torch.distributed.init_process_group``).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from multinet.scenarios import Networks, Scenario

DDP_WRAPS = ("none", "joint", "per_network")


class JointModule(nn.Module):
    """Every network of a step in one module, so that one DDP owns all their parameters.

    Its forward runs a closure (an update's loss over the networks): DDP's work before and
    after a forward then brackets the whole computation. A closure, not the networks and the
    batch, because DDP rebuilds the containers it is given as arguments, and a GAN's first
    update leaves tensors for the second in a dict that must stay the same object.
    """

    def __init__(self, networks: Networks):
        super().__init__()
        self.networks = nn.ModuleDict(networks)

    def forward(self, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        return compute()


def leaves_a_network_out(scenario: Scenario, networks: Networks) -> bool:
    """Whether some update's backward sends no gradient to some network: `detached`'s
    LinearNet, or in a GAN each update's other network. An update reaches the networks it
    trains, or where it trains them all, those its loss terms must reach."""
    reached_by_loss = functools.reduce(operator.or_, scenario.expected_flow.values(),
                                       frozenset())
    return any(set(networks) - (update.trains or reached_by_loss)
               for update in scenario.updates())


@dataclass
class DataParallel:
    """What a step's forward goes through: ``modules`` are the networks it calls (each in its
    own DDP, or the plain networks under one joint DDP), ``joint`` the DDP that brackets it."""

    wrap: str
    modules: Networks
    joint: DistributedDataParallel | None = None

    def __call__(self, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        return self.joint(compute) if self.joint is not None else compute()


def wrap_networks(wrap: str, scenario: Scenario, networks: Networks,
                  device: torch.device | str) -> DataParallel:
    """``networks`` wrapped as ``wrap`` (`joint` or `per_network`) on this rank's device.

    Constructing a DDP is itself collective (rank 0's weights are broadcast), so every rank
    must wrap the same networks in the same order.
    """
    device = torch.device(device)
    device_ids = [device.index] if device.type == "cuda" else None
    if wrap == "joint":
        # One reducer expects a gradient for every parameter it owns in every backward; where
        # an update leaves a network without one, it must search each forward's graph for the
        # parameters that were not used, or it waits for them and the next forward fails.
        joint = DistributedDataParallel(
            JointModule(networks), device_ids=device_ids,
            find_unused_parameters=leaves_a_network_out(scenario, networks))
        return DataParallel(wrap, dict(networks), joint)
    if wrap == "per_network":
        # No search: an update reaches the whole of a network or none of it, and a DDP none
        # of whose parameters receive a gradient starts no all-reduce, on every rank alike.
        return DataParallel(wrap, {name: DistributedDataParallel(net, device_ids=device_ids)
                                   for name, net in networks.items()})
    raise ValueError(f"unknown DDP wrap {wrap!r}; valid: joint, per_network")
