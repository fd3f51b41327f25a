"""The signal handling on its own, in this process: what the first and the second signal do,
and that a protected section is never cut short."""

import io
import signal

import pytest

from bench.sweep.interrupt import Interrupted, StopOnSignal, exit_code


def test_the_first_signal_asks_the_second_interrupts():
    stream = io.StringIO()
    with StopOnSignal(stream) as stop:
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested and stop.signum == signal.SIGTERM
        assert "SIGTERM: stopping after the configuration in progress" in stream.getvalue()
        with pytest.raises(Interrupted) as raised:
            signal.raise_signal(signal.SIGINT)
    # the exit code follows the signal that started the stop
    assert raised.value.signum == signal.SIGTERM and exit_code(raised.value.signum) == 143
    assert exit_code(signal.SIGINT) == 130


def test_a_protected_section_finishes_before_the_interruption():
    done = []
    with StopOnSignal(io.StringIO()) as stop:
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(Interrupted):
            with stop.protected():
                signal.raise_signal(signal.SIGINT)
                done.append("first file")
                done.append("second file")
    assert done == ["first file", "second file"]


def test_the_previous_handlers_are_put_back():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with StopOnSignal(io.StringIO()):
        assert signal.getsignal(signal.SIGINT) != before[0]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
