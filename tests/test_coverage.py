"""Issue 19: say what could be judged.

- Folders with no curves (only args.yaml, only a Lightning hparams.yaml, only a console-log header of a run
  killed before epoch 0 ended, only a TensorBoard file with a graph and no scalars): none says "No problem
  found"; each says what is missing; with no finding, ``report`` exits 4 (nothing to judge), not 2.
- Every labelled run carries a coverage statement in text, JSON (schema-valid), HTML and Markdown, and it
  matches what ``inspect`` reads. In-process, one rule pack, one diagnosis per run.
- Settings files are timm's arguments only when they look like them (timm/argument_names.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnv4_postmortem.analyzer.coverage import CHECKS, MIN_POINTS, coverage_of
from mnv4_postmortem.analyzer.engine import load_pack
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.outcome import FINDINGS, NO_PROBLEM_FOUND, NOTHING_TO_JUDGE, decide_outcome
from mnv4_postmortem.analyzer.pipeline import diagnose
from mnv4_postmortem.analyzer.render import renderer
from mnv4_postmortem.analyzer.render.inspect_view import describe
from mnv4_postmortem.analyzer.timm.argument_names import classify_args
from mnv4_postmortem.cli import exit_codes

from _labelled import load_labels
from conftest import REPO, report_json

NOTHING = REPO / "fixtures" / "nothing_to_judge"
LABELS = [label for label in load_labels()]


@pytest.fixture(scope="module")
def pack():
    return load_pack()


def _report(path: Path, *extra: str):
    from mnv4_postmortem.cli import cli

    return CliRunner().invoke(cli, ["report", str(path), *extra])


# ------------------------------------------------------------------------------------------- no curves


@pytest.mark.parametrize("folder", ["args_only", "hparams_only", "log_header", "tb_graph", "args_only_seed", "log_epoch0"])
def test_no_curves_never_says_no_problem_found_and_says_what_is_missing(folder, pack):
    report = diagnose(load_run(NOTHING / folder), pack)
    assert not report.coverage.judgeable
    assert report.outcome.kind != NO_PROBLEM_FOUND
    assert "Needed:" in report.outcome.headline and f"at least {MIN_POINTS} epochs" in report.coverage.needed
    for fmt in ("text", "md", "html"):
        shown = renderer("report", fmt)(report)
        assert "No problem found" not in shown
        assert "Needed:" in shown
    document = report_json(renderer("report", "json")(report))
    assert document["outcome"]["kind"] == report.outcome.kind and document["coverage"]["judgeable"] is False


@pytest.mark.parametrize("folder", ["args_only", "hparams_only", "tb_graph"])
def test_nothing_to_judge_exits_4_not_2(folder):
    result = _report(NOTHING / folder)
    assert result.exit_code == exit_codes.NOTHING_TO_JUDGE == 4, result.output
    assert any(line.startswith("Nothing to judge:") for line in result.output.splitlines()[:3])


def test_findings_from_settings_alone_stand_and_say_the_curves_were_not_judged():
    """The seed's args.yaml alone still shows 56 px training on 224 px weights; the report adds that no
    curve was there to judge, and exits as for any finding."""
    result = _report(NOTHING / "args_only_seed", "--fail-on", "warning")
    assert result.exit_code == exit_codes.FINDINGS
    assert "input-size-mismatch" in result.output and "Curves not judged:" in result.output


def test_what_is_missing_names_the_situation(pack):
    needed = {name: diagnose(load_run(NOTHING / name), pack).coverage.needed
              for name in ("hparams_only", "log_header", "log_epoch0", "tb_graph")}
    assert "summary.csv or the console log" in needed["hparams_only"]
    assert "summary.csv or the console log" in needed["tb_graph"]
    assert "start-up lines only" in needed["log_header"]
    assert "within epoch 0" in needed["log_epoch0"] or "1 epoch(s)" in needed["log_epoch0"]


def test_a_killed_log_header_and_a_graph_only_event_file_are_read_not_unusable():
    header = load_run(NOTHING / "log_header")
    assert header.config.get("model") == "mobilenetv4_conv_small" and header.n_epochs == 0
    graph = load_run(NOTHING / "tb_graph")
    assert [s.kind for s in graph.sources] == ["tensorboard"] and graph.n_epochs == 0


def test_unreadable_input_is_still_unusable(tmp_path):
    """A file no format could read leaves nothing: IngestError (exit 2), not "nothing to judge"."""
    from mnv4_postmortem.analyzer.model import IngestError

    (tmp_path / "events.out.tfevents.1.host").write_bytes(b"\x00" * 64)  # not an event file
    with pytest.raises(IngestError, match="nothing usable"):
        load_run(tmp_path)


# ------------------------------------------------------------------------------------------- other config


def test_lightning_hparams_are_not_read_as_timm_settings():
    """Lightning's own hparams.yaml: whichever format claims it (other config, or Lightning's own reader),
    it is never timm's args.yaml and no timm default is filled in on its account."""
    run = load_run(NOTHING / "hparams_only")
    assert not any(s.family == "timm args.yaml" for s in run.sources)
    assert not run.config.defaulted and run.config.get("model_ema") is None


