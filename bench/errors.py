"""Errors the command line turns into one line on stderr, without a traceback."""


class UsageError(Exception):
    """Input the user can fix: exit code 2."""


class RunFolderWriteError(Exception):
    """Appending to the run folder failed (a full disk, a folder removed): the sweep stops
    there and the command exits with 1; what was written before stays on disk, in whole
    configurations, for ``--resume`` to continue from."""
