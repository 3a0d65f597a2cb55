"""GitHub-flavoured Markdown: the report to paste into an issue, and the escaping every Markdown output uses."""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_text(value: object) -> str:
    """Inline text that renders as itself on GitHub: HTML characters as entities (so raw HTML in a run name
    never becomes markup), Markdown punctuation backslash-escaped, newlines as spaces."""
    text = html.escape(str(value), quote=False).replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_cell(value: object) -> str:
    """A table cell: like :func:`md_text` (``|`` is escaped there too, so cells never split)."""
    return md_text("" if value is None else value)
