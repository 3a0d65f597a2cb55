"""Following one growing file: new bytes only, a file replaced or truncated noticed, nothing written.

A :class:`Tail` remembers which file it read (device and inode) and how far. ``read`` returns the
bytes appended since the last call, cut at the last complete unit (a line for text, a record for
TensorBoard, decided by the caller's ``complete`` function); the incomplete rest is read again at
the next poll, so a half-written line or record is never parsed. When the path now names another
file (a log rotated by the user, a run restarted with ``>``) or the file got shorter than what was
read (truncated in place), ``read`` says so with ``restarted`` and starts from byte 0 of the new file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# One poll reads at most this much of one file: a 1 GB log that appears at once is taken in steps,
# so the watcher's memory stays bounded and every step still ends on a complete line.
MAX_READ = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one poll found in a file."""

    data: bytes          # complete units only (may be empty)
    offset: int          # file offset of data[0]
    restarted: bool      # the path names a new file, or the file was truncated: data starts at byte 0
    more: bool = False   # more complete data is waiting (MAX_READ reached)


def last_line_end(data: bytes) -> int:
    """Length of the complete lines at the start of ``data`` (up to and including the last newline)."""
    return data.rfind(b"\n") + 1


class Tail:
    """The read position in one file, by identity, so that rotation and truncation are seen."""

    def __init__(self, path: Path, complete: Callable[[bytes], int] = last_line_end):
        self.path = path
        self.complete = complete
        self.identity: tuple[int, int] | None = None
        self.offset = 0

    def read(self) -> Chunk | None:
        """The complete units appended since the last read; None when the file is gone or unchanged."""
        try:
            with open(self.path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                identity = (stat.st_dev, stat.st_ino)
                restarted = self.identity is not None and (identity != self.identity or stat.st_size < self.offset)
                if restarted or self.identity is None:
                    self.identity, self.offset = identity, 0
                if stat.st_size == self.offset and not restarted:
                    return None
                handle.seek(self.offset)
                raw = handle.read(MAX_READ)
        except OSError:
            return None     # not there (yet), or unreadable for now: the next poll tries again
        used = self.complete(raw)
        chunk = Chunk(raw[:used], self.offset, restarted, more=len(raw) == MAX_READ and used > 0)
        self.offset += used
        return chunk if (used or restarted) else None
