"""What the paired rounds' coordinator says between rounds: measurements decided and
undecided, and the time likely left. Standard library only, as the coordinator.
"""

from __future__ import annotations

from pathlib import Path


def progress_line(state: dict, round_: int, seconds_per_config: float | None) -> str:
    """Rounds done, measurements decided and undecided, and the time likely left."""
    undecided = state.get("undecided_configs", [])
    text = (f"[after round {round_}] {state.get('decided', 0)} of "
            f"{state.get('measurements', 0)} measurements decided, "
            f"{state.get('measurements', 0) - state.get('decided', 0)} undecided "
            f"({len(undecided)} configuration(s) to measure again)")
    more = state.get("rounds_to_decide")
    if undecided and more:
        text += f"; about {more - round_} more round(s)"
        if seconds_per_config:
            left = seconds_per_config * len(undecided) * (more - round_)
            text += f", ~{format_seconds(left)} left"
    return text


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def configs_in(folder: Path) -> int:
    """The configurations a round folder's results hold (rows over phases, roughly)."""
    try:
        with open(folder / "results.csv", encoding="utf-8") as handle:
            rows = sum(1 for _ in handle) - 1
    except OSError:
        return 0
    return max(rows // 4, 0)
