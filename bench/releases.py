"""Torch versions in release order, and what counts as one.

The dashboard orders its runs by torch version and ``make bench-versions`` its
environments, so both sort with the one key here: 2.9.0 before 2.10.0, a `.dev`, alpha,
beta or `rc` build before its release, a `.post` after it, the local part (`+cu130`) last;
text that is no version at all after every version. A version a user names (to install
it, and to name its folder) must be one: ``RELEASE`` is PEP 440's public form with a local
part, which holds no path separator. Standard library only: the tool that installs torch
runs without it.
"""

from __future__ import annotations

import re

RELEASE = re.compile(r"v?\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[A-Za-z0-9.]+)?")
STAGE_RANKS = {"dev": -4, "a": -3, "alpha": -3, "b": -2, "beta": -2, "rc": -1, "c": -1,
               "post": 1}


def is_release(text: str) -> bool:
    return RELEASE.fullmatch(text) is not None


def version_key(text: str) -> tuple:
    """A sort key for ``text``: see the module's docstring. Every key compares with every
    other (a number is never set against a word)."""
    public, _, local = str(text or "").partition("+")
    match = re.match(r"v?(\d+(?:\.\d+)*)(.*)$", public.strip())
    if not match:
        return (1, (), 0, 0, public, local)
    release = tuple(int(n) for n in match.group(1).split("."))
    release += (0,) * (4 - len(release))
    rest = match.group(2).lower()
    stage = re.search(r"(dev|a|alpha|b|beta|rc|c|post)\.?(\d*)", rest)
    rank, number = (STAGE_RANKS[stage.group(1)], int(stage.group(2) or 0)) if stage else (0, 0)
    return (0, release, rank, number, rest, local)
