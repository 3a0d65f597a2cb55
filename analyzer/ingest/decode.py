"""Text encodings of input files: one place that decides how bytes become text, and says so.

timm writes UTF-8, but the files people bring have been through other tools: a spreadsheet saves
``summary.csv`` as UTF-16 with a byte order mark, an editor adds a UTF-8 BOM, a hand-edited header
carries one Latin-1 byte. A decoding error is a reported, recoverable problem, never a dropped file:

- a BOM decides (UTF-8, UTF-16 LE / BE, UTF-32 LE / BE), and is stripped;
- without one the text is UTF-8; where a line is not valid UTF-8 it is read as Latin-1 (every byte
  is a Latin-1 character, so nothing is lost and nothing raises), with one warning naming the file,
  the byte offset and the byte, and a count of the other lines read that way.

:func:`head_text` serves the sniffers (a file's first bytes, possibly cut mid-character);
:func:`decode_bytes` a whole small file (args.yaml); :func:`utf8_stream` wraps a binary stream so a
line-oriented parser reads UTF-8 bytes whatever the file's encoding (summary.csv).
"""

from __future__ import annotations

import codecs
import io
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from mnv4_postmortem.analyzer.model import IngestIssue, SourceRef

# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 BE"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE"),
)


@dataclass(frozen=True, slots=True)
class Encoding:
    codec: str           # Python codec name for the text after the BOM
    label: str           # what a message calls it
    bom: int = 0         # bytes of byte order mark at the start

    @property
    def is_utf8(self) -> bool:
        return self.codec == "utf-8"


UTF8 = Encoding("utf-8", "UTF-8")


def detect(head: bytes) -> Encoding:
    """The encoding a file's first bytes announce with a BOM; UTF-8 without one."""
    for mark, codec, label in _BOMS:
        if head.startswith(mark):
            return Encoding(codec, f"{label} with a byte order mark", len(mark))
    return UTF8


def head_text(head: bytes) -> str:
    """The first bytes of a file as text for a sniffer: BOM honoured, a character cut at the end
    dropped, a non-UTF-8 byte read as Latin-1 (a sniffer must see the header that the parser will read)."""
    encoding = detect(head)
    body = head[encoding.bom:]
    if not encoding.is_utf8:
        return codecs.getincrementaldecoder(encoding.codec)(errors="replace").decode(body, final=False)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        return decoder.decode(body, final=False)
    except UnicodeDecodeError:
        return "\n".join(_line_text(line) for line in body.split(b"\n"))


def _line_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 3 and exc.reason == "unexpected end of data":
            return raw[:exc.start].decode("utf-8", errors="replace")
        return raw.decode("latin-1")


@dataclass(slots=True)
class _Fallbacks:
    """Lines read as Latin-1: the first is described in full, the others counted."""

    shown: str
    first: tuple[int, int, int] | None = None   # (line, byte offset, the byte)
    count: int = 0

    def note(self, line: int, offset: int, byte: int) -> None:
        if self.first is None:
            self.first = (line, offset, byte)
        self.count += 1

    def issues(self) -> list[IngestIssue]:
        if self.first is None:
            return []
        line, offset, byte = self.first
        more = f"; {self.count - 1} more line(s) read the same way" if self.count > 1 else ""
        return [IngestIssue(SourceRef(self.shown, line=line, offset=offset),
                            f"not UTF-8: byte 0x{byte:02x} at byte {offset} (line {line}); "
                            f"that line was read as Latin-1{more}")]


def decode_bytes(raw: bytes, shown: str) -> tuple[str, list[IngestIssue]]:
    """A whole file's text, and the issues its decoding raised (see the module docstring)."""
    encoding = detect(raw)
    body = raw[encoding.bom:]
    issues = [_bom_issue(shown, encoding)] if not encoding.is_utf8 else []
    if not encoding.is_utf8:
        try:
            return body.decode(encoding.codec), issues
        except UnicodeDecodeError as exc:
            issues.append(_bad_unit_issue(shown, encoding, exc.start + encoding.bom))
            return body.decode(encoding.codec, errors="replace"), issues
    try:
        return body.decode("utf-8"), issues
    except UnicodeDecodeError:
        pass
    fallbacks = _Fallbacks(shown)
    lines, offset = [], encoding.bom
    for number, raw_line in enumerate(body.split(b"\n"), start=1):
        lines.append(_decode_line(raw_line, number, offset, fallbacks))
        offset += len(raw_line) + 1
    return "\n".join(lines), issues + fallbacks.issues()


