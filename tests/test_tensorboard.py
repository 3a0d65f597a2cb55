"""TensorBoard scalar reader: real event files (public runs, torch-written fixtures), bad input, merging."""

from __future__ import annotations

import csv
import math
import os
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tbparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.histogram import summary_v2 as histogram_summary
from tensorboard.plugins.scalar import summary_v2 as scalar_summary
from tensorboard.plugins.text import summary_v2 as text_summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from mnv4_postmortem.analyzer.ingest import tensorboard as tb
from mnv4_postmortem.analyzer.ingest.tensorboard import (
    DEFAULT_ALIASES,
    FRAME_COLUMNS,
    load_alias_file,
    read_event_file,
    read_tensorboard,
    resolve_aliases,
    sniff_event_file,
)
from mnv4_postmortem.analyzer.model import IngestError
from _tfrecord import frame_record, masked_crc

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures" / "tb"
REAL_RUNS = REPO.parent / "shared" / "real-runs"
CANONICAL = {"train_loss", "eval_loss", "eval_top1", "eval_top5", "lr", "train_top1", "train_top5", "grad_norm"}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def real_run(name: str) -> Path:
    path = REAL_RUNS / name
    if not path.is_dir():
        pytest.skip(f"real run {name} not available")
    return path


def event_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("events.out.tfevents.*") if p.is_file())


def only_event_file(folder: Path) -> Path:
    (path,) = event_files(folder)
    return path


def record_spans(data: bytes) -> list[tuple[int, int]]:
    """(byte offset, total framed size) of every record, from the length fields alone."""
    spans, pos = [], 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        spans.append((pos, length + 16))
        pos += length + 16
    assert pos == len(data), "test helper expects a well-formed file"
    return spans


def tbparse_frame(path: Path, kind: str = "scalars") -> pd.DataFrame:
    reader = tbparse.SummaryReader(str(path), extra_columns={"wall_time", "dir_name", "file_name"})
    frame = getattr(reader, kind)
    return frame


def canonical(frame: pd.DataFrame, columns=("tag", "step", "value")) -> pd.DataFrame:
    cols = list(columns)
    out = frame[cols].astype({"tag": str, "step": "int64", "value": "float64"})
    return out.sort_values(cols, kind="stable").reset_index(drop=True)


def latest_per_tag_step(frame: pd.DataFrame) -> pd.DataFrame:
    """The merge rule stated independently: per (tag, step) the row with the largest wall_time."""
    ordered = frame.sort_values(["tag", "step", "wall_time"], kind="stable")
    return ordered.drop_duplicates(["tag", "step"], keep="last")


def write_events(folder: Path, summaries: list[tuple[int, float, summary_pb2.Summary]]) -> Path:
    """Write Summary protos with TensorBoard's own EventFileWriter; returns the event file."""
    writer = EventFileWriter(str(folder))
    for step, wall_time, summary in summaries:
        writer.add_event(event_pb2.Event(step=step, wall_time=wall_time, summary=summary))
    writer.close()
    return only_event_file(folder)


def rows_of(frame: pd.DataFrame) -> set[tuple]:
    return set(frame[["tag", "step", "wall_time", "value", "record"]].itertuples(index=False, name=None))


# ---------------------------------------------------------------------------------------------
# real runs by other people, read in place
# ---------------------------------------------------------------------------------------------


def test_zxq_tutorial_run_has_30_epochs_of_loss_accuracy_lr():
    folder = real_run("zxq-effnet-b0-flowers-tb-complete")
    result = read_tensorboard([folder], [folder.name])
    frame = result.frame
    assert result.issues == ()
    assert set(frame["tag"]) == {"loss", "accuracy", "learning_rate"}
    by_metric = {metric: group.sort_values("step") for metric, group in frame.groupby("metric")}
    assert set(by_metric) == {"train_loss", "eval_top1", "lr"}
    for group in by_metric.values():
        assert group["step"].tolist() == list(range(30))
    # Same numbers as an independent reader; the fraction accuracy becomes percent.
    reference = canonical(tbparse_frame(folder))
    raw, _ = read_event_file(only_event_file(folder))
    pd.testing.assert_frame_equal(canonical(raw), reference)
    accuracy = by_metric["eval_top1"]["value"].to_numpy()
    expected = reference[reference["tag"] == "accuracy"]["value"].to_numpy() * 100
    np.testing.assert_allclose(accuracy, expected)
    assert 80 < accuracy.min() and accuracy.max() < 100
    # The schedule decays, the loss falls (the run's own story, from PROVENANCE.md).
    lr = by_metric["lr"]["value"].to_numpy()
    assert lr[0] > lr[-1] and np.all(np.diff(lr) <= 0)
    assert by_metric["train_loss"]["value"].iloc[-1] < by_metric["train_loss"]["value"].iloc[0] / 4


