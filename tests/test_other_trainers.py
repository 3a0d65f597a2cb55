"""The other trainers' formats (issue 14): DeiT-family main.py, Lightning CSVLogger, HF Trainer, W&B run
folders and mmpretrain, on the real public samples of ``fixtures/other_trainers`` (see its LABELS.md and each
PROVENANCE.md) and the two runs made here; bad input per format; trainer-aware EMA facts and fix commands."""

from __future__ import annotations

import io
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnv4_postmortem.analyzer.batch.discover import find_runs
from mnv4_postmortem.analyzer.features.derived import derive
from mnv4_postmortem.analyzer.features.ema import ema_model_from
from mnv4_postmortem.analyzer.ingest import formats, load_input, load_run
from mnv4_postmortem.analyzer.ingest.deit_log import parse_namespace
from mnv4_postmortem.analyzer.ingest.mmpretrain_log import read_config
from mnv4_postmortem.analyzer.ingest.trainer_rows import json_lines_text
from mnv4_postmortem.analyzer.model import IngestError
from mnv4_postmortem.analyzer.timm import trainers
from mnv4_postmortem.cli import cli

from tests.conftest import FIXTURE_RUNS, REPO

OTHER = REPO / "fixtures" / "other_trainers"
CASES = sorted(p.parent.relative_to(OTHER).as_posix() for p in OTHER.rglob("PROVENANCE.md"))
MADE = ("made_here/lightning_healthy", "made_here/hf_trainer_lr_high")


def run_of(case: str):
    return load_run(OTHER / case)


def notes(run) -> str:
    return " | ".join(note for source in run.sources for note in source.notes)


# ------------------------------------------------------------------------------------------ the registry


def test_each_format_is_one_registry_entry():
    names = [f.name for f in formats.FORMATS]
    for name in ("deit_log", "lightning_csv", "hf_trainer", "wandb_run", "mmpretrain_log"):
        assert names.count(name) == 1
    assert all(isinstance(f, formats.Format) for f in formats.FORMATS)


def test_batch_discovery_finds_every_sample_by_asking_the_registry():
    found = {p.relative_to(OTHER).as_posix() for p in find_runs([OTHER])}
    for case in CASES:  # a W&B folder's data sits in files/: that is the run folder found
        assert case in found or f"{case}/files" in found, case
    assert "made_here/lightning_healthy/lightning_logs/version_0" in found
    assert "made_here/hf_trainer_lr_high" in found


# ------------------------------------------------------------------------------------------ DeiT family


def test_p2t_log_txt_keeps_rows_before_the_cut_line_and_names_it():
    run = run_of("deit/p2t-issue13-eval-every-10")
    assert run.trainer == "deit_family"
    assert list(run.epochs.index) == list(range(49, 60))
    assert run.epochs.loc[50, "eval_top1"] == pytest.approx(67.596001953125)
    assert math.isnan(run.epochs.loc[51, "eval_top1"])          # evaluated every 10 epochs only
    assert run.epochs.loc[59, "lr"] == pytest.approx(0.0009114688585212051)
    assert any(i.source.line == 12 and "truncated" in i.message for i in run.issues)
    assert any(e.kind == "truncated" and e.source.line == 12 for e in run.events)
    assert "test_acc1: percent" in notes(run)


def test_json_lines_keep_their_line_numbers_when_a_line_is_not_one_object():
    """The one-call fast path must give way whenever lines and objects do not pair up one to one."""
    text = ('{"epoch": 0, "train_loss": 1.0}\n'
            '{"epoch": 1, "train_loss": 0.9}, {"epoch": 2, "train_loss": 0.8}\n'   # two objects on one line
            '{"epoch": 3, "train_loss":\n0.7}\n'                                     # one object over two lines
            '\n{"epoch": 5, "train_loss": 0.5}\n'
            '{"epoch": 6, "tra')                                                     # cut off
    lines = json_lines_text(text, "log.txt")
    assert [(n, r["epoch"]) for n, r in lines.records] == [(1, 0), (6, 5)]
    assert sorted(i.source.line for i in lines.issues) == [2, 3, 4, 7]
    assert "truncated" in next(i.message for i in lines.issues if i.source.line == 7)
    whole = json_lines_text('{"epoch": 0}\n\n{"epoch": 1}\n', "log.txt")
    assert [n for n, _ in whole.records] == [1, 3] and not whole.issues


