"""The rule-test harness, driven by a fake pipeline."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

import _engine_fakes as fakes
from mnv4_postmortem.analyzer.engine import find_test_files, load_rules, load_test_suite, run_rule_tests
from mnv4_postmortem.analyzer.engine.testing import CaseResult


def run_tests(pack, files, **kwargs) -> list[CaseResult]:
    pipeline = {"diagnose": fakes.diagnose, "load_run": fakes.load_run, "make_run": fakes.make_run}
    return run_rule_tests(pack, files, **{**pipeline, **kwargs})


@pytest.fixture()
def pack_dir(tmp_path: Path) -> Path:
    """A private copy of the example pack, so tests can add broken test files beside it."""
    target = tmp_path / "pack"
    shutil.copytree(fakes.GOOD_RULES, target)
    for test_file in target.rglob("*.test.yaml"):  # keep the real-run cases pointing at the fixtures
        test_file.write_text(test_file.read_text().replace("../../../../fixtures/runs/", f"{fakes.RUNS}/"))
    return target


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_example_pack_passes_with_one_known_miss():
    pack = load_rules([fakes.GOOD_RULES], known_names=fakes.SCHEMA)
    results = run_tests(pack, find_test_files([fakes.GOOD_RULES]))
    outcomes = {(r.rule_id, r.case): r.outcome for r in results}
    assert len(results) == 14
    assert outcomes[("example-ema-lag", "heavy-mixup-hides-train-progress")] == "xfail"
    assert [r for r in results if r.outcome not in ("pass", "xfail")] == []
    assert all(r.ok for r in results)


def test_each_expectation_can_fail(pack_dir: Path):
    write(
        pack_dir / "ema" / "example-ema-lag.test.yaml",
        """\
        rule: example-ema-lag
        defaults:
          config: {model: m, model_ema: true, model_ema_decay: 0.9999, model_ema_warmup: false}
          steps_per_epoch: 40
        cases:
          - name: wrong-epochs
            series: {train_loss: "6.9-0.25x19", eval_top1: "10x9 14+4x9"}
            expect: {fires: true, epochs: [0, 5], margin: 1}
          - name: wrong-evidence
            series: {train_loss: "6.9-0.25x19", eval_top1: "10x9 14+4x9"}
            expect: {fires: true, evidence_contains: ["0.9998"]}
          - name: wrong-fix
            series: {train_loss: "6.9-0.25x19", eval_top1: "10x9 14+4x9"}
            expect: {fires: true, fix_args: {model_ema_warmup: false}}
          - name: wrong-rank
            config: {lr: 0.00001}
            series: {train_loss: "6.9-0.25x19", eval_top1: "10x9 14+4x9"}
            expect: {fires: true, rank: 2}
          - name: wrongly-silent
            series: {train_loss: "6.9x19", eval_top1: "10x19"}
            expect: {fires: true}
          - name: wrongly-firing
            series: {train_loss: "6.9-0.25x19", eval_top1: "10x9 14+4x9"}
            expect: {fires: false}
          - name: fast-ema-few-updates
            config: {model_ema_decay: 0.99}
            steps_per_epoch: 1
            series: {train_loss: "6.9-0.25x19", eval_top1: "10x9 14+4x9"}
            expect: {fires: true}
          - name: fast-ema-many-updates
            config: {model_ema_decay: 0.99}
            steps_per_epoch: 100
            series: {train_loss: "6.9-0.25x19", eval_top1: "10x9 14+4x9"}
            expect: {fires: false}
          - name: todo-that-passes
            series: {train_loss: "6.9-0.25x19", eval_top1: "10x9 14+4x9"}
            expect: {fires: true}
            todo: "believed missed"
        """,
    )
    pack = load_rules([pack_dir])
    results = {r.case: r for r in run_tests(pack, [pack_dir / "ema" / "example-ema-lag.test.yaml"], require_all_rules=False)}
    assert "expected epochs [0, 5] (margin 1), got [0, 9]" in results["wrong-epochs"].message
    assert "evidence lacks '0.9998'" in results["wrong-evidence"].message
    assert "fix arg model_ema_warmup: expected False, got True" in results["wrong-fix"].message
    assert "expected rank 2, got 1" in results["wrong-rank"].message
    assert "stayed silent" in results["wrongly-silent"].message
    assert "expected silence, but it fired" in results["wrongly-firing"].message
    # steps_per_epoch reaches make_run: 0.99 ** (1 * 10) keeps the EMA near its start, 0.99 ** (100 * 10) does not
    assert results["fast-ema-few-updates"].outcome == "pass" and results["fast-ema-many-updates"].outcome == "pass"
    assert results["todo-that-passes"].outcome == "xpass" and not results["todo-that-passes"].ok
    for name in ("wrong-epochs", "wrong-evidence", "wrong-fix", "wrong-rank", "wrongly-silent", "wrongly-firing"):
        assert results[name].outcome == "fail" and not results[name].ok


def test_coverage_needs_a_firing_and_a_silent_case(pack_dir: Path):
    write(
        pack_dir / "lr" / "example-lr-too-low.test.yaml",
        """\
        rule: example-lr-too-low
        cases:
          - name: only-firing
            config: {lr: 1.0e-6}
            series: {train_loss: "6.9x9", eval_top1: "10x9"}
            expect: {fires: true}
        """,
    )
    (pack_dir / "custom" / "example-slow-data.test.yaml").unlink()
    pack = load_rules([pack_dir])
    files = find_test_files([pack_dir])
    errors = [r for r in run_tests(pack, files) if r.outcome == "error"]
    messages = {r.rule_id: r.message for r in errors}
    assert messages == {
        "example-lr-too-low": "needs at least one 'fires: false' test case",
        "example-slow-data": "needs at least one 'fires: true' and one 'fires: false' test case",
    }
    untested_ok = [r for r in run_tests(pack, files, require_all_rules=False) if r.outcome == "error"]
    assert [r.rule_id for r in untested_ok] == ["example-lr-too-low"]


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("rule: example-slow-data\ncases:\n  - name: a\n    expect: {fires: true, colour: red}\n", 4, "field 'cases[0].expect.colour': unknown field"),
        ("rule: example-slow-data\ncases:\n  - name: a\n    series: {x: '1 2 stale'}\n    expect: {fires: true}\n", 4, "'stale' is not a number"),
        ("rule: example-slow-data\ncases:\n  - name: a\n    expect: {fires: false, epochs: [0, 1]}\n", 4, "only meaningful with fires: true"),
        ("rule: example-slow-data\ncases:\n  - name: a\n    run: ../x\n    config: {a: 1}\n    expect: {fires: true}\n", 5, "reads everything from its run directory"),
        ("rule: example-slow-data\ncases: []\n", 2, "non-empty list of cases"),
        ("rule: another-rule\ncases:\n  - {name: a, expect: {fires: true}}\n", 1, "named after its rule"),
        ("rule: example-slow-data\ncases:\n  - name: a\n    expect: {fires: yes please}\n", 4, "expected true or false"),
    ],
)
def test_broken_test_files_are_reported_with_positions(tmp_path: Path, body: str, line: int, fragment: str):
    path = write(tmp_path / "example-slow-data.test.yaml", body)
    suite, errors = load_test_suite(path)
    assert suite is None and len(errors) == 1
    assert errors[0].line == line and fragment in str(errors[0]), str(errors[0])


def test_pipeline_failures_and_missing_runs_are_case_errors(pack_dir: Path):
    path = write(
        pack_dir / "custom" / "example-slow-data.test.yaml",
        """\
        rule: example-slow-data
        cases:
          - {name: gone, run: no-such-run, expect: {fires: true}}
          - {name: inline, config: {data_time_share: 0.9}, expect: {fires: false}}
        """,
    )

    def broken_diagnose(run):
        raise RuntimeError("features crashed")

    results = run_tests(load_rules([pack_dir]), [path], diagnose=broken_diagnose, require_all_rules=False)
    assert [(r.case, r.outcome) for r in results] == [("gone", "error"), ("inline", "error")]
    assert "run directory not found" in results[0].message
    assert "RuntimeError: features crashed" in results[1].message
    assert str(results[1]).startswith(f"{path}:4: example-slow-data / inline: ERROR")


def test_inline_cases_reach_make_run_with_defaults_merged(tmp_path: Path):
    seen = []

    def recording_make_run(config, series, **extra):
        seen.append((config, {k: v.tolist() for k, v in series.items()}, extra))
        return fakes.make_run(config, series, **extra)

    rules = tmp_path / "rules"
    shutil.copytree(fakes.GOOD_RULES / "custom", rules)
    shutil.copy(fakes.GOOD_RULES / "causes.yaml", rules)
    path = write(
        rules / "example-slow-data.test.yaml",
        """\
        rule: example-slow-data
        defaults: {config: {data_time_share: 0.9, seed: 1}, series: {lr: "0.1x1"}, steps_per_epoch: 7}
        cases:
          - {name: fires, expect: {fires: true}}
          - {name: silent, config: {data_time_share: 0.1}, series: {lr: [1, null]}, steps_per_epoch: 3, expect: {fires: false}}
        """,
    )
    results = run_tests(load_rules([rules]), [path], make_run=recording_make_run)
    assert [r.outcome for r in results] == ["pass", "pass"]
    assert seen[0] == ({"data_time_share": 0.9, "seed": 1}, {"lr": [0.1, 0.1]}, {"steps_per_epoch": 7})
    config, series, extra = seen[1]
    assert config == {"data_time_share": 0.1, "seed": 1} and extra == {"steps_per_epoch": 3}
    assert series["lr"][0] == 1.0 and series["lr"][1] != series["lr"][1]  # null -> NaN
