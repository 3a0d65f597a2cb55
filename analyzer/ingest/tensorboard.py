"""Scalars from TensorBoard event files (``events.out.tfevents.*``), read fast and defensively.

An event file is a sequence of TFRecords::

    uint64  length            (little-endian)
    uint32  masked_crc32c(length bytes)
    bytes   data[length]      (one serialized ``tensorboard.Event`` proto)
    uint32  masked_crc32c(data)

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xA282EAD8 (mod 2**32)``. Record 0 is the
``file_version`` header; a file holding only it (40 bytes from most writers, 88 from recent torch)
is valid and has no scalars. Both CRCs are checked by default, in C (the ``crc32c`` package).

Speed: a scalar log is mostly one tiny record per ``add_scalar`` call, and touching a protobuf
object from Python costs microseconds per record. So the exact byte layout of such a record (a
wall time, a step, one tag and one ``simple_value``) is decoded for all records at once with
numpy; every other record is parsed by protobuf's compiled (upb) backend through TensorBoard's
own ``event_pb2``, which remains the reference (the tests check that both paths agree).

Scalars come in two encodings and both are read:

- ``summary.value[i].simple_value``: TF1 summaries and ``torch.utils.tensorboard`` by default.
- a rank-0 (or one-element) float/double/half ``summary.value[i].tensor`` whose tag carries the
  ``"scalars"`` plugin in ``metadata.plugin_data.plugin_name``: TF2 ``tf.summary.scalar`` and torch's
  ``add_scalar(..., new_style=True)``. TF2 writes the metadata only with a tag's first value in a
  file, so the plugin is remembered per tag for the rest of that file. Tensors of other plugins
  (histograms, text, hparams, ...) are skipped, as are images, audio, graphs and run metadata.

Bad input (see :func:`read_event_file`): a corrupt record is skipped and every good record before
and after it is kept; an :class:`IngestIssue` names the file, the record index and the byte offset
where the bad record starts. A bad payload (data CRC, or a record protobuf rejects, such as a tag
that is not UTF-8) leaves the framing intact; after a broken length field the reader resynchronizes
on the next offset holding a whole record with valid CRCs (both CRCs must match, so a false start
has a chance of about 2**-64). Only a truncated file stops the reading.
A file whose very first record is bad is not an event file: :func:`read_event_file` raises
:class:`IngestError`, which :func:`read_tensorboard` turns into an error-level issue. A length
field is checked against the bytes left in the file before anything is sliced, so a hostile
length never allocates anything. Non-finite values (``nan`` losses) are kept as they are.

Merging (:func:`read_tensorboard`): files are read in the order given (a directory stands for the
event files below it, oldest first by the timestamp in their names). When one ``(tag, step)``
appears more than once, across files (a restarted run writing a new file) or inside one file
(Ultralytics logs its final best-weights validation again at the last epoch's step), the value
with the latest ``wall_time`` wins; on a tie, the later file and then the later record. Nothing
is reported for superseded points: the ``file`` and ``record`` columns say where each survivor
came from.

Canonical metric names (:data:`DEFAULT_ALIASES`). A tag is matched case-insensitively on the full
tag; a tag with no alias keeps its own name in the ``metric`` column. Several tags may map to one
metric (the frame keeps them apart by ``tag``).

============  ===================================================================================
metric        tags
============  ===================================================================================
train_loss    train/loss, train_loss, loss, Loss/train, loss/train, train/loss_epoch,
              train_loss_epoch, training_loss, train/epoch_loss, train-loss
eval_loss     val/loss, val_loss, Loss/val, loss/val, Loss/valid, valid_loss, validation_loss,
              loss/validation, eval/loss, eval_loss, test/loss, test_loss, Loss/test, val/loss_epoch,
              val_loss_epoch
eval_top1     val/acc1, val/top1, val/acc, val_acc, val_acc1, val_top1, val/accuracy, val_accuracy,
              accuracy, acc, acc1, top1, Accuracy/val, Accuracy/valid, Accuracy/test, acc/val,
              metrics/accuracy_top1, eval_top1, eval/top1, eval/acc1, eval/acc, eval_acc,
              eval/accuracy, eval_accuracy, test/acc1, test/top1, test_acc, test/accuracy,
              val/acc_epoch, val_acc_epoch
eval_top5     val/acc5, val/top5, val_acc5, val_top5, acc5, top5, metrics/accuracy_top5, eval_top5,
              eval/top5, eval/acc5, test/acc5, test/top5, Accuracy5/val
lr            learning_rate, lr, lr-AdamW, lr-Adam, lr-SGD, lr-RMSprop, lr-LAMB, lr-LARS, lr/pg0,
              train/lr, train/learning_rate, learning-rate, lr-AdamW/pg1, lr-SGD/pg1, lr-Adam/pg1
train_top1    train/acc1, train/top1, train/acc, train_acc, train_acc1, train_top1, train/accuracy,
              train_accuracy, Accuracy/train, acc/train, train/acc_epoch, train_acc_epoch
train_top5    train/acc5, train/top5, train_acc5, train_top5
grad_norm     grad_norm, train/grad_norm, grad_norm/total, grad_norm/global, grad_2.0_norm_total,
              gradient_norm, grad/norm, train/gradient_norm (per-group ``grad_norm/<group>`` tags keep
              their name; ``detect/gradients.py`` reads both)
============  ===================================================================================

Accuracies are percentages everywhere in the project, but most non-timm scripts log fractions.
So for every tag mapped to a ``*_top1`` / ``*_top5`` metric whose finite values are all within
[0, 1], the values are multiplied by 100. The rule is a heuristic: an accuracy already logged as a
percentage that never rose above 1% (a dead 1000-class run) would be scaled too.
"""

from __future__ import annotations

import math
import mmap
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import crc32c
import numpy as np
import pandas as pd
import yaml
from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2, types_pb2

from mnv4_postmortem.analyzer.ingest.contribution import Contribution
from mnv4_postmortem.analyzer.ingest.files import open_input
from mnv4_postmortem.analyzer.model import IngestError, IngestIssue, SourceKind, SourceRef

