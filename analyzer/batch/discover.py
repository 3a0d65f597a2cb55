"""Which folders under the given roots are runs.

A run is a folder that directly holds timm output: ``summary.csv``, ``args.yaml`` (or wandb's
``config.yaml``), a console log (any name, recognised by content like ingest does) or TensorBoard event
files. TensorBoard writes one sub-folder per run (``runs/Mar31_16-30-58_host/``), so a folder whose only
timm output is event files is a run of its own. Below a run folder nothing more is searched: ingest reads
the whole folder, nested event files included.
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
    for folder, dirs, files in os.walk(root, followlinks=True):
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
    except OSError:
        return False
