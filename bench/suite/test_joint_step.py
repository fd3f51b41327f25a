"""Each configuration's whole step, and each phase on its own, under pytest-benchmark.

Phases are timed with ``benchmark.pedantic``: a ``setup`` runs the earlier phases untimed
(``JointStep.prepare``), then one call of the phase is timed (``iterations=1``, since setup
must run before every call; in a scenario with several updates, the first update's phase), after explicit warm-up rounds. On CUDA the timed call ends by
synchronizing, so the time is the work, not its launch; the setup synchronizes too, so the
untimed work does not spill into the timed call. ``make bench-pytest`` passes
``--benchmark-disable-gc``, as the runner's timer pauses the collector while it samples.
After timing, each test checks that the work it timed was done, not only that it ran.
"""

from __future__ import annotations

import time

import pytest
import torch

from bench.axes import AXES, config_id
from bench.measure.devices import device_name
from bench.schema import OPTIMIZER_PHASE, STEP
from bench.suite import SUITE
from multinet import PHASES, build_step
from multinet.stacking import member_names


def _slowdown_s(config, scenario: str) -> float:
    option = config.getoption("--suite-slow-scenario")
    if not option:
        return 0.0
    name, _, ms = option.partition(":")
    return float(ms) / 1e3 if name == scenario else 0.0


def _learning(step, phase: str) -> list[str]:
    """The networks that the timed work must change: those a loss term reaches and an
    update trains; for a lone phase, only the first update's (a GAN's discriminator)."""
    reached = set().union(*step.scenario.expected_flow.values())
    updates = step.scenario.updates() if phase == STEP else step.scenario.updates()[:1]
    trains = set().union(*(u.trains or reached for u in updates))
    # a stack of networks (the `stacked` execution) learns where its members do
    return [name for name, net in step.networks.items()
            if set(member_names(name, net)) & reached & trains]


def _parameters(step) -> dict[str, list[torch.Tensor]]:
    return {n: [p.detach().clone() for p in net.parameters()] for n, net in step.networks.items()}


def _changed(before, step) -> list[str]:
    """The networks whose parameters moved since ``before``, every one of them: one that
    moves when it should not is as wrong as one that stays."""
    return [n for n, ps in before.items()
            if any(not torch.equal(a, b) for a, b in zip(ps, step.networks[n].parameters()))]


def _with_gradients(step, names) -> list[str]:
    return [n for n in names if any(p.grad is not None and bool(p.grad.ne(0).any())
                                    for p in step.networks[n].parameters())]


@pytest.mark.parametrize("phase", ["step", *PHASES])
def test_joint_step(benchmark, request, spec, phase):
    step = build_step(spec)
    device = torch.device(spec.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    delay = _slowdown_s(request.config, spec.scenario)
    learning = _learning(step, phase)
    before = {}

    work = step.run if phase == "step" else step.stage(phase)

    def target():
        work()
        if delay:
            time.sleep(delay)
        sync()

    def setup():
        if phase != "step":
            step.prepare(phase)
        if phase in (STEP, OPTIMIZER_PHASE):
            # untimed: the parameters as the timed call finds them
            before.update(_parameters(step))
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
    # What was timed happened, as of its last call: a finite loss from the forward,
    # gradients from the backward, moved parameters (and gradients let go) from the optimizer.
    assert step.last_loss is not None and bool(torch.isfinite(step.last_loss))
    if phase == PHASES[1]:  # backward
        assert _with_gradients(step, list(step.networks)) == learning
    if phase in (STEP, OPTIMIZER_PHASE):
        assert _changed(before, step) == learning
        assert _with_gradients(step, list(step.networks)) == []