__all__ = [
    "DEFAULT_ALIASES",
    "FRAME_COLUMNS",
    "TensorBoardScalars",
    "combine_event_files",
    "load_alias_file",
    "read_event_file",
    "read_tensorboard",
    "resolve_aliases",
    "sniff_event_file",
]

# --------------------------------------------------------------------------------------------
# Aliases
# --------------------------------------------------------------------------------------------

_ALIAS_TABLE: dict[str, tuple[str, ...]] = {
    "train_loss": (
        "train/loss", "train_loss", "loss", "Loss/train", "loss/train", "train/loss_epoch",
        "train_loss_epoch", "training_loss", "train/epoch_loss", "train-loss",
    ),
    "eval_loss": (
        "val/loss", "val_loss", "Loss/val", "loss/val", "Loss/valid", "valid_loss", "validation_loss",
        "loss/validation", "eval/loss", "eval_loss", "test/loss", "test_loss", "Loss/test",
        "val/loss_epoch", "val_loss_epoch",
    ),
    "eval_top1": (
        "val/acc1", "val/top1", "val/acc", "val_acc", "val_acc1", "val_top1", "val/accuracy",
        "val_accuracy", "accuracy", "acc", "acc1", "top1", "Accuracy/val", "Accuracy/valid",
        "Accuracy/test", "acc/val", "metrics/accuracy_top1", "eval_top1", "eval/top1", "eval/acc1",
        "eval/acc", "eval_acc", "eval/accuracy", "eval_accuracy", "test/acc1", "test/top1", "test_acc",
        "test/accuracy", "val/acc_epoch", "val_acc_epoch",
    ),
    "eval_top5": (
        "val/acc5", "val/top5", "val_acc5", "val_top5", "acc5", "top5", "metrics/accuracy_top5",
        "eval_top5", "eval/top5", "eval/acc5", "test/acc5", "test/top5", "Accuracy5/val",
    ),
    "lr": (
        "learning_rate", "lr", "lr-AdamW", "lr-Adam", "lr-SGD", "lr-RMSprop", "lr-LAMB", "lr-LARS",
        "lr/pg0", "train/lr", "train/learning_rate", "learning-rate", "lr-AdamW/pg1", "lr-SGD/pg1",
        "lr-Adam/pg1",
    ),
    "train_top1": (
        "train/acc1", "train/top1", "train/acc", "train_acc", "train_acc1", "train_top1",
        "train/accuracy", "train_accuracy", "Accuracy/train", "acc/train", "train/acc_epoch",
        "train_acc_epoch",
    ),
    "train_top5": ("train/acc5", "train/top5", "train_acc5", "train_top5"),
    # The global L2 norm of all gradients per optimizer step. The built-in trainer writes ``grad_norm``
    # and ``grad_norm/<group>`` (stem, stage0.., head); per-group tags keep their own name. HF Trainer
    # logs ``train/grad_norm``, Lightning's ``grad_norm`` utility ``grad_2.0_norm_total``.
    "grad_norm": (
        "grad_norm", "train/grad_norm", "grad_norm/total", "grad_norm/global", "grad_2.0_norm_total",
        "gradient_norm", "grad/norm", "train/gradient_norm",
    ),
}

#: Lower-cased tag -> canonical metric name. See the module docstring for the table.
DEFAULT_ALIASES: Mapping[str, str] = {
    tag.lower(): metric for metric, tags in _ALIAS_TABLE.items() for tag in tags
}

_PERCENT_METRIC = re.compile(r"_top[15]$")
_MAX_ALIAS_FILE_BYTES = 1 << 20  # an alias table is a few lines; anything this big is not one


def load_alias_file(path: Path) -> dict[str, str]:
    """Read a YAML mapping ``tag: canonical_metric``; keys are lower-cased (matching is case-insensitive).

    An empty file is an empty mapping. Anything else that is not a mapping of non-empty strings
    raises :class:`IngestError` naming the file (and the line, for YAML syntax errors).
    """
    path = Path(path)
    where = SourceRef(str(path))
    try:
        size = path.stat().st_size
        if size > _MAX_ALIAS_FILE_BYTES:
            raise IngestError(f"alias file is {size} bytes; expected a small YAML mapping", where)
        text = path.read_text(encoding="utf-8")
    except IngestError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(f"cannot read alias file: {exc}", where) from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise IngestError(f"alias file is not valid YAML: {exc}", SourceRef(str(path), line=line)) from exc
    if loaded is None:
        return {}
    return _validated_aliases(loaded, where)


def resolve_aliases(extra: Mapping[str, str] | None) -> dict[str, str]:
    """:data:`DEFAULT_ALIASES` with ``extra`` on top (lower-cased tag -> metric); ``extra`` wins."""
    merged = dict(DEFAULT_ALIASES)
    if extra:
        merged.update(_validated_aliases(extra, None))
    return merged


def _validated_aliases(mapping: Any, where: SourceRef | None) -> dict[str, str]:
    if not isinstance(mapping, Mapping):
        raise IngestError(f"aliases must be a mapping of tag -> metric, got {type(mapping).__name__}", where)
    aliases: dict[str, str] = {}
    for tag, metric in mapping.items():
        if not isinstance(tag, str) or not tag or not isinstance(metric, str) or not metric.strip():
            raise IngestError(f"alias {tag!r}: {metric!r} must map a non-empty tag to a non-empty metric name", where)
        aliases[tag.lower()] = metric.strip()
    return aliases


# --------------------------------------------------------------------------------------------
# TFRecord framing
# --------------------------------------------------------------------------------------------

_HEADER = struct.Struct("<QI")  # length, masked crc32c of the 8 length bytes
_FOOTER = struct.Struct("<I")   # masked crc32c of the data
_HEADER_SIZE = _HEADER.size     # 12
_FRAME_OVERHEAD = _HEADER_SIZE + _FOOTER.size  # 16
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_MAX_REMEMBERED_HEADERS = 4096


def _masked_crc32c(data: Any) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


def sniff_event_file(head: bytes) -> bool:
    """True when ``head`` (a file's first bytes, >= 12) starts with a valid TFRecord header.

    A content check, independent of the file name: the length's masked CRC must match, which
    random or text data passes with probability 2**-32.
    """
    if len(head) < _HEADER_SIZE:
        return False
    length, length_crc = _HEADER.unpack_from(head, 0)
    return _masked_crc32c(head[:8]) == length_crc