def test_ultralytics_events_match_results_csv():
    folder = real_run("ultra-weather-yolov8n-healthy")
    result = read_tensorboard([folder / p.name for p in event_files(folder)])
    assert result.issues == ()
    frame = result.frame.set_index(["tag", "step"])
    with open(folder / "results.csv", newline="") as handle:
        rows = [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(handle)]
    assert len(rows) == 20
    raw, _ = read_event_file(only_event_file(folder))
    last_epoch = int(rows[-1]["epoch"])
    compared = 0
    for row in rows:
        epoch = int(row["epoch"])
        for tag, text in row.items():
            if tag == "epoch":
                continue
            csv_value = float(text)
            if tag.startswith("metrics/") and epoch == last_epoch:
                # Ultralytics validates best.pt once more after training and logs it at the last
                # step: the latest write wins, so the epoch's own value is superseded.
                written = raw[(raw["tag"] == tag) & (raw["step"] == epoch)].sort_values("wall_time")
                assert len(written) == 2 and written["value"].iloc[0] == pytest.approx(csv_value, rel=1e-4)
                kept = frame.loc[(tag, epoch)]
                assert kept["record"] == written["record"].iloc[-1]
                continue
            value = frame.loc[(tag, epoch), "value"]
            if tag.startswith("metrics/"):
                value /= 100.0  # fractions in the CSV, percent in our frame
            assert value == pytest.approx(csv_value, rel=1e-4, abs=1e-9), (tag, epoch)
            compared += 1
    assert compared == 20 * 7 - 2
    assert frame.loc[("lr/pg0", 1), "metric"] == "lr"
    assert frame.loc[("lr/pg1", 1), "metric"] == "lr/pg1"  # unknown tags keep their name


def test_sallyeen_two_run_folders_one_header_only():
    folder = real_run("sallyeen-swin-tiny-flowers-tb-val-spike")
    files = event_files(folder)
    assert len(files) == 2
    header_only = [p for p in files if p.stat().st_size == 40]
    assert len(header_only) == 1
    empty, issues = read_event_file(header_only[0])
    assert empty.empty and issues == [] and list(empty.columns) == [c for c in FRAME_COLUMNS if c != "metric"]

    result = read_tensorboard([folder], ["sallyeen"])
    assert result.issues == ()
    assert len(result.files) == 2 and all(name.startswith("sallyeen/runs/") for name in result.files)
    frame = result.frame
    counts = frame.groupby("metric")["step"].nunique().to_dict()
    assert counts == {"train_loss": 10, "train_top1": 10, "eval_loss": 10, "eval_top1": 10, "lr": 10}
    reference = canonical(tbparse_frame(folder))
    ours = canonical(read_event_file(max(files, key=lambda p: p.stat().st_size))[0])
    pd.testing.assert_frame_equal(ours, reference)
    # The documented spike: the last epoch's val loss is far above its minimum.
    val_loss = frame[frame["metric"] == "eval_loss"].sort_values("step")["value"].to_numpy()
    assert val_loss[-1] > 2 * val_loss.min()


def test_real_files_sniff_as_event_files_and_their_neighbours_do_not():
    folder = real_run("ultra-weather-yolov8n-healthy")
    assert sniff_event_file(only_event_file(folder).read_bytes()[:64])
    for other in ("results.csv", "args.yaml", "PROVENANCE.md"):
        assert not sniff_event_file((folder / other).read_bytes()[:64])


# ---------------------------------------------------------------------------------------------
# fixtures written by torch.utils.tensorboard (see fixtures/tb/make_tb_fixtures.py)
# ---------------------------------------------------------------------------------------------