def test_another_trainers_args_yaml_is_other_config_listed_by_inspect(tmp_path):
    """Ultralytics writes args.yaml too (a public run in ../shared): its keys are listed, none is a timm setting."""
    from conftest import REAL_RUNS

    source = REAL_RUNS / "ultra-weather-yolov8n-healthy" / "args.yaml"
    if not source.is_file():
        pytest.skip("../shared/real-runs is not available")
    (tmp_path / "args.yaml").write_bytes(source.read_bytes())
    run = load_run(tmp_path)
    (info,) = run.sources
    assert info.kind == "other" and info.family.startswith("other config")
    assert {"imgsz", "lr0", "batch"} <= set(info.config_keys)
    assert not run.config.args and run.config.get("model_ema") is None
    view = describe(run)
    assert "lr0" in view["sources"][0]["config_keys"] and view["config"] == {}
    report = diagnose(run, load_pack())
    assert report.outcome.kind == NOTHING_TO_JUDGE and "holds settings only" in report.outcome.needed


@pytest.mark.parametrize("keys, timm", [
    # a LightningModule's hyper-parameters: a majority of names timm also uses, none of them timm's own
    (["model_name", "num_classes", "lr", "batch_size", "weight_decay", "max_epochs", "optimizer"], False),
    # Ultralytics' args.yaml shares a few generic names only
    (["task", "mode", "model", "data", "epochs", "batch", "imgsz", "optimizer", "lr0", "lrf", "momentum"], False),
    # a pasted excerpt of timm's args: few keys, but timm's own spelling
    (["model", "lr", "sched", "model_ema", "model_ema_decay", "drop_path"], True),
    # a fork's args.yaml: timm's names plus a minority of its own
    (["model", "opt", "lr", "warmup_lr", "smoothing", "reprob", "teacher", "kd_alpha"], True),
    ([], False),
])
def test_timm_args_are_recognised_by_principle(keys, timm):
    assert classify_args(keys).timm is timm


def test_every_real_timm_args_file_is_still_timm_args():
    files = sorted((REPO / "fixtures").glob("**/args.yaml"))
    assert files
    for path in files:
        run_sources = load_run(path.parent).sources
        assert any(s.path == "args.yaml" and s.family == "timm args.yaml" for s in run_sources), path


# ------------------------------------------------------------------------------------------- outcome


def test_outcome_needs_judgeable_data_for_no_problem_found(pack):
    healthy = diagnose(load_run(REPO / "fixtures" / "runs" / "v1_healthy"), pack)
    assert healthy.outcome.kind == NO_PROBLEM_FOUND and healthy.coverage.judgeable
    empty = diagnose(load_run(NOTHING / "args_only"), pack)
    assert decide_outcome((), empty.coverage).kind == NOTHING_TO_JUDGE
    assert decide_outcome((), healthy.coverage).kind == NO_PROBLEM_FOUND
    seed = diagnose(load_run(REPO / "fixtures" / "runs" / "seed_mnv4"), pack)
    assert decide_outcome(seed.findings, seed.coverage).kind == FINDINGS


