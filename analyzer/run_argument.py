"""What a RUN argument names: a run folder or file, or, for the bare string ``-`` only, stdin.

``Path("./-")`` and ``Path("-")`` are equal and both print as ``-``, so stdin cannot be recognised
from a ``Path``: a command line argument stays a ``str`` when it is exactly ``-`` and becomes a
``Path`` otherwise (``cli/app.py``'s ``RUN_ARGUMENT``), and ``Path("-")`` is the folder named ``-``.
Kept free of imports so that the command line can use it before the analysis stack loads.
"""

from __future__ import annotations

from pathlib import Path

STDIN_ARGUMENT = "-"


def is_stdin(path: Path | str) -> bool:
    """True only for the bare string ``-``."""
    return isinstance(path, str) and path == STDIN_ARGUMENT
