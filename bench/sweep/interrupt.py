"""Stopping a sweep on SIGINT or SIGTERM without leaving a half-written row.

The first signal asks the sweep to stop: the configuration in progress finishes and is
written (its measurement is nearly done and costs no more than its time budget), then the
sweep ends. A second signal stops at once: the configuration in progress is abandoned by an
``Interrupted`` exception raised from the handler. Writing a configuration's rows is a
protected section: a signal arriving inside it takes effect only once both files are
written, so a configuration is on disk in full (samples and results) or not at all.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """Raised by the second signal. A BaseException, as KeyboardInterrupt is, so that the
    runner's handling of a failed configuration does not record it as an error."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(signum: int) -> int:
    """128 + the signal's number, as a shell reports a process a signal ended:
    130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


class StopOnSignal:
    """Installs the handlers for the duration of a ``with`` block (main thread only: Python
    delivers signals there) and puts the previous ones back afterwards."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.signum: int | None = None  # the first signal received
        self._protected = False
        self._pending = False
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum
            self._say(f"\n{signal.Signals(signum).name}: stopping after the configuration in "
                      "progress; send it again to stop at once\n")
            return
        if self._protected:
            self._pending = True
            return
        raise Interrupted(self.signum)

    def _say(self, text: str) -> None:
        # Straight to the file descriptor: the handler may run while the main code is inside
        # a write to the same stream, and a buffered stream refuses a reentrant write.
        try:
            os.write(self.stream.fileno(), text.encode())
        except (AttributeError, OSError, io.UnsupportedOperation):
            self.stream.write(text)

    @contextmanager
    def protected(self) -> Iterator[None]:
        """A section that a second signal does not cut short; it takes effect at the end."""
        self._protected = True
        try:
            yield
        finally:
            self._protected = False
        if self._pending:
            raise Interrupted(self.signum)


class Stopped(KeyboardInterrupt):
    """SIGTERM before a sweep's own handlers are in place, raised as Ctrl-C is: the same
    clean-up on the way out, and the signal's own exit code (``signum``)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SaidStop(Stopped):
    """A stop whose line has been printed where it happened (a run taken back while it set
    up): the command line's own ``interrupted`` would say it twice."""

    said = True


@contextmanager
def stop_on_terminate() -> Iterator[None]:
    """SIGTERM raises ``Stopped`` for the duration (main thread only), as SIGINT raises
    KeyboardInterrupt: a run's setup, before ``StopOnSignal`` takes over, ends by the same
    path either way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# Signals that ``stop_at_checkpoints`` holds for the next checkpoint, first first.
_HELD: list[int] = []
# What cuts short the blocking call in progress (``cut_short_on_signal``), if any.
_CANCELS: list = []


def _hold(signum: int, frame) -> None:
    _HELD.append(signum)
    for cancel in list(_CANCELS):
        try:
            cancel()
        except Exception:  # a cancel that fails leaves the call to end on its own
            pass


@contextmanager
def stop_at_checkpoints() -> Iterator[None]:
    """SIGINT and SIGTERM held for the duration (main thread only) and raised as
    ``Stopped`` at the next ``checkpoint()``, or at the end: for work after a sweep (its
    page, the store's add) that a KeyboardInterrupt raised anywhere would cut inside a
    module's import or a compiled library's call (DuckDB's connect), where it aborts the
    process or ends it by SIGINT even once caught and said."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _hold) for signum in SIGNALS}
    try:
        yield
    finally:  # what the work raised gives way to a signal that arrived meanwhile
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        checkpoint()


@contextmanager
def cut_short_on_signal(cancel) -> Iterator[None]:
    """A blocking call inside (a query waiting for a lock another session holds, which a
    held signal would otherwise wait out) is cut short by ``cancel()`` when a signal is held
    meanwhile: the call then fails, and the checkpoint after it stops."""
    checkpoint()  # a signal held already: not a call to start, but a stop
    _CANCELS.append(cancel)
    try:
        yield
    finally:
        _CANCELS.remove(cancel)


def checkpoint() -> None:
    """Where work under ``stop_at_checkpoints`` may stop: raises ``Stopped`` for a signal
    held (nothing where none is, or outside it)."""
    if _HELD:
        signum = _HELD[0]
        _HELD.clear()
        raise Stopped(signum)