def test_every_catalog_cause_has_a_coverage_check():
    from mnv4_postmortem.analyzer.engine.schema import CAUSES

    assert {cause for cause, _label, _needs in CHECKS} == set(CAUSES)


def test_ema_lag_cannot_be_judged_without_an_eval_curve(pack):
    coverage = coverage_of(load_run(NOTHING / "args_only"))
    ema = next(c for c in coverage.checks if c.check == "ema-lag")
    assert not ema.can_run and any("no eval curve" in m for m in ema.missing)
    assert ema.sentence().startswith("EMA lag: cannot be judged, no eval curve")


# ------------------------------------------------------------------------------------------- every labelled run


@pytest.mark.parametrize("label", LABELS, ids=[label.run for label in LABELS])
def test_every_labelled_run_reports_its_coverage_matching_inspect(label, pack):
    if not label.path.is_dir():
        pytest.skip(f"{label.path} is not available")
    run = load_run(label.path)
    report = diagnose(run, pack)
    coverage = report.coverage
    view = describe(run)  # what inspect reads, by its own code path

    # series: present exactly when inspect lists the column with values, over the same epochs
    for series in coverage.series:
        if series.axis == "step":
            assert series.points <= view["steps"]["count"]
            assert series.present == (view["steps"]["count"] > 0 and series.points > 0)
            continue
        if series.name == "model_vs_ema":
            if series.present:
                assert {"eval_top1_model", "eval_top1_ema"} <= set(view["epochs"]["columns"])
            continue
        column = series.name
        if series.present:
            assert column in view["epochs"]["columns"]
            values = run.epochs[column].astype("float64").dropna()
            assert (series.first, series.last, series.points) == (int(values.index.min()), int(values.index.max()), len(values))
            listed = {s["path"] for s in view["sources"] if column in s["metrics"]}
            assert set(series.sources) <= listed | {s["path"] for s in view["sources"]}
        else:
            assert column not in view["epochs"]["columns"] or run.epochs[column].astype("float64").dropna().empty
    # config facts: a fact with a value is one inspect shows, from the same place
    shown = {entry["key"]: entry["source"] for entry in view["config"].values()}
    for fact in coverage.config:
        if fact.known and not fact.source.endswith("(not set)"):
            assert shown.get(fact.key) == fact.source, (fact, shown.get(fact.key))
    for key in shown:
        fact = next((f for f in coverage.config if f.key == key), None)
        assert fact is None or fact.known
    # judged at all: the labelled runs have curves (each was labelled from its curves), except a few excerpts
    # pasted in issues (issue 13's labels: two summary rows, a few NaN step lines of one epoch), too short
    # for any curve; those must say so (what is needed) rather than pass as judged.
    longest = max((s.points for s in coverage.series if s.axis == "epoch" and s.present), default=0)
    assert coverage.judgeable == (longest >= MIN_POINTS)
    if label.origin == "shared-excerpt" and longest < MIN_POINTS:
        assert report.outcome.needed and f"at least {MIN_POINTS} epochs" in coverage.needed
    else:
        assert coverage.judgeable and report.outcome.kind != NOTHING_TO_JUDGE

    text = renderer("report", "text")(report)
    assert "Coverage" in text and "checks:" in text
    document = report_json(renderer("report", "json")(report))
    assert document["coverage"] == json.loads(json.dumps(coverage.as_dict()))
    assert document["outcome"]["kind"] == report.outcome.kind
    markdown = renderer("report", "md")(report)
    assert "<details><summary>Coverage:" in markdown
    html = renderer("report", "html")(report)
    assert 'id="coverage-series"' in html and 'id="coverage-checks"' in html
    present = [s for s in coverage.series if s.present]
    for series in present:
        assert series.label in text and series.label in html
