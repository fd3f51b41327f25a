"""A digest that the JSON records of a run folder (sweep.json, env.json) carry of their own
contents, so that a record edited by hand is told apart from the one the run wrote.

A resume measures the sweep its folder records and appends to the environment its folder
records; the history store takes the run as those records describe it. Both check the
seal first and refuse, in one line, a record whose contents no longer match it. The digest
is sha256 over the record's canonical JSON (keys sorted, no spaces) without the digest
itself, so reformatting a file changes nothing. A record without one was written before
records were sealed and is taken as it is. Standard library only: the readers of results
import it, and they need no torch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bench.errors import UsageError

DIGEST_KEY = "digest"


def digest_of(record: dict[str, Any]) -> str:
    body = {key: value for key, value in record.items() if key != DIGEST_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its digest, which is last in the file."""
    body = {key: value for key, value in record.items() if key != DIGEST_KEY}
    return {**body, DIGEST_KEY: digest_of(body)}


def check_seal(record: dict[str, Any], path: Path | str, hint: str = "") -> None:
    """Refuse ``record`` (read from ``path``) when its contents do not match its digest.
    ``hint``: what the user can do, after the reason."""
    if DIGEST_KEY in record and record[DIGEST_KEY] != digest_of(record):
        raise UsageError(f"{path} is not what the run wrote: it was edited since (its "
                         f"digest no longer matches){hint}")