def test_old_style_fixture_matches_tbparse_and_skips_images_histograms_text_graph():
    path = only_event_file(FIXTURES / "old_style")
    frame, issues = read_event_file(path, "old.tfevents")
    assert issues == []
    assert list(frame.columns) == ["tag", "step", "wall_time", "value", "file", "record"]
    assert frame.dtypes["step"] == np.int64 and frame.dtypes["record"] == np.int64
    assert frame.dtypes["value"] == np.float64 and frame.dtypes["wall_time"] == np.float64
    assert set(frame["file"]) == {"old.tfevents"}
    reference = tbparse_frame(path)
    pd.testing.assert_frame_equal(canonical(frame, ("tag", "step", "wall_time", "value")),
                                  canonical(reference, ("tag", "step", "wall_time", "value")))
    # Records holding non-scalars are skipped, but they still count in the record index.
    kinds = set()
    for record in RawEventFileLoader(str(path)).Load():  # TensorBoard's own reading path
        event = event_pb2.Event.FromString(record)
        kinds.add(event.WhichOneof("what"))
        kinds.update(value.WhichOneof("value") for value in event.summary.value)
    assert {"image", "histo", "tensor", "graph_def", "simple_value"} <= kinds
    assert frame["record"].is_monotonic_increasing and frame["record"].min() >= 1
    assert frame["record"].max() > len(frame)  # images etc. sit between the scalar records


def test_old_style_fraction_accuracies_become_percent():
    folder = FIXTURES / "old_style"
    raw, _ = read_event_file(only_event_file(folder))
    result = read_tensorboard([folder])
    merged = result.frame.set_index(["tag", "step"])
    for tag, metric in (("val/acc1", "eval_top1"), ("val/acc5", "eval_top5")):
        written = raw[raw["tag"] == tag].set_index("step")["value"]
        assert written.max() <= 1.0
        assert (merged.loc[tag, "metric"] == metric).all()
        np.testing.assert_allclose(merged.loc[tag, "value"].to_numpy(), written.to_numpy() * 100)
    # Losses and LR are left as written.
    written_loss = raw[raw["tag"] == "val/loss"]["value"].to_numpy()
    np.testing.assert_array_equal(merged.loc["val/loss", "value"].to_numpy(), written_loss)


def test_new_style_tensor_scalars_match_tbparse_tensors():
    path = only_event_file(FIXTURES / "new_style")
    frame, issues = read_event_file(path)
    assert issues == []
    reference = tbparse_frame(path, "tensors")
    assert len(reference) and tbparse_frame(path).empty  # torch new_style really wrote tensors
    pd.testing.assert_frame_equal(canonical(frame), canonical(reference))
    counts = frame.groupby("tag").size().to_dict()
    assert counts == {"train/loss": 40, "lr": 40, "val/loss": 4, "val/top1": 4}
    # double_precision=True kept its 64 bits: 1e-9 survives where float32 would drop it.
    val_loss = frame[frame["tag"] == "val/loss"].sort_values("step")["value"].to_numpy()
    np.testing.assert_array_equal(val_loss, [1.2 / (e + 1) + 1e-9 for e in range(4)])


def test_new_style_percent_accuracy_is_not_rescaled():
    result = read_tensorboard([FIXTURES / "new_style"])
    top1 = result.frame[result.frame["metric"] == "eval_top1"]["value"]
    raw, _ = read_event_file(only_event_file(FIXTURES / "new_style"))
    np.testing.assert_array_equal(np.sort(top1.to_numpy()), np.sort(raw[raw["tag"] == "val/top1"]["value"].to_numpy()))
    assert top1.max() > 1


def test_restart_keeps_latest_write_per_tag_and_step():
    folder = FIXTURES / "restart"
    files = event_files(folder)
    assert len(files) == 2
    result = read_tensorboard([folder], ["restart"])
    assert result.issues == ()
    frame = result.frame
    assert not frame.duplicated(["tag", "step"]).any()
    reference = tbparse_frame(folder)
    assert reference.duplicated(["tag", "step"]).any()  # the overlap is really there
    expected = latest_per_tag_step(reference)
    ours = frame.assign(value=np.where(frame["metric"] == "eval_top1", frame["value"] / 100, frame["value"]))
    pd.testing.assert_frame_equal(canonical(ours, ("tag", "step", "wall_time", "value")),
                                  canonical(expected, ("tag", "step", "wall_time", "value")),
                                  check_exact=False, rtol=1e-12)
    # Overlapping epochs come from the resumed (second) file, the rest from where they exist.
    second = result.files[1]
    assert second.endswith(files[1].name)
    overlap = frame[frame["step"].between(3, 5)]
    assert set(overlap["file"]) == {second}
    assert set(frame[frame["step"] < 3]["file"]) == {result.files[0]}
    assert sorted(frame["step"].unique()) == list(range(10))


