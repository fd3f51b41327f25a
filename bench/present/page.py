"""One self-contained HTML page from headings, paragraphs, tables and Plotly figures.

plotly.js is inlined once in the page's head, and each figure is a div plus the call that
draws it, so the page works offline and its size grows with the data, not with the number
of charts. Every piece of text that came from a CSV or env.json goes through ``esc``:
a device name holding ``<script>`` is shown, never run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from bench.atomic import write_text_atomic
from bench.present.labels import esc

PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def asset(name: str) -> str:
    """A stylesheet or script of the pages, kept as a file of its own beside this module
    (``bench/present/assets/``) where an editor and a linter can read it, and shipped with
    the package."""
    return (resources.files("bench.present") / "assets" / name).read_text(encoding="utf-8")


STYLE = asset("page.css")


@dataclass
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[object]]
    # per row, a CSS class (`differs`, ...) or ""
    row_classes: Sequence[str] = ()
    numeric: frozenset[int] = frozenset()  # column indexes aligned right

    def html(self) -> str:
        head = "".join(f"<th>{esc(h)}</th>" for h in self.header)
        body = []
        for i, row in enumerate(self.rows):
            css = self.row_classes[i] if i < len(self.row_classes) else ""
            cells = "".join(
                f'<td class="num">{esc(v)}</td>' if j in self.numeric else f"<td>{esc(v)}</td>"
                for j, v in enumerate(row))
            body.append(f'<tr class="{esc(css)}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass
class Links:
    """A list of links to files beside the page: (text, relative path) pairs."""

    items: Sequence[tuple[str, str]]

    def html(self) -> str:
        items = "".join(f'<li><a href="{esc(quote(href))}">{esc(text)}</a></li>'
                        for text, href in self.items)
        return f"<ul>{items}</ul>"


@dataclass
class Details:
    """Blocks folded under a one-line summary that opens them: what most readers skip."""

    summary: str
    blocks: list[str | Table | go.Figure] = field(default_factory=list)


@dataclass
class Section:
    """A heading, then its blocks in order: str is a paragraph, Table a table, Figure a
    chart, Details blocks folded."""

    title: str
    blocks: list[str | Table | go.Figure | Details] = field(default_factory=list)
    anchor: str = ""


def figure_div(fig: go.Figure, div_id: str) -> str:
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config=PLOT_CONFIG, validate=False)


def _block_html(block, chart_number: int) -> str:
    if isinstance(block, (Table, Links)):
        return block.html()
    if isinstance(block, go.Figure):
        return figure_div(block, f"chart-{chart_number}")
    return f'<p class="note">{esc(block)}</p>'


def head_lines(title: str, style: str) -> list[str]:
    """A page's opening up to its stylesheet, a line each; the head is left open for
    plotly.js."""
    return ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            f"<title>{esc(title)}</title>", f"<style>\n{style}</style>"]


def render_page(title: str, sections: Iterable[Section], intro: Sequence[str] = ()) -> str:
    """The whole page; plotly.js goes in once, and only when there is a chart to draw."""
    sections = list(sections)
    parts, nav, count = [], [], 0
    for i, section in enumerate(sections):
        anchor = section.anchor or f"section-{i + 1}"
        nav.append(f'<a href="#{esc(anchor)}">{esc(section.title)}</a>')
        parts.append(f'<h2 id="{esc(anchor)}">{esc(section.title)}</h2>')
        for block in section.blocks:
            inner = block.blocks if isinstance(block, Details) else [block]
            html = []
            for b in inner:
                count += isinstance(b, go.Figure)
                html.append(_block_html(b, count))
            if isinstance(block, Details):
                html = [f"<details><summary>{esc(block.summary)}</summary>", *html,
                        "</details>"]
            parts += html
    intro_html = "".join(f'<p class="note">{esc(p)}</p>' for p in intro)
    return "\n".join([
        *head_lines(title, STYLE),
        f'<script type="text/javascript">{get_plotlyjs()}</script>' if count else "",
        "</head>", "<body>",
        f"<h1>{esc(title)}</h1>", intro_html, f"<nav>{''.join(nav)}</nav>", *parts,
        "</body>", "</html>", ""])


def write_page(path: Path, title: str, sections: Iterable[Section],
               intro: Sequence[str] = ()) -> Path:
    """Render the page and write it atomically: a reader never sees half a report."""
    path = Path(path)
    write_text_atomic(path, render_page(title, sections, intro))
    return path


def figures_of(sections: Iterable[Section]) -> list[go.Figure]:
    blocks = [b for s in sections for block in s.blocks
              for b in (block.blocks if isinstance(block, Details) else [block])]
    return [b for b in blocks if isinstance(b, go.Figure)]
