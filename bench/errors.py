"""The error a user can fix: the CLI prints its message on one line and exits with 2."""


class UsageError(Exception):
    pass
