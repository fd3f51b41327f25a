"""The harness's timer held against ``torch.utils.benchmark``, on the very same step.

Both measure the same built step in one process, alternating round by round, so drift of
the machine hits both alike; the ratio is the median of the rounds' ratios, each taken
between two measurements seconds apart (the medians of the two sides, taken over rounds
minutes apart on a drifting host, can differ by 20% where every round agrees). ``blocked_autorange`` reports the median of block means (each
block runs the statement ``number`` times between two clock reads, synchronizing CUDA at
both ends); the harness reports the median of single iterations. On a steady step the two
agree; where they do not, the harness's figure is the one with its samples on disk.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import asdict, dataclass

import torch
import torch.utils.benchmark as tbench

from bench.axes import BATCH_SIZE, config_id
from bench.measure.timers import TimingOptions, time_step
from bench.measure.instrumentation import bounded_iterations
from bench.schema import STEP
from multinet.optim import resolve_impl
from multinet.step import StepSpec, build_step


@dataclass(frozen=True)
class CrossCheck:
    config: str
    threads: int
    rounds: int
    harness_step_ms: list[float]
    reference_step_ms: list[float]
    harness_phase_sum_ms: list[float]

    @property
    def harness_ms(self) -> float:
        return statistics.median(self.harness_step_ms)

    @property
    def reference_ms(self) -> float:
        return statistics.median(self.reference_step_ms)

    @property
    def ratio(self) -> float:
        """Harness over torch.utils.benchmark, round by round; 1.0 is perfect agreement."""
        return statistics.median(h / r for h, r in zip(self.harness_step_ms,
                                                       self.reference_step_ms))

    @property
    def phase_sum_ratio(self) -> float:
        """The median iteration of the pass with boundaries (its phases added up) over the
        step median, round by round: the boundaries' cost (bench/measure/instrumentation.py)."""
        return statistics.median(p / h for p, h in zip(self.harness_phase_sum_ms,
                                                       self.harness_step_ms))

    def as_dict(self) -> dict:
        return {**asdict(self), "harness_ms": self.harness_ms, "reference_ms": self.reference_ms,
                "ratio": self.ratio, "phase_sum_ratio": self.phase_sum_ratio}


def cross_check(spec: StepSpec, options: TimingOptions = TimingOptions(), rounds: int = 3,
                min_run_time: float = 1.0) -> CrossCheck:
    spec = dataclasses.replace(spec, optimizer_impl=resolve_impl(spec.optimizer_impl, spec.device))
    step = build_step(spec)
    threads = torch.get_num_threads()
    timer = tbench.Timer("step.run()", globals={"step": step}, num_threads=threads,
                         label=spec.scenario, sub_label=BATCH_SIZE.config_token(spec.batch_size))
    harness, reference, phase_sums = [], [], []
    for _ in range(rounds):
        timing = time_step(step, spec.device, options)
        harness.append(timing.summary(STEP).median)
        phase_sums.append(statistics.median(bounded_iterations(timing)))
        reference.append(timer.blocked_autorange(min_run_time=min_run_time).median * 1e3)
    return CrossCheck(config_id(spec), threads, rounds, harness, reference, phase_sums)
