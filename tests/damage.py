"""Seeded damage to the files the harness reads: what a cut transfer, a bad disk, a hand edit
or a merge of two files can do to them. Each function takes the file's bytes and a seeded
``random.Random`` and returns the damaged bytes, and a word for what it did."""

from __future__ import annotations

import csv
import io
import json
import random
from typing import Any, Callable

# Values of another type than a cell or a key holds: numbers out of range, text, nothing.
STRANGE_CELLS = ["", "abc", "-1", "0", "1e999", "-1e999", "nan", "inf", "1.5", "true",
                 "9" * 30, "2026-13-45", "\u00e9\u00e8", '"', ",", "None", " 1 "]
STRANGE_VALUES: list[Any] = [None, True, False, 0, -1, 1.5, 10**30, float("nan"),
                             float("inf"), "", "abc", [], [1, "x"], {}, {"a": None}]
BYTES = [b"\x00", b"\xff", b"\xc3", b"\n", b"\r\n", b",", b'"', b"{", b"]", b"\\", b" "]


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    return data[:rng.randrange(len(data))], "truncated"


def flip_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out), "flipped bits"


def insert_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    i = rng.randrange(len(data) + 1)
    junk = b"".join(rng.choice(BYTES) for _ in range(rng.randint(1, 4)))
    return data[:i] + junk + data[i:], "inserted bytes"


BYTE_DAMAGES = [truncate, flip_bytes, insert_bytes]


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def duplicate_row(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    rows = _rows(data)
    i = rng.randrange(1, len(rows))
    rows.insert(rng.randrange(1, len(rows) + 1), list(rows[i]))
    return _csv(rows), "duplicated row"


def drop_row(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    rows = _rows(data)
    del rows[rng.randrange(1, len(rows))]
    return _csv(rows), "dropped row"


def swap_cell(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    rows = _rows(data)
    row = rows[rng.randrange(1, len(rows))]
    column = rng.randrange(len(row))
    row[column] = rng.choice(STRANGE_CELLS)
    return _csv(rows), f"cell of {rows[0][column]} swapped"


def drop_column(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    rows = _rows(data)
    column = rng.randrange(len(rows[0]))
    return _csv([r[:column] + r[column + 1:] for r in rows]), f"column {rows[0][column]} dropped"


CSV_DAMAGES = BYTE_DAMAGES + [duplicate_row, drop_row, swap_cell, swap_cell, drop_column]


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every place in a JSON tree: keys of objects and indices of lists."""
    found = [path] if path else []
    children = (node.items() if isinstance(node, dict)
                else enumerate(node) if isinstance(node, list) else ())
    for key, child in children:
        found += _paths(child, path + (key,))
    return found


def _parent(tree: Any, path: tuple) -> Any:
    for key in path[:-1]:
        tree = tree[key]
    return tree


def _json(tree: Any) -> bytes:
    return json.dumps(tree, indent=1).encode("utf-8")  # NaN and Infinity as Python writes them


def swap_value(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    tree = json.loads(data)
    path = rng.choice(_paths(tree))
    _parent(tree, path)[path[-1]] = rng.choice(STRANGE_VALUES)
    return _json(tree), f"value at {'/'.join(map(str, path))} swapped"


def drop_key(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    tree = json.loads(data)
    path = rng.choice(_paths(tree))
    del _parent(tree, path)[path[-1]]
    return _json(tree), f"{'/'.join(map(str, path))} dropped"


def duplicate_entry(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    tree = json.loads(data)
    lists = [p for p in _paths(tree) if isinstance(_parent(tree, p)[p[-1]], list)
             and _parent(tree, p)[p[-1]]]
    if not lists:
        return swap_value(data, rng)
    path = rng.choice(lists)
    items = _parent(tree, path)[path[-1]]
    items.append(json.loads(json.dumps(rng.choice(items))))
    return _json(tree), f"entry of {'/'.join(map(str, path))} duplicated"


def whole_type(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    value = rng.choice(STRANGE_VALUES)
    return json.dumps(value).encode(), "the whole file another type"


JSON_DAMAGES = BYTE_DAMAGES + [swap_value, swap_value, drop_key, duplicate_entry, whole_type]


TOML_VALUES = ['"abc"', "-1", "1e999", "nan", "inf", "[]", "[1, 2]", "{}", "true", "9" * 25,
               '["x", 3]', "0", "2.5", '"\u00e9"']


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8").splitlines(keepends=True)


def swap_toml_value(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(data)
    i = rng.choice([n for n, line in enumerate(lines) if "=" in line])
    key = lines[i].split("=", 1)[0]
    lines[i] = f"{key}= {rng.choice(TOML_VALUES)}\n"
    return "".join(lines).encode(), f"value of {key.strip()} swapped"


def duplicate_line(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(data)
    lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines))
    return "".join(lines).encode(), "duplicated line"


def drop_line(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = _lines(data)
    del lines[rng.randrange(len(lines))]
    return "".join(lines).encode(), "dropped line"


TOML_DAMAGES = BYTE_DAMAGES + [swap_toml_value, swap_toml_value, duplicate_line, drop_line]


def damage(data: bytes, kinds: list[Callable], seed: int) -> tuple[bytes, str]:
    """One seeded damage of ``data``; never the file unchanged."""
    rng = random.Random(seed)
    for _ in range(20):
        try:
            out, what = rng.choice(kinds)(data, rng)
        except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError):
            continue  # not applicable to this file (no rows to drop, bytes not text)
        if out != data:
            return out, what
    return data[:-1], "last byte cut"
