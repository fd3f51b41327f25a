"""NVML: the path without a driver (this machine), and the sampler's arithmetic.

The sampler is exercised against a stand-in for ``pynvml`` here, because no NVIDIA driver
exists on CPU machines; ``test_cuda.py`` runs it against the real library on a GPU.
"""

import time
from types import SimpleNamespace

import pytest
import torch

from bench.measure import nvml as nvml_mod
from bench.measure.nvml import NVML_COLUMNS, NvmlSampler, Reading, aggregate
from bench.measure.configuration import NvmlHandles, measure_configuration
from bench.measure.timers import TimingOptions
from bench.measure.unavailable import NO_DRIVER, NO_NVML_MODULE, NVML_ERRORS
from multinet import StepSpec


def test_without_a_driver_nvml_is_reported_unusable_not_raised():
    module, reason = nvml_mod.nvml_session()
    if module is not None:
        pytest.skip("an NVIDIA driver is present")
    # said in words (no driver, no library, no permission), not as pynvml's exception
    assert reason in {NO_DRIVER, NO_NVML_MODULE, *NVML_ERRORS.values()} \
        or reason.startswith("NVML error: "), reason


def test_no_nvml_on_a_cpu_configuration_leaves_the_columns_empty(capsys):
    result = measure_configuration(StepSpec("sequential", 2), TimingOptions(
        warmup_iters=1, warmup_s=0, min_samples=3, budget_s=0), nvml=NvmlHandles(None))
    assert not set(NVML_COLUMNS) & set(result.config_columns)
    assert result.status == "ok"


def test_aggregate_by_hand():
    readings = [Reading(1000, 400, 50, 1500, 300, 60), Reading(1200, None, 70, 1700, 310, 65),
                Reading(None, 500, None, None, None, None)]
    assert aggregate(readings) == {
        "nvml_used_mib_max": 1200, "nvml_process_mib_max": 500, "gpu_util_pct_mean": 60,
        "sm_clock_mhz_mean": 1600, "power_w_mean": 305, "temperature_c_max": 65,
        "nvml_samples": 3}
    assert aggregate([]) == dict.fromkeys(NVML_COLUMNS)


class FakeNvml:
    """Answers like pynvml for one GPU whose memory grows by 100 MiB per reading."""
    NVML_CLOCK_SM, NVML_TEMPERATURE_GPU, nvmlMemory_v2 = 1, 0, 2

    def __init__(self, pid):
        self.pid, self.calls = pid, 0

    def nvmlDeviceGetMemoryInfo(self, handle, version=None):
        assert version == self.nvmlMemory_v2
        self.calls += 1
        return SimpleNamespace(used=self.calls * 100 * 1024 * 1024)

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [SimpleNamespace(pid=1, usedGpuMemory=1), SimpleNamespace(pid=self.pid,
                                                                         usedGpuMemory=2 ** 30)]

    def nvmlDeviceGetUtilizationRates(self, handle):
        return SimpleNamespace(gpu=80)

    def nvmlDeviceGetClockInfo(self, handle, kind):
        return 1980 if kind == self.NVML_CLOCK_SM else 0

    def nvmlDeviceGetPowerUsage(self, handle):
        return 350_000  # milliwatts

    def nvmlDeviceGetTemperature(self, handle, sensor):
        raise RuntimeError("not supported")  # a field the GPU lacks stays empty


def test_sampler_reads_in_the_background_and_aggregates():
    fake = FakeNvml(pid=4242)
    with NvmlSampler(fake, handle="h", interval_s=0.01, pid=4242) as sampler:
        time.sleep(0.2)
    cols = sampler.columns()
    n = cols["nvml_samples"]
    assert n >= 5  # one at start, one at the end, and the thread's in between
    assert cols["nvml_used_mib_max"] == n * 100
    assert cols["nvml_process_mib_max"] == 1024
    assert (cols["gpu_util_pct_mean"], cols["sm_clock_mhz_mean"], cols["power_w_mean"]) == (80, 1980, 350)
    assert cols["temperature_c_max"] is None


def test_find_handle_without_cuda_says_why():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    handle, reason = nvml_mod.find_handle(FakeNvml(1), torch.device("cuda:0"))
    assert handle is None and "cannot map cuda:0 to NVML" in reason
