"""Which worker measures which pass: a run of ``repeats`` passes per worker numbers its
passes across its workers, worker k measuring (k - 1) R + 1 to k R. The sweep's workers
take their passes from here, the writer names each row's worker by it, and the history
store holds a row's ``worker`` to it. Torch-free, for that last."""

from __future__ import annotations


def worker_of(repeat: int, repeats: int) -> int:
    """The worker that measures pass ``repeat`` of a run of ``repeats`` passes per worker."""
    return (repeat - 1) // max(repeats, 1) + 1


def passes_of(worker: int, repeats: int) -> range:
    """The repeat numbers worker ``worker`` (1-based) measures."""
    return range((worker - 1) * repeats + 1, worker * repeats + 1)
