"""A timm version as the ingest knows it: a range ``low..high`` (either end open).

A run rarely says its exact timm version. The console log's messages and number formats narrow it to
a range (``">=1.0.23"``, ``"0.9.0-1.0.7"``), the keys of an args.yaml give a lower bound (train.py dumps
every argparse key, and some keys arrived in known tags), and summary.csv's columns give a coarse
range. :class:`TimmVersion` is the one type for all of these; this module is the only place a version
string is parsed. Every later stage asks it questions (``bounds``, ``era``) instead of reading text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

__all__ = ["ERAS", "HEAD_ERA", "TimmVersion", "era_of", "narrowest", "version_from_args"]

Parts = tuple[int, ...]

# The columns of the defaults table (defaults.py): the tag each column was read from, and the first
# version it covers. A version between two tags gets the column of the newest tag at or below it.
ERAS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("0.1.1", (0, 0, 0)),
    ("0.4.12", (0, 2, 0)),
    ("0.5.4", (0, 5, 0)),
    ("0.6.13", (0, 6, 0)),
    ("0.8.2dev0", (0, 8, 0)),
    ("0.9.0", (0, 9, 0)),
    ("0.9.16", (0, 9, 16)),
    ("1.0.13", (1, 0, 13)),
    ("1.0.23", (1, 0, 23)),
    ("HEAD", (1, 0, 29)),
)
HEAD_ERA = ERAS[-1][0]

# args.yaml keys whose first appearance tells the era of a run without a known timm version, newest
# first (timm-formats.md §9, "First tag containing selected args"): the era column they belong to.
_ERA_MARKERS: tuple[tuple[str, str], ...] = (
    ("val_interval", "1.0.23"),
    ("model_dtype", "1.0.13"),
    ("model_ema_warmup", "0.9.16"),
    ("grad_accum_steps", "0.9.0"),
    ("lr_base", "0.8.2dev0"),
    ("layer_decay", "0.6.13"),
    ("jsd_loss", "0.5.4"),
    ("jsd", "0.4.12"),
    ("num_gpu", "0.1.1"),
)

# An upper bound with fewer than three parts covers the whole series: "0.8" means any 0.8.x.
_SERIES_END = 10**9

# ">=1.0.23", "<=0.4.12", "0.9.0-1.0.7", "0.5-0.8", "v0.6.13", "0.8.2dev0", "1.0.29.dev0",
# and summary.csv family names such as "v0.8.2+ (with lr)" or "v0.2-v0.6" ("+" = and later;
# words after a space are a comment).
_VERSION = re.compile(
    r"\s*(?P<op>[<>]=?|==)?\s*v?(?P<low>\d+(?:\.\d+)+)[^\s+\-]*"
    r"(?:(?P<plus>\+)|\s*-\s*v?(?P<high>\d+(?:\.\d+)+)[^\s+]*)?"
    r"(?:\s.*)?",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class TimmVersion:
    """timm versions from ``low`` to ``high`` (inclusive, as written: ``(0, 8)`` means any 0.8.x at
    the top); None is an open end. Build one with :meth:`parse` or :meth:`between`."""

    low: Parts | None = None
    high: Parts | None = None

    @classmethod
    def parse(cls, text: Any) -> TimmVersion | None:
        """A version range from its text; None when ``text`` names no version."""
        if isinstance(text, TimmVersion):
            return text
        if not isinstance(text, str):
            return None
        match = _VERSION.fullmatch(text)
        if match is None:
            return None
        low = _parts(match["low"])
        op = match["op"] or ""
        if match["high"]:
            return cls(low, _parts(match["high"]))
        if match["plus"] or op.startswith(">"):
            return cls(low, None)
        if op.startswith("<"):
            return cls(None, low)
        return cls(low, low)

    @classmethod
    def between(cls, low: Parts | None, high: Parts | None) -> TimmVersion | None:
        return None if low is None and high is None else cls(low, high)

    def bounds(self) -> tuple[Parts | None, Parts | None]:
        """Lowest and highest version allowed, for comparison with tuples such as ``(0, 9, 16)``."""
        return self.low, None if self.high is None else _upper(self.high)

    def at_least(self, version: Parts) -> bool:
        """True when every version of the range is >= ``version``."""
        return self.low is not None and self.low >= version

    def below(self, version: Parts) -> bool:
        """True when every version of the range is < ``version``."""
        high = self.bounds()[1]
        return high is not None and high < version

    @property
    def era(self) -> str:
        """The defaults-table column (see :data:`ERAS`) of the range's lowest known version."""
        first = self.low if self.low is not None else self.high
        return _era_of_parts(first) if first is not None else HEAD_ERA

    def narrowed_by(self, other: TimmVersion | None) -> TimmVersion:
        """The intersection with ``other``; ``self`` when they contradict (the first source is trusted)."""
        if other is None:
            return self
        lows = [v for v in (self.low, other.low) if v is not None]
        highs = [v for v in (self.high, other.high) if v is not None]
        # On a tie the shorter spelling wins ("0.2" over "0.2.0": the same bound, as the source wrote it).
        low = max(lows, key=lambda v: (_lower(v), -len(v))) if lows else None
        high = min(highs, key=_upper) if highs else None
        if low is not None and high is not None and _lower(low) > _upper(high):
            return self
        return TimmVersion(low, high)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return _text(self.low) if self.low == self.high else f"{_text(self.low)}-{_text(self.high)}"
        if self.low is not None:
            return f">={_text(self.low)}"
        return f"<={_text(self.high)}" if self.high is not None else "unknown"


def era_of(version: TimmVersion | str | None) -> str:
    """The defaults-table column for a version (HEAD when unknown)."""
    parsed = TimmVersion.parse(version)
    return parsed.era if parsed is not None else HEAD_ERA


def version_from_args(args: Mapping[str, Any] | None) -> TimmVersion | None:
    """A lower bound from the newest era-marking key an args.yaml has; None if it has none."""
    for key, column in _ERA_MARKERS:
        if args and key in args:
            return TimmVersion(dict(ERAS)[column], None)
    return None


def narrowest(candidates: Iterable[TimmVersion | None]) -> TimmVersion | None:
    """Intersect versions in order of reliability; one that contradicts those before it is ignored."""
    result: TimmVersion | None = None
    for candidate in candidates:
        if candidate is None:
            continue
        result = candidate if result is None else result.narrowed_by(candidate)
    return result


def _parts(text: str) -> Parts:
    return tuple(int(part) for part in text.split("."))


def _lower(version: Parts) -> Parts:
    return version + (0,) * (3 - len(version))


def _upper(version: Parts) -> Parts:
    return version + (_SERIES_END,) * (3 - len(version))


def _text(version: Parts) -> str:
    return ".".join(str(part) for part in version)


def _era_of_parts(version: Parts) -> str:
    column = ERAS[0][0]
    for name, first in ERAS:
        if _lower(version) >= first:
            column = name
    return column
