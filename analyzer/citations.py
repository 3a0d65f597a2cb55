"""Citations: the ``file:first-last`` groups an evidence line's source refs make, in one format.

Ground floor (imports only the standard library and ``model``): the rule engine labels its ``cite()``
output with :func:`label`, the pipeline reads the cited lines for the report's appendix, and renderers
link each label in the evidence text to that excerpt. One format, so the link always finds its text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Iterable

from mnv4_postmortem.analyzer.model import SourceRef

_LINE_REF = re.compile(r"^(?P<path>.+):(?P<line>\d+)$")


@dataclass(frozen=True, slots=True)
class Citation:
    path: str                 # as in the run's SourceRefs (relative to the run directory)
    first: int | None = None  # 1-based lines, inclusive; None for a file cited as a whole (or by record)
    last: int | None = None

    @property
    def label(self) -> str:
        """What the evidence text shows: ``summary.csv:2-13``, ``train.log:6``, ``args.yaml``."""
        name = PurePath(self.path).name
        if self.first is None:
            return name
        return f"{name}:{self.first}" if self.first == self.last else f"{name}:{self.first}-{self.last}"

    @property
    def anchor(self) -> str:
        """An HTML id made only of safe characters."""
        safe = re.sub(r"[^A-Za-z0-9]+", "-", self.path).strip("-") or "source"
        return f"src-{safe}-{self.first or 0}-{self.last or 0}"


def group(refs: Iterable) -> list[Citation]:
    """Refs grouped per file, lines spanned first..last, in first-seen file order."""
    lines: dict[str, list[int]] = {}
    for ref in refs:
        path, line = _split(ref)
        if path is None:
            continue
        bucket = lines.setdefault(path, [])
        if line is not None:
            bucket.append(line)
    return [Citation(path, min(ls), max(ls)) if ls else Citation(path) for path, ls in lines.items()]


def cited_ranges(ref_groups: Iterable[Iterable], limit: int) -> tuple[Citation, ...]:
    """The distinct line ranges cited by each group of refs (grouped as by :func:`group`), first seen first,
    at most ``limit`` of them: what a report's appendix shows."""
    seen: dict[Citation, None] = {}
    for refs in ref_groups:
        for citation in group(refs):
            if citation.first is None or citation in seen:
                continue
            if len(seen) >= limit:
                return tuple(seen)
            seen[citation] = None
    return tuple(seen)


def label(refs: Iterable[SourceRef | str]) -> str:
    """The short text ``cite()`` writes into evidence: the groups' labels, comma-separated."""
    refs = list(refs)
    plain = [r for r in refs if isinstance(r, str)]  # already text: shown as given
    grouped = group(r for r in refs if isinstance(r, SourceRef))
    return ", ".join([c.label for c in grouped] + list(dict.fromkeys(plain)))


def _split(ref) -> tuple[str | None, int | None]:
    """(file, line) of a SourceRef, an evidence ref (``file``/``line``), or a ``path:line`` string."""
    if isinstance(ref, SourceRef):
        return ref.path, ref.line
    if hasattr(ref, "file"):
        return ref.file, getattr(ref, "line", None)
    match = _LINE_REF.match(ref)
    if match:
        return match["path"], int(match["line"])
    return None, None
