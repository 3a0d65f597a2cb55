"""TFRecord framing for tests that build or corrupt event files byte by byte (the format's spec: u64 length,
masked CRC32C of the length, payload, masked CRC32C of the payload). The reader under test keeps its own."""

from __future__ import annotations

import struct

import crc32c


def masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(payload: bytes) -> bytes:
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", masked_crc(length)) + payload + struct.pack("<I", masked_crc(payload))
