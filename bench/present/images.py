"""Charts as PNG files, where kaleido (and the Chromium it drives) are installed.

Static images are optional: where they cannot be made, the caller is told what is missing
in one line and the HTML page is written all the same.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from pathlib import Path

import plotly.graph_objects as go


class ImagesUnavailable(Exception):
    """Why no PNG could be written, as one line a user can act on."""


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "chart"


def write_images(figures: Iterable[go.Figure], folder: Path) -> list[Path]:
    if importlib.util.find_spec("kaleido") is None:
        raise ImagesUnavailable("--png needs the kaleido package (pip install kaleido), "
                                "which is not installed")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, fig in enumerate(figures, 1):
        title = fig.layout.title.text or ""
        path = folder / f"{i:02d}-{slug(title.split('<br>')[0])}.png"
        try:
            fig.write_image(path, width=1400, height=fig.layout.height or 500)
        except Exception as exc:  # kaleido reports a missing Chrome in its own exception types
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ImagesUnavailable(f"--png: kaleido could not render ({reason}); it needs a "
                                    "Chrome or Chromium it can find") from None
        paths.append(path)
    return paths
