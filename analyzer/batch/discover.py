"""Which folders under the given roots are runs.

A run is a folder that directly holds a file some registered input format claims (``ingest/formats.py``:
timm's ``summary.csv``, ``args.yaml``, console logs and event files, and the other trainers' files), asked
of the registry exactly as ingest asks it (name and first bytes), so a new format is found here with no
change. TensorBoard writes one sub-folder per run (``runs/Mar31_16-30-58_host/``), so a folder whose only
output is event files is a run of its own. Below a run folder nothing more is searched: ingest reads
the whole folder, nested event files included.

Nothing found is dropped without a word: a folder that cannot be listed (permissions, I/O error) is
returned as a run, because it may hold one, and its analysis row then carries the error; any file (a
checkpoint apart) that cannot be read (permissions, a dangling symlink) makes its folder a run for the same
reason: every name is sniffed, since a registered format may claim a file by its first bytes alone.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable, Iterator

import mnv4_postmortem.analyzer.ingest.formats as formats  # the registry itself (issue 14), not ingest's load_run
from mnv4_postmortem.analyzer.ingest.discover import CHECKPOINT_SUFFIXES, SNIFF_BYTES


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
    """True when a registered format claims one of ``files`` (checkpoints are only noted by ingest, never a run)."""
    return any(formats.owns_name(name) or (not name.endswith(CHECKPOINT_SUFFIXES) and _claimed(folder / name))
               for name in files)


def _claimed(path: Path) -> bool:
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block open() forever
            return False
        with open(path, "rb") as handle:
            return formats.sniff(path.name, handle.read(SNIFF_BYTES)) is not None
    except IsADirectoryError:
        return False
    except OSError:
        return True  # cannot tell: listed as a run, whose row says why it could not be read