def test_wall_time_tie_goes_to_the_later_file(tmp_path):
    summaries = [(0, 100.0, summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="loss", simple_value=1.0)]))]
    first = write_events(tmp_path / "a", summaries)
    summaries = [(0, 100.0, summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="loss", simple_value=2.0)]))]
    second = write_events(tmp_path / "b", summaries)
    assert read_tensorboard([first, second]).frame["value"].tolist() == [2.0]
    assert read_tensorboard([second, first]).frame["value"].tolist() == [1.0]


def test_tf2_style_tensors_with_metadata_only_on_first_value(tmp_path):
    summaries = []
    for step in range(5):
        summary = scalar_summary.scalar_pb("eval/acc1", 70.0 + step)
        if step:
            summary.value[0].ClearField("metadata")  # TF2 sends a tag's metadata once per file
        summaries.append((step, 1000.0 + step, summary))
    summaries.append((0, 1000.0, histogram_summary.histogram_pb("weights", np.arange(10.0))))
    summaries.append((0, 1000.0, text_summary.text_pb("notes", "hello")))
    custom = scalar_summary.scalar_pb("custom_plugin_value", 3.0)
    custom.value[0].metadata.plugin_data.plugin_name = "my_plugin"
    summaries.append((0, 1000.0, custom))
    path = write_events(tmp_path, summaries)
    frame, issues = read_event_file(path)
    assert issues == []
    assert frame["tag"].unique().tolist() == ["eval/acc1"]
    assert frame["value"].tolist() == [70.0, 71.0, 72.0, 73.0, 74.0]
    reference = tbparse_frame(path, "tensors").query("tag == 'eval/acc1'")
    pd.testing.assert_frame_equal(canonical(frame), canonical(reference))


@pytest.mark.parametrize(
    ("dtype", "tensor_kwargs", "expected"),
    [
        (types_pb2.DT_FLOAT, {"tensor_content": struct.pack("<f", 0.25)}, 0.25),
        (types_pb2.DT_DOUBLE, {"tensor_content": struct.pack("<d", 1 / 3)}, 1 / 3),
        (types_pb2.DT_DOUBLE, {"double_val": [math.pi]}, math.pi),
        (types_pb2.DT_HALF, {"half_val": [struct.unpack("<H", struct.pack("<e", 1.5))[0]]}, 1.5),
        (types_pb2.DT_INT32, {"int_val": [3]}, None),  # not a float: not a scalar we read
        (types_pb2.DT_FLOAT, {"float_val": [1.0, 2.0]}, None),  # shape [2] below: not a scalar
    ],
)
def test_tensor_encodings(tmp_path, dtype, tensor_kwargs, expected):
    two = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=2)])
    shape = two if expected is None and dtype == types_pb2.DT_FLOAT else None
    tensor = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, **tensor_kwargs)
    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="x", tensor=tensor, metadata=metadata)])
    frame, issues = read_event_file(write_events(tmp_path, [(7, 5.0, summary)]))
    assert issues == []
    if expected is None:
        assert frame.empty
    else:
        assert frame["value"].tolist() == [expected] and frame["step"].tolist() == [7]


def test_non_finite_values_are_kept(tmp_path):
    summaries = [
        (step, float(step), summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="train/loss", simple_value=v)]))
        for step, v in enumerate([1.0, float("nan"), float("inf")])
    ]
    frame = read_tensorboard([write_events(tmp_path, summaries)]).frame
    values = frame.sort_values("step")["value"].to_numpy()
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2] == math.inf


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


# The old_style fixture, loaded once; module constants rather than fixtures so that hypothesis
# does not print 50 KB of bytes for a failing example.
OLD_STYLE_BYTES = only_event_file(FIXTURES / "old_style").read_bytes()
OLD_STYLE_FRAME = read_event_file(only_event_file(FIXTURES / "old_style"))[0]


@pytest.fixture()
def fixture_bytes() -> bytes:
    return OLD_STYLE_BYTES


@pytest.fixture()
def fixture_frame() -> pd.DataFrame:
    return OLD_STYLE_FRAME


