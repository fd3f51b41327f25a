"""A progress bar with an ETA that stays readable in a log.

On a terminal it redraws one line; anywhere else (CI logs, `| tee`) it prints one plain line
per finished configuration, so the log shows progress without carriage-return debris.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    WIDTH = 24

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True):
        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()

    def eta_s(self) -> float | None:
        if self.done == 0:
            return None
        return (time.monotonic() - self.start) / self.done * (self.total - self.done)

    def line(self, label: str) -> str:
        frac = self.done / self.total if self.total else 1.0
        eta = self.eta_s()
        eta_text = "eta --:--" if eta is None else f"eta {format_duration(eta)}"
        width = len(str(self.total))
        head = f"[{self.done:>{width}}/{self.total}] {frac:4.0%} {eta_text}"
        if self.tty:
            filled = int(frac * self.WIDTH)
            head = f"|{'#' * filled}{'.' * (self.WIDTH - filled)}| " + head
        return f"{head} | {label}"

    def advance(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        text = self.line(label)
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            elapsed = format_duration(time.monotonic() - self.start)
            end = "\r\033[K" if self.tty else ""
            self.stream.write(f"{end}{self.done}/{self.total} configurations in {elapsed}\n")
            self.stream.flush()
