"""Issue 17 fuzz test: seeded mutations of real runs through the whole ``report`` command, in process.

Inputs: timm's own ``summary.csv``, ``args.yaml`` and ``train.log`` (``fixtures/runs/seed_mnv4``) and event
files written by torch's ``SummaryWriter`` (``fixtures/tb``), mutated by kind: truncation, byte flips,
re-encoding (UTF-16 with a BOM, a Latin-1 byte in a header), duplicate headers and keys, control characters
(terminal escapes, NUL, CR, form feed) and a huge number of TensorBoard tags. Every case asserts:

- no traceback and no internal error (exit 3): only exit 0, 1 or "nothing usable" (IngestError, exit 2);
- no invented finding: no ``divergence`` unless the mutated input holds a non-finite value;
- every good record before a bad one is kept: after a truncation, every summary.csv row and every event
  record that ends before the cut is in the run, with its value.

The cases are a fixed list drawn from one seeded generator (reproducible, and bounded: about 30 in-process
reports, well under a minute on two cores).
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from tensorboard.compat.proto import event_pb2, summary_pb2

from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.ingest.tensorboard import read_event_file
from mnv4_postmortem.analyzer.model import IngestError
from mnv4_postmortem.cli import cli
from _tfrecord import frame_record

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "fixtures" / "runs" / "seed_mnv4"
TB = REPO / "fixtures" / "tb"
TEXT_FILES = ("summary.csv", "args.yaml", "train.log")
NONFINITE_TOKEN = re.compile(rb"(?i)(?<![a-z])[-+]?(nan|inf(inity)?)(?![a-z])")
ESCAPES = [b"\x1b[2J", b"\x1b]0;title\x07", b"\x1b]8;;http://x\x1b\\hidden\x1b]8;;\x1b\\", b"\x00", b"\r", b"\x0c", b"\x1b[8m"]


def event_file(folder: Path) -> Path:
    return next(p for p in sorted(folder.glob("events.out.tfevents.*")))


def many_tags_file(n_tags: int) -> bytes:
    """A per-step train loss beside ``n_tags`` per-layer tags, in the bytes ``add_scalar`` writes."""
    def scalar(step: int, tag: str, value: float) -> bytes:
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
        return frame_record(event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary).SerializeToString())

    chunks = [frame_record(event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString())]
    for step in range(3):
        chunks.append(scalar(step, "train/loss", 2.0 - 0.1 * step))
        chunks += [scalar(step, f"layer{t}/grad_norm", 0.01 * t) for t in range(n_tags)]
    return b"".join(chunks)


# ------------------------------------------------------------------------------------------ mutations


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(1, max(len(data), 2))]


def flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        out[rng.randrange(len(out))] ^= rng.randint(1, 255)
    return bytes(out)


def reencode(rng: random.Random, data: bytes) -> bytes:
    if rng.random() < 0.5:
        return b"\xff\xfe" + data.decode("utf-8", errors="replace").encode("utf-16-le")
    first, _, rest = data.partition(b"\n")
    return first[:-1] + b"\xe9" + first[-1:] + b"\n" + rest


def duplicate_header(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    at = rng.randrange(1, max(len(lines), 2))
    return b"\n".join(lines[:at] + [lines[0]] + lines[at:])


def control_chars(rng: random.Random, data: bytes) -> bytes:
    out = data
    for _ in range(rng.randint(1, 5)):
        at = rng.randrange(len(out) + 1)
        out = out[:at] + rng.choice(ESCAPES) + out[at:]
    return out


MUTATIONS = {"truncate": truncate, "flip": flip, "reencode": reencode, "duplicate_header": duplicate_header,
             "control_chars": control_chars}


def cases() -> list[tuple[str, str, int]]:
    """(mutation, target file, seed): every text mutation on every text file, plus event-file cases."""
    out = [(m, f, seed) for seed, (m, f) in enumerate((m, f) for m in MUTATIONS for f in TEXT_FILES)]
    out += [("truncate", "tb:old_style", 100), ("truncate", "tb:lightning", 101), ("flip", "tb:old_style", 102),
            ("flip", "tb:lightning", 103), ("flip", "tb:lightning", 104), ("many_tags", "tb:many", 105)]
    return out


def build(tmp_path: Path, mutation: str, target: str, seed: int) -> tuple[Path, bytes, bytes]:
    """The mutated run folder, and the target's original and mutated bytes."""
    rng = random.Random(seed)
    run = tmp_path / "run"
    if target.startswith("tb:"):
        run.mkdir()
        name = "events.out.tfevents.1700000000.fuzz.1.0"
        original = many_tags_file(5000) if target == "tb:many" else event_file(TB / target[3:]).read_bytes()
        mutated = original if mutation == "many_tags" else MUTATIONS[mutation](rng, original)
        (run / name).write_bytes(mutated)
        return run, original, mutated
    shutil.copytree(SEED, run)
    original = (run / target).read_bytes()
    mutated = MUTATIONS[mutation](rng, original)
    (run / target).write_bytes(mutated)
    return run, original, mutated


