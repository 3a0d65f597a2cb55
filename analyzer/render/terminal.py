"""The one output-sanitizing layer for terminals: data never carries a live control sequence out.

A run's own strings (``args.yaml`` values that end up in a fix command, file names, log lines quoted as
evidence, a run folder's name) are data. Printed raw, an ESC in them is a command to the terminal: an OSC 8
hyperlink whose visible text is not its target, a window-title change, clear-screen, SGR 8 (conceal) hiding
part of a command the user then copies; a bidi override (U+202E) reorders what is shown. So every string
that leaves for a terminal or a text file passes :func:`terminal_safe`, at the few places output leaves
the program (``cli.app.emit`` and ``write_output`` for stdout and ``-o``, ``echo_err`` for stderr, and
:func:`safe_tree` for data a rich console styles).

The escape is ``\\uXXXX``: visible and unambiguous in text, and *lossless* inside JSON strings (JSON reads
``\\u001b`` back as the same character), so one function serves text, Markdown and JSON alike. Newline and
tab are kept (layout); a renderer that needs one line per record flattens newlines itself.
"""

from __future__ import annotations

import io
import re
from typing import Any

from rich.console import Console

# C0 controls but tab and newline (ESC, BEL, backspace, carriage return...), DEL, C1 controls (CSI 0x9b,
# OSC 0x9d: 8-bit forms of ESC [ and ESC ]), and the Unicode format characters that reorder or hide text:
# bidi embeddings/overrides/isolates and marks, line/paragraph separators, zero-width joiners aside.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# A line-oriented output (one run per line) also flattens newlines and tabs inside a value.
UNSAFE_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def terminal_safe(text: str) -> str:
    """``text`` with every control character and bidi control as a visible ``\\uXXXX`` escape."""
    return UNSAFE.sub(_escape, text)


def one_line(text: str) -> str:
    """Like :func:`terminal_safe`, and newlines/tabs too: for a value inside a one-record-per-line output."""
    return UNSAFE_IN_LINE.sub(_escape, str(text))


def safe_tree(value: Any) -> Any:
    """Every string in a nested dict/list structure made :func:`terminal_safe` (for rich-rendered views)."""
    if isinstance(value, str):
        return terminal_safe(value)
    if isinstance(value, dict):
        return {safe_tree(k): safe_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(safe_tree(v) for v in value)
    return value


# A captured console's width when the caller gives none (the runner's console when stderr is not a terminal).
DEFAULT_WIDTH = 160


def text_console(width: int | None) -> Console:
    """A console that captures plain text for a text renderer's tables: no colour, and a printed string's
    ``[bold]`` or ``:emoji:`` stays as written (a run's strings are data, not markup)."""
    return Console(file=io.StringIO(), width=width or DEFAULT_WIDTH, highlight=False, force_terminal=False,
                   color_system=None, markup=False, emoji=False)
