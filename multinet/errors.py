"""Errors for bad input, worded so that a user can act on them without a traceback."""

from __future__ import annotations

from collections.abc import Iterable


class MultinetError(ValueError):
    """Bad input to the library: the message says what is wrong and what is valid."""


class InvalidChoice(MultinetError):
    def __init__(self, what: str, value: object, valid: Iterable[str]):
        choices = ", ".join(sorted(valid))
        super().__init__(f"unknown {what} {value!r}; valid: {choices}")
        self.what, self.value, self.valid = what, value, tuple(sorted(valid))


def check_positive(name: str, value: object) -> None:
    # bool is an int in Python, but "True" as a size is a mistake, not a 1.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MultinetError(f"{name} must be a positive integer, got {value!r}")
