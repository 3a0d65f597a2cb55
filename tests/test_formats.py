"""The input-format registry: discovery and the merge read it, so a new format is one object and one
line in FORMATS; precedence is the merge's table, not code per format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnv4_postmortem.analyzer.ingest import formats, load_run, merge
from mnv4_postmortem.analyzer.ingest.contribution import Contribution, EpochValues
from mnv4_postmortem.analyzer.ingest.discover import discover
from mnv4_postmortem.analyzer.model import SourceInfo, SourceRef

REPO = Path(__file__).resolve().parents[1]


def test_every_registered_format_satisfies_the_protocol_and_has_a_unique_name():
    names = [fmt.name for fmt in formats.FORMATS]
    assert len(names) == len(set(names))
    for fmt in formats.FORMATS:
        assert isinstance(fmt, formats.Format)
    assert isinstance(formats.by_name("tensorboard"), formats.Combined)
    assert not isinstance(formats.by_name("console_log"), formats.Combined)


def test_precedence_names_only_registered_formats():
    names = {fmt.name for fmt in formats.FORMATS}
    for fact, ranks in merge.PRECEDENCE.items():
        assert {name for rank in ranks for name in rank} <= names, fact
    assert merge.ONE_PER_RUN <= names


def test_discovery_asks_the_registry_in_order():
    found = {f.rel: (f.kind, f.format) for f in discover(REPO / "fixtures" / "runs" / "v1_healthy").files}
    assert found["summary.csv"] == ("summary_csv", "summary_csv")
    assert found["args.yaml"] == ("args_yaml", "args_yaml")
    assert found["train.log"] == ("console_log", "console_log")


class _JsonLinesFormat:
    """A format defined only here: one JSON object per line, {"epoch": e, "val_top1": x}."""

    name = "test_jsonl"
    kind = "other"

    def sniff(self, name: str, head: bytes) -> str | None:
        return "test metrics.jsonl" if name.endswith(".jsonl") else None

    def parse(self, path: Path, shown: str) -> Contribution:
        points = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            record = json.loads(line)
            points.append(("eval_top1", int(record["epoch"]), float(record["val_top1"]), SourceRef(shown, line=number)))
        info = SourceInfo(shown, "other", "test metrics.jsonl", None, ("eval_top1",), None, len(points))
        return Contribution(format=self.name, sources=(info,), epochs=(EpochValues(points),))


def test_a_new_format_is_one_registry_line(tmp_path, monkeypatch):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0, "val_top1": 11.5}\n{"epoch": 1, "val_top1": 20.0}\n')
    monkeypatch.setattr(formats, "FORMATS", (*formats.FORMATS, _JsonLinesFormat()))
    run = load_run(tmp_path)
    assert list(run.epochs["eval_top1"]) == [11.5, 20.0]
    assert str(run.epoch_refs.at[1, "eval_top1"]) == "metrics.jsonl:2"
    assert [s.family for s in run.sources] == ["test metrics.jsonl"]


def test_the_new_format_ranks_below_the_named_ones(tmp_path, monkeypatch):
    """An unnamed format fills gaps only: summary.csv (ranked first for epochs) keeps its values."""
    (tmp_path / "summary.csv").write_text("epoch,train_loss,eval_loss,eval_top1,eval_top5\n0,2.0,2.1,30.0,60.0\n")
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0, "val_top1": 99.0}\n{"epoch": 1, "val_top1": 35.0}\n')
    monkeypatch.setattr(formats, "FORMATS", (*formats.FORMATS, _JsonLinesFormat()))
    run = load_run(tmp_path)
    assert list(run.epochs["eval_top1"]) == [30.0, 35.0]


@pytest.mark.parametrize("fact", sorted(merge.PRECEDENCE))
def test_every_fact_has_at_least_one_rank(fact):
    assert merge.PRECEDENCE[fact] and all(merge.PRECEDENCE[fact])
