"""Issue 17 item 2: a file in another encoding, or with one undecodable byte in its header, is read and
reported (file and byte), never dropped without a word.

Inputs are timm's own ``summary.csv`` and ``args.yaml`` (``fixtures/runs/seed_mnv4``) re-saved the way
other tools save them: a Latin-1 byte in the header line (a column renamed in a spreadsheet), UTF-16 with a
byte order mark (Windows tools), a UTF-8 BOM.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.ingest.decode import decode_bytes, head_text
from mnv4_postmortem.cli import cli

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "runs" / "seed_mnv4"


def inspect(folder: Path) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["inspect", str(folder), "--format", "json"], catch_exceptions=False)
    return result.exit_code, (json.loads(result.output) if result.exit_code == 0 else {"error": result.output})


def latin1_header(csv_bytes: bytes) -> tuple[bytes, int]:
    """The file with a column ``précision`` (Latin-1 é) added; and the offset of that byte."""
    lines = csv_bytes.split(b"\n")
    header = lines[0].rstrip(b"\r") + b",pr\xe9cision\r"
    rows = [line.rstrip(b"\r") + b",0.5\r" for line in lines[1:] if line]
    return b"\n".join([header, *rows]) + b"\n", header.index(b"\xe9")


def test_summary_csv_with_a_latin1_byte_in_its_header_is_read_and_reported(tmp_path):
    data, offset = latin1_header((SEED / "summary.csv").read_bytes())
    (tmp_path / "summary.csv").write_bytes(data)
    code, view = inspect(tmp_path)            # summary.csv alone: exit 2 "nothing usable" before
    assert code == 0, view
    (source,) = view["sources"]
    assert source["kind"] == "summary_csv" and "précision" in source["metrics"]
    assert view["epochs"]["count"] == len(load_run(SEED).epochs)
    (warning,) = [w for w in view["warnings"] if "not UTF-8" in w["message"]]
    assert warning["source"].startswith("summary.csv") and f"byte {offset}" in warning["message"]


@pytest.mark.parametrize(("codec", "bom"), [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-8", b"\xef\xbb\xbf")])
def test_summary_csv_and_args_yaml_saved_with_a_bom_are_read(tmp_path, codec, bom):
    saved, plain = tmp_path / "saved", tmp_path / "plain"
    for folder in (saved, plain):
        folder.mkdir()
    for name in ("summary.csv", "args.yaml"):
        (saved / name).write_bytes(bom + (SEED / name).read_text(encoding="utf-8").encode(codec))
        (plain / name).write_bytes((SEED / name).read_bytes())
    run, original = load_run(saved), load_run(plain)
    assert run.epochs.round(6).equals(original.epochs.round(6))
    assert run.config.args == original.config.args
    if codec != "utf-8":
        said = [i for i in run.issues if "byte order mark" in i.message]
        assert {i.source.path for i in said} == {"summary.csv", "args.yaml"}


@pytest.mark.parametrize("content", [
    b"model: resnet50\nlr: 0.1\n",                               # fewer than 3 of timm's keys
    b"model: " + b"x" * 200_000 + b"\nlr: 0.1\nepochs: 3\n",      # one huge line: the keys are past the sniffed head
])
def test_an_args_yaml_that_fails_content_sniffing_is_reported_by_name(tmp_path, content):
    (tmp_path / "summary.csv").write_bytes((SEED / "summary.csv").read_bytes())
    (tmp_path / "args.yaml").write_bytes(content)
    code, view = inspect(tmp_path)
    assert code == 0
    assert any(w["source"].startswith("args.yaml") and "not read" in w["message"] for w in view["warnings"])


def test_decode_helpers():
    text, issues = decode_bytes(b"lr: 0.1\nmodel: caf\xe9\n", "args.yaml")
    assert text == "lr: 0.1\nmodel: café\n"
    assert issues[0].source.line == 2 and issues[0].source.offset == 18 and "0xe9" in issues[0].message
    assert head_text("epoch,é".encode()[:-1]) == "epoch,"          # a character cut by the sniff window
    assert head_text(b"\xff\xfe" + "epoch,train_loss".encode("utf-16-le")) == "epoch,train_loss"