# --------------------------------------------------------------------------------------------
# One file
# --------------------------------------------------------------------------------------------

#: Columns of :attr:`TensorBoardScalars.frame`; :func:`read_event_file` returns all but ``metric``.
FRAME_COLUMNS: tuple[str, ...] = ("tag", "metric", "step", "wall_time", "value", "file", "record")
_FILE_COLUMNS: tuple[str, ...] = tuple(c for c in FRAME_COLUMNS if c != "metric")

_SCALARS_PLUGIN = "scalars"
# dtype -> (repeated field holding the values, struct format of one element in tensor_content)
_TENSOR_DTYPES: dict[int, tuple[str, str]] = {
    types_pb2.DT_FLOAT: ("float_val", "<f"),
    types_pb2.DT_DOUBLE: ("double_val", "<d"),
    types_pb2.DT_HALF: ("half_val", "<e"),
}


@dataclass(frozen=True, slots=True)
class _BadRecord:
    """The record at byte ``offset`` (record number ``index``) is unusable. ``final``: nothing after it
    could be framed (a truncated file, or no record boundary found after a broken length)."""

    reason: str
    index: int
    offset: int
    final: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class _Scalars:
    """The scalars of one file as columns, one row per summary value, in record order."""

    tags: np.ndarray        # object (str)
    steps: np.ndarray       # int64
    wall_times: np.ndarray  # float64
    values: np.ndarray      # float64
    records: np.ndarray     # int64

    @classmethod
    def empty(cls) -> _Scalars:
        return cls(
            np.empty(0, object), np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64),
            np.empty(0, np.int64),
        )

    def take(self, rows: np.ndarray) -> _Scalars:
        """The rows selected by an index or boolean array."""
        return _Scalars(self.tags[rows], self.steps[rows], self.wall_times[rows], self.values[rows], self.records[rows])

    def frame(self, file: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "tag": pd.Series(self.tags, dtype=str),
                "step": self.steps,
                "wall_time": self.wall_times,
                "value": self.values,
                "file": pd.Series([file] * len(self.tags), dtype=str),
                "record": self.records,
            },
            columns=list(_FILE_COLUMNS),
        )


def _tensor_scalar(value: Any, plugin_of_tag: dict[str, str]) -> float | None:
    """The float in a tensor-encoded scalar summary value, or None for any other tensor."""
    if value.HasField("metadata") and value.metadata.plugin_data.plugin_name:
        plugin_of_tag[value.tag] = value.metadata.plugin_data.plugin_name
    if plugin_of_tag.get(value.tag) != _SCALARS_PLUGIN:
        return None
    tensor = value.tensor
    encoding = _TENSOR_DTYPES.get(tensor.dtype)
    if encoding is None or math.prod(d.size for d in tensor.tensor_shape.dim) != 1:
        return None
    field, fmt = encoding
    if tensor.tensor_content:
        content = tensor.tensor_content
        return struct.unpack(fmt, content)[0] if len(content) == struct.calcsize(fmt) else None
    repeated = getattr(tensor, field)
    if not repeated:
        return None
    if field == "half_val":  # half floats travel as their 16 bit patterns in an int32 field
        return struct.unpack("<e", struct.pack("<H", repeated[0] & 0xFFFF))[0]
    return float(repeated[0])


def _scan_records(buf: bytes | mmap.mmap, check_crc: bool) -> tuple[_Scalars, list[_BadRecord]]:
    """All scalars of an event file held in ``buf``, and its bad records in file order.

    Three passes, because a Python loop that touches protobuf objects costs microseconds per
    record: (1) walk the TFRecord framing and check the CRCs; (2) decode, for all records at
    once with numpy, the one Event layout that plain ``add_scalar`` calls write; (3) parse every
    other record with protobuf. Rows come back in record order. A bad record is skipped and the
    records after it are kept: a bad payload (CRC, or not an Event: a non-UTF-8 tag) leaves the
    framing intact, and after a broken length the walk resynchronizes on the next valid header.
    """
    frames = _frame_records(buf, check_crc)
    starts_array = np.array(frames.starts, dtype=np.int64)
    ends_array = np.array(frames.ends, dtype=np.int64)
    numbers = np.array(frames.numbers, dtype=np.int64)
    plain = _plain_scalars(buf, starts_array, ends_array) if _USE_PLAIN_DECODER else None
    claimed = plain.matched if plain is not None else np.zeros(len(frames.starts), dtype=bool)
    rest = np.flatnonzero(~claimed).tolist()
    other, parse_failures = _protobuf_scalars(buf, frames.starts, frames.ends, rest)
    merged = _merge(plain, other)
    # positions in the framed list -> record numbers in the file (bad regions take a number too)
    merged = _Scalars(merged.tags, merged.steps, merged.wall_times, merged.values, numbers[merged.records])
    bad = frames.bad + [
        _BadRecord(f.reason, int(numbers[f.index]), f.offset) for f in parse_failures
    ]
    return merged, sorted(bad, key=lambda b: b.offset)


@dataclass(frozen=True, slots=True, eq=False)
class _Framing:
    """Pass 1 result: the payload ``[start, end)`` and file record number of every framed record with a
    good CRC, and the bad records met."""

    starts: list[int]
    ends: list[int]
    numbers: list[int]
    bad: list[_BadRecord]


