"""The console-log parser's result types and limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from mnv4_postmortem.analyzer.model import Event, IngestIssue, SourceRef

CHUNK_SIZE = 8 << 20          # bytes read per block: large enough to amortise numpy calls
MAX_LINE = 64 << 10           # a longer line is skipped (timm's longest are a few hundred bytes)
HEAD_SIZE = 64 << 10          # the sample that decides "text or binary"
MAX_WARNINGS = 50             # distinct warning messages kept as events
MAX_LISTED_ISSUES = 20        # per kind of repeated problem; the rest are counted

Version = tuple[int, int, int]  # a timm version, e.g. (1, 0, 12)

# ---------------------------------------------------------------------------------------------
# Public data


@dataclass(frozen=True, slots=True)
class LrCalc:
    """``Learning rate (X) calculated from base learning rate (Y) and [effective ]global batch size (Z) with S scaling.``"""

    lr: float
    lr_base: float
    global_batch: float
    scaling: str
    source: SourceRef


@dataclass(frozen=True, slots=True, eq=False)
class ConsoleLog:
    """A parsed timm console log (see the module docstring for every field's meaning)."""

    path: str
    steps: pd.DataFrame
    evals: pd.DataFrame
    info: Mapping[str, Any]
    info_refs: Mapping[str, SourceRef]
    lr_calc: LrCalc | None
    events: tuple[Event, ...]
    issues: tuple[IngestIssue, ...]
    layout: str | None
    timm_version: str | None
    n_lines: int
    throughput_bug: bool

    @property
    def family(self) -> str:
        """A short description for ``SourceInfo.family``, e.g. ``timm log layout D (>=1.0.23)``."""
        text = "timm log" if self.layout is None else f"timm log layout {self.layout}"
        return f"{text} ({self.timm_version})" if self.timm_version else text


EVAL_COLUMNS: tuple[str, ...] = ("epoch", "pass", "eval_loss", "eval_top1", "eval_top5", "segment", "src_line")
