"""Opening a user's input file: the one place that turns OS trouble into IngestError.

Every parser reads through :func:`open_input`, so each gets the same guarantees: a FIFO or
device is refused *before* ``open()`` (opening a FIFO blocks forever), and a missing,
unreadable or vanished file becomes an ``IngestError`` naming the file, never an ``OSError``.
"""

from __future__ import annotations

import stat
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from mnv4_postmortem.analyzer.model import IngestError, SourceRef


@contextmanager
def open_input(path: Path, shown: str) -> Iterator[BinaryIO]:
    """Open ``path`` for binary reading; ``shown`` is the name used in messages."""
    try:
        if not stat.S_ISREG(Path(path).stat().st_mode):
            raise IngestError("not a regular file", SourceRef(shown))
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after the caller's block
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}", SourceRef(shown)) from None
    with handle:
        try:
            yield handle
        except OSError as exc:  # e.g. the file vanished or a disk error mid-read
            raise IngestError(f"cannot read file: {exc.strerror or exc}", SourceRef(shown)) from None
