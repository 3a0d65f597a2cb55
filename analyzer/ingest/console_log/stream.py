"""Reading: a byte stream cut into blocks of whole lines (never one line longer than MAX_LINE in
memory), UTF-16 transcoding, and the text-or-binary test."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import numpy as np

# ---------------------------------------------------------------------------------------------
# Reading: blocks of whole lines, never one line longer than MAX_LINE in memory


@dataclass(frozen=True, slots=True)
class Block:
    data: bytes | bytearray     # the block's lines are data[begin:end], each ending in b"\n"; a
    begin: int                  # chunk is read into one reused buffer and not copied, so a block
    end: int                    # is valid until the next one is asked for. Empty: a skipped line
    offset: int                 # byte offset of data[begin] in the (UTF-8) stream
    unterminated: bool = False  # the file's last line, which had no newline (one was added)
    skipped: bool = False       # one line longer than MAX_LINE, left out


def line_blocks(readinto: Callable[[memoryview], int], chunk_size: int, max_line: int) -> Iterator[Block]:
    """Cut a byte stream into blocks of whole lines. A line over ``max_line`` bytes becomes a
    ``skipped`` block as soon as that many bytes of it are seen, and streams past unread. A chunk's
    whole lines are one block, read in place; the line it shares with the previous chunk is a small
    block of its own."""
    buffer = bytearray(chunk_size)     # reused: no fresh memory (and page faults) per chunk
    view = memoryview(buffer)
    carry, carry_offset, offset, skipping = b"", 0, 0, False
    while size := readinto(view):
        data_offset, offset = offset, offset + size
        start = 0
        if skipping:
            start = buffer.find(b"\n", 0, size) + 1
            if not start:
                continue
            skipping = False
        if carry:
            newline = buffer.find(b"\n", start, size)
            if newline >= 0 and len(carry) + newline - start > max_line:
                yield Block(b"", 0, 0, carry_offset, skipped=True)
                carry, start = b"", newline + 1
            elif newline >= 0:
                head = b"".join((carry, view[start:newline + 1]))
                yield Block(head, 0, len(head), carry_offset)
                carry, start = b"", newline + 1
        cut = buffer.rfind(b"\n", start, size)
        if cut >= 0 and not carry:
            yield Block(buffer, start, cut + 1, data_offset + start)
            start = cut + 1
        if carry:
            carry = b"".join((carry, view[start:size]))
        else:
            carry, carry_offset = bytes(view[start:size]), data_offset + start
        if len(carry) > max_line:
            yield Block(b"", 0, 0, carry_offset, skipped=True)
            carry, skipping = b"", True
    if carry:
        yield Block(carry + b"\n", 0, len(carry) + 1, carry_offset, unterminated=True)


def utf16_reader(stream: BinaryIO, encoding: str) -> Callable[[memoryview], int]:
    """Windows PowerShell redirects write UTF-16; transcode to UTF-8 on the fly (a ``readinto``)."""
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    pending = bytearray()
    done = False

    def readinto(target: memoryview) -> int:
        nonlocal done
        while len(pending) < len(target) and not done:
            raw = stream.read(len(target))
            pending.extend(decoder.decode(raw, final=not raw).encode("utf-8"))
            done = not raw
        size = min(len(target), len(pending))
        target[:size] = pending[:size]
        del pending[:size]
        return size

    return readinto


def binary_offset(head: bytes) -> int | None:
    """Offset of the first non-text byte when ``head`` is mostly not text; None for text."""
    if not head:
        return None
    codes = np.frombuffer(head, np.uint8)
    control = (codes < 32) & ~np.isin(codes, (8, 9, 10, 11, 12, 13, 27)) | (codes == 127)
    text = head.decode("utf-8", "replace")
    bad = int(control.sum()) + text.count("\ufffd")
    if (codes == 0).mean() <= 0.01 and bad <= 0.1 * max(len(text), 1):
        return None
    first_control = int(np.argmax(control)) if control.any() else len(head)
    try:
        head.decode("utf-8")
        first_invalid = len(head)
    except UnicodeDecodeError as error:
        first_invalid = error.start
    return min(first_control, first_invalid)
