"""Markdown to safe HTML for the chat.

Raw HTML in the Markdown is never passed through (``html: False``): a student's text,
a node name from a paste, a log line: all come out as text. Links go through
markdown-it's own scheme check (no ``javascript:``). The only markup that reaches the
page unescaped is the figures this program drew itself (tutor/diagram.py), which are
kept apart from the Markdown and appended after it.
"""
from __future__ import annotations

from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def to_html(markdown: str, figures: list[str] | None = None) -> str:
    html = _MARKDOWN.render(markdown or "")
    for figure in figures or []:
        html += f'<figure class="diagram">{figure}</figure>'
    return html


def with_figures(markdown: str, figures: list[str] | None) -> str:
    """The reply as the API gives it: Markdown, with our own SVG as raw HTML blocks."""
    if not figures:
        return markdown
    return markdown + "".join("\n\n" + figure + "\n" for figure in figures)
