"""Run under torchrun by tests/test_distributed.py: DDP against one process that sees every
rank's batch at once.

For each scenario and DDP wrap, rank 0 writes to the JSON file named on the command line
the largest difference between the gradients after the first update's forward and backward
under DDP and those of one process given the ranks' batches concatenated, and the same for
the parameters after one whole iteration (SGD; both updates of a GAN).
"""

import dataclasses
import gc
import json
import sys

import torch
import torch.distributed as dist

from multinet import StepSpec, build_step

SCENARIOS = ("sequential", "shared_input", "separate_losses", "detached", "gan",
             "shared_trunk", "n_chain")
BATCH = 4


def concatenated(spec: StepSpec, world_size: int):
    """One process's step over the batches ranks 0..W-1 draw (seed + rank)."""
    step = build_step(dataclasses.replace(spec, ddp_wrap="none"))
    batches = [step.scenario.batch(spec.batch_size, spec.device, spec.seed + rank)
               for rank in range(world_size)]
    step.batch = {key: torch.cat([b[key] for b in batches]) for key in batches[0]}
    return step


def gradients(step) -> dict[str, torch.Tensor]:
    return {f"{net}.{name}": p.grad.clone() for net, module in step.networks.items()
            for name, p in module.named_parameters() if p.grad is not None}


def parameters(step) -> dict[str, torch.Tensor]:
    return {f"{net}.{name}": p.detach().clone() for net, module in step.networks.items()
            for name, p in module.named_parameters()}


def largest_difference(a: dict, b: dict) -> float:
    if set(a) != set(b):
        return float("inf")  # a gradient present on one side only
    return max((float((a[k] - b[k]).abs().max()) for k in a), default=0.0)


def first_update(step) -> None:
    for phase, fn in step.phases()[:2]:  # forward, backward
        fn()


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    report = {}
    for scenario in SCENARIOS:
        for wrap in ("joint", "per_network"):
            spec = StepSpec(scenario, BATCH, "cpu", "separate", "sgd", "loop", ddp_wrap=wrap)
            ddp = build_step(spec)
            first_update(ddp)
            ddp_grads = gradients(ddp)
            ddp = build_step(spec)
            ddp.run()
            ddp_params = parameters(ddp)
            if rank == 0:
                alone = concatenated(spec, world)
                first_update(alone)
                grads = largest_difference(ddp_grads, gradients(alone))
                alone = concatenated(spec, world)
                alone.run()
                report[f"{scenario}/{wrap}"] = {
                    "gradients": grads, "parameters": largest_difference(
                        ddp_params, parameters(alone)), "with_gradient": len(ddp_grads)}
    if rank == 0:
        with open(out, "w") as f:
            json.dump(report, f)
    # Rank 0 does more work than the others. A rank that tears down its process group and
    # exits while a DDP reducer (and its gloo work) still lives can abort at interpreter exit
    # ("terminate called without an active exception"): drop the DDP modules, then leave
    # together.
    del ddp
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
