"""The unit of each accuracy series: percent (timm's own) or a fraction of 1 (many other trainers, and what
people paste). Decided per series at ingest, so that every later stage reads percent and the same run in
either unit gets the same diagnosis (issue 13).

Principles, in order:

1. A value above 1 is a percent: a fraction of 1 cannot exceed it.
2. Every value at or below 1: a percent only when that is what chance looks like for this run, i.e. the
   series sits near 100/C (top-5: 500/C) and not near 1/C, with C the stated ``num_classes`` or else the
   exponential of the eval loss (a model that learned nothing has eval loss ln C). A sibling series of the
   same eval (top-5 beside top-1) above 1 makes the whole eval percent.
3. Otherwise a fraction of 1: a model that learned anything at all scores above 1 % top-1 and 5 % top-5
   unless C is in the hundreds, and then rule 2 sees the chance level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

ACCURACY_MARKERS = ("top1", "top5", "prec1", "prec5", "acc")
PERCENT, FRACTION = "percent", "fraction"
# "near chance": within this factor of the chance value, on a log scale (the chance band of a stuck model
# is a few tenths of a percent wide around 100/C; a factor 2 keeps a 100x unit error far outside it).
CHANCE_FACTOR = 2.0


@dataclass(frozen=True, slots=True)
class UnitDecision:
    column: str
    unit: str       # PERCENT | FRACTION
    reason: str


def is_accuracy(column: str) -> bool:
    name = column.lower()
    return "loss" not in name and any(m in name for m in ACCURACY_MARKERS)


def _finite(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
    return values[np.isfinite(values)]


def _sibling(column: str) -> str | None:
    for a, b in (("top1", "top5"), ("top5", "top1"), ("prec1", "prec5"), ("prec5", "prec1")):
        if a in column:
            return column.replace(a, b)
    return None


def _classes(frame: pd.DataFrame, column: str, num_classes: int | None) -> tuple[float | None, str]:
    if num_classes and num_classes >= 2:
        return float(num_classes), f"num_classes {num_classes}"
    loss_column = column.replace("top1", "loss").replace("top5", "loss")
    for name in (loss_column, "eval_loss"):
        if name in frame.columns and name != column:
            losses = _finite(frame, name)
            if len(losses):
                median = float(np.median(losses))
                if 0.5 < median < 12:
                    return math.exp(median), f"C ~ e^{median:.2f} from the eval loss"
    return None, ""


def _near(value: float, target: float) -> bool:
    return value > 0 and target > 0 and abs(math.log(value / target)) <= math.log(CHANCE_FACTOR)


def decide(frame: pd.DataFrame, column: str, num_classes: int | None) -> UnitDecision | None:
    values = _finite(frame, column)
    if not len(values):
        return None
    if values.max() > 1.0 + 1e-9:
        return UnitDecision(column, PERCENT, f"values up to {values.max():.4g} (above 1)")
    sibling = _sibling(column)
    if sibling and sibling in frame.columns and len(_finite(frame, sibling)) and _finite(frame, sibling).max() > 1.0 + 1e-9:
        return UnitDecision(column, PERCENT, f"{sibling} of the same eval goes above 1")
    if values.max() <= 0:
        return UnitDecision(column, PERCENT, "all zero: the unit cannot be told, read as timm's percent")
    classes, source = _classes(frame, column, num_classes)
    if classes is not None:
        k = 5.0 if "5" in column else 1.0
        chance_percent = min(100.0, 100.0 * k / classes)
        median = float(np.median(values))
        if _near(median, chance_percent) and not _near(median, chance_percent / 100.0):
            return UnitDecision(column, PERCENT, f"values at or below 1 sit at chance in percent (100/C with {source})")
    return UnitDecision(column, FRACTION, f"every value at or below 1 (max {values.max():.4g}): a fraction of 1, "
                        "read as percent x100")


def normalize_accuracy(frame: pd.DataFrame, num_classes: int | None) -> tuple[pd.DataFrame, dict[str, UnitDecision]]:
    """The epoch frame with every fraction-of-1 accuracy series scaled to percent, and each series' decision."""
    decisions: dict[str, UnitDecision] = {}
    out = frame
    for column in [c for c in frame.columns if is_accuracy(str(c))]:
        decision = decide(frame, str(column), num_classes)
        if decision is None:
            continue
        decisions[str(column)] = decision
        if decision.unit == FRACTION:
            if out is frame:
                out = frame.copy()
            out[column] = pd.to_numeric(frame[column], errors="coerce") * 100.0
    return out, decisions


def units_summary(decisions: Mapping[str, UnitDecision]) -> str:
    """One line for inspect and evidence: ``eval_top1: fraction of 1 (why); eval_top5: percent (why)``."""
    words = {PERCENT: "percent", FRACTION: "fraction of 1"}
    return "; ".join(f"{d.column}: {words[d.unit]} ({d.reason})" for d in decisions.values())


__all__ = ["FRACTION", "PERCENT", "UnitDecision", "decide", "is_accuracy", "normalize_accuracy", "units_summary"]
