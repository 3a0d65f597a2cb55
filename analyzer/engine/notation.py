"""promtool-style expanding notation for the inline series of rule tests.

Tokens are separated by whitespace (or commas):

* ``a+bxn`` -> ``a, a+b, ..., a+n*b`` (n+1 values); ``a-bxn`` steps down; ``axn`` repeats ``a`` n+1 times
* ``_`` -> one missing value (NaN); ``_xn`` -> n missing values (a gap cannot step, as in promtool)
* plain numbers, and the literals ``nan``, ``inf``, ``-inf`` (which expand like numbers: ``nanx2`` is 3 NaNs)

``"6.9-0.25x19"`` is 20 values from 6.9 down by 0.25; ``"0.1x9 4+4x9"`` is ten 0.1s then 4, 8, ..., 40.
"""

from __future__ import annotations

import re

import numpy as np

MAX_VALUES = 1_000_000

_NUMBER = r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf)"
_UNSIGNED = r"(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf)"
_EXPAND = re.compile(rf"(?P<start>{_NUMBER})(?:(?P<op>[+-])(?P<step>{_UNSIGNED}))?x(?P<count>\d+)", re.IGNORECASE)
_SINGLE = re.compile(_NUMBER, re.IGNORECASE)
_GAP = re.compile(r"_(?:x(?P<count>\d+))?")
_SPLIT = re.compile(r"[\s,]+")


class NotationError(ValueError):
    """A token that is not expanding notation; ``position`` is its character offset in the text."""

    def __init__(self, message: str, position: int):
        super().__init__(f"{message} (at character {position})")
        self.position = position


def _tokens(text: str) -> list[tuple[str, int]]:
    tokens, position = [], 0
    for piece in _SPLIT.split(text):
        position = text.index(piece, position) if piece else position
        if piece:
            tokens.append((piece, position))
            position += len(piece)
    return tokens


def _expand(token: str, position: int) -> np.ndarray:
    if gap := _GAP.fullmatch(token):
        count = int(gap["count"]) if gap["count"] else 1
        if count > MAX_VALUES:
            raise NotationError(f"'{token}' expands to more than {MAX_VALUES} values", position)
        return np.full(count, np.nan)
    if single := _SINGLE.fullmatch(token):
        return np.array([float(single.group(0))])
    if match := _EXPAND.fullmatch(token):
        start = float(match["start"])
        step = float(match["step"]) if match["step"] else 0.0
        if match["op"] == "-":
            step = -step
        count = int(match["count"])
        if count + 1 > MAX_VALUES:
            raise NotationError(f"'{token}' expands to more than {MAX_VALUES} values", position)
        if step == 0.0:
            return np.full(count + 1, start)  # also keeps nan/inf starts intact (inf + 0*k is fine, nan too)
        return start + step * np.arange(count + 1, dtype=np.float64)
    raise NotationError(f"'{token}' is not a number, '_', or 'a+bxn' / 'a-bxn' / 'axn'", position)


def parse_series(text: str) -> np.ndarray:
    """Expand ``text`` into a float64 array (NaN for ``_`` and ``nan``)."""
    if not isinstance(text, str):
        raise NotationError(f"expected a string, got {type(text).__name__}", 0)
    parts: list[np.ndarray] = []
    total = 0
    for token, position in _tokens(text):
        values = _expand(token, position)
        total += len(values)
        if total > MAX_VALUES:
            raise NotationError(f"series has more than {MAX_VALUES} values", position)
        parts.append(values)
    if not parts:
        return np.array([], dtype=np.float64)
    return np.concatenate(parts).astype(np.float64, copy=False)


__all__ = ["NotationError", "parse_series"]
