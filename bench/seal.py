"""A digest that the JSON records of a run folder (sweep.json, env.json) carry of their own
contents, so that a record edited by hand is told apart from the one the run wrote.

A resume measures the sweep its folder records and appends to the environment its folder
records; the history store takes the run as those records describe it. Both check the
seal first and refuse, in one line, a record whose contents no longer match it. The digest
is sha256 over the record's canonical JSON (keys sorted, no spaces) without the digest
itself, so reformatting a file changes nothing. A record without one was written before
records were sealed and is taken as it is, but only where the run's sweep.json says so
(``sealed_run``): in a run whose sweep.json is sealed, an env.json without its digest has
had it removed. No torch: the readers of results import it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.schema import PLAN_KEY

DIGEST_KEY = "digest"


def digest_of(record: dict[str, Any]) -> str:
    body = {key: value for key, value in record.items() if key != DIGEST_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its digest, which is last in the file."""
    body = {key: value for key, value in record.items() if key != DIGEST_KEY}
    return {**body, DIGEST_KEY: digest_of(body)}


def sealed_run(sweep: dict[str, Any] | None) -> bool:
    """Whether a run's records were written sealed, as its sweep.json (None: none) says:
    sealed itself, or listing its plan, which only a sealing writer does."""
    return sweep is not None and (DIGEST_KEY in sweep or PLAN_KEY in sweep)


def check_seal(record: dict[str, Any], path: Path | str, hint: str = "", *,
               sealed: bool = False) -> None:
    """Refuse ``record`` (read from ``path``) when its contents do not match its digest, or
    when it has none where the run's records were ``sealed`` (``sealed_run``). ``hint``:
    what the user can do, after the reason."""
    if DIGEST_KEY not in record:
        if sealed and not Path(path).is_file():
            what = "is a folder, not the file" if Path(path).is_dir() else "is missing"
            raise UsageError(f"{path} {what}: the run wrote it, and a sealed run keeps "
                             f"it{hint}")
        if sealed:
            raise UsageError(f"{path} has lost its {DIGEST_KEY!r}: it is not what the run "
                             f"wrote{hint}")
        return
    if record[DIGEST_KEY] != digest_of(record):
        raise UsageError(f"{path} is not what the run wrote: it was edited since (its "
                         f"digest no longer matches){hint}")
