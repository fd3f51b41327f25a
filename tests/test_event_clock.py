"""The CUDA event clock's bookkeeping, on a GPU simulated in the host: which stream each event
goes to, how many samples a block yields, and that a block synchronizes once.

This machine has no NVIDIA driver, so ``torch.cuda``'s events, streams and syncs are
replaced by a fake whose device clock moves only when a stage does its known work. The same
clock runs on a real GPU in ``tests/test_cuda.py`` and ``tests/test_phase_attribution.py``.
"""

import contextlib

import pytest
import torch

from bench.measure.clocks import CudaEventClock
from bench.schema import PHASES

# The simulated GPU time of each stage, distinct so that a mislabelled phase shows.
STAGE_MS = {"forward": 1.0, "backward": 2.0, "optimizer": 4.0}


class FakeGpu:
    def __init__(self):
        self.now_ms = 0.0
        self.records: list[object] = []  # the stream of every event recorded
        self.syncs = 0


class FakeStep:
    """A step of two updates (as a GAN's), each stage advancing the simulated clock."""

    def __init__(self, gpu: FakeGpu):
        self.gpu = gpu
        self.runs = 0

    def _stage(self, phase):
        def run():
            self.gpu.now_ms += STAGE_MS[phase]
        return run

    def phases(self):
        return [(p, self._stage(p)) for p in PHASES] * 2

    def run(self):
        self.runs += 1
        for _, fn in self.phases():
            fn()


@pytest.fixture
def gpu(monkeypatch):
    gpu = FakeGpu()

    class Event:
        def __init__(self, enable_timing=False):
            self.t = None

        def record(self, stream=None):
            gpu.records.append(stream)
            self.t = gpu.now_ms

        def synchronize(self):
            gpu.syncs += 1

        def elapsed_time(self, end):
            return end.t - self.t

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: "current")
    monkeypatch.setattr(torch.cuda, "default_stream", lambda device=None: "default")
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: gpu.__setattr__(
        "syncs", gpu.syncs + 1))
    return gpu


def test_a_phase_block_times_each_phase_on_the_step_s_stream(gpu):
    step = FakeStep(gpu)
    clock = CudaEventClock(torch.device("cuda:0"), step)
    host = clock.record_phases(step, 5)
    assert gpu.syncs == 0  # recording only enqueues
    device = clock.collect_phases(5)
    assert gpu.syncs == 1
    # two updates per iteration: each phase twice
    assert device == [[2.0, 4.0, 8.0]] * 5
    assert len(host) == 5
    assert gpu.records == ["current"] * 5 * 7  # a start and one event per stage


def test_a_step_block_yields_one_sample_per_iteration(gpu):
    step = FakeStep(gpu)
    clock = CudaEventClock(torch.device("cuda:0"), step)
    host = clock.record_steps(step, 7)
    assert gpu.syncs == 0
    assert clock.collect_steps(7) == [14.0] * 7
    assert gpu.syncs == 1
    assert step.runs == 7 and len(host) == 7
    assert gpu.records == ["current"] * 14


def test_a_full_block_uses_every_preallocated_row(gpu):
    from bench.measure.clocks import MAX_BLOCK
    step = FakeStep(gpu)
    clock = CudaEventClock(torch.device("cuda:0"), step)
    clock.record_steps(step, MAX_BLOCK)
    assert clock.collect_steps(MAX_BLOCK) == [14.0] * MAX_BLOCK
