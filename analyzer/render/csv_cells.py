"""CSV cells a spreadsheet reads as data, never as a formula (OWASP "CSV Injection").

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return may be evaluated as a
formula by Excel, LibreOffice or Google Sheets (``@SUM(1+1)*cmd|' /C calc'!A0``). OWASP's remedy: prefix
such a cell with a single quote, which spreadsheets show as text and do not evaluate (the csv module then
quotes the cell where needed).

The rule for numbers: a cell that is a number is left alone. A real number (a Python int or float) is
written as is, so -0.5 stays a negative number; a text cell is left alone only when the whole of it reads
as one number (``-1e-05``, ``+3``, ``-inf``), which every spreadsheet parses as a number and never as a
formula. Anything else starting with one of those characters (``-1+1``, ``-cmd``) gets the quote. The text
also passes the terminal layer (render/terminal.py), since a CSV is read with ``cat`` too.
"""

from __future__ import annotations

from typing import Any

from mnv4_postmortem.analyzer.render.terminal import terminal_safe

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """The value to hand to ``csv.writer``: numbers unchanged, text neutralized."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS) and not _is_number(text):
        text = "'" + text
    return terminal_safe(text)


def _is_number(text: str) -> bool:
    if text != text.strip():
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True
