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

LAUNCH, COMPUTE, NEITHER = "launch", "compute", "neither"  # the values of `bound`

# Launch-bound when the host's dispatch time is at least this share of the device time.
# The GPU cannot run ahead of the queue, so once the host needs 80% of the GPU's time to
# issue the work, any hiccup of the host leaves the GPU idle and the device time follows
# the host's; well under it, the GPU has queued work in hand and the host is hidden.
LAUNCH_HOST_SHARE = 0.8
# Compute-bound at this fraction of the GPU's dense peak for the precision, or above.
# Large matrix products reach 60-80% of a published peak, so half of it means the
# arithmetic units set the pace. Tested before the launch share: a GPU that busy fills the
# launch queue, and a host that waits on a full queue takes as long as the GPU does.
COMPUTE_PEAK_FRACTION = 0.5


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
