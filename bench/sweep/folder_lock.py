"""A run folder's lock: the process that measures into a folder holds it for as long as it
lives, so two sweeps never append to one run, and a reader can tell a run that is still
being measured (its files grow under it) from one that stopped.

Torch-free: the history store checks it before it reads a folder.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

from bench.errors import UsageError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, one run per folder is up to the user
    fcntl = None

LOCK_FILE = ".lock"


def hold_lock(out_dir: Path) -> IO | None:
    """The folder's lock, taken for this process; a UsageError where another sweep holds
    it, or where the lock file is not one this harness can use."""
    if fcntl is None:
        return None
    path = out_dir / LOCK_FILE
    try:  # never through a link: the lock is this folder's own file
        handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND
                                   | getattr(os, "O_NOFOLLOW", 0), 0o644), "a")
    except OSError as exc:  # a folder of that name, a link, or a file no one may write
        raise UsageError(f"{path} is not a lock file this harness can use "
                         f"({exc.strerror or exc}); remove it to use {out_dir}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UsageError(f"{out_dir} is in use by another running sweep") from None
    return handle


def held_by_a_sweep(folder: Path) -> bool:
    """Whether a process measures into ``folder`` now (it holds the lock). Read-only: the
    lock file is neither made nor followed through a link, and a sweep that finished (or
    was killed) has let go of it, whether or not the file is still there."""
    if fcntl is None:
        return False
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY | os.O_NONBLOCK
                     | getattr(os, "O_NOFOLLOW", 0))
    except OSError:  # no lock file (no sweep made this folder), or none a sweep could hold
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        # a shared lock, let go at once: it is refused only while a sweep holds its own
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
