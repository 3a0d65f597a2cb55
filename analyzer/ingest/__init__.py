"""Ingest: a run directory in, one normalized :class:`~mnv4_postmortem.analyzer.model.Run` out.

``load_run(path)`` discovers the files, runs one parser per format (``formats.FORMATS``) and merges
their contributions (``merge.py``). ``load_input("-", stdin=...)`` reads a pasted excerpt instead
(``excerpt.py``). Each parser keeps every good record before a bad one and reports what it skipped
as an ``IngestIssue``; only when nothing usable is left is ``IngestError`` raised.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Mapping

from mnv4_postmortem.analyzer.ingest.merge import load_run
from mnv4_postmortem.analyzer.model import Run
from mnv4_postmortem.analyzer.run_argument import STDIN_ARGUMENT, is_stdin


def load_input(path: Path | str, *, stdin: BinaryIO | None = None, tb_aliases: Mapping[str, str] | None = None) -> Run:
    """``load_run(path)``, or for the bare string ``-`` the excerpt on ``stdin`` (read from memory; nothing
    is written). ``Path("-")`` is the folder named ``-``."""
    if is_stdin(path):
        from mnv4_postmortem.analyzer.ingest.excerpt import load_excerpt, read_stdin
        from mnv4_postmortem.analyzer.model import IngestError

        if stdin is None:
            raise IngestError("'-' reads an excerpt from stdin, but no stdin was given")
        return load_excerpt(read_stdin(stdin))
    return load_run(path, tb_aliases=tb_aliases)


__all__ = ["STDIN_ARGUMENT", "is_stdin", "load_input", "load_run"]
