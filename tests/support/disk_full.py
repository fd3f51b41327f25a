"""A subprocess on a disk about full: RLIMIT_FSIZE makes a write past the limit fail with
EFBIG (Python ignores SIGXFSZ), as a write to a full disk fails with ENOSPC."""

from __future__ import annotations

import os
import resource


def file_size_limited(limit: int):
    """For ``preexec_fn``: the files the subprocess writes may not grow past ``limit``
    bytes, as on a disk with that much room left."""
    def limit_it():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_it


def uncovered_environment() -> dict[str, str]:
    """``os.environ`` without the variables that start coverage in a subprocess: under
    `make coverage` a process limited so could not write its own coverage data either, and
    would say so on stderr, where the test reads the harness's one line."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS_")}
