"""Which folders under the given roots are runs.

A run is a folder that directly holds timm output: ``summary.csv``, ``args.yaml`` (or wandb's
``config.yaml``), a console log (any name, recognised by content like ingest does) or TensorBoard event
files. TensorBoard writes one sub-folder per run (``runs/Mar31_16-30-58_host/``), so a folder whose only
timm output is event files is a run of its own. Below a run folder nothing more is searched: ingest reads
the whole folder, nested event files included.

Nothing found is dropped without a word: a folder that cannot be listed (permissions, I/O error) is
returned as a run, because it may hold one, and its analysis row then carries the error; a log-named file
that cannot be read (permissions, a dangling symlink) makes its folder a run for the same reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from mnv4_postmortem.analyzer.ingest.console_log import sniff_console_log

NAMED_MARKERS = frozenset({"summary.csv", "args.yaml", "config.yaml"})
LOG_SUFFIXES = (".log", ".txt", ".out", ".err")
SNIFF_BYTES = 16 * 1024
EVENT_FILE_MARK = "tfevents"


def find_runs(roots: Iterable[Path]) -> list[Path]:
    """Every run folder under ``roots`` once, sorted. A root that is itself a file is a one-file run."""
    found: set[Path] = set()
    for root in roots:
        root = Path(root)
        if root.is_file():
            found.add(root)
            continue
        found.update(_walk(root))
    return sorted(found)


def _walk(root: Path) -> Iterator[Path]:
    seen: set[tuple[int, int]] = set()
    unreadable: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=True, onerror=lambda exc: unreadable.append(exc.filename)):
        yield from (Path(p) for p in unreadable if p is not None)
        unreadable.clear()
        try:
            st = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop: been here
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if is_run_folder(Path(folder), files):
            dirs[:] = []  # ingest reads everything below a run folder
            yield Path(folder)
    yield from (Path(p) for p in unreadable if p is not None)


def is_run_folder(folder: Path, files: Iterable[str]) -> bool:
    for name in files:
        if name in NAMED_MARKERS or EVENT_FILE_MARK in name:
            return True
        if name.endswith(LOG_SUFFIXES) and _looks_like_console_log(folder / name):
            return True
    return False


def _looks_like_console_log(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return sniff_console_log(handle.read(SNIFF_BYTES)) is not None
    except IsADirectoryError:
        return False
    except OSError:
        return True  # cannot tell: listed as a run, whose row says why it could not be read
