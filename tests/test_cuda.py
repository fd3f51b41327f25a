"""CUDA paths on a real GPU; skipped, with the reason, where there is none."""

import time

import pytest
import torch

from bench.measure.nvml import find_handle, nvml_session, read_once
from bench.measure.configuration import NvmlHandles, measure_configuration
from bench.measure.clocks import CudaEventClock
from bench.measure.timers import TimingOptions, time_step
from bench.schema import STEP
from multinet import SCENARIOS, StepSpec, build_step, gradient_flow, setup_equivalence

pytestmark = pytest.mark.gpu
SPEC = StepSpec("sequential", 64, "cuda:0", "separate", "adam", "foreach")
QUICK = TimingOptions(warmup_iters=3, warmup_s=0, min_samples=20, budget_s=0.5)


def test_recording_a_block_never_synchronizes():
    step = build_step(SPEC)
    clock = CudaEventClock(torch.device("cuda:0"), step)
    step.run()
    torch.cuda.synchronize()
    # The two passes share the preallocated events, so each is collected before the other
    # records. Under "error", any synchronizing call raises.
    for record, collect in ((clock.record_phases, clock.collect_phases),
                            (clock.record_steps, clock.collect_steps)):
        torch.cuda.set_sync_debug_mode("error")
        try:
            host = record(step, 8)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        device = collect(8)
        assert len(host) == len(device) == 8
        flat = [t for row in device for t in row] if isinstance(device[0], list) else device
        assert all(t > 0 for t in flat)


def test_event_times_are_gpu_time_and_host_times_are_dispatch():
    # large enough that the GPU, not the launches, sets the pace
    spec = StepSpec("sequential", 512, "cuda:0", "separate", "adam", "foreach", "large")
    timing = time_step(build_step(spec), "cuda:0", QUICK)
    assert timing.clock == "cuda_event"
    step_ms = timing.summary(STEP).median
    # wall time of synchronized steps agrees with the events
    step = build_step(spec)
    for _ in range(3):
        step.run()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        step.run()
    torch.cuda.synchronize()
    wall_ms = (time.perf_counter() - t0) / 10 * 1e3
    assert step_ms == pytest.approx(wall_ms, rel=0.15)


def test_nvml_finds_this_gpu_by_uuid_and_reads_it():
    nvml, reason = nvml_session()
    assert nvml is not None, reason
    handle, reason = find_handle(nvml, torch.device("cuda:0"))
    assert handle is not None, reason
    reading = read_once(nvml, handle, pid=0)
    assert reading.used_mib > 0 and reading.sm_clock_mhz > 0


def test_a_cuda_configuration_fills_its_memory_columns():
    result = measure_configuration(SPEC, QUICK, nvml=NvmlHandles(None))
    cols = result.config_columns
    assert cols["cuda_peak_allocated_mib"] > 0
    assert cols["cuda_peak_reserved_mib"] >= cols["cuda_peak_allocated_mib"]
    assert cols["nvml_used_mib_max"] > 0 and cols["nvml_samples"] >= 2
    assert all(result.phase_columns[p]["phase_peak_allocated_mib"] > 0
               for p in ("forward", "backward", "optimizer"))
    # the allocator's peak holds at least the parameters, their gradients and Adam's state
    floor = (cols["param_bytes"] + cols["grad_bytes"] + cols["optimizer_state_bytes"]) / 2**20
    assert cols["cuda_peak_allocated_mib"] >= floor


@pytest.mark.parametrize("impl", ["foreach", "fused"])
def test_setups_agree_on_cuda_within_the_stated_tolerance(impl):
    results = setup_equivalence("separate_losses", optimizer="adamw", optimizer_impl=impl,
                                device="cuda:0")
    assert all(r.ok for r in results), [(r.setup, r.max_abs_diff) for r in results]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_every_scenario_has_its_gradient_flow_and_setup_equivalence_on_cuda(precision):
    for name in SCENARIOS:
        assert all(r.ok for r in gradient_flow(name, device="cuda:0", n_networks=3,
                                                precision=precision))
        results = setup_equivalence(name, optimizer="adam", optimizer_impl="foreach",
                                    device="cuda:0", n_networks=3, precision=precision)
        assert all(r.ok for r in results), [(r.setup, r.max_abs_diff) for r in results]


@pytest.mark.parametrize("scenario", ["sequential", "gan"])
def test_a_graphed_step_computes_what_the_eager_step_computes(scenario):
    graphed = build_step(StepSpec(scenario, 16, "cuda:0", "single", "adam", "foreach",
                                  cuda_graph=True))
    eager = build_step(StepSpec(scenario, 16, "cuda:0", "single", "adam", "foreach"))
    # capture ran the graph's warm-up iterations eagerly; catch the eager copy up
    for _ in range(3):
        eager.run()
    for _ in range(4):
        graphed.run()
        eager.run()
    torch.cuda.synchronize()
    torch.testing.assert_close(graphed.last_loss, eager.last_loss, rtol=1e-4, atol=1e-5)
    for a, b in zip(graphed.parameters(), eager.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_runs_on_cuda(precision):
    step = build_step(StepSpec("shared_input", 32, "cuda:0", "single", "adamw", "fused",
                               precision=precision))
    for _ in range(3):
        step.run()
    assert torch.isfinite(step.last_loss)
