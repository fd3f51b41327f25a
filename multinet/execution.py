"""How the networks of a step run: one after the other, on CUDA streams, or stacked.

- ``sequential``: each network in turn on the current stream (what a training loop writes);
- ``streams``: networks that do not depend on each other within a phase each on a CUDA
  stream of their own, forked from the current stream and joined back to it by events. The
  backward of each runs on its forward's stream (autograd keeps a forward op's stream for its
  backward and joins them before ``backward()`` returns), and the optimizers of one update
  step on streams of their own;
- ``stacked``: networks of one architecture run as one (``multinet/stacking.py``).

A scenario says which networks are independent and which are stackable
(``Scenario.independent``, ``Scenario.stackable``) and calls them through its
``execution``'s ``members`` (one input for all, stackable) or ``each`` (one input each).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from multinet.stacking import stack_key

EXECUTIONS = ("sequential", "streams", "stacked")
# Side streams at most: members beyond them take turns on the streams, in order.
MAX_STREAMS = 8
Call = tuple[Callable[..., Any], tuple]


class Execution:
    """One network after the other, on the current stream: the ``sequential`` execution,
    and ``stacked``'s too, whose stacks stand in their containers in place of the members."""

    def members(self, container: Mapping[str, nn.Module], names: Sequence[str],
                *args) -> list:
        """The outputs of the networks ``names`` of ``container`` on the same ``args``: one
        call of their stack where one stands for them, else ``each``."""
        key = stack_key(names)
        if key in container:
            return container[key](*args)
        return self.run([(container[n], args) for n in names])

    def each(self, container: Mapping[str, nn.Module], calls: Mapping[str, tuple]) -> list:
        """The outputs of independent networks of ``container``, each on its own inputs."""
        return self.run([(container[n], args) for n, args in calls.items()])

    def run(self, calls: Sequence[Call]) -> list:
        """Independent calls, (function, arguments) each, and their results in order."""
        return [fn(*args) for fn, args in calls]


def tensors(value) -> Iterator[torch.Tensor]:
    """The tensors in a call's arguments or results (nested tuples and lists)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from tensors(item)


class CudaStreams:
    """The CUDA calls the ``streams`` execution makes, in one place (a test can record
    them where there is no GPU)."""

    def __init__(self, device: torch.device):
        self.device = device

    def current(self):
        return torch.cuda.current_stream(self.device)

    def new_stream(self):
        return torch.cuda.Stream(self.device)

    def new_event(self):
        return torch.cuda.Event()

    def using(self, stream) -> contextlib.AbstractContextManager:
        return torch.cuda.stream(stream)

    def record_stream(self, tensor: torch.Tensor, stream) -> None:
        tensor.record_stream(stream)


class Streams(Execution):
    """Independent calls each on a side stream: every side stream waits for the current
    stream's work so far (an event recorded before the fork), the current stream waits for
    each side stream's (an event recorded after its last call). Streams and events are made
    once and reused, so nothing is created inside a timed step.

    The caching allocator hands a freed block to later work of the stream that allocated it:
    each input a side stream reads is recorded as in use there, and each result as in use on
    the current stream, so that neither is given out again while the other may still read
    it."""

    def __init__(self, cuda: CudaStreams):
        self.cuda = cuda
        self.fork = cuda.new_event()
        self.sides: list = []  # (stream, its join event)

    def _sides(self, n: int) -> list:
        while len(self.sides) < min(n, MAX_STREAMS):
            self.sides.append((self.cuda.new_stream(), self.cuda.new_event()))
        return self.sides[:min(n, MAX_STREAMS)]

    def run(self, calls: Sequence[Call]) -> list:
        if len(calls) < 2:
            return super().run(calls)
        current, sides = self.cuda.current(), self._sides(len(calls))
        self.fork.record(current)
        for stream, _ in sides:
            stream.wait_event(self.fork)
        results = []
        for i, (fn, args) in enumerate(calls):
            stream = sides[i % len(sides)][0]
            with self.cuda.using(stream):
                for t in tensors(args):
                    self.cuda.record_stream(t, stream)
                results.append(fn(*args))
        for stream, joined in sides:
            joined.record(stream)
            current.wait_event(joined)
        for t in tensors(results):
            self.cuda.record_stream(t, current)
        return results


def make_execution(name: str, device: torch.device | str) -> Execution:
    """The execution ``name`` on ``device``: ``streams`` needs CUDA (``unsupported`` in
    ``multinet.step`` says so before anything is built)."""
    if name == "streams":
        return Streams(CudaStreams(torch.device(device)))
    return Execution()
