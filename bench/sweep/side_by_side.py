"""Processes that take turns: the coordinator's side of ``bench/sweep/turns.py``.

Each process gets two pipes, one to hear "your turn" on and one to say "my turn is over"
(at first, "ready"), and the seed of the order its groups run in, through
``TURNS_VARIABLE``. The first turn is handed out once every process is ready, so none
measures while another still starts up (imports torch, records its environment). Then the
turn goes round: with two processes A B, B A, A B... (ABBA: what the machine does over the
two turns of a cycle lands on both alike), with more in a fresh random order each cycle.
A process that exits leaves the round; the others go on.

The processes run in sessions of their own, so a Ctrl-C at the terminal reaches only the
coordinator, which passes SIGINT or SIGTERM on to each (``Forward``): each stops after
its configuration in progress, still taking turns, and the coordinator then raises
``Interrupted``. A second signal, passed on too, makes each drop that configuration and
stop at once.

Standard library only: this runs under the bootstrap interpreter (``bench/tools/paired.py``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from bench.schema import TURNS_VARIABLE
from bench.sweep.interrupt import SIGNALS, Interrupted
from bench.sweep.pinning import format_cpus

# A process's pipes close as it exits; it can be waited for a moment later.
EXIT_GRACE_S = 10.0


@dataclass
class Member:
    process: subprocess.Popen
    grant: int  # our end of the pipe it hears "your turn" on
    done: int  # our end of the pipe it says "my turn is over" on
    alive: bool = True

    def hears(self) -> bool:
        """Wait for its byte; False once it has exited (its end closed)."""
        try:
            self.alive = bool(os.read(self.done, 1))
        except OSError:
            self.alive = False
        return self.alive

    def go(self) -> bool:
        try:
            os.write(self.grant, b".")
        except OSError:  # it exited between its last byte and this one
            self.alive = False
        return self.alive

    def close(self) -> None:
        for fd in (self.grant, self.done):
            try:
                os.close(fd)
            except OSError:
                pass


def still_running(process: subprocess.Popen) -> bool:
    """Whether ``process`` goes on after its pipe closed (a process's pipes close as it
    exits, a moment before it can be waited for)."""
    try:
        process.wait(timeout=EXIT_GRACE_S)
    except subprocess.TimeoutExpired:
        return True
    return False


def cycle_order(count: int, cycle: int, rng: random.Random) -> list[int]:
    """Who works when in ``cycle`` (0-based): 0 1, 1 0, 0 1... for two; for more, a random
    order drawn afresh each cycle."""
    if count == 2:
        return [0, 1] if cycle % 2 == 0 else [1, 0]
    order = list(range(count))
    rng.shuffle(order)
    return order


class Forward:
    """While in a ``with`` block: every SIGINT or SIGTERM is passed on to every process
    still running, and the first remembered; the block's end raises ``Interrupted`` for it."""

    def __init__(self, processes: list[subprocess.Popen]):
        self.processes, self.signum, self.previous = processes, None, {}

    def __enter__(self) -> Forward:
        for signum in SIGNALS:
            self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def handle(self, signum: int, frame) -> None:
        # the first: each stops after its configurations in progress; a second, passed on
        # as well, makes each drop them and stop at once, as one process does
        if self.signum is None:
            self.signum = signum
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signum)

    def __exit__(self, kind, value, traceback) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        if self.signum is not None and kind is None:
            raise Interrupted(self.signum)


def run_alone(command: list[str], env: dict[str, str], **popen) -> int:
    """``command`` in a session of its own, a signal passed on as ``run_side_by_side``
    does; its exit code."""
    process = subprocess.Popen(command, env=env, start_new_session=True, **popen)
    with Forward([process]):
        return process.wait()


def start(command: list[str], env: dict[str, str], seed: int,
          cpus: tuple[int, ...] | None = None, **popen) -> Member:
    hear_r, hear_w = os.pipe()  # the child reads its turns here
    say_r, say_w = os.pipe()  # and says it is done here
    pinned = f";{format_cpus(cpus)}" if cpus else ""
    env = {**env, TURNS_VARIABLE: f"{hear_r},{say_w},{seed}{pinned}"}
    try:
        process = subprocess.Popen(command, env=env, pass_fds=(hear_r, say_w),
                                   start_new_session=True, **popen)
    finally:
        os.close(hear_r)  # the child's ends: with ours closed, its exit closes the pipes
        os.close(say_w)
    return Member(process, hear_w, say_r)


def run_side_by_side(commands: list[tuple[list[str], dict[str, str]]], seed: int,
                     on_turn: Callable[[], None] | None = None,
                     cpus: tuple[int, ...] | None = None, **popen) -> list[int]:
    """Run ``commands`` ((argv, environment) each) at once, taking turns; their exit codes.
    ``on_turn`` runs between turns (a progress bar reads what they wrote). ``cpus``: where
    they all measure, once ready (``bench/sweep/pinning.py``; None: where the system puts
    them). ``Interrupted`` once they have stopped, where a signal asked for it."""
    members = [start(argv, env, seed, cpus, **popen) for argv, env in commands]
    with Forward([m.process for m in members]):
        try:
            return turn_taking(members, seed, on_turn)
        finally:
            for member in members:
                member.close()


def turn_taking(members: list[Member], seed: int,
                on_turn: Callable[[], None] | None = None) -> list[int]:
    """Hand the turns out until every member has exited; their exit codes."""
    ready = [m for m in members if m.hears()]  # one that exits before: nothing to share
    rng, cycle, turns = random.Random(seed), 0, {id(m): 0 for m in members}
    while ready:
        for i in cycle_order(len(ready), cycle, rng):
            member = ready[i]
            if member.alive and member.go():
                turns[id(member)] += member.hears()
            if on_turn is not None:
                on_turn()
        gone = [m for m in ready if not m.alive]
        ready = [m for m in ready if m.alive]
        for member in gone:
            if ready and still_running(member.process):
                # it closed its pipe but runs on: what it measures now is not paired
                print(f"warning: process {member.process.pid} stopped taking turns while "
                      "still running; the rest of its run was measured alongside the "
                      "others", file=sys.stderr, flush=True)
        cycle += 1
    if len(members) > 1 and min(turns.values()) == 0 and max(turns.values()) > 1:
        # a resumed round whose other side was complete: what was left ran without a partner
        print(f"warning: {sum(t == 0 for t in turns.values())} of {len(members)} processes "
              "had nothing left to measure; the others' rest of the round had no partner",
              file=sys.stderr, flush=True)
    return [m.process.wait() for m in members]
