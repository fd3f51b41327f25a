"""GPU memory, utilization, clocks and power from NVML, sampled in the background.

NVML numbers GPUs physically and ignores ``CUDA_VISIBLE_DEVICES``, so a torch device is
mapped to its NVML handle by UUID, never by index. Without an NVIDIA driver every NVML
column stays empty and the reason is given once; nothing here raises.
"""

from __future__ import annotations

import os
import statistics
import threading
from dataclasses import dataclass
from types import ModuleType

import torch

from bench.measure.unavailable import reason_of
from bench.schema import MIB

SAMPLE_INTERVAL_S = 0.1
NVML_COLUMNS = ("nvml_used_mib_max", "nvml_process_mib_max", "gpu_util_pct_mean",
                "sm_clock_mhz_mean", "power_w_mean", "temperature_c_max", "nvml_samples")

_session: tuple[ModuleType | None, str] | None = None


def nvml_session() -> tuple[ModuleType | None, str]:
    """The initialised ``pynvml`` module, or None and the reason it cannot be used."""
    global _session
    if _session is None:
        try:
            import pynvml
            pynvml.nvmlInit()
            _session = (pynvml, "")
        except Exception as exc:  # ImportError, or any NVMLError (no library, no driver)
            _session = (None, reason_of(exc))
    return _session


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def find_handle(nvml: ModuleType, device: torch.device):
    """The NVML handle of a CUDA device, matched by UUID; None (and why) if none matches."""
    try:
        uuid = str(torch.cuda.get_device_properties(device).uuid).removeprefix("GPU-")
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            if _text(nvml.nvmlDeviceGetUUID(handle)).removeprefix("GPU-") == uuid:
                return handle, ""
        return None, f"no NVML device has the UUID of {device} ({uuid})"
    except Exception as exc:
        return None, f"cannot map {device} to NVML: {type(exc).__name__}: {exc}"


@dataclass
class Reading:
    used_mib: float | None = None
    process_mib: float | None = None
    util_pct: float | None = None
    sm_clock_mhz: float | None = None
    power_w: float | None = None
    temperature_c: float | None = None


def _try(fn):
    try:
        return fn()
    except Exception:  # a field this GPU or driver does not support stays empty
        return None


def read_once(nvml: ModuleType, handle, pid: int) -> Reading:
    def used():
        try:
            info = nvml.nvmlDeviceGetMemoryInfo(handle, version=nvml.nvmlMemory_v2)
        except Exception:  # drivers before the v2 API; v1 counts reserved memory as used
            info = nvml.nvmlDeviceGetMemoryInfo(handle)
        return info.used / MIB

    def process():
        for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == pid and proc.usedGpuMemory is not None:
                return proc.usedGpuMemory / MIB
        return None  # e.g. in a container whose PID namespace NVML cannot see into

    return Reading(
        used_mib=_try(used),
        process_mib=_try(process),
        util_pct=_try(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
        sm_clock_mhz=_try(lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
        power_w=_try(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000),
        temperature_c=_try(lambda: nvml.nvmlDeviceGetTemperature(handle,
                                                                 nvml.NVML_TEMPERATURE_GPU)),
    )


def aggregate(readings: list[Reading]) -> dict[str, float | int | None]:
    """The NVML columns of one configuration from its readings: peaks of memory and
    temperature, means of utilization, clock and power."""
    def values(name):
        return [getattr(r, name) for r in readings if getattr(r, name) is not None]

    def peak(name):
        v = values(name)
        return max(v) if v else None

    def mean(name):
        v = values(name)
        return statistics.fmean(v) if v else None

    return {"nvml_used_mib_max": peak("used_mib"), "nvml_process_mib_max": peak("process_mib"),
            "gpu_util_pct_mean": mean("util_pct"), "sm_clock_mhz_mean": mean("sm_clock_mhz"),
            "power_w_mean": mean("power_w"), "temperature_c_max": peak("temperature_c"),
            "nvml_samples": len(readings) if readings else None}


class NvmlSampler:
    """Reads NVML every ``interval_s`` in a thread while a configuration runs.

    The thread sleeps between readings and each reading is a few driver calls, so it takes
    the GIL for microseconds every 100 ms; the runner's timed loops are not otherwise
    disturbed. One reading is taken at the start and one at the end, so even a
    configuration shorter than the interval gets figures.
    """

    def __init__(self, nvml: ModuleType | None, handle, interval_s: float = SAMPLE_INTERVAL_S,
                 pid: int | None = None):
        self.nvml, self.handle, self.interval_s = nvml, handle, interval_s
        self.pid = os.getpid() if pid is None else pid
        self.readings: list[Reading] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self.nvml is not None and self.handle is not None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.readings.append(read_once(self.nvml, self.handle, self.pid))

    def __enter__(self) -> NvmlSampler:
        if self.active:
            self.readings.append(read_once(self.nvml, self.handle, self.pid))
            self._thread = threading.Thread(target=self._loop, name="nvml-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.readings.append(read_once(self.nvml, self.handle, self.pid))

    def columns(self) -> dict[str, float | int | None]:
        return aggregate(self.readings)
