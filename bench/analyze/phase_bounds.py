"""What bounds a measured phase on a GPU: the host's kernel launches, the GPU's arithmetic,
or neither of the two.

On CUDA the host only queues kernels: ``host_median_ms`` is how long it took to queue a
phase, ``median_ms`` how long the GPU took from the phase's first event to its last. Where
the two are close, the GPU finished each kernel about as soon as the host issued the next
and idled in between: the step measured the host (launch-bound). Where the phase reaches a
large part of the GPU's published peak (``peak_fraction``), the arithmetic set the pace
(compute-bound). Anything else (memory bandwidth, small kernels that neither fill the GPU
nor starve it) is `neither`.

The writer puts the bound on every row (``bench/sweep/writer.py``); the reading side calls
the same function on the figures it has, so an older CSV without the column gets it too.
Plain Python: the measuring side calls it without pandas.
"""

from __future__ import annotations

import math

from bench.schema import COMPUTE_PEAK_FRACTION, LAUNCH_HOST_SHARE

LAUNCH, COMPUTE, NEITHER = "launch", "compute", "neither"  # the values of `bound`


def _number(value: object) -> float | None:
    """A finite number, or None for an empty cell ("", None, NaN)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def is_cuda(device: object) -> bool:
    return str(device).split(":", 1)[0] == "cuda"


def phase_bound(device: object, median_ms: object, host_median_ms: object,
                peak_fraction: object, *, measured: bool = True) -> str:
    """`launch`, `compute` or `neither` for a phase measured on CUDA; "" where it cannot be
    said: not CUDA, not measured, no device time (the phases of a CUDA graph), or neither
    the host's time nor the peak fraction known."""
    device_ms, host_ms, fraction = (_number(median_ms), _number(host_median_ms),
                                    _number(peak_fraction))
    if not measured or not is_cuda(device) or device_ms is None or device_ms <= 0:
        return ""
    if fraction is not None and fraction >= COMPUTE_PEAK_FRACTION:
        return COMPUTE
    if host_ms is None:
        return ""  # not compute-bound, but whether it is launch-bound is not known
    return LAUNCH if host_ms / device_ms >= LAUNCH_HOST_SHARE else NEITHER
