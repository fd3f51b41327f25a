"""Scenarios that fail on purpose, for the tests of how a sweep records failures.

Loaded with ``python -m bench --load tests/failing_scenarios.py ...`` in a subprocess, or with
``runpy.run_path`` inside a test that unregisters them afterwards. Every one is a LinearNet
on the article's features; they differ only in their loss.
"""

import resource
import weakref

import torch
import torch.distributed as dist
import torch.nn.functional as F

from multinet import LinearNet, Scenario, register

# From this batch size on, the hungry scenarios run out of memory.
OOM_FROM = 8
# A petabyte: beyond the address space of any machine, so the CPU allocator refuses it at
# once, whatever the memory of the machine running the tests.
PETABYTE = 2**50


class Tiny(Scenario):
    description = "LinearNet on the article's features"
    expected_flow = {"loss": {"net"}}
    # weak references to every batch made, so a test can tell whether the memory of a
    # failed configuration was let go
    batches: list = []

    def build_networks(self):
        s = self.sizes
        return {"net": LinearNet(s.features, s.linear_hidden, s.classes)}

    def make_batch(self, batch_size, generator):
        batch = {"x": torch.randn(batch_size, self.sizes.features, generator=generator),
                 "target": torch.randint(0, self.sizes.classes, (batch_size,),
                                         generator=generator)}
        Tiny.batches.append(weakref.ref(batch["x"]))
        return batch

    def loss_terms(self, networks, batch):
        return {"loss": F.cross_entropy(networks["net"](batch["x"]), batch["target"])}


@register
class CpuHungry(Tiny):
    name = "test_cpu_hungry"

    def loss_terms(self, networks, batch):
        if batch["x"].shape[0] >= OOM_FROM:
            torch.empty(PETABYTE, dtype=torch.uint8)  # a real allocation failure
        return super().loss_terms(networks, batch)


@register
class CudaHungry(Tiny):
    name = "test_cuda_hungry"

    def loss_terms(self, networks, batch):
        if batch["x"].shape[0] >= OOM_FROM:
            # what the CUDA caching allocator raises; constructible on a CPU-only build
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 PiB. "
                                         "GPU 0 has a total capacity of 79.19 GiB")
        return super().loss_terms(networks, batch)


def _address_space_mib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmSize:"))


@register
class VectorHungry(Tiny):
    """Runs out of memory the way C++ does inside torch: ``split`` reserves a std::vector of
    one tensor per piece, and under an address-space limit 1 GiB above what the process
    already maps, that reservation fails as std::bad_alloc (raised as a RuntimeError)."""
    name = "test_vector_hungry"

    def loss_terms(self, networks, batch):
        if batch["x"].shape[0] >= OOM_FROM:
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            limit = (_address_space_mib() + 1024) << 20
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            try:  # 400 million pieces: 3.2 GB of pointers, past the limit before any is made
                torch.ones(400_000_000, dtype=torch.int8).split(1)
            finally:
                resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        return super().loss_terms(networks, batch)


@register
class NanLoss(Tiny):
    name = "test_nan_loss"

    def loss_terms(self, networks, batch):
        return {"loss": super().loss_terms(networks, batch)["loss"] * float("nan")}


@register
class Raises(Tiny):
    name = "test_raises"

    def loss_terms(self, networks, batch):
        raise ValueError("shapes do not line up\nsecond line of the message")


@register
class RankFails(Tiny):
    """Under --distributed, rank 1 raises from batch size OOM_FROM on; every other rank, and
    any single process, runs it."""

    name = "test_rank_fails"

    def loss_terms(self, networks, batch):
        if batch["x"].shape[0] >= OOM_FROM and dist.is_initialized() and dist.get_rank() == 1:
            raise ValueError("rank 1 cannot go on")
        return super().loss_terms(networks, batch)


NAMES = ("test_cpu_hungry", "test_cuda_hungry", "test_vector_hungry", "test_nan_loss",
         "test_raises", "test_rank_fails")