def test_pvt_log_txt_reads_every_column():
    run = run_of("deit/pvt-issue24-healthy")
    assert run.epochs.loc[33, "eval_top1"] == pytest.approx(70.5680026171875)
    assert run.epochs.loc[28, "eval_loss"] == pytest.approx(1.3505478992316)
    assert run.epochs.loc[30, "train_loss"] == pytest.approx(3.886609091532888)
    assert "eval_top1_ema" not in run.epochs.columns


def test_cfvit_log_txt_keeps_its_multi_resolution_test_keys_and_is_healthy():
    """A fork that evaluates at three input sizes writes test_96_acc1 ... instead of test_acc1: each is kept under
    its own name and listed (which one is 'the' eval is the fork's business), and the run reads as healthy."""
    run = run_of("deit/cfvit-multires-log-healthy")
    assert run.trainer == "deit_family" and list(run.epochs.index) == list(range(12))
    assert run.epochs.loc[11, "test_384_acc1"] == pytest.approx(32.884000966250895)
    assert run.epochs.loc[0, "train_loss"] == pytest.approx(6.919728336438455)
    assert "eval_top1" not in run.epochs.columns
    assert "test_96_acc1" in notes(run) and "kept under their own names" in notes(run)
    result = CliRunner().invoke(cli, ["report", str(OTHER / "deit/cfvit-multires-log-healthy"), "--format", "json"])
    assert result.exit_code == 0
    assert not [f for f in json.loads(result.stdout)["findings"] if f["severity"] in ("warning", "error")]


def test_deit_stdout_reads_the_cut_namespace_and_does_not_place_an_epochless_eval():
    run = run_of("deit/deit-issue16-stdout-deit-s")
    assert run.config.args["batch_size"] == 64 and run.config.args["epochs"] == 300
    assert run.config.args["drop_path"] == 0.1
    assert run.epochs.empty
    assert "Acc@1 79.828" in notes(run)
    assert "model_ema" not in run.config.values  # timm train.py's defaults are not DeiT's: none filled in


def test_namespace_values_are_literals_never_evaluated():
    args, problem = parse_namespace("model='deit_tiny', output_dir=PosixPath('/x'), lr=__import__('os').getcwd()")
    assert args["model"] == "deit_tiny" and args["output_dir"] == "PosixPath('/x')"
    assert args["lr"] == "__import__('os').getcwd()" and problem is None


# ------------------------------------------------------------------------------------------ Lightning


def test_lightning_metrics_csv_fraction_accuracy_and_step_frame():
    run = run_of("lightning/hcdescamps-mnist-healthy")
    assert run.trainer == "lightning"
    assert run.epochs.loc[0, "eval_top1"] == pytest.approx(97.61999845504761)   # 0.9762 -> percent
    assert "val_accuracy: fraction of 1" in notes(run)
    assert "test_loss" in run.epochs.columns and "test_loss" in notes(run)       # unknown key kept and listed
    assert len(run.steps) == 22 and run.steps["update"].iloc[0] == 49
    assert run.epochs.loc[0, "train_loss"] == pytest.approx(
        (0.634955883026123 + 0.19590148329734802 + 0.31667324900627136 + 0.08673018217086792
         + 0.02579093538224697 + 0.0060985698364675045) / 6)


def test_lightning_short_and_val_only_files():
    two = run_of("lightning/andyc-glitch-two-epochs")
    assert list(two.epochs.index) == [0, 1] and two.epochs.loc[1, "eval_loss"] == pytest.approx(0.14366206526756287)
    grape = run_of("lightning/grape-vine-val-loss-1e12")
    assert grape.epochs.loc[0, "eval_loss"] == pytest.approx(7930013286400.0) and len(grape.epochs) == 10


def test_lightning_csv_and_its_tensorboard_give_the_same_run():
    root = OTHER / "made_here" / "lightning_healthy"
    csv, tb = load_run(root / "lightning_logs"), load_run(root / "tb_logs")
    for column in ("train_loss", "eval_loss", "eval_top1"):
        assert csv.epochs[column].to_numpy() == pytest.approx(tb.epochs[column].to_numpy(), rel=1e-5), column
    assert csv.config.args["model_name"] == "test_resnet"


