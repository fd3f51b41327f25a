"""The words a timing writes in results.csv, defined once: the clock that took it
(``clock``) and why its sampling stopped (``stop_reason``). The clocks, the round-robin,
the sweep's signal handling and the suite importer write them from here, and the history
store refuses a row that names any other (``bench/sweep/known_values.py``): no sweep
wrote it. Torch-free, so that the reading side can import it.
"""

from __future__ import annotations

PERF_COUNTER = "perf_counter"  # the host clock: CPU work is synchronous
CUDA_EVENT = "cuda_event"  # CUDA events, one synchronization per block
MPS_SYNC = "mps_sync"  # the host clock, synchronized with the MPS queue at each boundary
PYTEST_BENCHMARK = "pytest_benchmark"  # imported from a pytest-benchmark suite's saved run
CLOCKS = (PERF_COUNTER, CUDA_EVENT, MPS_SYNC, PYTEST_BENCHMARK)

MAX_SAMPLES = "max_samples"  # every step has its most samples
MAX_ROUNDS = "max_rounds"  # the most rounds were timed
DECIDED = "decided"  # the question the run asks of the steps (a comparison) is answered
CONVERGED = "converged"  # every phase's median is known within the target
BUDGET = "budget"  # the sampling seconds are spent
SIGNAL = "signal"  # the sweep was asked to stop, and finished what it timed
STOP_REASONS = (MAX_SAMPLES, MAX_ROUNDS, DECIDED, CONVERGED, BUDGET, SIGNAL)