def write(tmp_path: Path, data: bytes, name: str = "events.out.tfevents.1.test.1.0") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_same_rows(frame: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(frame.drop(columns="file"), expected.drop(columns="file").reset_index(drop=True))


def middle_scalar_record(data: bytes, frame: pd.DataFrame) -> tuple[int, int, int]:
    """(record index, offset, size) of a scalar record halfway through the file."""
    spans = record_spans(data)
    index = int(frame["record"].iloc[len(frame) // 2])
    return index, *spans[index]


def test_truncated_mid_record_keeps_earlier_records(tmp_path, fixture_bytes, fixture_frame):
    index, offset, size = middle_scalar_record(fixture_bytes, fixture_frame)
    path = write(tmp_path, fixture_bytes[: offset + size // 2])
    frame, issues = read_event_file(path, "cut.tfevents")
    pd.testing.assert_frame_equal(
        frame.drop(columns="file"),
        fixture_frame[fixture_frame["record"] < index].drop(columns="file").reset_index(drop=True),
    )
    assert len(issues) == 1
    assert issues[0].source.path == "cut.tfevents"
    assert issues[0].source.offset == offset and issues[0].source.record == index
    assert "truncated" in issues[0].message and str(offset) in str(issues[0])


def test_truncated_inside_header(tmp_path, fixture_bytes, fixture_frame):
    index, offset, _ = middle_scalar_record(fixture_bytes, fixture_frame)
    frame, issues = read_event_file(write(tmp_path, fixture_bytes[: offset + 5]))
    assert len(frame) == int((fixture_frame["record"] < index).sum())
    assert issues[0].source.offset == offset and "header" in issues[0].message


def test_flipped_data_byte_is_a_crc_mismatch(tmp_path, fixture_bytes, fixture_frame):
    index, offset, size = middle_scalar_record(fixture_bytes, fixture_frame)
    data = bytearray(fixture_bytes)
    data[offset + size - 6] ^= 0x01  # inside the payload (the float's last byte)
    path = write(tmp_path, bytes(data))
    frame, issues = read_event_file(path)
    # issue 17 item 3: the framing is intact, so only the bad record is lost; the records after it are kept
    assert_same_rows(frame, fixture_frame[fixture_frame["record"] != index])
    assert len(issues) == 1 and issues[0].source.record == index
    assert issues[0].source.offset == offset and "data CRC" in issues[0].message
    # Without CRC checks the same file reads to the end, one value silently changed.
    unchecked, unchecked_issues = read_event_file(path, check_crc=False)
    assert unchecked_issues == [] and len(unchecked) == len(fixture_frame)
    assert (unchecked["value"] != fixture_frame["value"]).sum() == 1


def test_flipped_length_byte_is_a_length_crc_mismatch(tmp_path, fixture_bytes, fixture_frame):
    index, offset, _ = middle_scalar_record(fixture_bytes, fixture_frame)
    data = bytearray(fixture_bytes)
    data[offset] ^= 0x02
    frame, issues = read_event_file(write(tmp_path, bytes(data)))
    assert issues[0].source.offset == offset and "length CRC" in issues[0].message
    # the reader resynchronizes on the next whole record: only the record with the broken length is lost
    assert_same_rows(frame, fixture_frame[fixture_frame["record"] != index])
    assert "resumed at byte" in issues[0].message and len(issues) == 1


@pytest.mark.parametrize("length", [2**63 + 5, 2**40, 10**9])
def test_huge_length_field_is_checked_against_the_file_size(tmp_path, fixture_bytes, fixture_frame, length):
    index, offset, _ = middle_scalar_record(fixture_bytes, fixture_frame)
    length_bytes = struct.pack("<Q", length)
    forged = length_bytes + struct.pack("<I", masked_crc(length_bytes))  # a *valid* header
    data = fixture_bytes[:offset] + forged + fixture_bytes[offset + 12 :]
    frame, issues = read_event_file(write(tmp_path, data))
    # nothing is allocated from the length, and the next whole record is found after it
    assert_same_rows(frame, fixture_frame[fixture_frame["record"] != index])
    assert issues[0].source.offset == offset and str(length) in issues[0].message
    with pytest.raises(IngestError):  # the same header first in a file: not an event file
        read_event_file(write(tmp_path, forged + b"\0" * 64, "first.tfevents"))


def test_valid_frame_around_garbage_payload(tmp_path, fixture_bytes):
    spans = record_spans(fixture_bytes)
    cut = spans[3][0]
    data = fixture_bytes[:cut] + frame_record(b"\xff\xff\xff\xff not a proto") + fixture_bytes[cut:]
    frame, issues = read_event_file(write(tmp_path, data))
    assert issues[0].source.offset == cut and issues[0].source.record == 3
    assert "not an Event" in issues[0].message


def test_header_only_file_is_valid_and_empty(tmp_path, fixture_bytes):
    torch_header = fixture_bytes[: record_spans(fixture_bytes)[0][1]]  # torch adds source_metadata
    classic = frame_record(event_pb2.Event(wall_time=1e9, file_version="brain.Event:2").SerializeToString())
    assert len(classic) == 40
    for n, header in enumerate((torch_header, classic)):
        frame, issues = read_event_file(write(tmp_path, header, f"header{n}.tfevents"))
        assert frame.empty and issues == []


def test_empty_file_is_a_warning_not_an_error(tmp_path):
    path = write(tmp_path, b"")
    frame, issues = read_event_file(path)
    assert frame.empty and len(issues) == 1 and "empty" in issues[0].message
    result = read_tensorboard([path])
    assert result.frame.empty and len(result.issues) == 1 and result.files == (str(path),)
    assert list(result.frame.columns) == list(FRAME_COLUMNS)


@pytest.mark.parametrize("content", [os.urandom(4096), b"epoch,loss\n0,1.0\n" * 20, b"\x00" * 100, b"short"])
def test_not_an_event_file(tmp_path, content):
    path = write(tmp_path, content)
    assert not sniff_event_file(content[:64])
    with pytest.raises(IngestError) as error:
        read_event_file(path, "junk.tfevents")
    assert error.value.source.path == "junk.tfevents" and error.value.source.offset == 0


def test_read_tensorboard_turns_bad_files_into_issues_and_reads_the_rest(tmp_path):
    junk = write(tmp_path, os.urandom(1000), "events.out.tfevents.0.junk")
    good = event_files(FIXTURES / "restart")[0]
    missing = tmp_path / "events.out.tfevents.missing"
    result = read_tensorboard([junk, good, missing], ["junk", "good", "missing"])
    assert result.files == ("junk", "good", "missing")
    assert [(i.source.path, i.level) for i in result.issues] == [("junk", "error"), ("missing", "error")]
    assert set(result.frame["file"]) == {"good"} and len(result.frame) > 0


def test_unreadable_paths_raise_ingest_error(tmp_path):
    with pytest.raises(IngestError):
        read_event_file(tmp_path / "nope")
    with pytest.raises(IngestError):
        read_event_file(tmp_path)
    fifo = tmp_path / "events.out.tfevents.fifo"
    os.mkfifo(fifo)
    with pytest.raises(IngestError, match="regular file"):
        read_event_file(fifo)


def test_sniff_needs_a_full_valid_header(fixture_bytes):
    assert sniff_event_file(fixture_bytes[:12])
    assert not sniff_event_file(fixture_bytes[:11])
    assert not sniff_event_file(b"")
    flipped = bytearray(fixture_bytes[:12])
    flipped[9] ^= 0x10
    assert not sniff_event_file(bytes(flipped))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.one_of(st.none(), st.floats(0.0, 1.0)),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(1, 255)), max_size=4),
)
def test_mutated_real_files_never_escape_and_never_invent_records(tmp_path, cut, flips):
    fixture_bytes, fixture_frame = OLD_STYLE_BYTES, OLD_STYLE_FRAME
    data = bytearray(fixture_bytes)
    for where, mask in flips:
        data[int(where * len(data))] ^= mask
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = write(tmp_path, bytes(data), "mutated.tfevents")
    original = rows_of(fixture_frame)
    try:
        frame, issues = read_event_file(path, "mutated.tfevents")
    except IngestError as error:
        assert error.source is not None and error.source.path == "mutated.tfevents"
    else:
        assert rows_of(frame) <= original
        if not flips:  # pure truncation: exactly the records that end before the cut survive
            complete = sum(1 for offset, size in record_spans(fixture_bytes) if offset + size <= len(data))
            assert rows_of(frame) == rows_of(fixture_frame[fixture_frame["record"] < complete])
            spans = record_spans(fixture_bytes)
            at_boundary = complete == len(spans) or spans[complete][0] == len(data)
            assert len(issues) == (0 if at_boundary and data else 1)
        for issue in issues:
            assert issue.source.offset is not None and 0 <= issue.source.offset <= len(data)
    merged = read_tensorboard([path])  # never raises for content
    assert set(zip(merged.frame["tag"], merged.frame["step"])) <= set(zip(fixture_frame["tag"], fixture_frame["step"]))


# ---------------------------------------------------------------------------------------------
# the vectorized decoder of plain add_scalar records must agree with protobuf
# ---------------------------------------------------------------------------------------------


def read_with_protobuf_only(path: Path) -> tuple[pd.DataFrame, list]:
    saved = tb._USE_PLAIN_DECODER
    tb._USE_PLAIN_DECODER = False
    try:
        return read_event_file(path)
    finally:
        tb._USE_PLAIN_DECODER = saved


def assert_same_reading(path: Path) -> pd.DataFrame:
    fast, fast_issues = read_event_file(path)
    reference, reference_issues = read_with_protobuf_only(path)
    pd.testing.assert_frame_equal(fast, reference)  # NaN-aware, dtypes and row order included
    assert [str(i) for i in fast_issues] == [str(i) for i in reference_issues]
    return fast


@pytest.mark.parametrize("folder", ["old_style", "new_style", "restart"])
def test_plain_decoder_matches_protobuf_on_fixtures(folder):
    for path in event_files(FIXTURES / folder):
        assert len(assert_same_reading(path))


def test_plain_decoder_matches_protobuf_on_real_runs():
    for name in ("ultra-weather-yolov8n-healthy", "zxq-effnet-b0-flowers-tb-complete"):
        assert len(assert_same_reading(only_event_file(real_run(name))))


def scalar_event(wall_time: float, step: int, tag: str, value: float, extra: str) -> event_pb2.Event:
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
    if extra == "node_name":
        summary.value[0].node_name = "n"
    elif extra == "second_value":
        summary.value.add(tag=tag + "/2", simple_value=value * 2)
    elif extra == "metadata":
        summary.value[0].metadata.display_name = "shown"
    elif extra == "tensor":
        return event_pb2.Event(wall_time=wall_time, step=step, summary=scalar_summary.scalar_pb(tag, value))
    elif extra == "no_summary":
        return event_pb2.Event(wall_time=wall_time, step=step, file_version="brain.Event:2")
    return event_pb2.Event(wall_time=wall_time, step=step, summary=summary)


EVENTS = st.lists(
    st.builds(
        scalar_event,
        wall_time=st.one_of(st.just(0.0), st.floats(allow_nan=True, allow_infinity=True)),
        step=st.one_of(st.integers(0, 300), st.integers(-(2**63), 2**63 - 1)),
        tag=st.one_of(st.sampled_from(["train/loss", "lr", "Accuracy/val"]), st.text(max_size=130)),
        value=st.floats(width=32),
        extra=st.sampled_from(["", "", "", "node_name", "second_value", "metadata", "tensor", "no_summary"]),
    ),
    max_size=30,
)


@settings(max_examples=50, deadline=None)
@given(events=EVENTS)
def test_plain_decoder_matches_protobuf_on_generated_events(tmp_path_factory, events):
    header = event_pb2.Event(wall_time=1.0, file_version="brain.Event:2")
    data = b"".join(frame_record(event.SerializeToString()) for event in [header, *events])
    path = tmp_path_factory.mktemp("gen") / "events.out.tfevents.1.gen"
    path.write_bytes(data)
    frame = assert_same_reading(path)
    plain = sum(1 for event in events if event.HasField("summary") and len(event.summary.value) >= 1
                and event.summary.value[0].WhichOneof("value") == "simple_value")
    assert len(frame) >= plain


def test_bad_utf8_tag_in_a_plain_record_is_a_bad_record(tmp_path):
    good = [frame_record(scalar_event(float(i), i, "loss", 1.0, "").SerializeToString()) for i in range(3)]
    payload = bytearray(scalar_event(3.0, 3, "loss", 1.0, "").SerializeToString())
    payload[payload.index(b"loss")] = 0xFF  # same layout, tag no longer UTF-8
    path = write(tmp_path, b"".join([*good, frame_record(bytes(payload)), *good]))
    frame, issues = read_event_file(path)
    # issue 17 item 3: the bad record is skipped with a warning, the records before and after it kept
    assert frame["step"].tolist() == [0, 1, 2, 0, 1, 2] and frame["record"].tolist() == [0, 1, 2, 4, 5, 6]
    assert len(issues) == 1 and issues[0].source.record == 3 and "not an Event" in issues[0].message
    assert_same_reading(path)


# ---------------------------------------------------------------------------------------------
# aliases
# ---------------------------------------------------------------------------------------------


def test_default_aliases_are_lowercase_canonical_and_documented():
    assert DEFAULT_ALIASES, "alias table is empty"
    assert all(tag == tag.lower() for tag in DEFAULT_ALIASES)
    assert set(DEFAULT_ALIASES.values()) == CANONICAL
    doc = tb.__doc__.lower()
    missing = [tag for tag in DEFAULT_ALIASES if tag not in doc]
    assert missing == [], f"aliases missing from the module docstring table: {missing}"
    for tag, metric in {"train/loss": "train_loss", "Loss/train": "train_loss", "val/acc1": "eval_top1",
                        "metrics/accuracy_top5": "eval_top5", "lr-AdamW": "lr", "lr/pg0": "lr"}.items():
        assert DEFAULT_ALIASES[tag.lower()] == metric


def test_alias_matching_is_case_insensitive_and_extra_aliases_win(tmp_path):
    summaries = [
        (0, 1.0, summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="LOSS/Train", simple_value=2.0),
                                            summary_pb2.Summary.Value(tag="Top1/Val", simple_value=0.5),
                                            summary_pb2.Summary.Value(tag="accuracy", simple_value=0.5)])),
    ]
    path = write_events(tmp_path, summaries)
    plain = read_tensorboard([path]).frame.set_index("tag")
    assert plain.loc["LOSS/Train", "metric"] == "train_loss"
    assert plain.loc["Top1/Val", "metric"] == "Top1/Val" and plain.loc["Top1/Val", "value"] == 0.5
    assert plain.loc["accuracy", "metric"] == "eval_top1" and plain.loc["accuracy", "value"] == 50.0
    extra = {"top1/val": "eval_top1", "ACCURACY": "train_top1"}
    custom = read_tensorboard([path], aliases=extra).frame.set_index("tag")
    assert custom.loc["Top1/Val", "metric"] == "eval_top1" and custom.loc["Top1/Val", "value"] == 50.0
    assert custom.loc["accuracy", "metric"] == "train_top1"
    assert resolve_aliases({"My/Tag": "eval_loss"})["my/tag"] == "eval_loss"
    assert resolve_aliases(None) == dict(DEFAULT_ALIASES)


