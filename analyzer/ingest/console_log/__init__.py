"""timm's console output (``train.py`` stdout + stderr captured to a file), parsed as a stream.

Every format in timm-formats.md §2-§7 and §14 is recognised, wherever the line sits: lines are
found with ``re.search`` semantics, so timestamps (``2022-11-08 09:40:11  Train: ...``), Python
logging prefixes (``2022-02-09 03:18:15,470 -  train: [ INFO] - ...``), ``[rank0]:`` and indentation
are all fine. ANSI colour codes are removed; a carriage-return progress bar keeps only the text
after its last ``\\r`` (a CRLF is just a line end); invalid UTF-8 is replaced and reported once.

What comes out (:class:`ConsoleLog`):

- ``steps``: one row per ``Train:`` line, columns ``model.STEP_COLUMNS`` + ``segment``, ``src_line``.
  Layouts A-D (§3) and timm-derived lines with extra fields (RepGhost's ``Acc@1``/``Acc@5``) parse;
  lines without ``Loss:``/``LR:`` (a fork that prints ``FP:``/``BP:`` timings instead) keep NaN there.
  ``update = epoch * per_epoch + idx``. In the v1.0.16-1.0.19 throughput bug (``rate ~= 1 / time``,
  ``throughput_bug``) ``samples_per_sec`` is ``rate * global batch`` when the LR line gives the
  global batch, else NaN.
- ``evals``: one row per validation block (``Test:`` -> pass ``model``, ``Test (EMA):`` -> ``ema``):
  the running averages on the block's last line (``[N/N]``, or the last line seen if the block was
  cut). Its epoch is the epoch of the ``Train:`` lines before it. Repeated epochs after a restart
  are kept (their ``segment`` differs).
- ``segment``: 0 for the first run in the file, +1 at every restart: resume or start-up messages
  after training output, or an (epoch, idx) counter that goes back.
- ``events``: ``resume``, ``crash`` (traceback, ``ERROR:``), ``oom``, ``nonfinite`` (first NaN/inf
  per metric, pass and segment), ``best_metric``, ``warning`` (``WARNING:`` lines and interleaved
  library warnings, deduplicated with a count, at most ``MAX_WARNINGS`` kinds), ``truncated``,
  ``skipped_eval``.
- ``info`` (each key has a :class:`SourceRef` in ``info_refs``; with several runs in one file the
  latest value wins):

  ``model`` (str, as printed), ``param_count`` (int), ``data_config`` (dict: ``input_size`` tuple,
  ``interpolation``, ``mean``, ``std``, ``crop_pct``, ``crop_mode``: whatever the log shows),
  ``amp`` (``"native"`` | ``"apex"`` | ``"off"``), ``train_dtype`` (``"float32"``, ``"bfloat16"``,
  ``"mixed"`` ...), ``optimizer`` (dict: ``class``, ``name``, ``params`` dict; v1.0.12+),
  ``scheduled_epochs`` (int), ``lr_step_unit`` (``"epoch"`` | ``"update"``), ``device`` (str),
  ``world_size`` (int), ``distributed`` (bool), ``ddp`` (``"native"`` | ``"apex"`` | ``"task"``),
  ``sync_bn`` (True), ``dist_bn`` (True), ``task_criterion`` (str, v1.0.23+), ``kd_teacher`` (str),
  ``pretrained_source`` (``"hf-hub:<id>"``, ``"url:<url>"`` or ``"file:<path>"``),
  ``pretrained_missing_keys`` (tuple of str: weights re-initialised, e.g. a new classifier),
  ``loaded_state_dict`` (str: the file of ``Loaded state_dict[_ema] from checkpoint``, from
  ``--initial-checkpoint``, ``--pretrained-path`` or an EMA resume), ``resume_checkpoint`` (str), ``resume_epoch`` (int, the epoch the
  checkpoint holds), ``best_metric`` (float), ``best_epoch`` (int), ``num_classes`` (int, only when a
  line shows ``num_classes=N``), ``compile_backend`` (str), ``naflex`` (True).
- ``lr_calc``: the ``Learning rate (X) calculated from base learning rate (Y) and [effective ]global
  batch size (Z) with S scaling.`` line (v0.8.2+), the only place the LR actually used is printed.
- ``layout`` (``"A"``-``"D"``, §3) and ``timm_version`` (a range guessed with the §14 rules).

Streaming and speed: the file is read in ``CHUNK_SIZE`` blocks of whole lines and never held whole.
``Train:`` and ``Test:`` lines are parsed in bulk: lines of one shape (a "template", see
:class:`Template`) are checked and read with numpy, a block at a time. A line that fits no template
goes to the per-line regex parser, which is the reference: templates are built from its spans, so
both give the same numbers (tests check this). Lines over ``MAX_LINE`` bytes are skipped with one
issue each, found without building them in memory.

Bad input: an empty file gives an empty ``ConsoleLog`` with an issue; a file that is mostly not text
(NUL bytes, invalid UTF-8) from its first line on raises :class:`IngestError` with the byte offset,
while junk after good lines only adds an issue (every good line before it is kept). A UTF-16 file (a
Windows shell redirect) is transcoded. Nothing but ``IngestError`` escapes ``parse_console_log``.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import BinaryIO, Callable

from mnv4_postmortem.analyzer.ingest.console_log.data import (
    CHUNK_SIZE, EVAL_COLUMNS, HEAD_SIZE, MAX_LINE, ConsoleLog, LrCalc,
)
from mnv4_postmortem.analyzer.ingest.console_log.format import CONSOLE_LOG, log_contribution
from mnv4_postmortem.analyzer.ingest.console_log.grammar import TEST_HEAD, TRAIN_HEAD
from mnv4_postmortem.analyzer.ingest.console_log.incremental import GrowingLog
from mnv4_postmortem.analyzer.ingest.console_log.parser import Parser
from mnv4_postmortem.analyzer.ingest.console_log.stream import binary_offset, line_blocks, utf16_reader
from mnv4_postmortem.analyzer.ingest.files import open_input
from mnv4_postmortem.analyzer.model import IngestError, SourceRef

__all__ = ["CHUNK_SIZE", "CONSOLE_LOG", "EVAL_COLUMNS", "ConsoleLog", "GrowingLog", "LrCalc", "log_contribution",
           "parse_console_log", "parse_console_stream", "sniff_console_log"]

# ---------------------------------------------------------------------------------------------
# Entry points


def parse_console_log(path: Path, display_path: str | None = None, *, chunk_size: int = CHUNK_SIZE,
                      fast: bool = True) -> ConsoleLog:
    """Parse a captured timm console log. Raises only :class:`IngestError`.

    ``chunk_size``: bytes read per block (the result does not depend on it). ``fast=False`` reads
    every line with the reference per-line parser instead of the bulk template path (same result;
    for tests that hold the two paths to each other)."""
    return _parse(Path(path), display_path, chunk_size=chunk_size, fast=fast)


def parse_console_stream(stream: BinaryIO, shown: str) -> ConsoleLog:
    """Parse a log from a seekable binary stream (an excerpt held in memory). Raises only IngestError."""
    return _guarded(lambda: _parse_stream(stream, shown, CHUNK_SIZE, True), shown)


def _parse(path: Path, display_path: str | None = None, *, chunk_size: int = CHUNK_SIZE,
           fast: bool = True) -> ConsoleLog:
    shown = display_path if display_path is not None else str(path)

    def parse() -> ConsoleLog:
        with open_input(path, shown) as stream:
            return _parse_stream(stream, shown, chunk_size, fast)

    return _guarded(parse, shown)


def _guarded(parse: Callable[[], ConsoleLog], shown: str) -> ConsoleLog:
    try:
        return parse()
    except IngestError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, AssertionError) as error:  # pragma: no cover
        # A parser bug must still not surface as a traceback; name it so tests can tell it apart.
        raise IngestError(f"internal parser error ({type(error).__name__}: {error})", SourceRef(shown)) from error


def _parse_stream(stream: BinaryIO, shown: str, chunk_size: int, fast: bool) -> ConsoleLog:
    parser = Parser(shown, fast)
    head = stream.read(HEAD_SIZE)
    readinto: Callable[[memoryview], int] = stream.readinto  # type: ignore[assignment]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        stream.seek(2)
        readinto = utf16_reader(stream, "utf-16-le" if head.startswith(codecs.BOM_UTF16_LE) else "utf-16-be")
        parser.issue("UTF-16 encoded log (a Windows shell redirect); transcoded to UTF-8, byte offsets refer to the UTF-8 text", 1)
    else:
        bad = binary_offset(head)
        if bad is not None and b"\n" not in head[:bad]:
            # binary from the start; a text log with junk later keeps its good lines (and an issue)
            raise IngestError(f"not a text log: binary data at byte {bad}", SourceRef(shown, offset=bad))
        stream.seek(0)
    if not head:
        parser.issue("empty file", None)
        return parser.finish(0, False)
    unterminated = False
    for block in line_blocks(readinto, chunk_size, MAX_LINE):
        parser.feed(block)
        unterminated = block.unterminated
    return parser.finish(parser.next_line - 1, unterminated)


def sniff_console_log(head: bytes) -> str | None:
    """``"timm console log"`` when the first bytes of a file look like timm train.py output."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        head = head.decode("utf-16", "replace").encode("utf-8")
    if not head or binary_offset(head) is not None:
        return None
    text = head.decode("utf-8", "replace")
    if TRAIN_HEAD.search(text) or TEST_HEAD.search(text):
        return "timm console log"
    markers = ("created, param count", "Data processing configuration for current model", "Scheduled epochs:")
    return "timm console log" if sum(marker in text for marker in markers) >= 2 else None
