"""DCGAN at 64x64, as the PyTorch examples repository trains it (examples/dcgan/main.py).

The generator and discriminator are the reference's, layer for layer (nz=100, ngf=ndf=64:
3,576,704 and 2,765,568 parameters), initialised by its ``weights_init``. One iteration is
the reference's: the discriminator's update on a real batch and the detached fake one, then
the generator's through the just-updated discriminator, each network with its own Adam
(lr 2e-4, beta1 0.5). Two departures, both leaving the gradients that step the weights
unchanged: the discriminator's final sigmoid is folded into the loss
(``binary_cross_entropy_with_logits``, which autocast allows where ``BCELoss`` is refused),
and the discriminator is frozen during the generator's update, so its weights take no
gradient there (the reference computes those and throws them away at the next
``zero_grad``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from multinet.scenarios import Update, frozen, register
from multinet.workloads.base import Workload


@dataclass(frozen=True)
class DcganSizes:
    nz: int = 100  # latent vector
    ngf: int = 64  # generator feature maps
    ndf: int = 64  # discriminator feature maps
    nc: int = 3  # image channels; the image is 64x64, as the architecture fixes


SIZES = {"tiny": DcganSizes(nz=8, ngf=4, ndf=4), "published": DcganSizes()}


def weights_init(m: nn.Module) -> None:
    """The reference's: convolutions N(0, 0.02), batch norms N(1, 0.02) with zero bias."""
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, s: DcganSizes):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(s.nz, s.ngf * 8, 4, 1, 0, bias=False),  # 4x4
            nn.BatchNorm2d(s.ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(s.ngf * 8, s.ngf * 4, 4, 2, 1, bias=False),  # 8x8
            nn.BatchNorm2d(s.ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(s.ngf * 4, s.ngf * 2, 4, 2, 1, bias=False),  # 16x16
            nn.BatchNorm2d(s.ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(s.ngf * 2, s.ngf, 4, 2, 1, bias=False),  # 32x32
            nn.BatchNorm2d(s.ngf), nn.ReLU(True),
            nn.ConvTranspose2d(s.ngf, s.nc, 4, 2, 1, bias=False),  # 64x64
            nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class Discriminator(nn.Module):
    def __init__(self, s: DcganSizes):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(s.nc, s.ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(s.ndf, s.ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(s.ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(s.ndf * 2, s.ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(s.ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(s.ndf * 4, s.ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(s.ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(s.ndf * 8, 1, 4, 1, 0, bias=False))  # a logit; the sigmoid is the loss's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


@register
class Dcgan(Workload):
    SIZES = SIZES
    name = "dcgan"
    description = ("DCGAN 64x64: discriminator's update then generator's, an Adam each "
                   "(lr 2e-4, beta1 0.5)")
    several_updates = True
    expected_flow = {"loss_discriminator": frozenset({"discriminator"}),
                     "loss_generator": frozenset({"generator"})}
    optimizer_overrides: ClassVar = {"adam": {"lr": 2e-4, "betas": (0.5, 0.999)},
                                     "adamw": {"lr": 2e-4, "betas": (0.5, 0.999)}}

    def build_networks(self):
        generator = Generator(self.dims)
        generator.apply(weights_init)
        discriminator = Discriminator(self.dims)
        discriminator.apply(weights_init)
        return {"generator": generator, "discriminator": discriminator}

    def make_batch(self, batch_size, generator):
        s = self.dims
        # real images in the generator's range, as a normalised dataset gives them
        real = torch.rand(batch_size, s.nc, 64, 64, generator=generator) * 2 - 1
        return {"noise": torch.randn(batch_size, s.nz, 1, 1, generator=generator),
                "real": real}

    def _discriminator_loss(self, networks, batch, fake):
        d = networks["discriminator"]
        return bce(d(batch["real"]), True) + bce(d(fake.detach()), False)

    def loss_terms(self, networks, batch):
        fake = networks["generator"](batch["noise"])
        d_loss = self._discriminator_loss(networks, batch, fake)
        with frozen([networks["discriminator"]]):
            g_loss = bce(networks["discriminator"](fake), True)
        return {"loss_discriminator": d_loss, "loss_generator": g_loss}

    def updates(self):
        def discriminator(networks, batch, scratch):
            scratch["fake"] = networks["generator"](batch["noise"])
            return self._discriminator_loss(networks, batch, scratch["fake"])

        def generator(networks, batch, scratch):
            return bce(networks["discriminator"](scratch.pop("fake")), True)

        return [Update(discriminator, trains=frozenset({"discriminator"})),
                Update(generator, trains=frozenset({"generator"}),
                       frozen=frozenset({"discriminator"}))]
