"""A ratio of times as the change it is, or as the ratio, as every page and summary writes it."""

# An interval over two or three rounds can reach a ratio of 1e100 (a t quantile with one
# degree of freedom at a false-change rate of 0.002): past this, a figure says only that.
LARGEST_SHOWN = 10.0


def as_change(ratio: float) -> str:
    """1.25 -> "+25.0%", 0.8 -> "-20.0%"; past ten times, "over +900%"."""
    if ratio > LARGEST_SHOWN:
        return f"over {(LARGEST_SHOWN - 1) * 100:+.0f}%"
    return f"{(ratio - 1) * 100:+.1f}%"


def as_ratio(ratio: float) -> str:
    """1.25 -> "1.250"; past ten times, "over 10"."""
    return f"over {LARGEST_SHOWN:g}" if ratio > LARGEST_SHOWN else f"{ratio:.3f}"
