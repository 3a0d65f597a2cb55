"""The built-in trainer on a tiny timm model: train.py-format files the analyzer reads, train.py's
EMA semantics, shared trajectories, the per-step hook, determinism."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from _runner_helpers import summary_rows, tiny_spec  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from mnv4_postmortem.runner.trainer import train_trajectory

    spec = tiny_spec()  # seed_mnv4: EMA 0.9998 without warmup, adamw, drop 0.2
    control = spec.arm("control", "control")
    treatment = spec.arm("fix", "treatment", {"model_ema_warmup": True, "model_ema_decay": 0.9731})
    out = tmp_path_factory.mktemp("arms")
    steps: list[tuple[int, float]] = []

    def on_step(step, model, loss, optimizer):
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        steps.append((step, float(sum(g.norm() ** 2 for g in grads) ** 0.5)))

    results = train_trajectory(spec, [control, treatment], 0, [out / "c", out / "t"], on_step=on_step)
    return spec, results, out, steps


def test_each_arm_writes_train_py_files_that_the_analyzer_reads(trained):
    from mnv4_postmortem.analyzer.ingest import load_run

    spec, results, out, _ = trained
    for name in ("c", "t"):
        folder = out / name
        assert {"train.log", "summary.csv", "args.yaml", "tensorboard"} <= {p.name for p in folder.iterdir()}
        run = load_run(folder)
        assert run.n_epochs == 2
        assert run.series("eval_top1_model").notna().sum() == 2   # the raw model's Test: lines
        assert run.series("eval_top1_ema").notna().sum() == 2     # the EMA's Test (EMA): lines
        assert run.config.get("model") == "test_efficientnet"
        assert not [i for i in run.issues if "error" in str(i).lower()]


def test_reported_eval_is_the_emas_and_the_raw_model_is_shared(trained):
    spec, results, out, _ = trained
    control, treatment = results
    # one trajectory: same train loss and same raw-model eval in both arms
    assert [e["train_loss"] for e in control.epochs] == [e["train_loss"] for e in treatment.epochs]
    assert [e["eval_top1_model"] for e in control.epochs] == [e["eval_top1_model"] for e in treatment.epochs]
    # summary.csv reports the EMA's numbers (train.py: eval_metrics = ema_eval_metrics)
    rows = summary_rows(out / "c")
    assert [r["eval_top1"] for r in rows] == pytest.approx([e["eval_top1"] for e in control.epochs])
    # timm's EMA class, as driven, keeps the share the scaling predicted (the original's 0.928 at 372 updates)
    from mnv4_postmortem.runner.scaling import scale_ema

    predicted = scale_ema(0.9998, False, "v3", spec.budget.original_updates, spec.budget.updates).predicted_share
    assert control.ema_share_observed == pytest.approx(predicted, rel=1e-6)
    assert 0.9 < control.ema_share_observed < 0.95
    assert treatment.ema_share_observed < 1e-3  # the warmed-up EMA holds almost none of them


def test_on_step_sees_every_update_with_gradients(trained):
    spec, results, out, steps = trained
    assert [s for s, _ in steps] == list(range(1, spec.budget.updates + 1))
    assert all(norm > 0 for _, norm in steps)


def test_same_seed_same_numbers(trained, tmp_path):
    from mnv4_postmortem.runner.trainer import train_arm

    spec, results, out, _ = trained
    again = train_arm(spec, spec.arm("control", "control"), 0, tmp_path / "c")
    assert [e["train_loss"] for e in again.epochs] == [e["train_loss"] for e in results[0].epochs]
    assert summary_rows(tmp_path / "c") == summary_rows(out / "c")
