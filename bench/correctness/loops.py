"""Each scenario's training loop, written out the way its reference code writes it: the
article's own for the article's scenarios, and ``workload_loops`` for the real workloads.

For the article's scenarios: one optimizer per network, ``torch.optim`` with its documented
defaults; every iteration zeroes the gradients, computes the loss, calls ``loss.backward()``
and steps. A GAN's iteration is the DCGAN reference's: the discriminator's update on real and
detached fake images, then the generator's through the updated discriminator. The sizes are
the article's (the harness's ``seed`` size). Networks are built in the order the scenario
names them, from ``torch.manual_seed(seed)``, as the harness documents.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.correctness.base import Loop, Record
from bench.correctness.networks import ConvNet, LinearNet
from bench.correctness.workload_loops import WORKLOAD_LOOPS

FEATURES, HIDDEN, CLASSES, SIDE = 10, 20, 10, 32  # the article's sizes


def _features(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(n, FEATURES, generator=g)


def _image(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(n, 1, SIDE, SIDE, generator=g)


def _labels(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randint(0, CLASSES, (n,), generator=g)


class Sequential(Loop):
    def networks(self, n_networks):
        return {"linear": LinearNet(FEATURES, HIDDEN, SIDE * SIDE), "conv": ConvNet(1, 1)}

    def batch(self, n, g):
        return {"x": _features(n, g), "target": _labels(n, g)}

    def loss(self, nets, batch):
        image = nets["linear"](batch["x"]).reshape(-1, 1, SIDE, SIDE)
        return F.cross_entropy(nets["conv"](image), batch["target"])


class Detached(Sequential):
    def loss(self, nets, batch):
        image = nets["linear"](batch["x"]).detach().reshape(-1, 1, SIDE, SIDE)
        return F.cross_entropy(nets["conv"](image), batch["target"])


class SharedInput(Loop):
    def networks(self, n_networks):
        return {"linear": LinearNet(FEATURES, HIDDEN, CLASSES), "conv": ConvNet(1, 1)}

    def batch(self, n, g):
        return {"x": _features(n, g), "image": _image(n, g), "target": _labels(n, g)}

    def loss(self, nets, batch):
        logits = nets["linear"](batch["x"]) + nets["conv"](batch["image"])
        return F.cross_entropy(logits, batch["target"])


class SeparateLosses(SharedInput):
    def batch(self, n, g):
        return {"x": _features(n, g), "image": _image(n, g), "target_linear": _labels(n, g),
                "target_conv": _labels(n, g)}

    def loss(self, nets, batch):
        loss_linear = F.cross_entropy(nets["linear"](batch["x"]), batch["target_linear"])
        loss_conv = F.cross_entropy(nets["conv"](batch["image"]), batch["target_conv"])
        return loss_linear + loss_conv


class SharedTrunk(Loop):
    def networks(self, n_networks):
        return {"trunk": LinearNet(FEATURES, HIDDEN, HIDDEN),
                "head_a": nn.Linear(HIDDEN, CLASSES), "head_b": nn.Linear(HIDDEN, CLASSES)}

    def batch(self, n, g):
        return {"x": _features(n, g), "target_a": _labels(n, g), "target_b": _labels(n, g)}

    def loss(self, nets, batch):
        h = torch.relu(nets["trunk"](batch["x"]))
        return (F.cross_entropy(nets["head_a"](h), batch["target_a"])
                + F.cross_entropy(nets["head_b"](h), batch["target_b"]))


class NChain(Loop):
    def networks(self, n_networks):
        return {f"net{i}": LinearNet(FEATURES, HIDDEN, FEATURES if i < n_networks - 1
                                     else CLASSES) for i in range(n_networks)}

    def batch(self, n, g):
        return {"x": _features(n, g), "target": _labels(n, g)}

    def loss(self, nets, batch):
        x = batch["x"]
        for net in nets.values():
            x = net(x)
        return F.cross_entropy(x, batch["target"])


class NEnsemble(NChain):
    def networks(self, n_networks):
        return {f"net{i}": LinearNet(FEATURES, HIDDEN, CLASSES) for i in range(n_networks)}

    def loss(self, nets, batch):
        first, *others = nets.values()
        logits = first(batch["x"])
        for net in others:
            logits = logits + net(batch["x"])
        return F.cross_entropy(logits, batch["target"])


class Gan(Loop):
    """The DCGAN reference's order: the discriminator on real and detached fake images,
    then the generator through the just-updated discriminator. The generator's backward also
    fills the discriminator's gradients; its ``zero_grad`` before its next update drops them."""

    def networks(self, n_networks):
        return {"generator": LinearNet(FEATURES, HIDDEN, SIDE * SIDE),
                "discriminator": ConvNet(1, 1, num_classes=1)}

    def batch(self, n, g):
        return {"noise": _features(n, g), "real": _image(n, g)}

    def iteration(self, nets, optimizers, batch, forward):
        gen, disc = nets["generator"], nets["discriminator"]
        record = Record()
        optimizers["discriminator"].zero_grad()
        with forward():
            fake = gen(batch["noise"]).reshape(-1, 1, SIDE, SIDE)
            real_logits = disc(batch["real"])
            fake_logits = disc(fake.detach())
            loss_d = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(fake_logits,
                                                           torch.zeros_like(fake_logits)))
        loss_d.backward()
        self.record(record, loss_d, nets, ["discriminator"])
        optimizers["discriminator"].step()

        optimizers["generator"].zero_grad()
        with forward():
            logits = disc(fake)
            loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        loss_g.backward()
        self.record(record, loss_g, nets, ["generator"])
        optimizers["generator"].step()
        return record


LOOPS: dict[str, type[Loop]] = {
    "sequential": Sequential, "shared_input": SharedInput, "separate_losses": SeparateLosses,
    "detached": Detached, "gan": Gan, "shared_trunk": SharedTrunk, "n_chain": NChain,
    "n_ensemble": NEnsemble, **WORKLOAD_LOOPS,
}
