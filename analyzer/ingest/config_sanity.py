"""Configuration values that no training run can have: ingest warnings, with file and line.

An args file is read as written, but a value outside the range its meaning allows (an EMA decay of
1.5, a batch of -32, a negative learning rate or epoch count) says the file was edited by hand,
corrupted or produced by something else, and every rule that reads that value would reason from
nonsense. Each range below follows from what the argument *is* in timm's ``train.py`` (a
probability, a count, a rate), not from what runs usually use: a huge but possible LR is left to the
rules. ``None`` (timm's "not set") and absent keys are never flagged.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from mnv4_postmortem.analyzer.model import IngestIssue, SourceRef

Check = tuple[Callable[[float], bool], str, bool]   # (allowed, what the range is, must be a whole number)

_NON_NEGATIVE: Check = (lambda x: x >= 0, "a rate or amount, so at least 0", False)
_POSITIVE_COUNT: Check = (lambda x: x >= 1, "a count, so a whole number of at least 1", True)
_NON_NEGATIVE_COUNT: Check = (lambda x: x >= 0, "a count, so a whole number of at least 0", True)
_PROBABILITY: Check = (lambda x: 0 <= x <= 1, "a probability, so within [0, 1]", False)
_DROP_RATE: Check = (lambda x: 0 <= x < 1, "a drop rate, so within [0, 1) (1 drops everything)", False)

#: timm train.py argument -> the range its meaning allows.
RANGES: Mapping[str, Check] = {
    # an exponential moving average keeps decay x the old weights: 1 never moves, above 1 diverges
    "model_ema_decay": (lambda x: 0 <= x < 1, "an EMA decay, so within [0, 1)", False),
    "batch_size": _POSITIVE_COUNT,
    "validation_batch_size": _POSITIVE_COUNT,
    "grad_accum_steps": _POSITIVE_COUNT,
    "num_classes": _POSITIVE_COUNT,
    "epochs": _NON_NEGATIVE_COUNT,
    "warmup_epochs": _NON_NEGATIVE_COUNT,
    "cooldown_epochs": _NON_NEGATIVE_COUNT,
    "patience_epochs": _NON_NEGATIVE_COUNT,
    "workers": _NON_NEGATIVE_COUNT,
    "lr": _NON_NEGATIVE,
    "lr_base": _NON_NEGATIVE,
    "min_lr": _NON_NEGATIVE,
    "warmup_lr": _NON_NEGATIVE,
    "weight_decay": _NON_NEGATIVE,
    "clip_grad": _NON_NEGATIVE,
    "mixup": _NON_NEGATIVE,
    "cutmix": _NON_NEGATIVE,
    "decay_epochs": (lambda x: x > 0, "an interval in epochs, so above 0", False),
    "momentum": _PROBABILITY,
    "mixup_prob": _PROBABILITY,
    "mixup_switch_prob": _PROBABILITY,
    "reprob": _PROBABILITY,
    "smoothing": _DROP_RATE,
    "drop": _DROP_RATE,
    "drop_path": _DROP_RATE,
    "drop_block": _DROP_RATE,
}


def impossible_values(args: Mapping[str, Any], line_of: Mapping[str, int], shown: str) -> list[IngestIssue]:
    """One warning per argument whose value is outside the range its meaning allows."""
    issues = []
    for key, (allowed, what, whole) in RANGES.items():
        if key not in args or args[key] is None:
            continue
        problem = _problem(args[key], allowed, whole)
        if problem:
            issues.append(IngestIssue(SourceRef(shown, line=line_of.get(key)),
                                      f"{key}: {args[key]!r:.60} is impossible ({problem}; {key} is {what})"))
    return issues


def _problem(value: Any, allowed: Callable[[float], bool], whole: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "not a number"
    number = float(value)
    if not math.isfinite(number):
        return "not a finite number"
    if whole and not number.is_integer():
        return "not a whole number"
    return None if allowed(number) else "out of range"
