"""A column of line references (``SourceRef(path, line=N)``) held as two integer arrays.

``Run.epoch_refs`` gives every epoch value its :class:`SourceRef`. A file with a million epoch rows
(a ``summary.csv`` of per-step rows) would need a million ref objects per column, which costs more
than reading the file. This pandas extension array holds the file (a small table of paths) and the
line of each cell instead, and builds a ``SourceRef`` only when a cell is read. To every reader it is
the object column it stands for: a cell is a ``SourceRef`` equal to the one that would have been
stored, and a missing cell is NaN, as in an object column that ``reindex`` filled.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray, ExtensionDtype, register_extension_dtype, take

from mnv4_postmortem.analyzer.model import SourceRef

__all__ = ["LineRefArray", "LineRefDtype"]


@register_extension_dtype
class LineRefDtype(ExtensionDtype):
    name = "mnv4_line_ref"
    type = SourceRef
    na_value = np.nan
    kind = "O"

    @classmethod
    def construct_array_type(cls) -> type[LineRefArray]:
        return LineRefArray


class LineRefArray(ExtensionArray):
    """``paths[code[i]]`` and ``line[i]`` for each cell; ``code[i] == -1`` is a missing cell."""

    def __init__(self, paths: Sequence[str], code: np.ndarray, line: np.ndarray):
        self._paths = tuple(paths)
        self._code = np.asarray(code, dtype=np.int32)
        self._line = np.asarray(line, dtype=np.int64)

    @classmethod
    def of_file(cls, path: str, lines: np.ndarray) -> LineRefArray:
        lines = np.asarray(lines, dtype=np.int64)
        return cls((path,), np.zeros(len(lines), np.int32), lines)

    # -- what pandas needs ------------------------------------------------------------------------
    @property
    def dtype(self) -> LineRefDtype:
        return LineRefDtype()

    def __len__(self) -> int:
        return len(self._code)

    @property
    def nbytes(self) -> int:
        return self._code.nbytes + self._line.nbytes

    def _ref(self, k: int) -> Any:
        code = int(self._code[k])
        if code < 0:
            return np.nan
        line = int(self._line[k])
        return SourceRef(self._paths[code], line=line or None)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, (int, np.integer)):
            return self._ref(int(item))
        item = pd.api.indexers.check_array_indexer(self, item)
        return LineRefArray(self._paths, self._code[item], self._line[item])

    def __iter__(self):
        for k in range(len(self)):
            yield self._ref(k)

    def isna(self) -> np.ndarray:
        return self._code < 0

    def take(self, indices: Sequence[int], *, allow_fill: bool = False, fill_value: Any = None) -> LineRefArray:
        if allow_fill and fill_value is not None and not (isinstance(fill_value, float) and np.isnan(fill_value)):
            raise ValueError("a line-ref column can only be filled with NaN")
        code = take(self._code, indices, allow_fill=allow_fill, fill_value=-1)
        line = take(self._line, indices, allow_fill=allow_fill, fill_value=0)
        return LineRefArray(self._paths, code, line)

    def copy(self) -> LineRefArray:
        return LineRefArray(self._paths, self._code.copy(), self._line.copy())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(len(self), dtype=object)
        out[:] = list(self)
        return out

    def __eq__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return np.asarray(self) == (np.asarray(other) if isinstance(other, ExtensionArray) else other)

    @classmethod
    def _from_sequence(cls, scalars: Sequence[Any], *, dtype: Any = None, copy: bool = False) -> LineRefArray:
        paths: dict[str, int] = {}
        code, line = [], []
        for ref in scalars:
            if isinstance(ref, SourceRef) and ref.record is None and ref.offset is None:
                code.append(paths.setdefault(ref.path, len(paths)))
                line.append(ref.line or 0)
            elif ref is None or (isinstance(ref, float) and np.isnan(ref)):
                code.append(-1)
                line.append(0)
            else:
                raise TypeError(f"not a line reference: {ref!r}")
        return cls(tuple(paths), np.array(code, np.int32), np.array(line, np.int64))

    @classmethod
    def _from_factorized(cls, values: np.ndarray, original: LineRefArray) -> LineRefArray:
        return cls._from_sequence(values)

    @classmethod
    def _concat_same_type(cls, to_concat: Sequence[LineRefArray]) -> LineRefArray:
        paths: dict[str, int] = {}
        codes, lines = [], []
        for part in to_concat:
            remap = np.array([paths.setdefault(p, len(paths)) for p in part._paths] + [-1], np.int32)
            codes.append(remap[part._code])     # code -1 picks the trailing -1
            lines.append(part._line)
        return cls(tuple(paths), np.concatenate(codes) if codes else np.empty(0, np.int32),
                   np.concatenate(lines) if lines else np.empty(0, np.int64))
