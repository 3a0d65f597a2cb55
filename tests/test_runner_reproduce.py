"""reproduce end to end on a tiny model: verification.json, the analyzer on every arm, Ctrl-C, submitit
(local executor), and the Verification section of report."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from conftest import report_json, REPO  # noqa: E402

SEED = REPO / "fixtures" / "runs" / "seed_mnv4"
TINY = {"model": "test_efficientnet", "log_interval": 2}


def _opts(out, **kw):
    from mnv4_postmortem.runner.reproduce import Options

    base = dict(proxy=True, epochs=3, max_samples=32, val_samples=16, img_size=32, seeds=2, out=out, device="cpu",
                arg_overrides=TINY, tensorboard=False)
    base.update(kw)
    return Options(**base)


def _console():
    import io

    from rich.console import Console

    return Console(file=io.StringIO(), width=160)


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    from mnv4_postmortem.runner.reproduce import reproduce

    out = tmp_path_factory.mktemp("repro")
    console = _console()
    assert reproduce(SEED, _opts(out), console) == 0
    return out, json.loads((out / "verification.json").read_text()), console.file.getvalue()


def test_verification_json_has_arms_seeds_effect_and_verdict(verified):
    out, doc, printed = verified
    assert doc["schema"] == "mnv4-postmortem/verification" and doc["schema_version"] == "1.0"
    assert doc["complete"] and not doc["interrupted"] and doc["seeds"] == [0, 1]
    (finding,) = doc["findings"]
    assert finding["finding"] == "ema-lag" and finding["verdict"] in ("confirmed", "refuted", "inconclusive")
    control, treatment = finding["arms"]
    assert control["role"] == "control" and treatment["role"] == "treatment"
    assert treatment["args_changed_from_control"]["model_ema_warmup"] is True
    assert len(control["seeds"]) == len(treatment["seeds"]) == 2
    effect = finding["effect"]
    assert len(effect["diffs"]) == 2 and "t interval" in effect["test"] and len(effect["ci"]) == 2
    assert effect["mean_diff"] == pytest.approx(sum(effect["diffs"]) / 2, abs=1e-3)
    # predicted share = the original's share at 372 updates; observed on timm's class
    assert control["ema"]["share_predicted_end"] == pytest.approx(0.9998 ** 371, rel=1e-6)
    assert control["ema"]["share_observed_end"] == pytest.approx(control["ema"]["share_predicted_end"], rel=1e-6)
    assert doc["spec"]["init"]["kind"] == "random" and "does not exist" in doc["spec"]["init"]["note"]
    assert "random init" in finding["init_changes"]
    assert "Verification" in printed and "ema-lag" in printed


def test_shared_trajectory_means_identical_train_loss_across_arms(verified):
    out, doc, _ = verified
    control, treatment = doc["findings"][0]["arms"]
    for c, t in zip(control["seeds"], treatment["seeds"]):
        assert c["curve"]["train_loss"] == t["curve"]["train_loss"]
        assert c["curve"]["eval_top1_model"] == t["curve"]["eval_top1_model"]


def test_every_arm_is_read_by_the_analyzer(verified):
    from mnv4_postmortem.analyzer.ingest import load_run

    out, doc, _ = verified
    for arm in doc["findings"][0]["arms"]:
        for seed in arm["seeds"]:
            run = load_run(seed["dir"])
            assert run.n_epochs == 3 and run.config.get("model") == "test_efficientnet"


def test_never_writes_into_the_run_dir(tmp_path):
    from mnv4_postmortem.runner.reproduce import ReproduceError, reproduce

    run = tmp_path / "run"
    shutil.copytree(SEED, run)
    before = sorted(p.name for p in run.rglob("*"))
    with pytest.raises(ReproduceError, match="inside the run directory"):
        reproduce(run, _opts(run / "repro"), _console())
    assert sorted(p.name for p in run.rglob("*")) == before


def test_ctrl_c_keeps_finished_arms_and_writes_a_partial_file(tmp_path, monkeypatch):
    from mnv4_postmortem.runner import launch
    from mnv4_postmortem.runner.reproduce import reproduce

    real = launch.run_job
    calls = []

    def interrupt_second(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(launch, "run_job", interrupt_second)
    assert reproduce(SEED, _opts(tmp_path, epochs=1), _console()) == 130
    doc = json.loads((tmp_path / "verification.json").read_text())
    assert doc["interrupted"] and not doc["complete"]
    finding = doc["findings"][0]
    assert finding["seeds_finished"] == [0]
    assert finding["verdict"] == "inconclusive"  # one seed: no interval
    assert (tmp_path / "arms" / "control" / "seed0" / "summary.csv").is_file()


def test_submitit_local_executor_runs_the_same_jobs(tmp_path):
    pytest.importorskip("submitit")
    from mnv4_postmortem.runner.reproduce import reproduce

    opts = _opts(tmp_path, epochs=1, seeds=1, launcher="submitit", submitit_cluster="local", timeout_min=5)
    assert reproduce(SEED, opts, _console()) == 0
    doc = json.loads((tmp_path / "verification.json").read_text())
    assert doc["launcher"] == "submitit" and doc["complete"]
    assert [s["seed"] for s in doc["findings"][0]["arms"][0]["seeds"]] == [0]
    assert list((tmp_path / "submitit").glob("*_result.pkl"))  # submitit's own bookkeeping


def test_report_adds_the_verification_section(verified):
    from click.testing import CliRunner

    from mnv4_postmortem.cli import cli

    out, doc, _ = verified
    runner = CliRunner()
    text = runner.invoke(cli, ["report", str(SEED), "--verification", str(out)])
    assert text.exit_code == 0, text.output
    assert "Verification" in text.output and f"ema-lag: {doc['findings'][0]['verdict']}" in text.output
    as_json = runner.invoke(cli, ["report", str(SEED), "--verification", str(out), "--format", "json"])
    section = report_json(as_json.output)["verification"]  # schema-valid with the section
    assert section["findings"][0]["verdict"] == doc["findings"][0]["verdict"]
    page = out.parent / "seed.postmortem.html"
    html = runner.invoke(cli, ["report", str(SEED), "--verification", str(out), "--format", "html", "-o", str(page)])
    assert html.exit_code == 0, html.output
    body = page.read_text(encoding="utf-8")
    assert '<section id="verification">' in body and body.count("<svg") >= 2  # report curves + the overlay
    # it fills the report's Verification slot (no "no reproduction attached" placeholder left)
    assert 'id="verification-slot"' not in body
    assert body.index('id="plots"') < body.index('<section id="verification">') < body.index('id="config"')


def test_report_picks_up_the_default_out_folder(verified, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from mnv4_postmortem.cli import cli

    out, doc, _ = verified
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "mnv4-postmortem-repro" / "seed_mnv4"
    target.mkdir(parents=True)
    shutil.copy(out / "verification.json", target / "verification.json")
    result = CliRunner().invoke(cli, ["report", str(SEED), "--format", "json"])
    assert json.loads(result.output)["verification"]["findings"][0]["finding"] == "ema-lag"
