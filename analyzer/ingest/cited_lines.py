"""Cited lines (not to be confused with ingest/excerpt.py, pasted excerpts on stdin): what a report's appendix shows when a reader follows ``summary.csv:2-13``.

Reads only the lines asked for (streaming, so a 2 GB log costs its first N lines), decodes bytes that are
not UTF-8 with replacement characters, caps the line width, and never raises: an unreadable file gives an
excerpt with ``error`` set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from mnv4_postmortem.analyzer.citations import Citation
from mnv4_postmortem.analyzer.report_facts import Excerpt

MAX_EXCERPT_LINES = 40   # a longer range shows its head and tail
MAX_LINE_CHARS = 400


def read_excerpts(run_dir: Path, citations: Iterable[Citation]) -> tuple[tuple[Citation, Excerpt], ...]:
    """Each cited line range (``first`` set) of ``run_dir`` with its lines, in citation order."""
    return tuple((c, read_excerpt(run_dir, c.path, c.first, c.last)) for c in citations if c.first is not None)


def read_excerpt(run_dir: Path, path: str, first: int, last: int) -> Excerpt:
    """Lines ``first..last`` (1-based, inclusive) of ``run_dir/path``, at most ``MAX_EXCERPT_LINES``."""
    wanted = _wanted(first, last)
    target = Path(path) if Path(path).is_absolute() else Path(run_dir) / path
    if Path(run_dir).is_file():
        target = Path(run_dir).parent / path
    got: list[tuple[int, str]] = []
    try:
        with open(target, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if number > last:
                    break
                if number in wanted:
                    text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                    got.append((number, text[:MAX_LINE_CHARS] + ("…" if len(text) > MAX_LINE_CHARS else "")))
    except OSError as exc:
        return Excerpt(path, first, last, (), f"cannot read: {exc.strerror or exc}")
    return Excerpt(path, first, last, _with_gap(got, first, last))


def _wanted(first: int, last: int) -> set[int]:
    if last - first + 1 <= MAX_EXCERPT_LINES:
        return set(range(first, last + 1))
    half = MAX_EXCERPT_LINES // 2
    return set(range(first, first + half)) | set(range(last - half + 1, last + 1))


def _with_gap(lines: list[tuple[int, str]], first: int, last: int) -> tuple[tuple[int, str], ...]:
    if last - first + 1 <= MAX_EXCERPT_LINES or len(lines) <= MAX_EXCERPT_LINES // 2:
        return tuple(lines)
    half = MAX_EXCERPT_LINES // 2
    skipped = last - first + 1 - MAX_EXCERPT_LINES
    return (*lines[:half], (0, f"… {skipped} lines not shown …"), *lines[half:])
