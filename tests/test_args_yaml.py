"""args.yaml / wandb config.yaml reader, timm defaults and LR resolution."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURE_RUNS, REAL_RUNS, REPO, SHARED
from mnv4_postmortem.analyzer.ingest.args_yaml import (
    MAX_YAML_BYTES,
    ArgsYaml,
    parse_args_yaml,
    parse_wandb_config,
)
from mnv4_postmortem.analyzer.ingest.summary_csv import parse_summary_csv
from mnv4_postmortem.analyzer.model import IngestError, SourceRef
from mnv4_postmortem.analyzer.timm.defaults import ERAS, TIMM_DEFAULTS, build_config, defaults_for
from mnv4_postmortem.analyzer.timm.recipe import resolve_lr
from mnv4_postmortem.analyzer.timm.version import era_of, version_from_args

BAD = REPO / "fixtures" / "bad" / "yaml"
FORMATS = SHARED / "reference" / "timm-formats.md"

FIXTURE_ARGS = sorted(FIXTURE_RUNS.glob("*/args.yaml"))
REAL_ARGS_NAMES = sorted(path.parent.name for path in REAL_RUNS.glob("*/args.yaml"))
NOT_TIMM = {"ultra-weather-yolov8n-healthy"}  # Ultralytics' args.yaml, not timm's


def real(name: str, file: str = "args.yaml") -> Path:
    path = REAL_RUNS / name / file
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def write(tmp_path: Path, data: bytes | str, name: str = "args.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --------------------------------------------------------------------------------------------
# Real files


@pytest.mark.parametrize("path", FIXTURE_ARGS, ids=lambda path: path.parent.name)
def test_fixture_args_load_as_timm_wrote_them(path: Path) -> None:
    parsed = parse_args_yaml(path, display_path=f"{path.parent.name}/args.yaml")
    assert parsed.path == f"{path.parent.name}/args.yaml"
    assert parsed.issues == ()
    assert parsed.args == yaml.safe_load(path.read_text())
    assert list(parsed.args) == sorted(parsed.args)  # timm's safe_dump sorts keys


@pytest.mark.parametrize("path", FIXTURE_ARGS, ids=lambda path: path.parent.name)
def test_defaults_table_has_every_key_a_real_timm_version_wrote(path: Path) -> None:
    """For real timm output, the era guessed from the keys has no table key the file lacks."""
    args = parse_args_yaml(path).args
    config = build_config(args, SourceRef(str(path)))
    assert version_from_args(args) is not None
    assert config.defaulted == frozenset()
    assert dict(config.values) == dict(args)
    assert config.source == SourceRef(str(path))


@pytest.mark.parametrize("name", REAL_ARGS_NAMES)
def test_real_args_load_in_place(name: str) -> None:
    path = real(name)
    parsed = parse_args_yaml(path)
    assert parsed.args == yaml.safe_load(path.read_text())
    config = build_config(parsed.args)
    assert all(config.values[key] == value for key, value in parsed.args.items())
    if name not in NOT_TIMM:
        assert config.defaulted == frozenset()
        lr, how = resolve_lr(config.values)
        assert lr is not None and lr > 0 and how


def test_ultralytics_args_load_as_a_mapping() -> None:
    parsed = parse_args_yaml(real("ultra-weather-yolov8n-healthy"))
    assert parsed.args["task"] == "classify" and parsed.issues == ()
    config = build_config(parsed.args)
    assert "opt" in config.defaulted and config.values["epochs"] == parsed.args["epochs"]


def test_old_keys_load_as_read() -> None:
    args = parse_args_yaml(real("neudeep-effb7ns-aliproducts-210ep")).args
    assert {"drop_connect", "jsd", "apex_amp"} <= set(args) and args["jsd"] is False
    assert version_from_args(args).era == "0.4.12"


def test_prec1_eval_metric_of_the_oldest_timm_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "eval_metric: prec1\nnum_gpu: 1\ngp: avg\nlr: 0.01\n")
    config = build_config(parse_args_yaml(path).args)
    assert config.values["eval_metric"] == "prec1"
    assert config.values["sched"] == "step"  # v0.1 default, from the era the keys point to


@pytest.mark.parametrize("name", ["vuthehuy-effb4-cifar100-healthy", "vuthehuy-convnext-cifar100-overfit"])
def test_null_lr_is_resolved_from_lr_base_and_matches_the_lr_timm_logged(name: str) -> None:
    args = parse_args_yaml(real(name)).args
    assert args["lr"] is None and args["lr_base"] is not None
    lr, how = resolve_lr(build_config(args).values)
    ratio = args["batch_size"] / args["lr_base_size"]
    assert lr == pytest.approx(args["lr_base"] * ratio)
    assert "linear" in how and f"{args['batch_size']}/{args['lr_base_size']}" in how
    # summary.csv's lr column peaks right after warmup at (nearly) the LR timm computed.
    peak = parse_summary_csv(real(name, "summary.csv")).frame["lr"].max()
    assert peak == pytest.approx(lr, rel=0.01)


def test_wandb_config_is_unwrapped() -> None:
    path = real("fugaku-deit-tiny-gb4096-healthy", "config.yaml")
    parsed = parse_wandb_config(path)
    raw = yaml.safe_load(path.read_text())
    assert "_wandb" not in parsed.args and "wandb_version" not in parsed.args
    assert parsed.args["lr"] == raw["lr"]["value"] and parsed.args["model"] == raw["model"]["value"]
    assert len(parsed.args) == len(raw) - 2
    assert resolve_lr(build_config(parsed.args).values) == (raw["lr"]["value"], "args.yaml lr")


def test_wandb_entry_without_value_is_kept_with_an_issue(tmp_path: Path) -> None:
    path = write(tmp_path, "wandb_version: 1\nlr:\n  desc: null\n  value: 0.1\nodd: 3\n", "config.yaml")
    parsed = parse_wandb_config(path)
    assert parsed.args == {"lr": 0.1, "odd": 3}
    assert len(parsed.issues) == 1 and "'odd'" in parsed.issues[0].message


# --------------------------------------------------------------------------------------------
# build_config and resolve_lr


def test_build_config_without_args_is_all_defaults_of_the_version() -> None:
    config = build_config(None, timm_version="0.6.13")
    assert config.args == {} and config.defaulted == frozenset(config.values)
    assert config.values["lr"] == 0.05 and config.values["cooldown_epochs"] == 10
    assert "lr_base" not in config.values
    head = build_config(None)
    assert head.values["lr"] is None and head.values["lr_base"] == 0.1 and head.values["cooldown_epochs"] == 0


def test_build_config_keeps_given_values_over_defaults() -> None:
    config = build_config({"lr": None, "batch_size": 64, "custom": [1, 2]}, timm_version="1.0.23")
    assert config.values["lr"] is None and config.values["batch_size"] == 64 and config.values["custom"] == [1, 2]
    assert "lr" not in config.defaulted and "epochs" in config.defaulted


@pytest.mark.parametrize(
    ("values", "world_size", "expected"),
    [
        ({"lr": 0.4}, 8, 0.4),
        ({"lr": "1e-3"}, 1, 0.001),  # YAML 1.1 reads 1e-3 as a string
        ({"lr": None, "lr_base": 0.1, "batch_size": 32, "lr_base_size": 256, "opt": "sgd"}, 1, 0.0125),
        ({"lr": None, "lr_base": 0.1, "batch_size": 128, "lr_base_size": 256, "opt": "sgd", "grad_accum_steps": 2}, 4, 0.4),
        ({"lr": None, "lr_base": 0.002, "batch_size": 256, "lr_base_size": 256, "opt": "adamw", "lr_base_scale": ""}, 4, 0.004),
        ({"lr": None, "lr_base": 0.002, "batch_size": 256, "lr_base_size": 256, "opt": "lamb"}, 16, 0.008),
        ({"lr": None, "lr_base": 0.1, "batch_size": 512, "lr_base_size": 256, "opt": "adamw", "lr_base_scale": "linear"}, 1, 0.2),
        ({"lr": None, "lr_base": 0.1, "batch_size": 1024, "lr_base_size": 256, "opt": "sgd", "lr_base_scale": "sqrt"}, 1, 0.2),
    ],
)
def test_resolve_lr(values: dict, world_size: int, expected: float) -> None:
    lr, how = resolve_lr(values, world_size)
    assert lr == pytest.approx(expected)
    if values.get("lr") is None:
        scale = "sqrt" if "sqrt(" in how else "linear"
        assert f"({scale} scaling rule)" in how


def test_resolve_lr_explains_the_global_batch() -> None:
    values = {"lr": None, "lr_base": 0.1, "batch_size": 32, "lr_base_size": 256, "opt": "sgd", "grad_accum_steps": 1}
    assert resolve_lr(values) == (pytest.approx(0.0125), "lr_base 0.1 x 32/256 (linear scaling rule)")
    _lr, how = resolve_lr({**values, "grad_accum_steps": 2}, world_size=4)
    assert "lr_base 0.1 x 256/256" in how and "world size 4" in how and "grad_accum_steps 2" in how


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"lr": None},
        {"lr": True, "lr_base": None},
        {"lr": None, "lr_base": 0.1, "batch_size": "many", "lr_base_size": 256},
        {"lr": None, "lr_base": 0.1, "batch_size": 32, "lr_base_size": 0},
        {"lr": float("nan"), "lr_base": 1e308, "batch_size": 1e308, "lr_base_size": 1e-308},
    ],
)
def test_resolve_lr_returns_none_when_undetermined(values: dict) -> None:
    lr, how = resolve_lr(values)
    assert lr is None and how


# --------------------------------------------------------------------------------------------
# timm defaults


def table_from_reference() -> tuple[list[str], dict[str, list[str]]]:
    """The defaults table of timm-formats.md §9: column headers and raw cells per row."""
    if not FORMATS.is_file():
        pytest.skip(f"{FORMATS} not present")
    lines = FORMATS.read_text().splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("### Argparse defaults"))
    first = next(i for i in range(heading, len(lines)) if lines[i].startswith("|"))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    split = [[cell.strip() for cell in line.strip("|").split("|")] for line in table]
    columns = split[0][1:]
    rows = {cells[0]: cells[1:] for cells in split[2:]}
    return columns, rows


def expected_cells(key: str, cell: str) -> dict[str, object]:
    """The yaml keys and values one table cell stands for ('—' = none)."""
    if cell == "—":
        return {}
    if key == "jsd / jsd_loss":
        name, _, value = cell.partition(":")
        return {name.strip(): ast.literal_eval(value.strip()) if value else False}
    if key == "apex_amp / native_amp":
        apex, native = (ast.literal_eval(part) for part in cell.split("/"))
        return {"apex_amp": apex, "native_amp": native}
    return {key: ast.literal_eval(cell)}


def test_defaults_match_every_cell_of_the_reference_table() -> None:
    columns, rows = table_from_reference()
    assert len(columns) == len(ERAS)
    for position, column in enumerate(columns):
        defaults = defaults_for(column)
        expected: dict[str, object] = {}
        for key, cells in rows.items():
            expected.update(expected_cells(key, cells[position]))
        assert defaults == expected, column
        assert all(type(defaults[key]) is type(value) for key, value in expected.items())


def test_timm_defaults_are_head_and_read_only() -> None:
    assert dict(TIMM_DEFAULTS) == defaults_for(None) == defaults_for("1.0.29.dev0")
    assert TIMM_DEFAULTS["lr"] is None and TIMM_DEFAULTS["lr_base"] == 0.1 and "jsd" not in TIMM_DEFAULTS
    with pytest.raises(TypeError):
        TIMM_DEFAULTS["lr"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("version", "column"),
    [
        (None, "HEAD"),
        ("not a version", "HEAD"),
        ("0.1.30", "0.1.1"),
        ("0.3.4", "0.4.12"),
        ("v0.5.4", "0.5.4"),
        ("0.6.13", "0.6.13"),
        ("0.8.2dev0", "0.8.2dev0"),
        ("0.9.12", "0.9.0"),
        ("0.9.16", "0.9.16"),
        ("1.0.12", "0.9.16"),
        (">=1.0.13", "1.0.13"),
        ("1.0.28", "1.0.23"),
        ("1.0.29.dev0", "HEAD"),
    ],
)
def test_era_of(version: str | None, column: str) -> None:
    assert era_of(version) == column


def test_era_specific_values() -> None:
    assert defaults_for("0.6.13")["lr"] == 0.05 and defaults_for("0.8.2dev0")["lr"] is None
    assert defaults_for("0.5.4")["cooldown_epochs"] == 10 and defaults_for("0.8.2dev0")["cooldown_epochs"] == 0
    assert "model_ema_warmup" not in defaults_for("0.9.12") and defaults_for("0.9.16")["model_ema_warmup"] is False


# --------------------------------------------------------------------------------------------
# Bad input


def test_alias_bomb_is_refused_quickly_naming_file_and_line() -> None:
    with pytest.raises(IngestError) as error:
        parse_args_yaml(BAD / "billion_laughs.yaml", display_path="bad/args.yaml")
    assert error.value.source.path == "bad/args.yaml" and error.value.source.line is not None
    assert "alias" in error.value.message


def test_a_few_shared_aliases_are_fine(tmp_path: Path) -> None:
    parsed = parse_args_yaml(write(tmp_path, "mean: &m [0.5, 0.5, 0.5]\nstd: *m\nbase: &b {lr: 0.1}\nmerged:\n  <<: *b\n  wd: 0.05\n"))
    assert parsed.args["std"] == [0.5, 0.5, 0.5] and parsed.args["merged"] == {"lr": 0.1, "wd": 0.05}


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="recursive"):
        parse_args_yaml(write(tmp_path, "a: &a [1, *a]\n"))


def test_top_level_list_is_not_an_args_file() -> None:
    with pytest.raises(IngestError) as error:
        parse_args_yaml(BAD / "not_a_mapping.yaml")
    assert "top level is a list" in error.value.message and error.value.source.line == 2


def test_parse_error_names_line_and_column() -> None:
    with pytest.raises(IngestError) as error:
        parse_args_yaml(BAD / "unclosed_flow.yaml", display_path="x/args.yaml")
    assert error.value.source == SourceRef("x/args.yaml", line=3)
    assert "line 3, column" in error.value.message


@pytest.mark.parametrize(
    ("content", "expected", "line"),
    [
        (b"", "empty file", None),
        (b"# only a comment\n", "empty file", None),
        (b"just a string\n", "single value", 1),
        (b"lr: 0.1\nmodel: res\x00net\n", "NUL byte", 2),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL byte", 3),
        (b"a: 1\n---\nb: 2\n", "single document", 2),
        (b"lr: 0.1\nbad: \x07\n", "unacceptable character", 2),
        (b"d: 2021-13-45\n", "month must be", 1),
    ],
)
def test_unusable_files_raise_ingest_error(tmp_path: Path, content: bytes, expected: str, line: int | None) -> None:
    with pytest.raises(IngestError) as error:
        parse_args_yaml(write(tmp_path, content))
    assert expected in error.value.message
    assert error.value.source.path.endswith("args.yaml") and error.value.source.line == line


def test_unreadable_values_cost_only_their_key(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    text = f"lr: 0.1\nd: 2021-13-45\nx: !!python/object/apply:os.system ['touch {marker}']\nepochs: 300\n"
    parsed = parse_args_yaml(write(tmp_path, text))
    assert parsed.args == {"lr": 0.1, "epochs": 300}
    assert [issue.source.line for issue in parsed.issues] == [2, 3]
    assert not marker.exists()


def test_repeated_and_non_string_keys_are_issues(tmp_path: Path) -> None:
    parsed = parse_args_yaml(write(tmp_path, "lr: 0.1\nlr: 0.2\n1: one\n"))
    assert parsed.args == {"lr": 0.2, "1": "one"}
    assert [issue.source.line for issue in parsed.issues] == [2, 3]


def test_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "args.yaml"
    with open(path, "wb") as handle:
        handle.truncate(MAX_YAML_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(IngestError, match="limit"):
        parse_args_yaml(path)


def test_missing_directory_and_fifo_raise_ingest_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError):
        parse_args_yaml(tmp_path / "absent.yaml")
    with pytest.raises(IngestError):
        parse_args_yaml(tmp_path)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.yaml"
        os.mkfifo(fifo)
        with pytest.raises(IngestError, match="regular file"):
            parse_wandb_config(fifo)


def test_deep_nesting_is_an_ingest_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError):
        parse_args_yaml(write(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n"))


# --------------------------------------------------------------------------------------------
# Property tests: only IngestError escapes, and whatever loads can be configured


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("args_fuzz")


def load_or_ingest_error(path: Path) -> None:
    for reader in (parse_args_yaml, parse_wandb_config):
        try:
            parsed = reader(path, "fuzz/args.yaml")
        except IngestError as error:
            assert error.source is not None and error.source.path == "fuzz/args.yaml"
            continue
        assert isinstance(parsed, ArgsYaml) and all(isinstance(key, str) for key in parsed.args)
        config = build_config(parsed.args)
        lr, how = resolve_lr(config.values, world_size=2)
        assert (lr is None or lr == lr) and isinstance(how, str)


def seed_files() -> list[bytes]:
    seeds = [path.read_bytes() for path in FIXTURE_ARGS[:3]]
    seeds += [(REAL_RUNS / name / "args.yaml").read_bytes() for name in REAL_ARGS_NAMES[:3]]
    wandb = REAL_RUNS / "fugaku-deit-tiny-gb4096-healthy" / "config.yaml"
    if wandb.is_file():
        seeds.append(wandb.read_bytes()[:4000])
    return seeds


YAML_BYTES = st.sampled_from(list(b"\x00\xff\n\r\t :-[]{}&*!|>#?%@'\",") + list(b"ab01.e"))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=1000), st.lists(YAML_BYTES, max_size=300).map(bytes)))
def test_random_bytes_only_raise_ingest_error(scratch: Path, data: bytes) -> None:
    path = scratch / "random.yaml"
    path.write_bytes(data)
    load_or_ingest_error(path)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(seed_files()),
    edits=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(["set", "insert", "delete", "cut"]), st.lists(YAML_BYTES, min_size=1, max_size=6).map(bytes)), max_size=6),
)
def test_mutated_real_files_only_raise_ingest_error(scratch: Path, seed: bytes, edits: list) -> None:
    data = bytearray(seed)
    for where, operation, payload in edits:
        position = int(where * len(data))
        if operation == "set" and data:
            data[min(position, len(data) - 1)] = payload[0]
        elif operation == "insert":
            data[position:position] = payload
        elif operation == "delete":
            del data[position : position + len(payload) * 3]
        else:
            del data[position:]
    path = scratch / "mutated.yaml"
    path.write_bytes(bytes(data))
    load_or_ingest_error(path)