def test_load_alias_file(tmp_path):
    good = tmp_path / "aliases.yaml"
    good.write_text("Val/Top-1: eval_top1\nmy_lr: lr\n")
    assert load_alias_file(good) == {"val/top-1": "eval_top1", "my_lr": "lr"}
    (tmp_path / "empty.yaml").write_text("")
    assert load_alias_file(tmp_path / "empty.yaml") == {}
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("a: b\nc: [unclosed\n")
    with pytest.raises(IngestError) as error:
        load_alias_file(bad_yaml)
    assert error.value.source.path == str(bad_yaml) and error.value.source.line is not None
    for text in ("- a\n- b\n", "a: 3\n", "a: ''\n", "plain string\n"):
        (tmp_path / "wrong.yaml").write_text(text)
        with pytest.raises(IngestError):
            load_alias_file(tmp_path / "wrong.yaml")
    with pytest.raises(IngestError):
        load_alias_file(tmp_path / "absent.yaml")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(IngestError):
        load_alias_file(tmp_path / "binary.yaml")
    with pytest.raises(IngestError):
        resolve_aliases({"tag": 5})  # type: ignore[dict-item]


def test_fraction_heuristic_only_touches_aliased_accuracy_tags(tmp_path):
    def value(tag: str, v: float) -> summary_pb2.Summary.Value:
        return summary_pb2.Summary.Value(tag=tag, simple_value=v)

    summaries = [
        (step, float(step), summary_pb2.Summary(value=[value("val_acc", 0.5 + step / 10), value("custom_top1", 0.5),
                                                       value("train_acc", 50.0 + step), value("lr", 0.5)]))
        for step in range(3)
    ]
    frame = read_tensorboard([write_events(tmp_path, summaries)]).frame
    by_tag = frame.groupby("tag")["value"].max().to_dict()
    assert by_tag["val_acc"] == pytest.approx(70.0)      # fraction -> percent
    assert by_tag["train_acc"] == pytest.approx(52.0)    # already percent
    assert by_tag["custom_top1"] == pytest.approx(0.5)   # not aliased: left alone
    assert by_tag["lr"] == pytest.approx(0.5)            # not an accuracy
