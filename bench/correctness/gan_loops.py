"""DCGAN's and CycleGAN's training loops, each written the way its reference code writes
it: PyTorch examples' ``dcgan/main.py`` and junyanz CycleGAN's ``optimize_parameters`` (see
``workload_loops`` for what every workload's loop keeps of its reference code)."""

from __future__ import annotations

import itertools

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.correctness.base import ADAM, Loop, Record, make_optimizer
from bench.correctness.gan_networks import (NC, DcganDiscriminator, DcganGenerator, GANLoss,
                                            define_D, define_G, weights_init)


def image_batch(n: int, side: int, g: torch.Generator) -> torch.Tensor:
    """Images as a normalised dataset gives them to a generator's range: in [-1, 1]."""
    return torch.rand(n, NC, side, side, generator=g) * 2 - 1


class Dcgan(Loop):
    """dcgan/main.py's iteration. The discriminator is not frozen for the generator's update,
    as in main.py: the gradients it takes there are dropped by ``netD.zero_grad()`` before
    its next step (the harness freezes it instead; the generator's gradients are the same)."""

    sizes = ("tiny", "published")
    DIMS = {"tiny": {"nz": 8, "ngf": 4, "ndf": 4}, "published": {"nz": 100, "ngf": 64, "ndf": 64}}
    unchecked_precisions = {
        "bf16": "main.py's two backward passes add the discriminator's gradients of the real "
                "and the fake batch in fp32, the harness's one backward of their sum in bf16 "
                "(autocast casts each weight once per forward)"}
    real_label, fake_label = 1., 0.

    def networks(self, n_networks):
        d = self.DIMS[self.size]
        netG = DcganGenerator(d["nz"], d["ngf"])
        netG.apply(weights_init)
        netD = DcganDiscriminator(d["ndf"])
        netD.apply(weights_init)
        return {"generator": netG, "discriminator": netD}

    def optimizer(self, kind, params):
        if kind in ADAM:  # optim.Adam(netD.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
            return ADAM[kind](params, lr=0.0002, betas=(0.5, 0.999))
        return make_optimizer(kind, params)

    def batch(self, n, g):
        real = image_batch(n, 64, g)  # a batch of the dataset, then the loop's noise
        return {"real": real, "noise": torch.randn(n, self.DIMS[self.size]["nz"], 1, 1,
                                                   generator=g)}

    def iteration(self, nets, optimizers, batch, forward):
        netG, netD = nets["generator"], nets["discriminator"]
        optimizerD, optimizerG = optimizers["discriminator"], optimizers["generator"]
        criterion = F.binary_cross_entropy_with_logits  # nn.BCELoss() after the sigmoid
        record = Record()
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        # train with real
        netD.zero_grad()
        real_cpu = batch["real"]
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), self.real_label, dtype=real_cpu.dtype,
                           device=real_cpu.device)
        with forward():
            output = netD(real_cpu)
            errD_real = criterion(output, label)
        errD_real.backward()
        # train with fake
        noise = batch["noise"]
        with forward():
            fake = netG(noise)
        label.fill_(self.fake_label)
        with forward():
            output = netD(fake.detach())
            errD_fake = criterion(output, label)
        errD_fake.backward()
        errD = errD_real + errD_fake
        self.record(record, errD, nets, ["discriminator"])
        optimizerD.step()
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(self.real_label)  # fake labels are real for generator cost
        with forward():
            output = netD(fake)
            errG = criterion(output, label)
        errG.backward()
        self.record(record, errG, nets, ["generator"])
        optimizerG.step()
        return record


def set_requires_grad(nets, requires_grad=False):
    """CycleGAN's BaseModel.set_requires_grad."""
    for net in nets:
        for param in net.parameters():
            param.requires_grad = requires_grad


