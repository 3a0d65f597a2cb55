"""`batch`: discovery, the process pool and the Dask path, the files in --out, and "what differs"."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

from _hostile import hostile_tb_run
from conftest import FIXTURE_RUNS
from mnv4_postmortem.analyzer.batch.differs import what_differs
from mnv4_postmortem.analyzer.batch.discover import find_runs
from mnv4_postmortem.analyzer.batch.rows import RowFinding, RunRow, row_from_mapping
from mnv4_postmortem.cli import cli

EMA_SET = ("v1_ema_lag", "v09_ema_lag", "seed_mnv4", "seed_mnv4_ema_warmup", "v1_healthy", "v09_healthy")


def copy_runs(root: Path, names) -> Path:
    for name in names:
        shutil.copytree(FIXTURE_RUNS / name, root / name)
    return root


def test_discovery_finds_nested_tensorboard_runs_and_stops_below_a_run(tmp_path):
    copy_runs(tmp_path / "sweep", ["v1_healthy"])
    (tmp_path / "sweep" / "v1_healthy" / "tb").mkdir()  # events below a run folder belong to that run
    (tmp_path / "sweep" / "v1_healthy" / "tb" / "events.out.tfevents.1.host").write_bytes(b"")
    tb = hostile_tb_run(tmp_path / "tensorboard")  # tensorboard/tb run/<date_host>/events...
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.md").write_text("not a run")
    found = find_runs([tmp_path])
    assert found == sorted([tmp_path / "sweep" / "v1_healthy", tb])


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory):
    root = copy_runs(tmp_path_factory.mktemp("runs"), EMA_SET)
    broken = root / "broken"
    broken.mkdir()
    (broken / "summary.csv").write_bytes(b"\x00\x01garbage\xff" * 50)
    out = tmp_path_factory.mktemp("out")
    result = CliRunner().invoke(cli, ["batch", str(root), "--out", str(out), "--jobs", "2"])
    return root, out, result


def test_batch_writes_index_reports_csv_jsonl_and_lists_the_broken_run(batch_out):
    root, out, result = batch_out
    assert result.exit_code == 0, result.output
    assert "7 run(s), 1 unusable" in result.stderr
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    by_name = {Path(r["path"]).name: r for r in records}
    assert set(by_name) == {*EMA_SET, "broken"}
    assert by_name["broken"]["error"] and "summary.csv" in by_name["broken"]["error"]
    assert by_name["v1_ema_lag"]["top_cause"] == "ema-lag" and by_name["v1_healthy"]["top_cause"] is None
    rows = list(csv.DictReader((out / "runs.csv").open()))
    assert len(rows) == 7 and {r["name"].split("/")[-1] for r in rows} == set(by_name)
    reports = sorted((out / "runs").glob("*.html"))
    assert len(reports) == 6  # one per readable run
    index = (out / "index.html").read_text()
    for record in records:
        if record["report"]:
            assert f'href="runs/{record["report"]}"' in index
    assert "<svg" in index  # the overlays


def test_what_differs_names_ema_without_warmup_for_ema_lag(batch_out):
    _, out, result = batch_out
    rows = [row_from_mapping(json.loads(line)) for line in (out / "runs.jsonl").read_text().splitlines()]
    ema = [d for d in what_differs(rows) if d.cause == "ema-lag"]
    assert ema[0].condition == "model_ema=True and model_ema_warmup=False"
    assert (ema[0].flagged_hits, ema[0].flagged) == (3, 3) and ema[0].other_hits == 0
    summary = (out / "summary.md").read_text()
    assert "ema-lag: 3/3 flagged runs have model\\_ema=True and model\\_ema\\_warmup=False" in summary
    assert "model_ema=True and model_ema_warmup=False" in (out / "index.html").read_text()


def test_batch_markdown_summary_is_a_table():
    result = CliRunner().invoke(cli, ["batch", str(FIXTURE_RUNS / "v1_nan"), "--format", "md", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    tokens = MarkdownIt("commonmark").enable("table").parse(result.stdout)
    cells = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "td_open"]
    assert cells[0] == "v1\\_nan" or cells[0].endswith("v1_nan") and "divergence" in cells


def test_dask_scheduler_path_on_a_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    root = copy_runs(tmp_path / "runs", ["v1_ema_lag", "v1_healthy"])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        result = CliRunner().invoke(cli, ["batch", str(root), "--dask-scheduler", cluster.scheduler_address,
                                          "--format", "json", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    # stdout: one `report --format json` document per run, streamed back from the cluster
    reports = {Path(r["run"]["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert reports["v1_ema_lag"]["findings"][0]["cause"] == "ema-lag"
    rows = {Path(r["path"]).name: r for r in map(json.loads, (tmp_path / "out" / "runs.jsonl").read_text().splitlines())}
    assert rows["v1_ema_lag"]["top_cause"] == "ema-lag" and rows["v1_healthy"]["error"] is None
    assert (tmp_path / "out" / "index.html").is_file() and len(list((tmp_path / "out" / "runs").glob("*.html"))) == 2


def test_out_inside_a_run_folder_is_refused(tmp_path):
    root = copy_runs(tmp_path, ["v1_healthy"])
    result = CliRunner().invoke(cli, ["batch", str(root), "--out", str(root / "v1_healthy" / "index")])
    assert result.exit_code == 2 and "inside the run folder" in result.output
    assert not (root / "v1_healthy" / "index").exists()


def test_a_fitted_cutoff_does_not_beat_a_named_value_by_one_run():
    """Unit check of the tie rule: lr<=0.001 separates one run better than model_ema_warmup=False only
    because its threshold was picked from many; within one run, the named value leads."""
    def row(i, cause, **config):
        findings = [RowFinding("r", cause, "error", 0.9)] if cause else []
        return RunRow(path=f"r{i}", name=f"r{i}", findings=findings, config=config)

    rows = [row(i, "ema-lag", model_ema=True, model_ema_warmup=False, lr=0.001) for i in range(5)]
    rows.append(row(5, "lr-too-high", model_ema=True, model_ema_warmup=False, lr=0.6))  # EMA, no warmup, other cause
    rows.append(row(6, None, model_ema=True, model_ema_warmup=True, lr=0.001))
    # lr takes many values in a sweep, so it is compared by cut-offs only
    lrs = (0.01, 0.1, 0.05, 0.02, 0.2, 0.3, 0.004, 0.008)
    rows += [row(7 + i, None, model_ema=False, model_ema_warmup=False, lr=lr) for i, lr in enumerate(lrs)]
    ema = [d for d in what_differs(rows) if d.cause == "ema-lag"]
    assert ema[0].condition == "model_ema=True and model_ema_warmup=False"
    assert any("lr<=" in d.condition and d.effect > ema[0].effect for d in ema)  # it is still listed, second
