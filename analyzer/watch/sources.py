"""A run directory followed while it is written: one live reader per file, merged into a Run on demand.

Each file the format registry claims (``ingest.formats.sniff``) gets a live reader that consumes only
the bytes appended since the last poll (:mod:`analyzer.watch.tail`):

- console log: the console-log parser is kept alive and fed whole lines as they arrive; a snapshot of
  it (its rows copied, so feeding can go on; a validation block still being printed left out) is the
  log's Contribution;
- TensorBoard event file: complete TFRecord records only (a record half written is read again at the
  next poll), decoded with TensorBoard's own protobuf classes, then combined as ``report`` does;
- summary.csv: its complete lines are kept in memory and re-read from memory when rows arrive (the
  file is read once; a 1,000-epoch summary.csv is ~100 KB);
- args.yaml: small and written once, so read again whenever its size or mtime changes.

Files are followed by identity (device, inode): a log the user renames keeps its reader; a log
truncated or replaced under the same path is read on as a continuation (``LiveConsoleLog``), and a copy
of a followed log (``copytruncate``) is recognised by its first bytes and not read twice, so a restart
or a rotation neither loses nor doubles a record. Nothing is ever written into the run directory.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest.contribution import Contribution
from mnv4_postmortem.analyzer.ingest.formats import Format, by_name, sniff
from mnv4_postmortem.analyzer.model import IngestError, IngestIssue, Run, SourceRef
from mnv4_postmortem.analyzer.watch.tail import Chunk, Tail

HEAD_SIZE = 64 * 1024           # what the format registry sniffs
# Two logs whose first 256 bytes agree are one log and its copy: timm's start-up lines carry the model,
# its parameter count and the data config, which two different runs do not print identically so far down.
_SAME_HEAD = 256
MAX_DEPTH = 3                   # run dirs nest event files a level or two down (tb/, train/)
# Files no reader wants (checkpoints, images): never opened, so a 5 GB checkpoint costs nothing.
SKIPPED_SUFFIXES = (".pth", ".tar", ".pt", ".ckpt", ".safetensors", ".bin", ".png", ".jpg", ".npz", ".pkl")


class LiveSource(Protocol):
    """One followed file."""

    rel: str

    def poll(self) -> bool:
        """Read what was appended; True when something new was taken in."""

    def progress(self) -> tuple[Any, ...]:
        """What the reader has seen that a diagnosis depends on (epochs, first updates); compared between polls."""

    def contributions(self) -> list[Contribution]:
        """What was read so far, as the merge takes it."""


# --------------------------------------------------------------------------------------------- console log


class LiveConsoleLog:
    """A console log, parsed as it grows by one live parser.

    A truncated or replaced file is read on by the same parser, as a continuation of one stream: after
    ``logrotate copytruncate`` the writer goes on where it was (an eval block can straddle the cut), and
    a run restarted with ``>`` prints timm's start-up lines, which the parser already treats as a new
    segment. Line numbers then count on from the earlier contents (said once, as an issue).
    """

    def __init__(self, path: Path, rel: str):
        self.path, self.rel = path, rel
        self.tail = Tail(path)
        self.parser = self._new_parser()
        self.lines_fed = 0
        self.restarts = 0
        self._cached: Contribution | None = None
        self.first_bytes = b""      # the start of the file as first read (to recognise a copy of it)

    def _new_parser(self) -> Any:
        # The console-log parser is fed block by block by design; the watcher keeps one alive
        # instead of re-reading the file from its start at every poll.
        from mnv4_postmortem.analyzer.ingest.console_log import GrowingLog

        return GrowingLog(self.rel)

    def poll(self) -> bool:
        got = False
        while (chunk := self.tail.read()) is not None:
            got = True
            if chunk.restarted:
                self.restarts += 1
                if self.restarts == 1:
                    self.parser.note("the file was truncated or replaced while it was followed; its new contents "
                                     f"are read as a continuation (line numbers after line {self.lines_fed} count on)",
                                     self.lines_fed + 1)
            self._feed(chunk)
            if not chunk.more:
                break
        if got:
            self._cached = None
        return got

    def _feed(self, chunk: Chunk) -> None:
        if not chunk.data:
            return
        # One block of whole lines; lines over MAX_LINE are skipped by the parser with an issue.
        data = chunk.data
        if chunk.offset == 0 and data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        if not self.restarts and len(self.first_bytes) < 4096 and chunk.offset == len(self.first_bytes):
            self.first_bytes += data[:4096 - len(self.first_bytes)]
        self.parser.feed(data, chunk.offset)
        self.lines_fed += data.count(b"\n")

    def progress(self) -> tuple[Any, ...]:
        log = self.parser
        return log.complete_validation_rows, log.last_epoch, log.train_rows > 0, log.events_seen

    def best_metric_seen(self) -> bool:
        """timm's ``*** Best metric`` line after the last Train line (a resumed run prints it at the end
        of every segment; only one with no training after it ends the run)."""
        return self.parser.best_metric_after_training()

    def contributions(self) -> list[Contribution]:
        if not self.lines_fed:
            return []
        if self._cached is None:
            from mnv4_postmortem.analyzer.ingest.console_log.format import log_contribution

            self._cached = log_contribution(self.parser.snapshot(self.lines_fed), self.rel)
        return [self._cached]


# --------------------------------------------------------------------------------------------- summary.csv


class LiveSummaryCsv:
    def __init__(self, path: Path, rel: str):
        self.path, self.rel = path, rel
        self.tail = Tail(path)
        self.buffer = bytearray()
        self.frozen: list[bytes] = []
        self._cached: Contribution | None = None
        self._rows = 0

    def poll(self) -> bool:
        got = False
        while (chunk := self.tail.read()) is not None:
            got = True
            if chunk.restarted and self.buffer:
                self.frozen.append(bytes(self.buffer))
                self.buffer = bytearray()
            self.buffer += chunk.data
            if not chunk.more:
                break
        if got:
            self._cached = None
            self._rows = self.buffer.count(b"\n")
        return got

    def progress(self) -> tuple[Any, ...]:
        return len(self.frozen), self._rows

    def contributions(self) -> list[Contribution]:
        if not self.buffer and not self.frozen:
            return []
        if self._cached is None:
            from mnv4_postmortem.analyzer.ingest.summary_csv import parse_summary_stream, summary_contribution

            # A file replaced under the same name (rare: timm appends): its earlier rows come first,
            # as if the file had been appended to, which is how the parser reads a restart.
            data = b"".join([*self.frozen, bytes(self.buffer)])
            self._cached = summary_contribution(parse_summary_stream(io.BytesIO(data), self.rel))
        return [self._cached]


# --------------------------------------------------------------------------------------------- args.yaml


class LiveWholeFile:
    """A small file (args.yaml, a W&B config) parsed whole whenever its size or mtime changes."""

    def __init__(self, path: Path, rel: str, fmt: Format):
        self.path, self.rel, self.fmt = path, rel, fmt
        self.stamp: tuple[int, int] | None = None
        self.result: Contribution | None = None
        self.issue: IngestIssue | None = None

    def poll(self) -> bool:
        try:
            stat = self.path.stat()
        except OSError:
            return False
        stamp = (stat.st_size, stat.st_mtime_ns)
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        try:
            self.result, self.issue = self.fmt.parse(self.path, self.rel), None
        except IngestError as exc:      # half written: the next change is read again
            self.result, self.issue = None, IngestIssue(exc.source or SourceRef(self.rel), exc.message, "error")
        return True

    def progress(self) -> tuple[Any, ...]:
        return (self.stamp,)

    def contributions(self) -> list[Contribution]:
        return [self.result] if self.result is not None else []


# --------------------------------------------------------------------------------------------- TensorBoard

_LENGTH = struct.Struct("<Q")
_RECORD_OVERHEAD = 16           # u64 length, u32 length CRC, data, u32 data CRC


def complete_records(data: bytes) -> int:
    """Length of the complete TFRecord records at the start of ``data`` (a partial one is left)."""
    return _frame_walk(data)[0]


def _record_count(data: bytes) -> int:
    return _frame_walk(data)[1]


def _frame_walk(data: bytes) -> tuple[int, int]:
    """Bytes and number of the whole records at the start of ``data``, by their length fields alone (the
    record reader, ``ingest.tensorboard.scan_event_chunk``, checks them)."""
    pos = count = 0
    while pos + 12 <= len(data):
        (length,) = _LENGTH.unpack_from(data, pos)
        end = pos + _RECORD_OVERHEAD + length
        if end > len(data):
            break
        pos, count = end, count + 1
    return pos, count


class LiveEventFile:
    """One event file: complete records decoded as they arrive, kept as rows of ``read_event_file``'s
    frame (tag, step, wall_time, value, file, record), so the TensorBoard format combines them as usual."""

    def __init__(self, path: Path, rel: str):
        self.path, self.rel = path, rel
        self.tail = Tail(path, complete_records)
        self.columns: dict[str, list] = {k: [] for k in ("tag", "step", "wall_time", "value", "record")}
        self.records = 0
        self.issues: list[IngestIssue] = []

    def poll(self) -> bool:
        got = False
        while (chunk := self.tail.read()) is not None:
            got = True
            if chunk.restarted:
                self.records = 0     # a rewritten file: its rows replace the old ones at combine time
                for values in self.columns.values():
                    values.clear()
            self._decode(chunk)
            if not chunk.more:
                break
        return got

    def _decode(self, chunk: Chunk) -> None:
        from mnv4_postmortem.analyzer.ingest.tensorboard import scan_event_chunk

        frame, issues = scan_event_chunk(chunk.data, self.rel, self.records, chunk.offset)
        self.issues.extend(issues)
        for key in self.columns:
            self.columns[key].extend(frame[key].tolist())
        self.records += _record_count(chunk.data)

    def progress(self) -> tuple[Any, ...]:
        steps = self.columns["step"]
        return self.records > 0, len(steps), steps[-1] if steps else None

    def part(self) -> tuple[str, pd.DataFrame, list[IngestIssue]]:
        frame = pd.DataFrame({
            "tag": pd.Series(self.columns["tag"], dtype=object),
            "step": np.asarray(self.columns["step"], dtype=np.int64),
            "wall_time": np.asarray(self.columns["wall_time"], dtype=np.float64),
            "value": np.asarray(self.columns["value"], dtype=np.float64),
            "file": self.rel,
            "record": np.asarray(self.columns["record"], dtype=np.int64),
        })
        return self.rel, frame, list(self.issues)

    def contributions(self) -> list[Contribution]:
        return []   # combined with the run's other event files by LiveRunDir


# --------------------------------------------------------------------------------------------- the directory


@dataclass
class LiveRunDir:
    """Every followed file of one run directory, and the Run they make together."""

    root: Path
    tb_aliases: Any = None
    sources: dict[tuple[int, int], Any] = field(default_factory=dict)       # by file identity
    unclaimed: dict[str, int] = field(default_factory=dict)                 # rel path -> size when sniffed
    issues: list[IngestIssue] = field(default_factory=list)

    def exists(self) -> bool:
        return self.root.exists()

    def poll(self) -> bool:
        """Find new files and read what was appended to every file; True when anything new came in."""
        self._discover()
        changed = False
        for source in list(self.sources.values()):
            changed |= source.poll()
        return changed

    def progress(self) -> tuple[Any, ...]:
        return tuple(sorted((source.rel, source.progress()) for source in self.sources.values()))

    def run_ended(self) -> bool:
        """timm printed ``*** Best metric`` (its last line of a finished run)."""
        return any(isinstance(s, LiveConsoleLog) and s.best_metric_seen() for s in self.sources.values())

    def build_run(self) -> Run | None:
        """The run as read so far; None while nothing usable has arrived."""
        from mnv4_postmortem.analyzer.ingest.merge import merge_contributions

        contributions: list[Contribution] = []
        issues = list(self.issues)
        events = [s for s in self.sources.values() if isinstance(s, LiveEventFile)]
        for source in self.sources.values():
            for contribution in source.contributions():
                issues.extend(contribution.issues)
                contributions.append(contribution)
            if isinstance(source, LiveWholeFile) and source.issue is not None:
                issues.append(source.issue)
        if events:
            tensorboard = by_name("tensorboard")
            try:
                parts = [Contribution(format="tensorboard", sources=(), payload=s.part()) for s in events]
                combined = tensorboard.combine(parts, {"tb_aliases": self.tb_aliases})  # type: ignore[attr-defined]
                issues.extend(combined.issues)
                contributions.append(combined)
            except IngestError as exc:
                issues.append(IngestIssue(exc.source or SourceRef("tensorboard"), exc.message, "error"))
        if not contributions:
            return None
        try:
            return merge_contributions(self.root, contributions, issues)
        except IngestError:
            return None         # nothing usable yet (an args.yaml being written, an empty log)

    # -- discovery -------------------------------------------------------------------------------
    def _discover(self) -> None:
        if self.root.is_file():
            self._consider(self.root, self.root.name)
            return
        for path in _walk(self.root):
            self._consider(path, path.relative_to(self.root).as_posix())

    def _consider(self, path: Path, rel: str) -> None:
        try:
            stat = path.stat()
        except OSError:
            return
        identity = (stat.st_dev, stat.st_ino)
        known = self.sources.get(identity)
        if known is not None:
            if known.rel != rel and not Path(self.root, known.rel).exists():
                # renamed by the user (log rotation): same file, same reader, read on from where it was
                known.path = path
                if hasattr(known, "tail"):
                    known.tail.path = path
            return
        if stat.st_size == 0 or self.unclaimed.get(rel) == min(stat.st_size, HEAD_SIZE):
            return
        try:
            with open(path, "rb") as handle:
                head = handle.read(HEAD_SIZE)
        except OSError:
            return
        found = sniff(path.name, head)
        if found is None:
            self.unclaimed[rel] = len(head)      # sniffed again only when its head grows
            return
        self.unclaimed.pop(rel, None)
        fmt = found[0]
        if self._is_copy_of_followed(path, head, rel):
            return
        self.sources[identity] = _reader(fmt, path, rel)

    def _is_copy_of_followed(self, path: Path, head: bytes, rel: str) -> bool:
        """``logrotate copytruncate`` copies a followed log to a new file and truncates the original: the
        copy starts with the bytes already read, so it is not read twice."""
        for source in self.sources.values():
            first = source.first_bytes if isinstance(source, LiveConsoleLog) else b""
            size = min(len(first), len(head))
            if isinstance(source, LiveConsoleLog) and size >= _SAME_HEAD and head[:size] == first[:size]:
                return True
        return False


def _reader(fmt: Format, path: Path, rel: str) -> Any:
    if fmt.name == "console_log":
        return LiveConsoleLog(path, rel)
    if fmt.name == "summary_csv":
        return LiveSummaryCsv(path, rel)
    if fmt.name == "tensorboard":
        return LiveEventFile(path, rel)
    return LiveWholeFile(path, rel, fmt)


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth < MAX_DEPTH:
                    stack.append((Path(entry.path), depth + 1))
            elif entry.is_file() and not entry.name.lower().endswith(SKIPPED_SUFFIXES):
                out.append(Path(entry.path))
    return out
