"""summary.csv parser: real timm outputs (fixtures/runs, shared/real-runs in place) and bad input."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnv4_postmortem.analyzer.ingest.summary_csv import (
    MAX_LISTED_ISSUES,
    SummaryCsv,
    parse_summary_csv,
    sniff_summary_csv,
)
from mnv4_postmortem.analyzer.model import IngestError

REPO = Path(__file__).resolve().parents[1]
FIXTURE_RUNS = REPO / "fixtures" / "runs"
BAD = REPO / "fixtures" / "bad" / "csv"
REAL_RUNS = REPO.parent / "shared" / "real-runs"

FIXTURE_FILES = sorted(FIXTURE_RUNS.glob("*/summary.csv"))
REAL_NAMES = sorted(path.parent.name for path in REAL_RUNS.glob("*/summary.csv"))


def real(name: str) -> Path:
    path = REAL_RUNS / name / "summary.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def file_rows(path: Path) -> dict[int, tuple[int, list[str]]]:
    """Test oracle, independent of the parser: epoch -> (line, cells) of the last complete data row.

    Data rows have as many cells as the header that precedes them and a digit-only epoch.
    """
    rows: dict[int, tuple[int, list[str]]] = {}
    width = None
    text = path.read_bytes().decode("utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        cells = next(csv.reader([line]), [])
        if cells and cells[0] == "epoch":
            width = len(cells)
        elif width is not None and len(cells) == width and cells[0].isdigit():
            rows[int(cells[0])] = (number, cells)
    return rows


def header_lines(path: Path) -> list[int]:
    text = path.read_bytes().decode("utf-8")
    return [number for number, line in enumerate(text.splitlines(), start=1) if line.startswith("epoch,")]


def check_against_file(path: Path, parsed: SummaryCsv) -> None:
    """Epochs, line numbers and train_loss values agree with the file itself."""
    rows = file_rows(path)
    assert list(parsed.frame.index) == sorted(rows)
    assert parsed.frame.index.name == "epoch"
    assert list(parsed.lines.index) == list(parsed.frame.index)
    header = next(csv.reader([path.read_bytes().decode("utf-8").splitlines()[0]]))
    loss_position = header.index("train_loss")
    for epoch, (line, cells) in rows.items():
        assert parsed.lines[epoch] == line
        expected = float(cells[loss_position])
        actual = parsed.frame.at[epoch, "train_loss"]
        assert (math.isnan(actual) and math.isnan(expected)) or actual == expected
    for name in ("train_loss", "eval_loss", "eval_top1", "eval_top5", "lr"):
        if name in parsed.frame:
            assert parsed.frame[name].dtype == "float64"


# --------------------------------------------------------------------------------------------
# Real timm runs


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.parent.name)
def test_fixture_runs_parse_completely(path: Path) -> None:
    parsed = parse_summary_csv(path, display_path=f"{path.parent.name}/summary.csv")
    check_against_file(path, parsed)
    assert parsed.issues == ()
    assert parsed.path == f"{path.parent.name}/summary.csv"
    has_lr = "lr" in parsed.header
    assert parsed.family == ("v0.8.2+ (with lr)" if has_lr else "v0.2-v0.6")
    assert list(parsed.frame.columns) == ["train_loss", "eval_loss", "eval_top1", "eval_top5"] + (["lr"] if has_lr else [])


def test_resumed_fixture_has_a_resume_event_at_the_second_header() -> None:
    path = FIXTURE_RUNS / "v1_resumed" / "summary.csv"
    parsed = parse_summary_csv(path)
    headers = header_lines(path)
    assert len(headers) == 2
    resumes = [event for event in parsed.events if event.kind == "resume"]
    assert [event.source.line for event in resumes] == [headers[1]]
    first_after = file_rows(path)
    assert resumes[0].epoch == min(epoch for epoch, (line, _) in first_after.items() if line > headers[1])
    assert parsed.frame.index.is_monotonic_increasing and parsed.frame.index.is_unique


def test_nan_fixture_reports_the_first_nonfinite_value_per_column() -> None:
    path = FIXTURE_RUNS / "v1_nan" / "summary.csv"
    parsed = parse_summary_csv(path)
    rows = file_rows(path)
    header = parsed.header
    expected = {}
    for epoch in sorted(rows):
        line, cells = rows[epoch]
        for name, cell in zip(header[1:], cells[1:]):
            if not math.isfinite(float(cell)):
                expected.setdefault(name, (epoch, line))
    assert expected, "the v1_nan fixture is expected to contain a nan"
    events = {event.data["column"]: (event.epoch, event.source.line) for event in parsed.events if event.kind == "nonfinite"}
    assert events == expected


@pytest.mark.parametrize("name", REAL_NAMES)
def test_real_runs_parse_in_place(name: str) -> None:
    path = real(name)
    parsed = parse_summary_csv(path)
    check_against_file(path, parsed)
    assert not parsed.frame.empty


def test_real_run_resumed_from_epoch_41_starts_there() -> None:
    parsed = parse_summary_csv(real("xuritian-cub-resume-from-ep41"))
    assert parsed.frame.index[0] == 41
    assert parsed.frame.index.is_monotonic_increasing
    assert parsed.frame.index[-1] - parsed.frame.index[0] + 1 == len(parsed.frame)


def test_real_run_with_nan_eval_loss_has_epochs_1_to_4() -> None:
    parsed = parse_summary_csv(real("neudeep-effb7ns-resume-divergence-nan"))
    assert list(parsed.frame.index) == [1, 2, 3, 4]
    nonfinite = [event for event in parsed.events if event.kind == "nonfinite"]
    assert [(event.data["column"], event.epoch) for event in nonfinite] == [("eval_loss", 4)]


def test_list_valued_train_lr_becomes_lr_as_the_mean_of_the_groups() -> None:
    path = real("xuritian-cub-lr5e-4-collapse")
    parsed = parse_summary_csv(path)
    assert "lr" in parsed.frame and "train_lr" not in parsed.frame
    assert parsed.family.startswith("non-standard") and "train_lr" in parsed.family
    position = parsed.header.index("train_lr")
    for epoch, (_line, cells) in file_rows(path).items():
        groups = [float(part) for part in cells[position].strip("[]").split(",")]
        assert parsed.frame.at[epoch, "lr"] == pytest.approx(sum(groups) / len(groups))


def test_scalar_train_lr_and_extra_time_column_are_numeric() -> None:
    parsed = parse_summary_csv(real("xuritian-cub-lr7e-5-healthy"))
    assert parsed.frame["lr"].dtype == "float64" and parsed.frame["time"].dtype == "float64"
    assert list(parsed.frame.columns)[-1] == "time"  # extras after the canonical columns


def test_trailing_junk_line_is_an_issue_and_every_good_row_is_kept() -> None:
    path = real("xuritian-cub-trailing-junk-line")
    parsed = parse_summary_csv(path)
    check_against_file(path, parsed)
    last_line = len(path.read_bytes().splitlines())
    assert [issue.source.line for issue in parsed.issues] == [last_line]
    assert "without a newline" in parsed.issues[0].message
    assert [event.kind for event in parsed.events] == ["truncated"]


@pytest.mark.parametrize("name", REAL_NAMES)
def test_sniff_accepts_every_real_summary(name: str) -> None:
    assert sniff_summary_csv(real(name).read_bytes()[:4096])


def test_sniff_rejects_other_content() -> None:
    args = next(FIXTURE_RUNS.glob("*/args.yaml"))
    log = next(FIXTURE_RUNS.glob("*/train.log"))
    assert not sniff_summary_csv(args.read_bytes()[:4096])
    assert not sniff_summary_csv(log.read_bytes()[:4096])
    assert not sniff_summary_csv((BAD / "binary.csv").read_bytes())
    assert not sniff_summary_csv(b"epoch,loss,acc\n0,1,2\n")  # no train_loss
    assert not sniff_summary_csv(b"")
    assert sniff_summary_csv(b"\xef\xbb\xbfepoch,train_loss,lr\r\n0,1,2")  # a BOM from a spreadsheet


# --------------------------------------------------------------------------------------------
# Header families


def write(tmp_path: Path, data: bytes | str, name: str = "summary.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_v01_prec_columns_are_renamed(tmp_path: Path) -> None:
    path = write(tmp_path, "epoch,train_loss,eval_loss,eval_prec1,eval_prec5\r\n0,6.8,6.7,0.12,0.6\r\n")
    parsed = parse_summary_csv(path)
    assert parsed.family == "v0.1 (eval_prec1/5)"
    assert list(parsed.frame.columns) == ["train_loss", "eval_loss", "eval_top1", "eval_top5"]
    assert parsed.frame.at[0, "eval_top1"] == 0.12


def test_no_validation_split_family(tmp_path: Path) -> None:
    parsed = parse_summary_csv(write(tmp_path, "epoch,train_loss,lr\r\n0,6.8,0.1\r\n1,6.1,0.09\r\n"))
    assert parsed.family == "v0.9.16+ no eval"
    assert list(parsed.frame.columns) == ["train_loss", "lr"]


def test_non_numeric_extra_column_keeps_its_text(tmp_path: Path) -> None:
    parsed = parse_summary_csv(write(tmp_path, "epoch,train_loss,note\n0,1.5,warmup\n1,1.2,7\n"))
    assert parsed.frame["note"].tolist() == ["warmup", "7"]
    assert "extra columns: note" in parsed.family


# --------------------------------------------------------------------------------------------
# Resumes


def test_repeated_epochs_without_a_header_keep_the_latest_row(tmp_path: Path) -> None:
    text = "epoch,train_loss\r\n0,5.0\r\n1,4.0\r\n2,3.0\r\n1,4.5\r\n2,3.5\r\n3,3.1\r\n"
    parsed = parse_summary_csv(write(tmp_path, text))
    assert parsed.frame["train_loss"].tolist() == [5.0, 4.5, 3.5, 3.1]
    assert parsed.lines.tolist() == [2, 5, 6, 7]
    (resume,) = parsed.events
    assert (resume.kind, resume.source.line, resume.epoch) == ("resume", 5, 1)
    assert resume.data["replaced_epochs"] == (1, 2)


def test_second_header_with_a_new_column_fills_nan_before_it(tmp_path: Path) -> None:
    text = "epoch,train_loss\n0,5.0\n1,4.0\nepoch,train_loss,lr\n2,3.0,0.1\n"
    parsed = parse_summary_csv(write(tmp_path, text))
    assert parsed.header == ("epoch", "train_loss")
    assert parsed.frame["lr"].isna().tolist() == [True, True, False]
    assert [event.kind for event in parsed.events] == ["resume"]  # missing is not non-finite
    assert any(issue.source.line == 4 and "header changes" in issue.message for issue in parsed.issues)


# --------------------------------------------------------------------------------------------
# Bad input


def test_junk_rows_fixture_keeps_every_good_row() -> None:
    parsed = parse_summary_csv(BAD / "junk_rows.csv", display_path="junk_rows.csv")
    assert list(parsed.frame.index) == [0, 4, 6]
    assert [issue.source.line for issue in parsed.issues] == [3, 4, 5, 7, 9]
    assert all(issue.source.path == "junk_rows.csv" for issue in parsed.issues)
    by_line = {issue.source.line: issue for issue in parsed.issues}
    assert "NUL byte" in by_line[4].message and by_line[4].source.offset is not None
    assert "invalid UTF-8" in by_line[5].message
    assert "without a newline" in by_line[9].message
    assert [event.kind for event in parsed.events] == ["truncated"]


def test_binary_file_is_an_ingest_error_naming_file_and_line() -> None:
    with pytest.raises(IngestError) as error:
        parse_summary_csv(BAD / "binary.csv", display_path="run/summary.csv")
    assert error.value.source.path == "run/summary.csv" and error.value.source.line == 1
    assert "UTF-8" in error.value.message


def test_header_only_gives_an_empty_frame_and_an_issue() -> None:
    parsed = parse_summary_csv(BAD / "header_only.csv")
    assert parsed.frame.empty and parsed.frame.index.dtype == "int64"
    assert list(parsed.frame.columns) == ["train_loss", "eval_loss", "eval_top1", "eval_top5", "lr"]
    assert len(parsed.issues) == 1 and "header only" in parsed.issues[0].message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file"),
        (b"\n\n", "empty file"),
        (b"hello,world\n1,2\n", "not a header"),
        (b"epoch,train_loss\n\x00\x01\x02\n", "no usable rows"),
        (b"\x00" * 64, "NUL byte"),
    ],
)
def test_unusable_files_raise_ingest_error(tmp_path: Path, content: bytes, expected: str) -> None:
    with pytest.raises(IngestError) as error:
        parse_summary_csv(write(tmp_path, content))
    assert expected in error.value.message
    assert error.value.source.path.endswith("summary.csv")


def test_missing_file_directory_and_fifo_raise_ingest_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError):
        parse_summary_csv(tmp_path / "absent.csv")
    with pytest.raises(IngestError):
        parse_summary_csv(tmp_path)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.csv"
        os.mkfifo(fifo)
        with pytest.raises(IngestError, match="regular file"):
            parse_summary_csv(fifo)


def test_huge_field_and_huge_line_are_issues_not_crashes(tmp_path: Path) -> None:
    huge_field = "1," + "9" * (csv.field_size_limit() + 10)
    no_newline_blob = "x" * 3_000_000
    text = f"epoch,train_loss\n0,2.0\n{huge_field}\n{no_newline_blob}\n2,1.0\n"
    parsed = parse_summary_csv(write(tmp_path, text))
    assert list(parsed.frame.index) == [0, 2]
    assert [issue.source.line for issue in parsed.issues] == [3, 4]


def test_a_stray_quote_does_not_swallow_the_following_rows(tmp_path: Path) -> None:
    parsed = parse_summary_csv(write(tmp_path, 'epoch,train_loss\n0,1.0\n1,"2.0\n2,3.0\n3,4.0\n'))
    assert list(parsed.frame.index)[-2:] == [2, 3]


def test_many_bad_lines_are_listed_up_to_a_cap(tmp_path: Path) -> None:
    bad = "".join(f"junk line {number}\n" for number in range(200))
    parsed = parse_summary_csv(write(tmp_path, "epoch,train_loss\n0,1.0\n" + bad + "1,0.5\n"))
    assert list(parsed.frame.index) == [0, 1]
    assert len(parsed.issues) == MAX_LISTED_ISSUES + 1
    assert "180 more" in parsed.issues[-1].message


def test_unparseable_canonical_value_is_nan_with_an_issue(tmp_path: Path) -> None:
    parsed = parse_summary_csv(write(tmp_path, "epoch,train_loss,eval_top1\n0,abc,5.0\n"))
    assert math.isnan(parsed.frame.at[0, "train_loss"]) and parsed.frame.at[0, "eval_top1"] == 5.0
    assert parsed.issues[0].source.line == 2 and "train_loss" in parsed.issues[0].message
    assert not [event for event in parsed.events if event.kind == "nonfinite"]


# --------------------------------------------------------------------------------------------
# Property tests: whatever the bytes, only IngestError escapes, and results are well-formed


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("summary_fuzz")


def parse_or_ingest_error(path: Path) -> SummaryCsv | None:
    try:
        parsed = parse_summary_csv(path, display_path="fuzz/summary.csv")
    except IngestError as error:
        assert error.source is not None and error.source.path == "fuzz/summary.csv"
        return None
    assert parsed.frame.index.is_unique and parsed.frame.index.is_monotonic_increasing
    assert list(parsed.lines.index) == list(parsed.frame.index)
    assert isinstance(parsed.frame, pd.DataFrame)
    return parsed


def seed_files() -> list[bytes]:
    seeds = [path.read_bytes() for path in FIXTURE_FILES[:3]]
    seeds += [(REAL_RUNS / name / "summary.csv").read_bytes()[:3000] for name in REAL_NAMES[:4]]
    return seeds


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000))
def test_random_bytes_only_raise_ingest_error(scratch: Path, data: bytes) -> None:
    path = scratch / "random.csv"
    path.write_bytes(data)
    parse_or_ingest_error(path)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(seed_files()),
    edits=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(["flip", "insert", "delete", "cut"]), st.binary(min_size=1, max_size=8)), max_size=6),
)
def test_mutated_real_files_only_raise_ingest_error(scratch: Path, seed: bytes, edits: list) -> None:
    data = bytearray(seed)
    for where, operation, payload in edits:
        position = int(where * len(data))
        if operation == "flip" and data:
            data[min(position, len(data) - 1)] ^= payload[0] or 0xFF
        elif operation == "insert":
            data[position:position] = payload
        elif operation == "delete":
            del data[position : position + len(payload)]
        else:
            del data[position:]
    path = scratch / "mutated.csv"
    path.write_bytes(bytes(data))
    parse_or_ingest_error(path)


# -- the bulk path (runs of numeric lines read by pandas) against the per-line reference parser --

SHARED_SUMMARIES = sorted((REPO.parent / "shared" / "timm-runs").glob("*/summary.csv"))
EVERY_SUMMARY = FIXTURE_FILES + SHARED_SUMMARIES + sorted(REAL_RUNS.glob("*/summary.csv"))


def same_summary(a, b) -> bool:
    return (a.frame.equals(b.frame) and a.lines.equals(b.lines) and list(a.frame.columns) == list(b.frame.columns)
            and a.events == b.events and a.issues == b.issues and (a.header, a.family) == (b.header, b.family))


@pytest.mark.parametrize("path", EVERY_SUMMARY, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_bulk_and_per_line_paths_agree_on_real_files(path):
    assert same_summary(parse_summary_csv(path, "summary.csv"), parse_summary_csv(path, "summary.csv", fast=False))


def test_bulk_path_keeps_every_rule_of_the_per_line_parser(tmp_path):
    """Hand-made hazards amid thousands of plain rows (read in bulk): a resume with a repeated header and
    repeated epochs, a bad line, a short row, nan/inf written, empty cells, an overflowing number, a
    decimal epoch, a blank line, a bare CR, and a last line cut without a newline."""
    header = "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr"
    rows = [f"{e},{6.9 / (e + 1)!r},{5.0 / (e + 1)!r},{e * 0.01!r},{50 + e * 0.001!r},{0.1 * 0.999 ** e!r}" for e in range(3000)]
    rows[700] = "700,1.5,oops,3,4,5"                  # a cell that is not a number: NaN and an issue
    rows[701] = "701,1.5,2.5,3"                       # too few fields: skipped
    rows[900] = "900,nan,2.5,3,4,5"                   # nan written
    rows[901] = "901,1e999,2.5,3,4,5"                 # overflows to inf: written nonfinite
    rows[902] = "902,,2.5,3,4,5"                      # empty cell: missing, not nonfinite
    rows[1000] = "1000.0,1,2,3,4,5"                   # a decimal epoch
    rows[1001] = ""                                   # blank
    rows[1002] = "1002,1,2\r3,4,5"                    # a bare CR inside
    rows[2500] = "2500,1,2,3,4,5,6"                   # too many fields: skipped
    text = "\r\n".join([header] + rows[:2000] + [header] + rows[1500:]) + "\r\n" + "3000,1.0,2.0"
    path = tmp_path / "summary.csv"
    path.write_bytes(text.encode())
    fast, slow = parse_summary_csv(path, "summary.csv"), parse_summary_csv(path, "summary.csv", fast=False)
    assert same_summary(fast, slow)
    assert any(e.kind == "resume" for e in fast.events) and any(e.kind == "nonfinite" for e in fast.events)
    assert any("line 703 skipped" in issue.message for issue in fast.issues)   # rows[701] is line 703
    assert any("line 3003 skipped" in issue.message for issue in fast.issues)   # rows[2500]: line 2003 + 1000
    assert len(fast.frame) == 3000 - 4                # 701 short, 1001 blank, 1002 not CSV, 2500 long; 1000.0 kept; 3000 cut


def test_bulk_path_and_merge_give_the_same_run(tmp_path):
    """The epoch frame and refs of a summary-only run are those the per-point merge gives."""
    from mnv4_postmortem.analyzer.ingest.contribution import Contribution, EpochValues
    from mnv4_postmortem.analyzer.ingest.merge import merge_contributions
    from mnv4_postmortem.analyzer.ingest.summary_csv import summary_contribution

    source = FIXTURE_RUNS / "v1_nan" / "summary.csv"
    contribution = summary_contribution(parse_summary_csv(source, "summary.csv"))
    as_points = Contribution(format=contribution.format, sources=contribution.sources,
                             epochs=tuple(EpochValues(v.all_points()) for v in contribution.epochs),
                             records=contribution.records, events=contribution.events)
    bulk = merge_contributions(tmp_path, [contribution], [])
    points = merge_contributions(tmp_path, [as_points], [])
    assert bulk.epochs.equals(points.epochs)
    assert bulk.epoch_refs.astype(object).equals(points.epoch_refs.astype(object))
    assert (bulk.epoch_refs.notna().to_numpy() == points.epoch_refs.notna().to_numpy()).all()
