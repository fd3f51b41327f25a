"""Known work planted in one network of a joint step, to see where the attribution pass puts
it: it must land in that network, in that phase, and nowhere else.

Two LinearNets, ``a`` and ``b``, see their own inputs; their logits are summed into one
loss. Work of a known length can be planted in ``a``'s forward (before its layers run), in
``a``'s backward (an autograd function inside ``a``'s forward whose backward does it), in
``a``'s update (a hook before its optimizer's step), or in the loss, outside both
networks. On the CPU the work is a sleep, which never ends early; on a GPU it is
``torch.cuda._sleep``, a kernel that spins for a number of cycles.

    python -m bench planted-work [--device cuda:0] [--work-ms 20] [--threads 1]

prints, for work planted in each place, the share of it that landed where it was planted,
and the most that any other network and phase gained. One torch thread by default: on a
shared machine, two threads wait on each other at every parallel region when another
process holds a core, and the tiny networks' times scatter by milliseconds.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.measure.attribution import Attribution, attribute_step
from bench.measure.boundaries import OUTSIDE
from multinet import JointStep, LinearNet, Scenario
from bench.schema import OPTIMIZER_PHASE
from multinet.optim import make_optimizers, optimizer_scopes

PLACES = ("forward", "backward", "update", "loss")
# where work planted in each place must land: (network, phase)
LANDS_IN = {"forward": ("a", "forward"), "backward": ("a", "backward"),
            "update": ("a", OPTIMIZER_PHASE), "loss": (OUTSIDE, "forward")}
ROUNDS = 3


class Work:
    """Something that takes ``ms`` milliseconds where it runs."""

    def __init__(self, ms: float, device: str = "cpu", cycles_per_ms: float = 0.0):
        self.ms, self.cuda = ms, torch.device(device).type == "cuda"
        self.cycles = int(ms * cycles_per_ms)

    def __call__(self) -> None:
        if self.ms <= 0:
            return
        if self.cuda:
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


class PlantedNet(nn.Module):
    """A LinearNet with work before its layers and work in its backward."""

    def __init__(self, forward_work: Work, backward_work: Work):
        super().__init__()
        self.net = LinearNet(10, 20, 10)
        self.forward_work, self.backward_work = forward_work, backward_work

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.forward_work()
        return WorkInBackward.apply(self.net(x), self.backward_work)


class Planted(Scenario):
    """Two networks on their own inputs, logits summed; work planted where asked."""

    name = "planted"
    description = "two LinearNets with known work planted in one of them"
    expected_flow = {"loss": {"a", "b"}}

    def __init__(self, works: dict[str, Work]):
        super().__init__()
        self.works = works

    def build_networks(self):
        none = Work(0)
        return {"a": PlantedNet(self.works["forward"], self.works["backward"]),
                "b": PlantedNet(none, none)}

    def make_batch(self, batch_size, generator):
        return {"x_a": torch.randn(batch_size, 10, generator=generator),
                "x_b": torch.randn(batch_size, 10, generator=generator),
                "target": torch.randint(0, 10, (batch_size,), generator=generator)}

    def loss_terms(self, networks, batch):
        self.works["loss"]()
        logits = networks["a"](batch["x_a"]) + networks["b"](batch["x_b"])
        return {"loss": F.cross_entropy(logits, batch["target"])}


def planted_step(place: str | None, work_ms: float, device: str = "cpu",
                 cycles_per_ms: float = 0.0, setup: str = "separate") -> JointStep:
    """The two-network step with ``work_ms`` of work in ``place`` (None: nowhere)."""
    works = {p: Work(work_ms if p == place else 0, device, cycles_per_ms) for p in PLACES}
    scenario = Planted(works)
    networks = scenario.networks(0, device)
    impl = "foreach" if torch.device(device).type == "cuda" else "loop"
    optimizers = make_optimizers(setup, networks, "adam", impl)
    # the optimizer holding `a`'s parameters (the first: `a` comes first)
    optimizers[0].register_step_pre_hook(lambda opt, args, kwargs: works["update"]())
    return JointStep(scenario, networks, optimizers, scenario.batch(8, device),
                     scopes=optimizer_scopes(setup, networks), device=device)


def attributed(place: str | None, work_ms: float, device: str = "cpu",
               cycles_per_ms: float = 0.0, rounds: int = ROUNDS) -> Attribution:
    step = planted_step(place, work_ms, device, cycles_per_ms)
    return attribute_step(step, torch.device(device), min_rounds=rounds, max_rounds=rounds,
                          budget_s=0)


def times(attribution: Attribution) -> dict[tuple[str, str], float]:
    return {(t.network, t.phase): t.median_ms for t in attribution.times}


def landed(work_ms: float, device: str = "cpu", cycles_per_ms: float = 0.0,
           places: tuple[str, ...] = PLACES,
           rounds: int = ROUNDS) -> dict[str, dict[tuple[str, str], float]]:
    """For work planted in each of ``places``: what each (network, phase) gained over the
    step with no work, as a share of the work; each a median of ``rounds`` rounds (more
    where other processes take the CPU away for milliseconds at a time)."""
    plain = times(attributed(None, work_ms, device, cycles_per_ms, rounds))
    out = {}
    for place in places:
        worked = times(attributed(place, work_ms, device, cycles_per_ms, rounds))
        out[place] = {key: (worked[key] - plain[key]) / work_ms for key in worked}
    return out


def cuda_cycles_per_ms(device: str) -> float:
    """How many ``torch.cuda._sleep`` cycles take a millisecond on ``device``."""
    cycles = 10_000_000
    torch.cuda._sleep(1000)  # the first launch loads the kernel
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(cycles)
    end.record()
    end.synchronize()
    return cycles / start.elapsed_time(end)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench planted-work",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work-ms", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cycles = cuda_cycles_per_ms(args.device) if args.device.startswith("cuda") else 0.0
    for place, shares in landed(args.work_ms, args.device, cycles).items():
        target = LANDS_IN[place]
        elsewhere = max(abs(v) for k, v in shares.items() if k != target)
        print(f"{args.work_ms:g} ms planted in {place}: {shares[target]:.1%} landed in "
              f"{target[0]}'s {target[1]}; at most {elsewhere:.1%} anywhere else")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