def test_lightning_bad_rows_are_named_and_the_rows_before_kept(tmp_path):
    text = (OTHER / "lightning/hcdescamps-mnist-healthy/metrics.csv").read_text().splitlines()
    text.insert(4, "0,170,,0.5,,,9,9,9")   # a row with too many fields (hand-made bad input)
    (tmp_path / "metrics.csv").write_text("\n".join(text)[:-12])   # and a cut last row
    run = load_run(tmp_path)
    assert any(i.source.line == 5 and "malformed" in i.message for i in run.issues)
    assert any(e.kind == "truncated" for e in run.events)
    assert run.epochs.loc[4, "eval_top1"] == pytest.approx(98.68000149726868)


# ------------------------------------------------------------------------------------------ HF Trainer


def test_hf_trainer_state_eval_to_epochs_and_unknown_metric_kept():
    run = run_of("hf_trainer/irrigation-vit-healthy")
    assert run.trainer == "hf_trainer" and run.epochs_scheduled == 3
    assert run.epochs.loc[0, "eval_loss"] == pytest.approx(0.07742569595575333)   # the epoch's last eval (step 200)
    assert run.epochs.loc[2, "eval_f1"] == pytest.approx(0.9853801169590642)
    assert "eval_f1" in notes(run)
    assert run.steps["per_epoch"].iloc[0] == 210 and len(run.steps) == 63
    assert run.epochs.loc[0, "lr"] == pytest.approx(0.00019714285714285716)


def test_hf_eval_accuracy_is_a_fraction_shown_in_percent():
    run = run_of("hf_trainer/quality-lrqa-loss-at-ln4")
    assert run.epochs.loc[0, "eval_top1"] == pytest.approx(28.04410457611084)
    assert "eval_accuracy: fraction of 1" in notes(run)


def test_hf_truncated_trainer_state_keeps_the_entries_before_the_cut(tmp_path):
    text = (OTHER / "hf_trainer/irrigation-vit-healthy/trainer_state.json").read_text()
    (tmp_path / "trainer_state.json").write_text(text[: text.index('"step": 300') + 5])
    run = load_run(tmp_path)
    assert any(e.kind == "truncated" for e in run.events)
    assert any("log_history entries before it are kept" in i.message and i.source.line for i in run.issues)
    assert run.epochs.loc[0, "eval_loss"] == pytest.approx(0.07742569595575333)
    assert run.steps["update"].max() == 290


def test_hf_made_here_settings_and_fix_as_settings():
    run = run_of("made_here/hf_trainer_lr_high")
    assert run.config.args["lr"] == 3.0 and run.config.args["epochs"] == 6
    assert run.epochs["eval_top1"].max() <= 100.0
    assert trainers.fix_command(run.trainer, {"lr": 0.001}) is None   # no known CLI: the fix is its settings


# ------------------------------------------------------------------------------------------ W&B


def test_wandb_folder_config_and_summary():
    run = run_of("wandb/trash-classification-keras")
    assert run.trainer == "wandb"
    # Issue 19: a Keras project's wandb config (model, epochs, batch_size, learning_rate, image_size) is
    # "other config", not timm's arguments: its keys are listed, none is read as a train.py setting.
    config = next(s for s in run.sources if s.path.endswith("config.yaml"))
    assert {"model", "epochs"} <= set(config.config_keys) and "model" not in run.config.args
    assert run.epochs.loc[9, "eval_top1"] == pytest.approx(86.69354915618896)
    assert "final values only" in notes(run)


def test_wandb_summary_only():
    run = run_of("wandb/vitra-summary-only")
    assert run.epochs.loc[14, "train_loss"] == pytest.approx(0.11239799857139587)
    assert "val/mIoU" in run.epochs.columns


def test_wandb_binary_file_alone_is_said_clearly(tmp_path):
    (tmp_path / "run-abc.wandb").write_bytes(b":W&B\x00\x01" + bytes(range(256)))
    with pytest.raises(IngestError) as caught:
        load_run(tmp_path)
    assert "binary W&B run file" in str(caught.value) and "history" in str(caught.value)


# ------------------------------------------------------------------------------------------ mmpretrain


def test_mmcls_text_log_val_lines():
    run = run_of("mmpretrain/issue923-acc-constant")
    assert run.trainer == "mmpretrain"
    assert list(run.epochs.index) == list(range(31, 43))               # 1-based in the file
    assert set(run.epochs["eval_top1"]) == {8.8235}


