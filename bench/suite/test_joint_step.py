"""Each configuration's whole step, and each phase on its own, under pytest-benchmark.

Phases are timed with ``benchmark.pedantic``: a ``setup`` runs the earlier phases untimed
(``JointStep.prepare``), then one call of the phase is timed (``iterations=1``, since setup
must run before every call; in a scenario with several updates, the first update's phase), after explicit warm-up rounds. On CUDA the timed call ends by
synchronizing, so the time is the work, not its launch; the setup synchronizes too, so the
untimed work does not spill into the timed call. ``make bench-pytest`` passes
``--benchmark-disable-gc``, as the runner's timer pauses the collector while it samples.
"""

from __future__ import annotations

import time

import pytest
import torch

from bench.axes import AXES, config_id
from bench.measure.devices import device_name
from bench.suite import SUITE
from multinet import PHASES, build_step


def _slowdown_s(config, scenario: str) -> float:
    option = config.getoption("--suite-slow-scenario")
    if not option:
        return 0.0
    name, _, ms = option.partition(":")
    return float(ms) / 1e3 if name == scenario else 0.0


@pytest.mark.parametrize("phase", ["step", *PHASES])
def test_joint_step(benchmark, request, spec, phase):
    step = build_step(spec)
    device = torch.device(spec.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    delay = _slowdown_s(request.config, spec.scenario)

    work = step.run if phase == "step" else step.stage(phase)

    def target():
        work()
        if delay:
            time.sleep(delay)
        sync()

    def setup():
        if phase != "step":
            step.prepare(phase)
        sync()

    benchmark.group = spec.scenario
    benchmark.extra_info.update({
        "suite": SUITE, "config_id": config_id(spec), "phase": phase,
        **{axis.name: getattr(spec, axis.name) for axis in AXES},
        "device_name": device_name(spec.device), "seed": spec.seed,
        "torch_version": torch.__version__, "threads": torch.get_num_threads()})
    benchmark.pedantic(target, setup=setup, iterations=1,
                       rounds=request.config.getoption("--suite-rounds"),
                       warmup_rounds=request.config.getoption("--suite-warmup-rounds"))
    # the step did real work: its last loss is finite
    assert step.last_loss is not None and bool(torch.isfinite(step.last_loss))
