"""Keeping glibc's allocator from handing memory back to the kernel between iterations.

By default glibc serves a large block (above a threshold it moves as blocks are freed) with
a mapping of its own and unmaps it when freed, and trims the free top of its heap. A CPU
training step of batch 128 of the article's networks then takes some 12,000 fresh pages
from the kernel every iteration (about 48 MB, zeroed), and what that costs is not the
step's: it depends on what else the machine does (in a virtual machine, on its host too)
and on the process's own history, where the moving threshold happens to stand. On the
2-core reference machine one configuration ran up to 2.5x apart between processes, a whole
comparison group at once, and side by side in paired rounds the same group read 1.2x-2x
apart in the two processes while nothing else differed.

So before anything is built, the threshold is fixed at glibc's maximum (32 MiB) and the
heap is never trimmed: memory a step once took is reused, its pages are faulted in during
warm-up, and a step allocates without the kernel. Blocks over 32 MiB still get their own
mapping. ``MULTINET_BENCH_ALLOCATOR=default`` keeps glibc's policy, to measure what a
program that leaves it alone pays. env.json records which (``allocator``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

VARIABLE = "MULTINET_BENCH_ALLOCATOR"
# mallopt's parameters (malloc.h) and the largest mapping threshold glibc accepts on 64-bit
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 2 ** 20
NEVER_TRIM = 2 ** 31 - 1

_state: dict[str, Any] = {"policy": "not set: no sweep has started in this process"}


def steady_allocator() -> dict[str, Any]:
    """Fix glibc's thresholds (unless the variable says ``default``); what was done."""
    global _state
    if os.environ.get(VARIABLE, "") == "default":
        _state = {"policy": f"glibc's default ({VARIABLE}=default)"}
        return _state
    libc = _glibc()
    if libc is None:
        _state = {"policy": "unchanged: not glibc"}
        return _state
    ok = (libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(MMAP_THRESHOLD)) == 1
          and libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(NEVER_TRIM)) == 1)
    _state = ({"policy": "steady", "mmap_threshold": MMAP_THRESHOLD,
               "trim_threshold": NEVER_TRIM} if ok
              else {"policy": "unchanged: glibc refused mallopt"})
    return _state


def allocator_state() -> dict[str, Any]:
    return dict(_state)


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.gnu_get_libc_version  # glibc's own symbol: musl and others have mallopt or not
        return libc
    except (OSError, AttributeError):
        return None