class Cyclegan(Loop):
    """cycle_gan_model.py's optimize_parameters, with the default options (lambda_A =
    lambda_B = 10, lambda_identity 0.5, lsgan). The history buffer of fakes is the
    reference's ``--pool_size 0``: the harness leaves it out (while it holds fewer than its
    50 images it hands back the fakes themselves)."""

    sizes = ("tiny", "published", "published-128")
    DIMS = {"tiny": {"side": 32, "ngf": 4, "ndf": 4, "n_blocks": 2},
            "published": {"side": 256, "ngf": 64, "ndf": 64, "n_blocks": 9},
            "published-128": {"side": 128, "ngf": 64, "ndf": 64, "n_blocks": 9}}
    lambda_A = lambda_B = 10.0
    lambda_idt = 0.5
    bitwise_only = ("a convolution followed by instance norm has a bias whose gradient is zero "
                    "but for rounding noise, which Adam turns into full-size steps")

    def networks(self, n_networks):
        d = self.DIMS[self.size]
        netG_A, netG_B = define_G(d["ngf"], d["n_blocks"]), define_G(d["ngf"], d["n_blocks"])
        netD_A, netD_B = define_D(d["ndf"]), define_D(d["ndf"])
        # the harness's two networks are the reference's two pairs, one optimizer's each
        return {"generators": nn.ModuleList([netG_A, netG_B]),
                "discriminators": nn.ModuleList([netD_A, netD_B])}

    def optimizer(self, kind, params):
        if kind in ADAM:  # torch.optim.Adam(..., lr=opt.lr, betas=(opt.beta1, 0.999))
            return ADAM[kind](params, lr=0.0002, betas=(0.5, 0.999))
        return make_optimizer(kind, params)

    def optimizers(self, nets, kind):
        netG_A, netG_B = nets["generators"]
        netD_A, netD_B = nets["discriminators"]
        return {"G": self.optimizer(kind, itertools.chain(netG_A.parameters(),
                                                          netG_B.parameters())),
                "D": self.optimizer(kind, itertools.chain(netD_A.parameters(),
                                                          netD_B.parameters()))}

    def batch(self, n, g):
        side = self.DIMS[self.size]["side"]
        real_A = image_batch(n, side, g)
        return {"real_A": real_A, "real_B": image_batch(n, side, g)}

    def iteration(self, nets, optimizers, batch, forward):
        netG_A, netG_B = nets["generators"]
        netD_A, netD_B = nets["discriminators"]
        optimizer_G, optimizer_D = optimizers["G"], optimizers["D"]
        criterionGAN, criterionCycle, criterionIdt = GANLoss(), nn.L1Loss(), nn.L1Loss()
        criterionGAN.to(batch["real_A"].device)
        real_A, real_B = batch["real_A"], batch["real_B"]
        record = Record()
        # one forward context over self.forward() and backward_G's losses: one update's
        with forward():
            # forward
            fake_B = netG_A(real_A)  # G_A(A)
            rec_A = netG_B(fake_B)  # G_B(G_A(A))
            fake_A = netG_B(real_B)  # G_B(B)
            rec_B = netG_A(fake_A)  # G_A(G_B(B))
            # G_A and G_B
            set_requires_grad([netD_A, netD_B], False)  # Ds require no gradients when optimizing Gs
            optimizer_G.zero_grad()  # set G_A and G_B's gradients to zero
            # backward_G
            idt_A = netG_A(real_B)
            loss_idt_A = criterionIdt(idt_A, real_B) * self.lambda_B * self.lambda_idt
            idt_B = netG_B(real_A)
            loss_idt_B = criterionIdt(idt_B, real_A) * self.lambda_A * self.lambda_idt
            loss_G_A = criterionGAN(netD_A(fake_B), True)
            loss_G_B = criterionGAN(netD_B(fake_A), True)
            loss_cycle_A = criterionCycle(rec_A, real_A) * self.lambda_A
            loss_cycle_B = criterionCycle(rec_B, real_B) * self.lambda_B
            loss_G = (loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A
                      + loss_idt_B)
        loss_G.backward()
        self.record(record, loss_G, nets, ["generators"])
        optimizer_G.step()  # update G_A and G_B's weights
        # D_A and D_B
        set_requires_grad([netD_A, netD_B], True)
        optimizer_D.zero_grad()  # set D_A and D_B's gradients to zero
        loss_D_A = self.backward_D_basic(criterionGAN, netD_A, real_B, fake_B, forward)
        loss_D_B = self.backward_D_basic(criterionGAN, netD_B, real_A, fake_A, forward)
        self.record(record, loss_D_A + loss_D_B, nets, ["discriminators"])
        optimizer_D.step()  # update D_A and D_B's weights
        return record

    @staticmethod
    def backward_D_basic(criterionGAN, netD, real, fake, forward):
        with forward():
            # Real
            pred_real = netD(real)
            loss_D_real = criterionGAN(pred_real, True)
            # Fake
            pred_fake = netD(fake.detach())
            loss_D_fake = criterionGAN(pred_fake, False)
            # Combined loss and calculate gradients
            loss_D = (loss_D_real + loss_D_fake) * 0.5
        loss_D.backward()
        return loss_D