def _frame_records(buf: bytes | mmap.mmap, check_crc: bool) -> _Framing:
    """Pass 1: walk the framing.

    The walk itself is sequential (each length says where the next record starts) and checks
    each length's CRC before trusting it; the payload CRCs are then checked for all records at
    once, which keeps the per-record Python work to one C call. A record whose payload CRC does
    not match is dropped alone (its length was verified, so the next record is where it says).
    A length whose CRC does not match says nothing about where the next record is: the walk looks
    for the next offset holding a valid header and payload (:func:`_resync`).
    """
    size = len(buf)
    view = memoryview(buf)
    unpack_header = _HEADER.unpack_from
    crc = crc32c.crc32c
    good_headers: set[tuple[int, int]] = set()
    starts: list[int] = []
    ends: list[int] = []
    numbers: list[int] = []
    bad: list[_BadRecord] = []
    number = 0
    pos = 0
    recent: list[tuple[int, int]] = []   # headers of the records just walked, all with verified CRCs
    data = np.frombuffer(buf, dtype=np.uint8) if check_crc else None
    wait = 0                             # records to walk before the next guess (after a wrong one)
    while pos < size:
        if data is not None and wait <= 0 and (cycle := _cycle(recent)):
            count = _records_in_cycle(data, pos, cycle)
            if count:      # every header predicted by repeating the cycle is there, and valid
                lengths = np.tile(np.array([length for length, _ in cycle], np.int64), count // len(cycle) + 1)[:count]
                steps = lengths + _FRAME_OVERHEAD
                first = pos + np.concatenate(([0], np.cumsum(steps[:-1])))
                starts.extend((first + _HEADER_SIZE).tolist())
                ends.extend((first + _HEADER_SIZE + lengths).tolist())
                numbers.extend(range(number, number + count))
                number += count
                pos = int(first[-1] + steps[-1])
                recent = recent[-len(cycle):] if count % len(cycle) == 0 else []
                continue
            wait = 32
        wait -= 1
        if size - pos < _HEADER_SIZE:
            bad.append(_BadRecord(f"truncated record header ({size - pos} of {_HEADER_SIZE} bytes)", number, pos, True))
            break
        header = unpack_header(buf, pos)
        # Most records share a few lengths, so a (length, CRC) pair already verified is verified
        # again by a set lookup instead of a CRC.
        if check_crc and header not in good_headers:
            c = crc(view[pos:pos + 8])
            if (((c >> 15) | (c << 17)) + _MASK_DELTA) & _U32 != header[1]:
                resumed = _resync(buf, pos + 1) if number else None
                if resumed is None:
                    bad.append(_BadRecord("length CRC mismatch; no valid record after it", number, pos, True))
                    break
                bad.append(_BadRecord(f"length CRC mismatch; {resumed - pos} bytes skipped, "
                                      f"reading resumed at byte {resumed}", number, pos))
                number += 1
                pos = resumed
                continue
            if len(good_headers) < _MAX_REMEMBERED_HEADERS:
                good_headers.add(header)
        start = pos + _HEADER_SIZE
        end = start + header[0]
        # Checked before any slice: a corrupt length must never size an allocation.
        if end + _FOOTER.size > size:
            left = max(size - start - _FOOTER.size, 0)
            reason = f"truncated record: length field says {header[0]} bytes, {left} left"
            # A truncated file has no whole record after this; a forged or corrupted length does.
            resumed = _resync(buf, pos + 1) if number else None
            if resumed is None:
                bad.append(_BadRecord(reason, number, pos, True))
                break
            bad.append(_BadRecord(f"{reason}; {resumed - pos} bytes skipped, reading resumed at byte {resumed}",
                                  number, pos))
            number += 1
            pos = resumed
            continue
        starts.append(start)
        ends.append(end)
        numbers.append(number)
        number += 1
        pos = end + _FOOTER.size
        if check_crc:
            recent.append(header)
            del recent[:-2 * _MAX_CYCLE]
    if check_crc and starts:
        mismatched = _payload_crc_mismatches(buf, view, starts, ends)
        if mismatched.size:
            bad.extend(_BadRecord("data CRC mismatch; record skipped", numbers[i], starts[i] - _HEADER_SIZE)
                       for i in mismatched.tolist())
            keep = np.ones(len(starts), dtype=bool)
            keep[mismatched] = False
            starts = [a for a, k in zip(starts, keep.tolist()) if k]
            ends = [b for b, k in zip(ends, keep.tolist()) if k]
            numbers = [n for n, k in zip(numbers, keep.tolist()) if k]
    return _Framing(starts, ends, numbers, bad)


_RESYNC_CHUNK = 1 << 20
_MAX_CYCLE = 4              # records per step that a writer repeats (one per tag logged each step)
_GUESSED_CYCLES = 1 << 14   # cycles checked per guess


def _cycle(recent: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
    """The shortest run of headers that the last records repeat twice (a writer logging the same
    tags every step writes records of the same lengths again and again), or None."""
    for period in range(1, _MAX_CYCLE + 1):
        if len(recent) >= 2 * period and recent[-period:] == recent[-2 * period:-period]:
            return recent[-period:]
    return None


def _records_in_cycle(data: np.ndarray, pos: int, cycle: list[tuple[int, int]]) -> int:
    """How many records from ``pos`` on have the headers that repeating ``cycle`` predicts (whole
    cycles only). Each predicted header is compared with a header whose length CRC was verified, so
    this checks exactly what the walk checks, for many records at once; the payload CRCs are checked
    for every record afterwards either way."""
    step = sum(length + _FRAME_OVERHEAD for length, _ in cycle)
    cycles = min((len(data) - pos) // step, _GUESSED_CYCLES)
    if cycles < 2:
        return 0
    base = pos + np.arange(cycles, dtype=np.int64) * step
    good = np.ones(cycles, dtype=bool)
    offset = 0
    for length, length_crc in cycle:
        header = _gather(data, base + offset, _HEADER_SIZE)
        good &= header[:, :8].copy().view("<u8").ravel() == length
        good &= header[:, 8:].copy().view("<u4").ravel() == length_crc
        offset += length + _FRAME_OVERHEAD
    whole = cycles if good.all() else int(np.argmin(good))
    return whole * len(cycle)


def _resync(buf: bytes | mmap.mmap, after: int) -> int | None:
    """The first offset at or after ``after`` where a whole record with valid length and payload CRCs
    starts, or None. Candidates are screened with numpy (a record of an event file is shorter than
    4 GiB, so the length's high four bytes are zero, and it fits in what is left); only those get
    their CRCs computed."""
    data = np.frombuffer(buf, dtype=np.uint8)
    size = len(data)
    for chunk in range(after, size - _FRAME_OVERHEAD + 1, _RESYNC_CHUNK):
        stop = min(chunk + _RESYNC_CHUNK, size - _FRAME_OVERHEAD + 1)
        window = data[chunk:stop + 7]
        high_zero = np.ones(stop - chunk, dtype=bool)
        for k in range(4, 8):
            high_zero &= window[k:k + stop - chunk] == 0
        for offset in (np.flatnonzero(high_zero) + chunk).tolist():
            if _whole_record_at(buf, offset, size):
                return offset
    return None


def _whole_record_at(buf: bytes | mmap.mmap, offset: int, size: int) -> bool:
    length, length_crc = _HEADER.unpack_from(buf, offset)
    end = offset + _HEADER_SIZE + length
    if end + _FOOTER.size > size or _masked_crc32c(buf[offset:offset + 8]) != length_crc:
        return False
    return _masked_crc32c(memoryview(buf)[offset + _HEADER_SIZE:end]) == _FOOTER.unpack_from(buf, end)[0]


def _payload_crc_mismatches(
    buf: bytes | mmap.mmap, view: memoryview, starts: list[int], ends: list[int]
) -> np.ndarray:
    """Positions (in ``starts``) of the records whose stored payload CRC does not match."""
    computed = _payload_crcs(np.frombuffer(buf, dtype=np.uint8), view, np.asarray(starts, np.int64), np.asarray(ends, np.int64))
    masked = (((computed >> np.uint64(15)) | (computed << np.uint64(17))) + np.uint64(_MASK_DELTA)) & np.uint64(_U32)
    stored = _gather(np.frombuffer(buf, dtype=np.uint8), np.array(ends, dtype=np.int64), 4).view("<u4").ravel()
    return np.flatnonzero(masked != stored)


_CRC_TABLE_MIN_RECORDS = 4096   # records of one length that pay for that length's tables
_CRC_TABLE_MAX_LENGTH = 256     # bytes: a table is 256 crc32c calls per byte of the length


def _payload_crcs(data: np.ndarray, view: memoryview, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """crc32c of every payload ``data[start:end]``. Records of a length that many records share are
    done together: for a fixed length, CRC-32C is affine over GF(2) in the message bits, so
    ``crc(x) = crc(0...0) ^ XOR_j D_j[x_j]`` with ``D_j[b] = crc(b at position j, zeros elsewhere) ^
    crc(0...0)``; the tables are made with the crc32c library itself, and the per-record work becomes
    one table look-up per byte column over all records at once. Other records: one library call each."""
    out = np.empty(len(starts), np.uint64)
    lengths = ends - starts
    distinct, counts = np.unique(lengths, return_counts=True)
    one_by_one = np.zeros(len(starts), bool)
    for length, count in zip(distinct.tolist(), counts.tolist()):
        rows = np.flatnonzero(lengths == length)
        if count < _CRC_TABLE_MIN_RECORDS or not 0 < length <= _CRC_TABLE_MAX_LENGTH:
            one_by_one[rows] = True
            continue
        zero = crc32c.crc32c(bytes(length))
        tables = np.empty((length, 256), np.uint32)
        for position in range(length):
            message = bytearray(length)
            for byte in range(256):
                message[position] = byte
                tables[position, byte] = crc32c.crc32c(message) ^ zero
        crc = np.full(len(rows), zero, np.uint32)
        first = starts[rows]
        for position in range(length):
            crc ^= tables[position][data[first + position]]
        out[rows] = crc
    picked = np.flatnonzero(one_by_one)
    out[picked] = np.fromiter(map(crc32c.crc32c, map(view.__getitem__, map(slice, starts[picked].tolist(), ends[picked].tolist()))),
                              np.uint64, len(picked))
    return out


@dataclass(frozen=True, slots=True, eq=False)
class _PlainScalars:
    """Pass 2 result: ``matched`` flags every record (by index) that was decoded here."""

    matched: np.ndarray  # bool, one per record
    scalars: _Scalars


# Switch for tests: with it off, every record goes through protobuf (the reference).
_USE_PLAIN_DECODER = True


def _plain_scalars(buf: bytes | mmap.mmap, starts: np.ndarray, ends: np.ndarray) -> _PlainScalars:
    """Pass 2: decode with numpy, for all records at once, the Event layout of ``add_scalar``::

        [09 <f64 wall_time>] [10 <varint step>] 2a L1 0a L2 0a L3 <tag: L3 bytes> 15 <f32 value>

    (fields in number order, as every protobuf serializer writes them; an absent wall_time or
    step is 0) with one-byte lengths L1 = L2 + 2 and L2 = L3 + 7 that end exactly at the end of
    the payload. A payload that matches is an Event with these fields and nothing else, so
    protobuf would read the same four values. Anything else (other fields or order, several
    values, tags of 119+ bytes, negative steps, bad UTF-8) is left unmatched for protobuf.
    """
    n = len(starts)
    if n == 0:
        return _PlainScalars(np.zeros(0, dtype=bool), _Scalars.empty())
    data = np.frombuffer(buf, dtype=np.uint8)
    last = len(data) - 1

    def byte_at(index: np.ndarray) -> np.ndarray:
        # Clamped so that records too short for the layout read harmlessly; the checks below
        # reject them, and every byte a matched record uses lies inside its own payload.
        return data[np.minimum(index, last)]

    at = starts.copy()
    has_wall = (ends - at >= 9) & (byte_at(at) == 0x09)
    wall_at = at + 1
    at = at + 9 * has_wall
    has_step = (at < ends) & (byte_at(at) == 0x10)
    steps, at, step_ok = _varints(byte_at, at + 1, ends, has_step, at)

    ok = step_ok & (ends - at >= 11)
    ok &= (byte_at(at) == 0x2A) & (byte_at(at + 2) == 0x0A) & (byte_at(at + 4) == 0x0A)
    summary_len, value_len, tag_len = (byte_at(at + k).astype(np.int64) for k in (1, 3, 5))
    ok &= (summary_len == value_len + 2) & (value_len == tag_len + 7) & (summary_len < 0x80)
    ok &= (at + 2 + summary_len == ends) & (byte_at(at + 6 + tag_len) == 0x15)

    rows = np.flatnonzero(ok)
    tags, valid = _decode_tags(data, (at + 6)[rows], tag_len[rows])
    if not valid.all():  # bad UTF-8 (protobuf will reject it) or a hash collision: protobuf decides
        ok[rows[~valid]] = False
        rows, tags = rows[valid], tags[valid]
    walls = np.zeros(len(rows), dtype=np.float64)
    with_wall = has_wall[rows]
    walls[with_wall] = _gather(data, wall_at[rows][with_wall], 8).view("<f8").ravel()
    values = _gather(data, (at + 7 + tag_len)[rows], 4).view("<f4").ravel().astype(np.float64)
    scalars = _Scalars(tags, steps[rows], walls, values, rows.astype(np.int64))
    return _PlainScalars(ok, scalars)


def _varints(byte_at, first: np.ndarray, ends: np.ndarray, present: np.ndarray, absent_at: np.ndarray):
    """Decode one non-negative int64 varint per row where ``present``, starting at ``first``.

    Returns (values, position after the varint or ``absent_at`` where not present, ok). Not ok:
    the varint runs past the payload or is longer than 9 bytes (negative steps take 10).
    """
    values = np.zeros(len(first), dtype=np.uint64)
    after = absent_at.copy()
    done = ~present
    ok = np.ones(len(first), dtype=bool)
    for k in range(9):
        active = ~done
        if not active.any():
            break
        where = first + k
        inside = active & (where < ends)
        ok &= ~(active & ~inside)
        byte = byte_at(where).astype(np.uint64)
        values[inside] |= (byte[inside] & np.uint64(0x7F)) << np.uint64(7 * k)
        finished = inside & (byte < 0x80)
        after[finished] = where[finished] + 1
        done |= finished | ~inside
    ok &= done & ~(present & (after == absent_at))
    return values.astype(np.int64), after, ok


def _gather(data: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes at each offset, as a C-contiguous (rows, width) uint8 array."""
    return np.ascontiguousarray(data[offsets[:, None] + np.arange(width)])


def _decode_tags(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tag of every row as an object array, decoding each distinct tag once.

    A scalar log repeats a handful of tags hundreds of thousands of times, so rows are grouped
    by a hash of their bytes (length included), and every row is then compared byte for byte
    with its group's first row. ``valid`` is False for a row whose group is not UTF-8 or that
    merely shares a hash with different bytes; the caller leaves those to protobuf.
    """
    tags = np.empty(len(starts), dtype=object)
    valid = np.zeros(len(starts), dtype=bool)
    for chunk in range(0, len(starts), _TAG_CHUNK_ROWS):  # bounds the (rows x width) matrix
        part = slice(chunk, chunk + _TAG_CHUNK_ROWS)
        tags[part], valid[part] = _decode_tag_chunk(data, starts[part], lengths[part])
    return tags, valid


_TAG_CHUNK_ROWS = 1 << 18


def _decode_tag_chunk(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not len(starts):
        return np.empty(0, dtype=object), np.zeros(0, dtype=bool)
    width = int(lengths.max()) + 1
    columns = np.arange(width - 1)
    # Byte 0 is the length; then the tag bytes, zero past each tag's end.
    keys = np.zeros((len(starts), width), dtype=np.uint8)
    keys[:, 0] = lengths
    inside = columns < lengths[:, None]
    keys[:, 1:] = np.where(inside, data[np.minimum(starts[:, None] + columns, len(data) - 1)], 0)
    fingerprint = np.zeros(len(starts), dtype=np.uint64)
    for column in range(width):  # FNV-1a over the columns, vectorized over the rows
        fingerprint = (fingerprint ^ keys[:, column]) * np.uint64(0x100000001B3)
    codes, _ = pd.factorize(fingerprint)
    first_row = np.empty(codes.max() + 1, dtype=np.int64)
    first_row[codes[::-1]] = np.arange(len(codes))[::-1]  # the last write wins: first occurrence
    same_bytes = (keys == keys[first_row[codes]]).all(axis=1)
    names = np.empty(len(first_row), dtype=object)
    for code, row in enumerate(first_row.tolist()):
        try:
            names[code] = keys[row, 1:1 + keys[row, 0]].tobytes().decode("utf-8")
        except UnicodeDecodeError:
            names[code] = None
    tags = names[codes]
    return tags, same_bytes & (tags != None)  # noqa: E711  (elementwise on an object array)


def _protobuf_scalars(
    buf: bytes | mmap.mmap, starts: list[int], ends: list[int], indices: list[int]
) -> tuple[_Scalars, list[_BadRecord]]:
    """Pass 3: parse the records at ``indices`` with protobuf. A record that is not an Event (its CRC
    was right, so the writer wrote it so: a tag that is not UTF-8) is skipped and reported, and
    parsing goes on with the next: the framing does not depend on it."""
    view = memoryview(buf)
    event = event_pb2.Event()
    parse = event.ParseFromString
    has_field = event.HasField
    plugin_of_tag: dict[str, str] = {}
    tags: list[str] = []
    steps: list[int] = []
    wall_times: list[float] = []
    values: list[float] = []
    records: list[int] = []
    failures: list[_BadRecord] = []
    for index in indices:
        try:
            parse(view[starts[index]:ends[index]])
        except (DecodeError, RuntimeError, ValueError) as exc:
            detail = "a string field (a tag) is not UTF-8, or " if "corrupt" in str(exc).lower() else ""
            failures.append(_BadRecord(f"record is not an Event proto ({detail}{exc}); record skipped",
                                       index, starts[index] - _HEADER_SIZE))
            continue
        if not has_field("summary"):
            continue
        step = event.step
        wall_time = event.wall_time
        for value in event.summary.value:
            if value.HasField("simple_value"):
                number = value.simple_value
            elif value.HasField("tensor"):
                try:
                    number = _tensor_scalar(value, plugin_of_tag)
                except (struct.error, ValueError, OverflowError):   # a malformed tensor is not a scalar
                    number = None
                if number is None:
                    continue
            else:  # image, histogram, audio: not scalars
                continue
            tags.append(value.tag)
            steps.append(step)
            wall_times.append(wall_time)
            values.append(number)
            records.append(index)
    scalars = _Scalars(
        np.array(tags, dtype=object),
        np.array(steps, dtype=np.int64),
        np.array(wall_times, dtype=np.float64),
        np.array(values, dtype=np.float64),
        np.array(records, dtype=np.int64),
    )
    return scalars, failures


def _merge(plain: _PlainScalars | None, other: _Scalars) -> _Scalars:
    """Both passes' rows in record order (a record's own values keep their order)."""
    if plain is None or not len(plain.scalars.tags):
        return other
    if not len(other.tags):
        return plain.scalars
    first = plain.scalars
    records = np.concatenate([first.records, other.records])
    order = np.argsort(records, kind="stable")
    return _Scalars(
        np.concatenate([first.tags, other.tags])[order],
        np.concatenate([first.steps, other.steps])[order],
        np.concatenate([first.wall_times, other.wall_times])[order],
        np.concatenate([first.values, other.values])[order],
        records[order],
    )


def read_event_file(
    path: Path, display_path: str | None = None, check_crc: bool = True
) -> tuple[pd.DataFrame, list[IngestIssue]]:
    """The scalars of one event file, in file order, with the issues met while reading it.

    Columns: ``tag`` (str), ``step`` (int64), ``wall_time`` (float64), ``value`` (float64, as
    written: no aliasing, no percent scaling), ``file`` (``display_path`` or ``path``) and
    ``record`` (int64, 0-based record index in the file; record 0 is the version header).

    - A corrupt record: skipped, with a warning issue giving its record index and the byte offset
      where it starts; the records before and after it are kept (see :func:`_scan_records`). A
      truncated file keeps every whole record. Past :data:`MAX_RECORD_ISSUES` bad records, one
      more issue counts the rest.
    - An empty (0-byte) file: no rows and one warning issue.
    - The very first record bad (random bytes, a text file, a truncated header): not an event
      file, so :class:`IngestError`; also for a file that cannot be opened.

    ``check_crc=False`` skips the CRCs of every record but the first header's, which is how the
    file is recognised; lengths are still checked against the file size.
    """
    path = Path(path)
    shown = display_path if display_path is not None else str(path)
    try:
        with open_input(path, shown) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                issue = IngestIssue(SourceRef(shown, offset=0), "empty event file (no records)")
                return _Scalars.empty().frame(shown), [issue]
            # mmap: the OS pages the file in; a huge event file (images) costs no heap copy.
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                scalars, bad = _scan_mapped(mapped, check_crc)
    except OSError as exc:
        raise IngestError(f"cannot read event file: {exc.strerror or exc}", SourceRef(shown)) from exc
    except ValueError as exc:  # mmap of something that is not a regular file
        raise IngestError(f"cannot map event file: {exc}", SourceRef(shown)) from exc
    if bad and bad[0].index == 0:
        raise IngestError(
            f"not a TensorBoard event file: first record unusable ({bad[0].reason})",
            SourceRef(shown, record=0, offset=0),
        )
    return scalars.frame(shown), _bad_record_issues(shown, bad, scalars.records) if bad else []


def scan_event_chunk(data: bytes, shown: str, first_record: int, first_offset: int) -> tuple[pd.DataFrame, list[IngestIssue]]:
    """The scalars of whole records cut from an event file that is still being written (``analyzer/watch``):
    ``data`` starts at record ``first_record``, byte ``first_offset``. Read exactly as :func:`read_event_file`
    reads a file (one record reader: CRCs, resynchronisation, bad records skipped and the rest kept), with
    record numbers and offsets counted from the file's start."""
    scalars, bad = _scan_records(data, True)
    scalars = _Scalars(scalars.tags, scalars.steps, scalars.wall_times, scalars.values, scalars.records + first_record)
    bad = [_BadRecord(b.reason, b.index + first_record, b.offset + first_offset, b.final) for b in bad]
    return scalars.frame(shown), _bad_record_issues(shown, bad, scalars.records) if bad else []


MAX_RECORD_ISSUES = 10   # one issue per bad record up to this many; a fuzzed file can have thousands


def _bad_record_issues(shown: str, bad: list[_BadRecord], records: np.ndarray) -> list[IngestIssue]:
    issues = []
    for record in bad[:MAX_RECORD_ISSUES]:
        tail = (f"; kept the scalars of the records before byte {record.offset}, nothing after it could be read"
                if record.final else "")
        issues.append(IngestIssue(SourceRef(shown, record=record.index, offset=record.offset), record.reason + tail))
    if len(bad) > MAX_RECORD_ISSUES:
        rest = bad[MAX_RECORD_ISSUES:]
        issues.append(IngestIssue(
            SourceRef(shown, record=rest[0].index, offset=rest[0].offset),
            f"{len(rest)} more bad records skipped (records {rest[0].index}..{rest[-1].index}); "
            f"{len(np.unique(records))} records with scalars kept",
        ))
    return issues


def _scan_mapped(mapped: mmap.mmap, check_crc: bool) -> tuple[_Scalars, list[_BadRecord]]:
    # The first header is always verified: it is what tells an event file from anything else.
    if not sniff_event_file(mapped[:_HEADER_SIZE]):
        reason = "file too short for a record header" if len(mapped) < _HEADER_SIZE else "length CRC mismatch"
        return _Scalars.empty(), [_BadRecord(reason, 0, 0, True)]
    return _scan_records(mapped, check_crc)


# --------------------------------------------------------------------------------------------
# Several files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class TensorBoardScalars:
    """Scalars merged from a run's event files.

    ``files``: the display paths of every event file read (including those that yielded only an
    issue). ``frame``: long format with :data:`FRAME_COLUMNS`, sorted by tag then step, one row
    per ``(tag, step)`` (the latest write wins). ``issues``: what was skipped, and where.
    """

    files: tuple[str, ...]
    frame: pd.DataFrame
    issues: tuple[IngestIssue, ...]


_EVENT_NAME = re.compile(r"tfevents\.(\d+)")


def _expand(path: Path, shown: str) -> list[tuple[Path, str]]:
    """A file stands for itself; a directory for the event files below it, oldest first.

    os.walk does not follow symlinked folders, so a link loop cannot make this run forever.
    """
    if not path.is_dir():
        return [(path, shown)]
    found = [
        Path(folder) / name
        for folder, _, names in os.walk(path)
        for name in names
        if "tfevents" in name and (Path(folder) / name).is_file()
    ]

    def age(p: Path) -> tuple[int, str]:
        match = _EVENT_NAME.search(p.name)
        return (int(match.group(1)) if match else 0, str(p))

    return [(p, str(Path(shown) / p.relative_to(path))) for p in sorted(found, key=age)]


def read_tensorboard(
    paths: Sequence[Path],
    display_paths: Sequence[str] | None = None,
    aliases: Mapping[str, str] | None = None,
    check_crc: bool = True,
) -> TensorBoardScalars:
    """Read and merge event files (or directories of them) into one long scalar frame.

    Never raises for bad file content: a file that is not an event file becomes an error-level
    issue and the others are still read. Invalid ``aliases`` raise :class:`IngestError`.
    ``aliases`` are added on top of :data:`DEFAULT_ALIASES` (see :func:`resolve_aliases`).
    """
    if display_paths is not None and len(display_paths) != len(paths):
        raise IngestError(f"{len(display_paths)} display paths for {len(paths)} event paths")
    shown_names = list(display_paths) if display_paths is not None else [str(p) for p in paths]
    read: list[tuple[str, pd.DataFrame | None, list[IngestIssue]]] = []
    for path, shown in zip(paths, shown_names):
        for file_path, file_shown in _expand(Path(path), shown):
            read.append(_read_one(file_path, file_shown, check_crc))
    return combine_event_files(read, aliases)


def _read_one(path: Path, shown: str, check_crc: bool = True) -> tuple[str, pd.DataFrame | None, list[IngestIssue]]:
    """One event file's scalars and issues; a file that is not an event file is an error-level issue."""
    try:
        frame, issues = read_event_file(path, shown, check_crc=check_crc)
    except IngestError as exc:
        return shown, None, [IngestIssue(exc.source or SourceRef(shown), exc.message, level="error")]
    return shown, frame, issues


def combine_event_files(
    read: Sequence[tuple[str, pd.DataFrame | None, Sequence[IngestIssue]]],
    aliases: Mapping[str, str] | None = None,
) -> TensorBoardScalars:
    """Merge what :func:`read_event_file` gave for each file (in reading order; ``None`` for a file
    that could not be read): the latest write of each ``(tag, step)`` wins, tags get their metric
    names (``aliases`` on top of :data:`DEFAULT_ALIASES`) and fraction accuracies become percent."""
    alias_map = resolve_aliases(aliases)
    files: list[str] = []
    frames: list[pd.DataFrame] = []
    issues: list[IngestIssue] = []
    for shown, frame, file_issues in read:
        files.append(shown)
        issues.extend(file_issues)
        if frame is not None and len(frame):
            frames.append(frame.assign(_order=len(files)))
    merged = _latest_per_tag_step(frames)
    merged.insert(1, "metric", _metric_names(merged["tag"], alias_map))
    _fractions_to_percent(merged, alias_map)
    return TensorBoardScalars(files=tuple(files), frame=merged, issues=tuple(issues))


def _latest_per_tag_step(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return _Scalars.empty().frame("")
    combined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    # Stable sort so that, for one (tag, step), the last row is the latest wall_time, then the
    # later file, then the later record: that is the one kept. Tags sort by their rank among the few
    # distinct tags (the same order as the strings, without comparing a million strings).
    codes, tags = pd.factorize(combined["tag"])
    rank = np.empty(len(tags), np.int64)
    rank[np.argsort(np.asarray(tags, dtype=object), kind="stable")] = np.arange(len(tags))
    keys = [combined[c].to_numpy() for c in ("record", "_order", "wall_time", "step")] + [rank[codes]]
    order = np.lexsort(keys)
    tag_rank, step = keys[-1][order], keys[-2][order]
    last = np.ones(len(order), bool)
    last[:-1] = (tag_rank[1:] != tag_rank[:-1]) | (step[1:] != step[:-1])
    return combined.take(order[last]).drop(columns="_order").reset_index(drop=True)


def _metric_names(tags: pd.Series, alias_map: Mapping[str, str]) -> pd.Series:
    names = {tag: alias_map.get(tag.lower(), tag) for tag in tags.unique()}
    return tags.map(names).astype(str)


def _fractions_to_percent(frame: pd.DataFrame, alias_map: Mapping[str, str]) -> None:
    """Scale aliased top-1/top-5 tags logged as fractions (every finite value in [0, 1]) to percent."""
    for tag in frame["tag"].unique():
        metric = alias_map.get(tag.lower())
        if metric is None or not _PERCENT_METRIC.search(metric):
            continue
        rows = (frame["tag"] == tag).to_numpy()
        values = frame["value"].to_numpy()[rows]
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
            frame.loc[rows, "value"] = values * 100.0


# --------------------------------------------------------------------------------------------
# The registered format (see ``formats.py``)

EVENT_FILE_MARK = "tfevents"


class _TensorBoardFormat:
    """Event files, by name (``tfevents``) or by a valid TFRecord header. A run's event files are
    one set of scalars (a restart writes a new file), so they are combined before the merge."""

    name = "tensorboard"
    kind: SourceKind = "tensorboard"
    family = "TensorBoard event file"

    def sniff(self, name: str, head: bytes) -> str | None:
        return self.family if EVENT_FILE_MARK in name or sniff_event_file(head) else None

    def parse(self, path: Path, shown: str) -> Contribution:
        # A file that is not an event file stays listed (as a source with an error), so it is kept
        # as a part with no frame instead of raising.
        part = _read_one(path, shown)
        return Contribution(format=self.name, sources=(), payload=part)

    def combine(self, parts: Sequence[Contribution], options: Mapping[str, object]) -> Contribution:
        from mnv4_postmortem.analyzer.ingest.tensorboard_axis import scalars_contribution

        aliases = options.get("tb_aliases")
        scalars = combine_event_files([part.payload for part in parts], aliases)  # type: ignore[arg-type]
        return scalars_contribution(scalars)


TENSORBOARD = _TensorBoardFormat()
