"""Joint-training scenarios: which networks, what batch, and which loss terms.

A scenario is one small class registered by name. It builds its networks, makes a synthetic
batch from a seeded generator, and returns its loss as named terms; the total loss is their
sum. Naming the terms lets ``verify`` check, per term, which networks it reaches.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from multinet.errors import InvalidChoice, MultinetError, check_positive
from multinet.networks import ConvNet, LinearNet, NetworkSizes

Batch = dict[str, torch.Tensor]
Networks = dict[str, nn.Module]


class Scenario:
    """Base class of a scenario; subclasses set the class attributes and three methods."""

    name: ClassVar[str]
    description: ClassVar[str]
    # loss term -> the networks that term must send a non-zero gradient to
    expected_flow: ClassVar[Mapping[str, frozenset[str]]]

    def __init__(self, sizes: NetworkSizes | None = None):
        self.sizes = sizes or NetworkSizes()

    def build_networks(self) -> Networks:
        raise NotImplementedError

    def make_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        """The batch on the CPU, drawn from ``generator`` only."""
        raise NotImplementedError

    def loss_terms(self, networks: Networks, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def networks(self, seed: int = 0, device: torch.device | str = "cpu") -> Networks:
        """Networks initialised from ``seed`` on the CPU, then moved: the same weights on
        every device. The global RNG is forked, so building never disturbs the caller's."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            nets = self.build_networks()
        return {name: net.to(device) for name, net in nets.items()}

    def batch(self, batch_size: int, device: torch.device | str = "cpu", seed: int = 0) -> Batch:
        """A synthetic batch drawn on the CPU from a seeded generator and then copied, so the
        same seed gives the same values on every device."""
        check_positive("batch_size", batch_size)
        generator = torch.Generator().manual_seed(seed)
        return {k: v.to(device) for k, v in self.make_batch(batch_size, generator).items()}

    def loss(self, networks: Networks, batch: Batch) -> torch.Tensor:
        # reduce, not sum(): sum() would add a needless `0 + tensor` kernel to every step.
        return functools.reduce(operator.add, self.loss_terms(networks, batch).values())


SCENARIOS: dict[str, type[Scenario]] = {}


def register(cls: type[Scenario]) -> type[Scenario]:
    """Class decorator: make a scenario available by its ``name``."""
    if not getattr(cls, "name", None):
        raise MultinetError(f"{cls.__qualname__} needs a class attribute `name`")
    if cls.name in SCENARIOS:
        raise MultinetError(f"scenario {cls.name!r} is already registered")
    # Accept plain sets in a definition; store frozensets so the registry cannot drift.
    cls.expected_flow = {term: frozenset(nets) for term, nets in cls.expected_flow.items()}
    SCENARIOS[cls.name] = cls
    return cls


def get_scenario(name: str, sizes: NetworkSizes | None = None) -> Scenario:
    try:
        cls = SCENARIOS[name]
    except KeyError:
        raise InvalidChoice("scenario", name, SCENARIOS) from None
    return cls(sizes)


class LinearAndConv(Scenario):
    """The article's pair: a LinearNet ("linear") and a ConvNet ("conv")."""

    linear_outputs: ClassVar[str] = "classes"  # or "pixels", when it feeds the ConvNet

    def build_networks(self) -> Networks:
        s = self.sizes
        out = s.pixels if self.linear_outputs == "pixels" else s.classes
        return {
            "linear": LinearNet(s.features, s.linear_hidden, out),
            "conv": ConvNet(1, 1, hidden_channels=s.conv_hidden, image_size=s.image_size,
                            num_classes=s.classes),
        }

    def _features(self, batch_size: int, g: torch.Generator) -> torch.Tensor:
        return torch.randn(batch_size, self.sizes.features, generator=g)

    def _image(self, batch_size: int, g: torch.Generator) -> torch.Tensor:
        n = self.sizes.image_size
        return torch.randn(batch_size, 1, n, n, generator=g)

    def _target(self, batch_size: int, g: torch.Generator) -> torch.Tensor:
        return torch.randint(0, self.sizes.classes, (batch_size,), generator=g)


@register
class Sequential(LinearAndConv):
    name = "sequential"
    description = "LinearNet's output, reshaped to an image, feeds ConvNet; one loss"
    expected_flow = {"loss": frozenset({"linear", "conv"})}
    linear_outputs = "pixels"

    def make_batch(self, batch_size, generator):
        return {"x": self._features(batch_size, generator),
                "target": self._target(batch_size, generator)}

    def loss_terms(self, networks, batch):
        n = self.sizes.image_size
        # -1, not the article's hard-coded 1, so that any batch size works
        image = networks["linear"](batch["x"]).reshape(-1, 1, n, n)
        return {"loss": F.cross_entropy(networks["conv"](image), batch["target"])}


@register
class SharedInput(LinearAndConv):
    name = "shared_input"
    description = "each network sees its input, logits summed; one loss"
    expected_flow = {"loss": frozenset({"linear", "conv"})}

    def make_batch(self, batch_size, generator):
        return {"x": self._features(batch_size, generator),
                "image": self._image(batch_size, generator),
                "target": self._target(batch_size, generator)}

    def loss_terms(self, networks, batch):
        logits = networks["linear"](batch["x"]) + networks["conv"](batch["image"])
        return {"loss": F.cross_entropy(logits, batch["target"])}


@register
class SeparateLosses(LinearAndConv):
    name = "separate_losses"
    description = "each network has its own target and loss; total is their sum"
    expected_flow = {"loss_linear": frozenset({"linear"}), "loss_conv": frozenset({"conv"})}

    def make_batch(self, batch_size, generator):
        return {"x": self._features(batch_size, generator),
                "image": self._image(batch_size, generator),
                "target_linear": self._target(batch_size, generator),
                "target_conv": self._target(batch_size, generator)}

    def loss_terms(self, networks, batch):
        return {
            "loss_linear": F.cross_entropy(networks["linear"](batch["x"]), batch["target_linear"]),
            "loss_conv": F.cross_entropy(networks["conv"](batch["image"]), batch["target_conv"]),
        }
