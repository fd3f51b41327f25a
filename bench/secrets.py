"""Passwords that must never be written: those a history store's URL can carry.

libpq reads a password from a URL in two places: its user information
(``postgresql://user:PASSWORD@host/db``) and its query (``?password=...``, and
``?sslpassword=...`` for a client key; a key libpq percent-decodes, ``?pass%77ord=``, in
any case, is the same key); a keyword/value string has ``password=...``.
A password from PGPASSWORD, a password file or a service file is never in any text the
harness sees. Anything the harness writes or prints that may hold such a URL (the command
line recorded in env.json, an error of the database's library, the store's name on a page
or a line of output) goes through ``hide`` first, which masks every one of those forms
wherever it appears; the passwords of the store in use are masked again by their value,
should a library quote them in some other way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

MASK = "***"


def _key(word: str) -> str:
    """A pattern for ``word`` as libpq reads a query key: each letter in either case, or
    percent-encoded (``pass%77ord`` is ``password`` to libpq)."""
    return "".join(f"(?:{c}|%{ord(c.lower()):02x}|%{ord(c.upper()):02x})" for c in word)


# the key password or sslpassword, in any spelling libpq decodes to one of them, at the
# start of a word (a lookbehind, not \b: an encoded key may start with a %)
_PASSWORD_KEY = rf"(?<![A-Za-z0-9_])(?:{_key('ssl')})?{_key('password')}"
# scheme://user:PASSWORD@ within one word: everything from the first colon after the
# scheme's slashes to the word's last @, so a password holding an @ or a / is masked whole;
# a user's name may hold a ? or a # (libpq takes all before the first @ or / as userinfo);
# one slash or more, as a URL taken for a path comes back (``Path`` makes // one /); the
# scheme as mistyped too (``postgresql_://``, ``postgresql ://``, ``postgresql%3A//``)
_SCHEME_END = r"(?:(?:\b[a-z][a-z0-9+._-]*)?[ \t]*(?::|%3a)/+)"
_USERINFO = re.compile(rf"(?i)({_SCHEME_END}[^\s:/@]*):[^\s]*@")
# password=VALUE (a URL's query, or a keyword/value string; quoted or not) and sslpassword
_KEYWORD = re.compile(rf"(?i)({_PASSWORD_KEY}\s*=\s*)('(?:\\.|[^'\\])*'?|[^\s&]*)")
# the same forms within one word of a command line, which a password may fill to its end
# (spaces and all: a shell hands over a quoted URL as one word)
_USERINFO_WORD = re.compile(rf"(?is)({_SCHEME_END}[^:/@]*):.*@")
_KEYWORD_WORD = re.compile(rf"(?is)({_PASSWORD_KEY}\s*=\s*)([^&]*)")
# NAME=VALUE where the name says it holds a secret (PGPASSWORD=..., DB_PASS=...,
# HF_TOKEN=..., MY_CLIENTSECRET=...), anywhere in the name: a variable set on a command line,
# as `--set ENV:PGPASSWORD=...` sets one, or one a run records among its settings
# (a key named so at the end, TLS_KEY, SSL_KEY, but not a bare KEY, as in "expected
# KEY=VALUE"; a bearer's token, a JWT, a session's cookie and a request's signature are
# what a service takes instead of a password)
_PASSWORD_NAME = re.compile(r"(?i)pass(?:word|wd|phrase)|(?:^|_)pass$|secret|token|pwd"
                            r"|credential|private_?key|api_?key|access_?key|_key$|auth"
                            r"|bearer|jwt|cookie|signature")
_ASSIGNMENT = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)"
                         r"""('(?:\\.|[^'\\])*'?|"(?:\\.|[^"\\])*"?|[^\s&'"]*)""")
# shorter values are masked by their form alone: replacing them wherever they occur would
# mangle the message around them and hide nothing
MIN_KNOWN = 4


def hide(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every password a URL or a keyword/value string can carry masked, and
    each of ``known`` (the passwords of the store in use) wherever else it appears."""
    text = _USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    text = _KEYWORD.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}"
                           if _PASSWORD_NAME.search(m.group(1)) else m.group(0), text)
    for secret in sorted(set(known), key=len, reverse=True):
        if len(secret) >= MIN_KNOWN:
            text = text.replace(secret, MASK)
    return text


def hide_words(words: Iterable[str]) -> str:
    """A command line, one word per argument, joined with spaces and masked: ``hide`` of
    each word, a password's forms running to the end of its word."""
    return " ".join(hide_each(words))


def hide_each(words: Iterable[str]) -> list[str]:
    """Each word of a command line masked as ``hide_words`` masks it, and each password
    found in one (raw and percent-decoded) masked wherever else it appears: a URL may
    repeat it where no form marks it (``?application_name=PASSWORD``)."""
    words = list(words)
    masked = (_KEYWORD_WORD.sub(lambda m: f"{m.group(1)}{MASK}",
                                _USERINFO_WORD.sub(lambda m: f"{m.group(1)}:{MASK}@", word))
              for word in words)
    known = passwords_in(words)
    return [hide(word, known) for word in masked]


def passwords_in(words: Iterable[str]) -> set[str]:
    """The passwords the words' URLs and keyword/value strings carry, as written and
    percent-decoded."""
    found = set()
    for word in words:
        found.update(word[m.end(1) + 1:m.end() - 1] for m in _USERINFO_WORD.finditer(word))
        found.update(m.group(2).strip("'") for m in _KEYWORD_WORD.finditer(word))
    return found | {unquote(password) for password in found}


def hide_variable(name: str, value: str) -> str:
    """An environment variable's value as it may be written: masked whole where the name
    says it is a password (PGPASSWORD, MY_DB_PASSWORD), else as ``hide`` masks any text."""
    return MASK if _PASSWORD_NAME.search(name) else hide(value)


def hide_all(value: Any) -> Any:
    """``value`` (a record read from JSON) with ``hide`` applied to every string in it."""
    if isinstance(value, str):
        return hide(value)
    if isinstance(value, dict):  # a variable named as a secret (a run's settings), masked
        return {key: MASK if isinstance(item, str) and isinstance(key, str)
                and _PASSWORD_NAME.search(key) and item else hide_all(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [hide_all(item) for item in value]
    return value
