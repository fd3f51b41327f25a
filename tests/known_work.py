"""A joint step whose stages do work of known length, to see where a timer puts it.

On the CPU the work is a sleep: it takes its time whatever else the machine runs. On a GPU
it is ``torch.cuda._sleep``, a kernel that spins for a number of cycles, enqueued like any
other kernel. The forward sleeps in the loss, the backward in a custom autograd function's
backward, the optimizer in a hook that runs before each optimizer's step.
"""

import time

import torch
import torch.nn.functional as F

from multinet import JointStep, LinearNet, Scenario
from multinet.optim import make_optimizers


class Work:
    """Something that takes ``ms`` milliseconds where it runs."""

    def __init__(self, ms: float, device: str = "cpu", cycles_per_ms: float = 0.0):
        self.ms, self.device, self.cycles = ms, device, int(ms * cycles_per_ms)

    def __call__(self) -> None:
        if self.ms <= 0:
            return
        if torch.device(self.device).type == "cuda":
            torch.cuda._sleep(self.cycles)
        else:
            time.sleep(self.ms / 1e3)


class WorkInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, work):
        ctx.work = work
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        ctx.work()
        return grad, None


class KnownWork(Scenario):
    """The article's LinearNet on its features, with work added to each phase."""

    name = "known_work"
    description = "a LinearNet whose phases do work of known length"
    expected_flow = {"loss": {"net"}}

    def __init__(self, forward: Work, backward: Work):
        super().__init__()
        self.forward_work, self.backward_work = forward, backward

    def build_networks(self):
        s = self.sizes
        return {"net": LinearNet(s.features, s.linear_hidden, s.classes)}

    def make_batch(self, batch_size, generator):
        return {"x": torch.randn(batch_size, self.sizes.features, generator=generator),
                "target": torch.randint(0, self.sizes.classes, (batch_size,),
                                        generator=generator)}

    def loss_terms(self, networks, batch):
        self.forward_work()
        logits = WorkInBackward.apply(networks["net"](batch["x"]), self.backward_work)
        return {"loss": F.cross_entropy(logits, batch["target"])}


def known_work_step(forward_ms: float, backward_ms: float, optimizer_ms: float,
                    device: str = "cpu", cycles_per_ms: float = 0.0) -> JointStep:
    """A joint step whose forward, backward and optimizer stages each add the given time."""
    scenario = KnownWork(Work(forward_ms, device, cycles_per_ms),
                         Work(backward_ms, device, cycles_per_ms))
    networks = scenario.networks(0, device)
    optimizers = make_optimizers("single", networks, "adam", "foreach" if device != "cpu"
                                 else "loop")
    work = Work(optimizer_ms, device, cycles_per_ms)
    optimizers[0].register_step_pre_hook(lambda opt, args, kwargs: work())
    return JointStep(scenario, networks, optimizers, scenario.batch(8, device), device=device)


def cuda_cycles_per_ms(device: str) -> float:
    """How many ``torch.cuda._sleep`` cycles take a millisecond on ``device``, timed with
    events around a sleep long enough that launching it costs nothing in comparison."""
    cycles = 10_000_000
    torch.cuda._sleep(1000)  # the first launch loads the kernel
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(cycles)
    end.record()
    end.synchronize()
    return cycles / start.elapsed_time(end)
