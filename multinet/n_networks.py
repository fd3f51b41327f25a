"""Scenarios of N networks, N the sweep's ``n_networks``: a chain and an ensemble of the
article's LinearNet."""

from __future__ import annotations

import functools
import operator

import torch
import torch.nn.functional as F

from multinet.networks import LinearNet
from multinet.scenarios import Scenario, register


class NLinear(Scenario):
    """N LinearNets named net0..net{N-1}; N is the sweep's ``n_networks``."""

    min_networks = 2

    @property
    def names(self) -> list[str]:
        return [f"net{i}" for i in range(self.n_networks)]

    @property
    def expected_flow(self):
        return {"loss": frozenset(self.names)}

    def make_batch(self, batch_size, generator):
        return {"x": torch.randn(batch_size, self.sizes.features, generator=generator),
                "target": torch.randint(0, self.sizes.classes, (batch_size,),
                                        generator=generator)}


@register
class NChain(NLinear):
    name = "n_chain"
    description = "N LinearNets in a chain, each feeding the next; one loss"

    def build_networks(self):
        s = self.sizes
        return {name: LinearNet(s.features, s.linear_hidden,
                                s.classes if i == self.n_networks - 1 else s.features)
                for i, name in enumerate(self.names)}

    def loss_terms(self, networks, batch):
        x = batch["x"]
        for name in self.names:
            x = networks[name](x)
        return {"loss": F.cross_entropy(x, batch["target"])}


@register
class NEnsemble(NLinear):
    name = "n_ensemble"
    description = "N LinearNets on the same input, logits summed; one loss"

    def build_networks(self):
        s = self.sizes
        return {name: LinearNet(s.features, s.linear_hidden, s.classes) for name in self.names}

    def independent(self):
        return (("", tuple(self.names)),)

    def stackable(self):
        return self.independent()

    def loss_terms(self, networks, batch):
        # the logits summed one network after the other, however the networks ran
        outputs = self.execution.members(networks, self.names, batch["x"])
        return {"loss": F.cross_entropy(functools.reduce(operator.add, outputs),
                                        batch["target"])}