def test_mmcls_text_log_train_lines_and_unknown_top3():
    run = run_of("mmpretrain/issue360-text-log")
    assert len(run.steps) == 5 and run.steps["lr"].iloc[0] == pytest.approx(1e-3)
    assert run.epochs.loc[9, "eval_top1"] == 20.0 and "accuracy_top-3" in run.epochs.columns


def test_mmcls_json_log():
    run = run_of("mmpretrain/issue449-resume-json")
    assert run.epochs.loc[1182, "eval_top1"] == pytest.approx(61.33333) and len(run.epochs) == 12


def test_mm_config_is_read_as_text_never_executed(tmp_path):
    marker = tmp_path / "executed"
    config = (f"model = dict(type='ImageClassifier', backbone=dict(type='ResNet', depth=18), head=dict(num_classes=10))\n"
              f"optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, weight_decay=1e-4))\n"
              f"train_cfg = dict(by_epoch=True, max_epochs=100)\n"
              f"hook = open({str(marker)!r}, 'w')\n")
    values, issues = read_config(config, "cfg.py")
    assert values["model"]["backbone"]["depth"] == 18 and not marker.exists()
    assert any("'hook' is not a literal" in i.message for i in issues)
    (tmp_path / "resnet18_cifar.py").write_text(config)
    run = load_run(tmp_path / "resnet18_cifar.py")
    assert run.config.args == {"model": "ResNet/18", "num_classes": 10, "epochs": 100, "opt": "SGD", "lr": 0.1,
                               "weight_decay": 1e-4} and not marker.exists()


# ------------------------------------------------------------------------------------------ semantics


def test_deit_keeps_an_ema_it_does_not_evaluate():
    """DeiT's --model-ema evaluates the raw model: the EMA facts must not describe the reported eval."""
    run = run_of("deit/pvt-issue24-healthy")
    deit = replace(run, trainer="deit", config=replace(run.config, values={"model_ema": True, "model_ema_decay": 0.99996},
                                                       args={"model_ema": True, "model_ema_decay": 0.99996}))
    assert ema_model_from(deit) is None
    assert derive(deit).ema_evaluation == "raw" and derive(deit).trainer == "deit"
    timm_run = load_run(FIXTURE_RUNS / "v1_ema_lag")
    assert ema_model_from(timm_run) is not None and derive(timm_run).ema_evaluation == "replaces"


def test_main_py_family_from_arguments_and_log_keys():
    assert trainers.main_py_family({"model_ema_eval": True, "model_ema": True}) == "convnext_ema_eval"
    assert trainers.main_py_family({"layer_scale_init_value": 1e-6}) == "convnext"
    assert trainers.main_py_family({"distillation_type": "none"}) == "deit"
    assert trainers.main_py_family({}, ["test_acc1", "test_acc1_ema"]) == "convnext_ema_eval"
    assert trainers.ema_evaluation("convnext_ema_eval") == "both"


def test_fix_commands_in_the_trainers_own_spelling():
    assert trainers.fix_command("deit", {"model_ema_decay": 0.999}) == \
        "python main.py <the run's other arguments> --model-ema-decay 0.999"
    assert trainers.fix_command("convnext", {"model_ema_decay": 0.999}) == \
        "python main.py <the run's other arguments> --model_ema_decay 0.999"


# ------------------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize("case", [*CASES, *MADE])
def test_report_exits_zero_and_names_the_trainer(case):
    # Issue 19: a sample with no train/eval curve over 3+ epochs (a summary-only W&B folder, a two-epoch
    # log, a pasted last evaluation) is "nothing to judge" (exit 4), and the report says what is missing.
    result = CliRunner().invoke(cli, ["report", str(OTHER / case), "--format", "json"])
    assert result.exit_code in (0, 4), result.output
    document = json.loads(result.stdout)
    assert document["run"]["trainer"]
    if result.exit_code == 4:
        assert document["outcome"]["kind"] == "nothing-to-judge" and document["coverage"]["judgeable"] is False
        assert "Needed:" in document["outcome"]["needed"] and "3 epochs" in document["outcome"]["needed"]
    else:
        assert document["coverage"]["judgeable"] is True


def test_inspect_names_trainer_units_and_kept_keys():
    result = CliRunner().invoke(cli, ["inspect", str(OTHER / "lightning/hcdescamps-mnist-healthy")])
    assert result.exit_code == 0
    assert "trainer: PyTorch Lightning" in result.output and "fraction of 1" in result.output
    assert "test_loss" in result.output


