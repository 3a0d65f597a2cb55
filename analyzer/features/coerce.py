"""args.yaml is user input: every value may be missing, a string, a list or junk. These never raise."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def as_float(value: Any) -> float | None:
    """A finite float, or None (booleans are not numbers here)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def truthy(value: Any) -> bool:
    """A flag from args.yaml: real booleans and numbers, or "true"/"yes"/"on"/"1"; anything else is False."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return bool(value) and not math.isnan(float(value))
    return False
