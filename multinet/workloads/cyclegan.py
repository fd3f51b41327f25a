"""CycleGAN as its authors' repository trains it (junyanz/pytorch-CycleGAN-and-pix2pix,
``models/cycle_gan_model.py`` and ``models/networks.py``), with its default options.

Two ResNet generators (9 blocks, ngf=64, instance norm, reflection padding: 11,378,179
parameters each) and two 70x70 PatchGAN discriminators (3 layers, ndf=64: 2,764,737 each),
initialised N(0, 0.02). As the reference, one Adam holds both generators and one both
discriminators (lr 2e-4, beta1 0.5): here the two networks are ``generators`` and
``discriminators``, each a pair, so that ``separate`` is the reference's arrangement. One
iteration is the reference's ``optimize_parameters``: the generators' update on the GAN
(least squares), cycle (lambda 10) and identity (0.5) losses with the discriminators frozen,
then the discriminators' on real and detached fake images, each half-weighted. The history
buffer of fakes (``pool_size`` 50) is left out: it only chooses which fakes the
discriminators see, not how much work they do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from multinet.scenarios import Update, frozen, register
from multinet.workloads.base import Workload

LAMBDA_CYCLE = 10.0  # lambda_A = lambda_B
LAMBDA_IDENTITY = 0.5


@dataclass(frozen=True)
class CycleganSizes:
    image_size: int = 256
    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9


SIZES = {"tiny": CycleganSizes(image_size=32, ngf=4, ndf=4, n_blocks=2),
         "published": CycleganSizes(), "published-128": CycleganSizes(image_size=128)}


def norm(channels: int) -> nn.InstanceNorm2d:
    # the reference's `instance` norm: no affine parameters, no running statistics
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), norm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, ngf: int, n_blocks: int, channels: int = 3):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, ngf, 7, bias=True), norm(ngf),
                  nn.ReLU(True)]
        for i in range(2):  # downsampling
            mult = 2 ** i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                       norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for i in range(2):  # upsampling
            mult = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                          output_padding=1, bias=True),
                       norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, ndf: int, n_layers: int = 3, channels: int = 3):
        super().__init__()
        layers = [nn.Conv2d(channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=True),
                       norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=True),
                   norm(ndf * mult), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_normal(net: nn.Module) -> nn.Module:
    """The reference's ``init_weights(net, 'normal', 0.02)``: convolutions N(0, 0.02), zero
    bias (instance norm here has no parameters)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.0)
    return net


def gan_loss(prediction: torch.Tensor, real: bool) -> torch.Tensor:
    """The reference's default `lsgan`: least squares against 1 (real) or 0 (fake)."""
    target = torch.ones_like(prediction) if real else torch.zeros_like(prediction)
    return F.mse_loss(prediction, target)


@register
class Cyclegan(Workload):
    SIZES = SIZES
    name = "cyclegan"
    description = ("CycleGAN: two ResNet generators, two PatchGAN discriminators, an Adam "
                   "per pair; generators' update then discriminators'")
    several_updates = True
    expected_flow = {"loss_generators": frozenset({"generators"}),
                     "loss_discriminators": frozenset({"discriminators"})}
    optimizer_overrides: ClassVar = {"adam": {"lr": 2e-4, "betas": (0.5, 0.999)},
                                     "adamw": {"lr": 2e-4, "betas": (0.5, 0.999)}}

    def build_networks(self):
        s = self.dims
        generators = nn.ModuleDict({"G_A": init_normal(ResnetGenerator(s.ngf, s.n_blocks)),
                                    "G_B": init_normal(ResnetGenerator(s.ngf, s.n_blocks))})
        discriminators = nn.ModuleDict({"D_A": init_normal(NLayerDiscriminator(s.ndf)),
                                        "D_B": init_normal(NLayerDiscriminator(s.ndf))})
        return {"generators": generators, "discriminators": discriminators}

    def make_batch(self, batch_size, generator):
        n = self.dims.image_size
        # two unpaired domains, in the generators' range (-1, 1)
        return {"real_A": torch.rand(batch_size, 3, n, n, generator=generator) * 2 - 1,
                "real_B": torch.rand(batch_size, 3, n, n, generator=generator) * 2 - 1}

    @staticmethod
    def _generators_loss(networks, batch, scratch):
        g, d = networks["generators"], networks["discriminators"]
        real_A, real_B = batch["real_A"], batch["real_B"]
        fake_B = g["G_A"](real_A)
        rec_A = g["G_B"](fake_B)
        fake_A = g["G_B"](real_B)
        rec_B = g["G_A"](fake_A)
        scratch["fake_A"], scratch["fake_B"] = fake_A, fake_B
        idt_weight = LAMBDA_CYCLE * LAMBDA_IDENTITY
        loss_idt_A = F.l1_loss(g["G_A"](real_B), real_B) * idt_weight
        loss_idt_B = F.l1_loss(g["G_B"](real_A), real_A) * idt_weight
        loss_G_A = gan_loss(d["D_A"](fake_B), True)
        loss_G_B = gan_loss(d["D_B"](fake_A), True)
        loss_cycle_A = F.l1_loss(rec_A, real_A) * LAMBDA_CYCLE
        loss_cycle_B = F.l1_loss(rec_B, real_B) * LAMBDA_CYCLE
        return loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B

    @staticmethod
    def _discriminators_loss(networks, batch, scratch):
        d = networks["discriminators"]

        def basic(net, real, fake):
            return (gan_loss(net(real), True) + gan_loss(net(fake.detach()), False)) * 0.5

        return (basic(d["D_A"], batch["real_B"], scratch.pop("fake_B"))
                + basic(d["D_B"], batch["real_A"], scratch.pop("fake_A")))

    def loss_terms(self, networks, batch):
        scratch: dict = {}
        with frozen([networks["discriminators"]]):
            g_loss = self._generators_loss(networks, batch, scratch)
        return {"loss_generators": g_loss,
                "loss_discriminators": self._discriminators_loss(networks, batch, scratch)}

    def updates(self):
        return [Update(self._generators_loss, trains=frozenset({"generators"}),
                       frozen=frozenset({"discriminators"})),
                Update(self._discriminators_loss, trains=frozenset({"discriminators"}))]
