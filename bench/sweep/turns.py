"""Taking turns with the other processes of a paired round.

Environments compared in paired rounds (``bench/tools/paired.py``) run side by side, one
process each, and only one of them works at a time: a process works while it holds the
turn and hands it on at the start of every round of blocks, a fraction of a second later
(``bench/sweep/side_by_side.py`` hands the turns out). On a machine whose speed moves
between levels every few seconds, the blocks of one configuration in A and in B then meet
the same levels, and their ratio loses that noise; run one after the other, each met the
level of its own few seconds, and the paired ratios carried it whole. Both processes
measure the comparison groups in the same order (the seed comes with the turns), so a
turn of A and the next turn of B time the same configuration.

The coordinator names the two ends of this process's pipes, the seed and, where it pins the
processes, their CPUs in ``TURNS_VARIABLE``; a process pins its threads as it first says
"ready" (``bench/sweep/pinning.py``). Taking a turn writes one byte ("my turn is over", or
at first "ready") and waits for one back ("your turn"). Without the variable a process runs
alone and ``take_turn`` returns at once. When the coordinator is gone (killed: its pipe
closed), what the process measured from then on would pair with nothing, so it stops as a
second signal stops a sweep: the configuration in progress is left out, what was written
stays, and the coordinator's command, run again, resumes the round side by side.
"""

from __future__ import annotations

import os
import signal
import stat
import sys

from bench.errors import UsageError
from bench.schema import TURNS_VARIABLE
from bench.sweep.interrupt import Interrupted
from bench.sweep.pinning import parse_cpus, pin_threads


class Turns:
    def __init__(self, read_fd: int, write_fd: int, seed: int,
                 cpus: tuple[int, ...] | None = None):
        self.read_fd, self.write_fd, self.seed, self.cpus = read_fd, write_fd, seed, cpus
        self.open = True
        self.pinned: list[int] | None = None  # the CPUs pinned to, once ready

    def take(self) -> None:
        """Hand the turn on, and wait until it comes back."""
        if not self.open:
            return
        if self.cpus and self.pinned is None:  # ready: torch imported, its threads set
            self.pinned = pin_threads(self.cpus)
        try:
            os.write(self.write_fd, b".")
            back = os.read(self.read_fd, 1)
        except OSError:
            back = b""
        if not back:
            self.open = False
            print("the paired rounds' coordinator is gone: stopping here; its command, run "
                  "again, resumes the round", file=sys.stderr, flush=True)
            raise Interrupted(signal.SIGTERM)


def parse(text: str) -> Turns:
    parts = text.split(";")
    fds = parts[0].split(",")
    cpus = None
    try:
        if len(parts) > 2 or len(fds) != 3 or not all(p.strip().lstrip("-").isdigit()
                                                      for p in fds):
            raise ValueError(text)
        if len(parts) == 2:
            cpus = parse_cpus(parts[1])
    except ValueError:
        raise UsageError(f"{TURNS_VARIABLE}={text!r}: expected READ_FD,WRITE_FD,SEED "
                         "(integers), then ;CPU,CPU... where the processes are pinned, as the "
                         "paired rounds' coordinator sets it") from None
    read_fd, write_fd, seed = (int(p) for p in fds)
    for fd in (read_fd, write_fd):
        if not is_pipe(fd):  # never write a byte into a file that happens to have that number
            raise UsageError(f"{TURNS_VARIABLE}={text!r}: descriptor {fd} is not a pipe this "
                             "process inherited; the variable belongs to the paired rounds' "
                             "coordinator (python -m bench paired-rounds)")
    return Turns(read_fd, write_fd, seed, cpus)


def is_pipe(fd: int) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


_turns: Turns | None = None
_read = False


def current() -> Turns | None:
    """This process's turns, or None where it runs alone. The variable is read once and
    taken out of the environment: a process this one starts has none of its pipes."""
    global _turns, _read
    if not _read:
        text = os.environ.pop(TURNS_VARIABLE, "")
        _turns, _read = (parse(text) if text else None), True
    return _turns


def take_turn() -> None:
    turns = current()
    if turns is not None:
        turns.take()


def shared_seed() -> int | None:
    """The seed of the groups' order every process taking turns shares, or None alone."""
    turns = current()
    return turns.seed if turns is not None else None


def pinned_cpus() -> list[int] | None:
    """The CPUs this process was pinned to as it took its first turn, or None (alone, not
    pinned, or not yet ready)."""
    turns = current()
    return turns.pinned or None if turns is not None else None