def _decode_line(raw: bytes, number: int, offset: int, fallbacks: _Fallbacks) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        fallbacks.note(number, offset + exc.start, raw[exc.start])
        return raw.decode("latin-1")


def _bom_issue(shown: str, encoding: Encoding) -> IngestIssue:
    return IngestIssue(SourceRef(shown, line=1, offset=0), f"{encoding.label}, not UTF-8: read as {encoding.label.split(' with')[0]}")


def _bad_unit_issue(shown: str, encoding: Encoding, offset: int) -> IngestIssue:
    return IngestIssue(SourceRef(shown, offset=offset),
                       f"invalid {encoding.label.split(' with')[0]} at byte {offset}; unreadable characters replaced")


class _Utf8Lines(io.RawIOBase):
    """A binary stream of UTF-8 made from another binary stream in any supported encoding.

    UTF-8 input passes through in chunks that end at a line end (one validity check per chunk, so a
    large clean file costs almost nothing); a chunk that fails is redone line by line, and only its
    bad lines are read as Latin-1."""

    def __init__(self, source: BinaryIO, shown: str, max_line: int, fallback_if: Callable[[str], bool] | None):
        self._fallback_if = fallback_if
        head = source.read(4)
        self.encoding = detect(head)
        self.fallbacks = _Fallbacks(shown)
        self.issues: list[IngestIssue] = [_bom_issue(shown, self.encoding)] if not self.encoding.is_utf8 else []
        self._stream = io.BufferedReader(_Prefixed(head[self.encoding.bom:], source))  # type: ignore[arg-type]
        self._reader = (None if self.encoding.is_utf8
                        else codecs.getreader(self.encoding.codec)(self._stream, errors="replace"))
        self._max_line = max_line
        self._pending = b""
        self._lines = 0                  # complete lines passed so far
        self._offset = self.encoding.bom

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bytes:
        if self._reader is not None:
            return self._reader.readline().encode("utf-8")
        data = self._stream.read(1 << 16)
        if data and not data.endswith(b"\n"):
            data += self._stream.readline(self._max_line)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pieces = data.split(b"\n")
            lines = [piece + b"\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
            data = b"".join(self._line(raw) for raw in lines)
        else:
            self._lines += data.count(b"\n")
            self._offset += len(data)
        return data

    def _line(self, raw: bytes) -> bytes:
        start = self._offset
        self._offset += len(raw)
        self._lines += 1
        try:
            raw.decode("utf-8")
            return raw
        except UnicodeDecodeError as exc:
            if exc.reason == "unexpected end of data" and not raw.endswith(b"\n"):
                return raw   # a line cut at the length limit: the parser reports it
            text = raw.decode("latin-1")
            if self._fallback_if is not None and not self._fallback_if(text):
                return raw   # left to the parser, which reports and skips the line
            self.fallbacks.note(self._lines, start + exc.start, raw[exc.start])
            return text.encode("utf-8")

    def readinto(self, buffer) -> int:
        if not self._pending:
            self._pending = self._next_chunk()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def all_issues(self) -> list[IngestIssue]:
        return self.issues + self.fallbacks.issues()


class _Prefixed(io.RawIOBase):
    """``prefix`` then the rest of ``source``: the bytes read while looking for a BOM, put back."""

    def __init__(self, prefix: bytes, source: BinaryIO):
        self._prefix = prefix
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._source.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


@dataclass(slots=True)
class Utf8Stream:
    """What :func:`utf8_stream` returns: a buffered binary stream of UTF-8, and the issues its
    decoding raised so far (complete once the stream is read to its end)."""

    stream: BinaryIO
    _raw: _Utf8Lines = field(repr=False)

    def issues(self) -> list[IngestIssue]:
        return self._raw.all_issues()


def utf8_stream(source: BinaryIO, shown: str, max_line: int = 1 << 20,
                fallback_if: Callable[[str], bool] | None = None) -> Utf8Stream:
    """Wrap ``source`` so that reading it gives UTF-8 bytes line by line (see the module docstring);
    ``max_line`` bounds one read of a UTF-8 file's line, as the parser's own limit does.
    ``fallback_if``: only lines for which it is true (given the Latin-1 reading) are read as Latin-1;
    the others pass through as they are, for the parser to report (a number with a stray byte in it
    is damage, not an encoding)."""
    raw = _Utf8Lines(source, shown, max_line, fallback_if)
    return Utf8Stream(io.BufferedReader(raw, buffer_size=1 << 16), raw)  # type: ignore[arg-type]