def test_pasted_excerpts_of_other_trainers():
    pasted = "```\n" + (OTHER / "deit/pvt-issue24-healthy/log.txt").read_text() + "```\n"
    run = load_input("-", stdin=io.BytesIO(pasted.encode()))
    assert run.trainer == "deit_family" and run.epochs.loc[33, "eval_top1"] == pytest.approx(70.5680026171875)
    mm = load_input("-", stdin=io.BytesIO((OTHER / "mmpretrain/issue923-acc-constant/train.log").read_bytes()))
    assert mm.trainer == "mmpretrain" and len(mm.epochs) == 12


def test_batch_over_a_mixed_folder_reads_every_run_and_shows_the_trainer(tmp_path):
    root = tmp_path / "mixed"
    for case in ("deit/pvt-issue24-healthy", "lightning/andyc-glitch-two-epochs", "hf_trainer/irrigation-vit-healthy",
                 "wandb/trash-classification-keras", "mmpretrain/issue449-resume-json"):
        shutil.copytree(OTHER / case, root / case.replace("/", "_"))
    shutil.copytree(FIXTURE_RUNS / "v1_healthy", root / "timm_v1_healthy")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["batch", str(root), "--out", str(out), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and not any(r["error"] for r in rows)
    by_trainer = {r["trainer"] for r in rows}
    assert {"DeiT-family main.py (DeiT, ConvNeXt, RepViT, EfficientFormer, ...)", "PyTorch Lightning (CSVLogger)",
            "Hugging Face Trainer", "mmpretrain / mmcls", None} <= by_trainer
    assert "Hugging Face Trainer" in (out / "index.html").read_text()


# ------------------------------------------------------------------------------------------ labelled failing runs


def test_convnext_stdout_epoch_blocks_without_step_lines():
    """ConvNeXt's per-epoch stdout as people paste it: 'Epoch: [e] Total time', 'Averaged stats', 'Accuracy of the
    model on N test images' (no '* Acc@1' line, no step lines), and the command line instead of a Namespace."""
    run = run_of("deit/convnext-issue39-no-learning-2cls")
    assert run.trainer == "convnext_ema_eval"
    assert list(run.epochs.index) == [0, 299]
    assert run.epochs["eval_top1"].tolist() == [44.4, 55.6]
    assert run.epochs["train_loss"].tolist() == [2.8601, 0.6902]      # MetricLogger's global average, in ()
    assert run.epochs["lr"].tolist() == [0.003596, 0.00001]
    assert "eval_top5" not in run.epochs.columns and "eval_loss" not in run.epochs.columns  # not printed
    args = run.config.args
    assert args["nb_classes"] == 2 and args["num_classes"] == 2 and args["lr"] == 0.04
    assert args["update_freq"] == 4 and args["grad_accum_steps"] == 4 and args["model_ema_eval"] == "true"


def top_cause(case: str) -> str | None:
    result = CliRunner().invoke(cli, ["report", str(OTHER / case), "--format", "json"])
    findings = json.loads(result.stdout)["findings"]
    return findings[0]["cause"] if findings else None


# Each case's label is in fixtures/other_trainers/LABELS.md, written before the analyzer was run on it.
FAILING = {
    "deit/convnext-issue39-no-learning-2cls": {"no-learning"},
    "mmpretrain/issue923-acc-constant": {"no-learning", "eval-broken"},
    "made_here/hf_trainer_lr_high": {"lr-too-high"},
}
MISSED = {
    "deit/convnext-issue39-no-learning-2cls": "only epochs 0 and 299 were pasted: 'nothing to judge' needs a curve of "
                                              "3+ epochs, though the last epoch alone sits at chance (loss ln 2, 55.6 % "
                                              "top-1 of 2 classes)",
    "mmpretrain/issue923-acc-constant": "val lines only: no rule has a symptom for a top-1 exactly constant over 12 "
                                        "epochs while top-5 moves",
    "made_here/hf_trainer_lr_high": "the loss is exactly 0.0 at most logged steps (float32 cross-entropy underflows "
                                    "once the logits are ~1e4 and the batch is all right): read as vanishing gradients; "
                                    "lr-too-high's rule sees the train loss fall (155 -> 0) and no loss explode",
}


@pytest.mark.parametrize("case", [
    pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=MISSED[case])) if case in MISSED else case
    for case in FAILING])
def test_labelled_failing_run_is_diagnosed_with_its_label(case):
    assert top_cause(case) in FAILING[case]
