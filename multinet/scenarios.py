"""Joint-training scenarios: which networks, what batch, and which loss terms.

A scenario is one small class registered by name. It builds its networks, makes a synthetic
batch from a seeded generator, and returns its loss as named terms; the total loss is their
sum. Naming the terms lets ``verify`` check, per term, which networks it reaches.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from multinet.errors import InvalidChoice, MultinetError, check_positive
from multinet.execution import Execution
from multinet.networks import SIZE_PRESETS, ConvNet, LinearNet, NetworkSizes, size_preset

Batch = dict[str, torch.Tensor]
Networks = dict[str, nn.Module]
# Networks named together: the path of their container ("" for the scenario's networks, else
# a module's, as SAC's `critic.q`) and their names in it.
Group = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class Update:
    """One backward pass and optimizer step of an iteration.

    ``loss(networks, batch, scratch)`` computes the update's loss; ``scratch`` carries what
    one update leaves for the next within an iteration. ``trains`` names the networks whose
    optimizers step after it (None: all); ``frozen`` names networks that take no gradient
    during its forward.
    """

    loss: Callable[[Networks, Batch, dict], torch.Tensor]
    trains: frozenset[str] | None = None
    frozen: frozenset[str] = frozenset()


class Scenario:
    """Base class of a scenario; subclasses set the class attributes and three methods."""

    name: ClassVar[str]
    description: ClassVar[str]
    # loss term -> the networks that term must send a non-zero gradient to
    expected_flow: ClassVar[Mapping[str, frozenset[str]]]

    # Scenarios whose number of networks is a parameter (n_networks) set this, with the
    # smallest number that makes sense.
    min_networks: ClassVar[int | None] = None
    # Scenarios whose iteration is several updates (a GAN) set this.
    several_updates: ClassVar[bool] = False
    # Networks no optimizer owns: a frozen teacher, target networks that follow another by
    # averaging. They are built, moved and compared like the others, but never trained.
    untrained: ClassVar[frozenset[str]] = frozenset()
    # Scenarios with a ``target_update`` (the ``target`` phase) set this.
    has_target_update: ClassVar[bool] = False
    # Per optimizer kind, hyperparameters of the scenario's reference code that replace the
    # harness's defaults (DCGAN's Adam has lr 2e-4 and beta1 0.5).
    optimizer_overrides: ClassVar[Mapping[str, Mapping]] = {}
    # How the networks run (multinet/execution.py): one after the other unless a step says
    # otherwise (``use``).
    execution: Execution = Execution()

    @classmethod
    def size_names(cls) -> tuple[str, ...]:
        """The size presets this scenario can be built at."""
        return tuple(SIZE_PRESETS)

    @classmethod
    def check_size(cls) -> str:
        """The size that checks of the computation use: the smallest (the article's own for
        its networks, ``tiny`` for the real workloads)."""
        return cls.size_names()[0]

    @classmethod
    def at_size(cls, size: str, n_networks: int = 2) -> Scenario:
        """The scenario at the size preset named ``size``."""
        return cls(size_preset(size), n_networks)

    def __init__(self, sizes: NetworkSizes | None = None, n_networks: int = 2):
        self.sizes = sizes or NetworkSizes()
        check_positive("n_networks", n_networks)
        if self.min_networks is not None and n_networks < self.min_networks:
            raise MultinetError(f"scenario {self.name!r} needs n_networks >= "
                                f"{self.min_networks}, got {n_networks}")
        self.n_networks = n_networks

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

    def updates(self) -> list[Update]:
        """The updates of one iteration: by default one, on the sum of the loss terms."""
        return [Update(lambda networks, batch, scratch: self.loss(networks, batch))]

    def target_update(self, networks: Networks) -> None:
        """What moves untrained networks after the updates (SAC's target critics follow the
        critics by Polyak averaging): the ``target`` phase."""
        raise NotImplementedError

    def independent(self) -> tuple[Group, ...]:
        """Networks whose forwards within an update do not depend on each other: the
        ``streams`` execution runs each of a group on a CUDA stream of its own."""
        return ()

    def stackable(self) -> tuple[Group, ...]:
        """Networks of one architecture that take the same inputs: the ``stacked`` execution
        runs each group as one."""
        return ()

    def use(self, execution: Execution, networks: Networks) -> None:
        """Run ``networks`` under ``execution`` from now on (a scenario whose networks call
        their own parts through it, SAC's critics, hands it to them too)."""
        self.execution = execution

    def trained(self, networks: Networks) -> Networks:
        """The networks that optimizers own, in the scenario's order."""
        return {name: net for name, net in networks.items() if name not in self.untrained}


@contextlib.contextmanager
def frozen(networks: list[nn.Module]):
    """Parameters of ``networks`` take no gradient inside the block (a GAN's generator
    update must not train the discriminator it backpropagates through)."""
    params = [p for net in networks for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


SCENARIOS: dict[str, type[Scenario]] = {}


def register(cls: type[Scenario]) -> type[Scenario]:
    """Class decorator: make a scenario available by its ``name``."""
    if not getattr(cls, "name", None):
        raise MultinetError(f"{cls.__qualname__} needs a class attribute `name`")
    if cls.name in SCENARIOS:
        raise MultinetError(f"scenario {cls.name!r} is already registered")
    # Accept plain sets in a definition; store frozensets so the registry cannot drift.
    # (A scenario whose networks depend on n_networks computes its flow in a property.)
    if not isinstance(inspect.getattr_static(cls, "expected_flow"), property):
        cls.expected_flow = {term: frozenset(nets) for term, nets in cls.expected_flow.items()}
    SCENARIOS[cls.name] = cls
    return cls


def get_scenario(name: str, sizes: NetworkSizes | None = None, n_networks: int = 2) -> Scenario:
    try:
        cls = SCENARIOS[name]
    except KeyError:
        raise InvalidChoice("scenario", name, SCENARIOS) from None
    return cls(sizes, n_networks)


def size_problem(name: str, size: str) -> str | None:
    """Why scenario ``name`` has no size ``size``, or None when it has."""
    cls = SCENARIOS[name]
    if size in cls.size_names():
        return None
    return (f"scenario {name!r} has sizes {', '.join(cls.size_names())}, not {size!r}")


def build_scenario(name: str, size: str = "seed", n_networks: int = 2) -> Scenario:
    """Scenario ``name`` at its size preset ``size`` (each scenario has its own presets)."""
    if name not in SCENARIOS:
        raise InvalidChoice("scenario", name, SCENARIOS)
    problem = size_problem(name, size)
    if problem:
        raise MultinetError(problem)
    return SCENARIOS[name].at_size(size, n_networks)


def size_names() -> tuple[str, ...]:
    """Every size preset some scenario has, the article's first."""
    return tuple(dict.fromkeys(n for cls in SCENARIOS.values() for n in cls.size_names()))


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

    def independent(self):
        return (("", ("linear", "conv")),)

    def loss_terms(self, networks, batch):
        linear, conv = self.execution.each(networks, {"linear": (batch["x"],),
                                                      "conv": (batch["image"],)})
        return {"loss": F.cross_entropy(linear + conv, batch["target"])}


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

    def independent(self):
        return (("", ("linear", "conv")),)

    def loss_terms(self, networks, batch):
        linear, conv = self.execution.each(networks, {"linear": (batch["x"],),
                                                      "conv": (batch["image"],)})
        return {"loss_linear": F.cross_entropy(linear, batch["target_linear"]),
                "loss_conv": F.cross_entropy(conv, batch["target_conv"])}


@register
class Detached(Sequential):
    name = "detached"
    description = ("teacher-student: LinearNet's output is detached before ConvNet sees it, "
                   "so only ConvNet learns")
    expected_flow = {"loss": frozenset({"conv"})}

    def loss_terms(self, networks, batch):
        n = self.sizes.image_size
        image = networks["linear"](batch["x"]).detach().reshape(-1, 1, n, n)
        return {"loss": F.cross_entropy(networks["conv"](image), batch["target"])}


@register
class Gan(Scenario):
    """A generator (LinearNet: noise -> image) and a discriminator (ConvNet: image -> one
    logit), updated in a GAN's alternating order: the discriminator on real and detached
    fake images, then the generator through the just-updated, frozen discriminator."""

    name = "gan"
    description = "generator and discriminator, two losses, two backward passes and steps"
    several_updates = True
    expected_flow = {"loss_discriminator": frozenset({"discriminator"}),
                     "loss_generator": frozenset({"generator"})}

    def build_networks(self):
        s = self.sizes
        return {"generator": LinearNet(s.features, s.linear_hidden, s.pixels),
                "discriminator": ConvNet(1, 1, hidden_channels=s.conv_hidden,
                                         image_size=s.image_size, num_classes=1)}

    def make_batch(self, batch_size, generator):
        n = self.sizes.image_size
        return {"noise": torch.randn(batch_size, self.sizes.features, generator=generator),
                "real": torch.randn(batch_size, 1, n, n, generator=generator)}

    def _fake(self, networks, batch):
        n = self.sizes.image_size
        return networks["generator"](batch["noise"]).reshape(-1, 1, n, n)

    @staticmethod
    def _bce(logits, real: bool):
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)

    def _discriminator_loss(self, networks, batch, fake):
        d = networks["discriminator"]
        return self._bce(d(batch["real"]), True) + self._bce(d(fake.detach()), False)

    def _generator_loss(self, networks, fake):
        return self._bce(networks["discriminator"](fake), True)

    def loss_terms(self, networks, batch):
        fake = self._fake(networks, batch)
        d_loss = self._discriminator_loss(networks, batch, fake)
        with frozen([networks["discriminator"]]):
            g_loss = self._generator_loss(networks, fake)
        return {"loss_discriminator": d_loss, "loss_generator": g_loss}

    def updates(self):
        def discriminator(networks, batch, scratch):
            scratch["fake"] = self._fake(networks, batch)
            return self._discriminator_loss(networks, batch, scratch["fake"])

        def generator(networks, batch, scratch):
            return self._generator_loss(networks, scratch.pop("fake"))

        return [Update(discriminator, trains=frozenset({"discriminator"})),
                Update(generator, trains=frozenset({"generator"}),
                       frozen=frozenset({"discriminator"}))]


@register
class SharedTrunk(Scenario):
    name = "shared_trunk"
    description = "multi-task: one trunk, two heads, two task losses summed"
    expected_flow = {"loss_a": frozenset({"trunk", "head_a"}),
                     "loss_b": frozenset({"trunk", "head_b"})}

    def build_networks(self):
        s = self.sizes
        return {"trunk": LinearNet(s.features, s.linear_hidden, s.linear_hidden),
                "head_a": nn.Linear(s.linear_hidden, s.classes),
                "head_b": nn.Linear(s.linear_hidden, s.classes)}

    def make_batch(self, batch_size, generator):
        c = self.sizes.classes
        return {"x": torch.randn(batch_size, self.sizes.features, generator=generator),
                "target_a": torch.randint(0, c, (batch_size,), generator=generator),
                "target_b": torch.randint(0, c, (batch_size,), generator=generator)}

    def independent(self):
        return (("", ("head_a", "head_b")),)

    def loss_terms(self, networks, batch):
        h = torch.relu(networks["trunk"](batch["x"]))
        a, b = self.execution.each(networks, {"head_a": (h,), "head_b": (h,)})
        return {"loss_a": F.cross_entropy(a, batch["target_a"]),
                "loss_b": F.cross_entropy(b, batch["target_b"])}
