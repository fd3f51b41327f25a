"""The one error of the history store: what cannot be opened or used, in one line."""

from __future__ import annotations

from bench.errors import UsageError


class StoreError(UsageError):
    """The store cannot be opened or used: the message names it and says why (exit 2)."""
