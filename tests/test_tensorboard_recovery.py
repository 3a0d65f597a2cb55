"""Issue 17 item 3: one undecodable TensorBoard record no longer ends the file.

The event files are written by torch's real ``SummaryWriter``; the bad records are then made the way the
issue describes: a record re-framed with valid CRCs around a tag that is not UTF-8, and a payload byte
flipped under an intact frame (a data-CRC error mid-file).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnv4_postmortem.analyzer.ingest.tensorboard import read_event_file
from mnv4_postmortem.cli import cli
from _tfrecord import frame_record

SummaryWriter = pytest.importorskip("torch.utils.tensorboard").SummaryWriter

STEPS = 60


def records(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, payload) of every record of a well-formed file."""
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        out.append((pos, data[pos + 12:pos + 12 + length]))
        pos += 16 + length
    return out


def write_run(folder: Path) -> Path:
    writer = SummaryWriter(log_dir=str(folder))
    for step in range(STEPS):
        writer.add_scalar("train/loss", 2.0 - step / STEPS, step, walltime=1.7e9 + step)
    writer.close()
    (path,) = folder.glob("events.out.tfevents.*")
    return path


def test_a_valid_record_with_a_non_utf8_tag_is_skipped_and_later_records_kept(tmp_path):
    path = write_run(tmp_path)
    data = path.read_bytes()
    spans = records(data)
    offset, payload = spans[11]            # the record of step 10 (record 0 is the version header)
    bad = bytearray(payload)
    bad[bad.index(b"train/loss")] = 0xC3   # "\xc3rain/loss": not UTF-8
    path.write_bytes(data[:offset] + frame_record(bytes(bad)) + data[offset + 16 + len(payload):])
    frame, issues = read_event_file(path, "events.tfevents")
    assert frame["step"].tolist() == [s for s in range(STEPS) if s != 10]
    (issue,) = issues
    assert issue.source.record == 11 and issue.source.offset == offset and "not an Event" in issue.message
    # the whole command: a warning naming the file and record, exit 0, every other step analysed
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert view["steps"]["count"] == STEPS - 1
    warnings = json.dumps(view["warnings"])
    assert "not an Event" in warnings and str(offset) in warnings


def test_a_data_crc_error_mid_file_loses_only_that_record(tmp_path):
    path = write_run(tmp_path)
    data = bytearray(path.read_bytes())
    offset, payload = records(bytes(data))[31]
    data[offset + 12 + len(payload) - 2] ^= 0x40      # a byte of the float value, under an intact frame
    path.write_bytes(bytes(data))
    frame, issues = read_event_file(path, "events.tfevents")
    assert frame["step"].tolist() == [s for s in range(STEPS) if s != 30]
    (issue,) = issues
    assert issue.source.record == 31 and "data CRC" in issue.message


def test_a_broken_length_is_resynchronized_on_the_next_record(tmp_path):
    path = write_run(tmp_path)
    data = bytearray(path.read_bytes())
    offset, _ = records(bytes(data))[21]
    data[offset + 1] ^= 0x7F                          # the length field, so its CRC no longer matches
    path.write_bytes(bytes(data))
    frame, issues = read_event_file(path, "events.tfevents")
    assert frame["step"].tolist() == [s for s in range(STEPS) if s != 20]
    assert issues[0].source.offset == offset and "resumed at byte" in issues[0].message


def test_a_data_crc_error_among_thousands_of_records_of_one_length_loses_only_that_record(tmp_path):
    """Payload CRCs of many records of one length are computed together (tables made with the crc32c
    library); a flipped bit in one of them still costs that record alone."""
    writer = SummaryWriter(log_dir=str(tmp_path))
    for step in range(200, 6200):          # steps 128..16383: one varint width, so one record length
        writer.add_scalar("train/loss", 2.0 - step / 6200, step, walltime=1.7e9 + step)
    writer.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    data = bytearray(path.read_bytes())
    spans = records(bytes(data))
    offset, payload = spans[3001]
    data[offset + 12 + 3] ^= 0x01          # a byte of the wall time, under an intact frame
    path.write_bytes(bytes(data))
    frame, issues = read_event_file(path, "events.tfevents")
    lost = 200 + 3000
    assert frame["step"].tolist() == [s for s in range(200, 6200) if s != lost]
    (issue,) = issues
    assert issue.source.record == 3001 and "data CRC" in issue.message