def input_has_nonfinite(run: Path) -> bool:
    for path in run.iterdir():
        if "tfevents" in path.name:
            try:
                frame, _ = read_event_file(path)
            except IngestError:
                continue
            if not frame["value"].map(math.isfinite).all():
                return True
        elif NONFINITE_TOKEN.search(path.read_bytes().replace(b"\x00", b"")):
            return True
    return False


@pytest.mark.parametrize(("mutation", "target", "seed"), cases(), ids=[f"{m}-{t}-{s}" for m, t, s in cases()])
def test_mutated_real_runs(tmp_path, mutation, target, seed):
    run, original, mutated = build(tmp_path, mutation, target, seed)
    result = CliRunner().invoke(cli, ["report", str(run), "--format", "json"], env={"COLUMNS": "120"})
    # no traceback, no internal error: a clean report, or IngestError ("nothing usable", exit 2 in main()),
    # or "nothing to judge" (exit 4, issue 19: a cut left fewer than 3 epochs of any curve)
    assert result.exception is None or isinstance(result.exception, (SystemExit, IngestError)), repr(result.exception)
    assert result.exit_code in (0, 1, 2, 4) or isinstance(result.exception, IngestError)
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        findings = json.loads(result.output)["findings"]
        if any(f["cause"] == "divergence" for f in findings):
            assert input_has_nonfinite(run), [f["evidence"] for f in findings if f["cause"] == "divergence"]
    if mutation == "truncate":
        assert_prefix_kept(run, target, original, mutated)


def assert_prefix_kept(run: Path, target: str, original: bytes, mutated: bytes) -> None:
    """Every record that ends before the cut survives with its value."""
    if target.startswith("tb:"):
        source = TB / target[3:]
        full, _ = read_event_file(event_file(source))
        spans, pos = [], 0
        while pos < len(original):
            (length,) = struct.unpack_from("<Q", original, pos)
            spans.append(pos + 16 + length)
            pos += 16 + length
        complete = sum(1 for end in spans if end <= len(mutated))
        if complete == 0:
            return
        kept, _ = read_event_file(run / "events.out.tfevents.1700000000.fuzz.1.0")
        expected = full[full["record"] < complete]
        assert list(zip(kept["tag"], kept["step"], kept["value"])) == list(
            zip(expected["tag"], expected["step"], expected["value"]))
        return
    if target != "summary.csv":
        return
    whole = load_run(SEED).epochs["train_loss"]
    lines = original.split(b"\n")
    ended, complete_rows = 0, []
    for line in lines:
        ended += len(line) + 1
        if ended <= len(mutated) and line and not line.startswith(b"epoch"):
            complete_rows.append(int(line.split(b",")[0]))
    if not complete_rows:
        return
    epochs = load_run(run).epochs
    for epoch in complete_rows:
        assert epochs.at[epoch, "train_loss"] == pytest.approx(whole[epoch])
