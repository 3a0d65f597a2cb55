"""lr-find: the sweep restores the model and optimizer, the suggestion rules on curves with known answers,
the plot, and the suggested LR feeding an lr-too-high treatment that has no LR of its own."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnv4_postmortem.runner import lr_find as lf


def curve(lrs, losses):
    return lf.RangeTest(tuple(lrs), tuple(losses), tuple(losses), float(lrs[0]), float(lrs[-1]), len(lrs), False, True)


def test_suggestion_on_a_curve_with_a_known_descent():
    lrs = np.geomspace(1e-7, 10, 200)
    x = np.log10(lrs)
    # flat at 2.3 up to 1e-5, falls linearly in log(lr) to 0.5 at 1e-2 (steepest between 1e-4 and 1e-3,
    # where it falls twice as fast), then climbs: diverging
    loss = np.where(x < -5, 2.3, 2.3 - 0.3 * (x + 5))
    loss = np.where((x >= -4) & (x < -3), 2.0 - 0.9 * (x + 4), loss)
    loss = np.where(x >= -3, 1.1 - 0.3 * (x + 3), loss)
    loss = np.where(x > -2, 0.8 + 2.0 * (x + 2), loss)
    s = lf.suggest(curve(lrs, loss))
    assert 1e-4 <= s.steepest <= 1e-3
    assert s.min_loss_lr == pytest.approx(1e-2, rel=0.1)
    assert s.high == pytest.approx(s.min_loss_lr / 10)                 # fastai's minimum/10
    assert s.low < 1e-4                                                # the fall has started by then
    assert s.lr == s.steepest and s.low <= s.lr <= s.high
    assert "steepest" in s.rule


def test_steepest_within_a_decade_of_the_minimum_is_capped_at_minimum_over_10():
    lrs = np.geomspace(1e-6, 1, 150)
    x = np.log10(lrs)
    loss = np.where(x < -2, 2.3 - 0.05 * (x + 6), 2.1 - 3.0 * (x + 2))   # steep only just before the min
    loss = np.where(x > -1.2, 2.1 - 3.0 * 0.8 + 5 * (x + 1.2), loss)
    s = lf.suggest(curve(lrs, loss))
    assert s.steepest > s.min_loss_lr / 10
    assert s.lr == pytest.approx(s.min_loss_lr / 10) and "minimum/10" in s.rule
    assert s.low <= s.lr <= s.high


def test_range_test_restores_model_and_optimizer_and_writes_the_plot(tmp_path):
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    from timm.optim import create_optimizer_v2
    from torch.utils.data import DataLoader

    from mnv4_postmortem.runner.proxy import ProxyDataset

    from mnv4_postmortem.runner.trainer import set_cpu_threads

    set_cpu_threads()
    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", num_classes=4)
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05)
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    optimizer.step()  # momentum buffers exist: the restore must bring them back too
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt_before = {k: v["exp_avg"].clone() for k, v in optimizer.state_dict()["state"].items()}
    loader = DataLoader(ProxyDataset(4, 16, 20 * 4), batch_size=4, shuffle=True, drop_last=True)
    test = lf.run_range_test(model, optimizer, loader, torch.nn.CrossEntropyLoss(), steps=20, start_lr=1e-6, end_lr=1.0)
    assert 1 <= len(test.lrs) <= 20 and len(test.raw_losses) == len(test.lrs)
    ratios = np.diff(np.log(test.lrs))
    assert np.allclose(ratios, math.log(1e6) / 19)  # exponential: start * (end / start) ** (i / (steps - 1))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    after = optimizer.state_dict()["state"]
    assert all(torch.equal(opt_before[k], after[k]["exp_avg"]) for k in opt_before)
    s = lf.suggest(test)
    # the plot is the registry's lr-find renderer, drawn from the document the runner writes
    from rich.console import Console

    from mnv4_postmortem.runner.output import RunnerOutput

    result = lf.RunLrFind("run", "adamw", 4, 1e-3, 1e-3, test, s, "proxy", "random")
    paths = RunnerOutput(Console()).save_plots("lr-find", lf.result_json(result), tmp_path / "lr_find")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)
    assert "the run's lr" in paths[1].read_text()


def test_an_lr_finding_without_an_lr_in_its_fix_gets_the_suggested_lr():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Target:
        id: str
        cause: str
        patch: dict | None
        note: str = ""

    suggestion = lf.LrSuggestion(0.0123, "steepest", 1e-4, 0.02, "range", 0.0123, 0.2, 1.0)
    result = lf.RunLrFind("run", "sgd", 32, 0.6, 0.6, curve([1e-7, 1.0], [2.3, 2.3]), suggestion, "proxy", "random")
    calls = []

    def finder(run, **kwargs):
        calls.append(kwargs)
        return result

    targets = [Target("lr-too-high", "lr-too-high", {"clip_grad": 1.0}),
               Target("lr-too-low", "lr-too-low", {"lr": 0.1}),           # its own fix has an LR: kept
               Target("ema-lag", "ema-lag", {"model_ema_warmup": True})]
    out = lf.with_finder_lr(None, targets, "proxy", "cpu", finder=finder)
    assert out[0].patch == {"clip_grad": 1.0, "lr": 0.0123} and "range test" in out[0].note
    assert out[1].patch == {"lr": 0.1} and out[2].patch == {"model_ema_warmup": True}
    assert len(calls) == 1


def test_lr_find_command_end_to_end_on_a_real_run(tmp_path):
    """The whole command on a bundled run: spec, proxy data, sweep, suggestion and files (a short sweep)."""
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    import json
    from pathlib import Path

    from click.testing import CliRunner

    from mnv4_postmortem.cli import cli

    run = Path(__file__).resolve().parents[1] / "fixtures" / "runs" / "v1_healthy"
    result = CliRunner().invoke(cli, ["lr-find", str(run), "--proxy", "--steps", "20", "--device", "cpu",
                                      "--out", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    files = {p.suffix for p in tmp_path.rglob("*") if p.is_file()}
    assert {".png", ".json"} <= files, files
    doc = json.loads((tmp_path / "lr_find.json").read_text(encoding="utf-8"))
    assert doc["schema"] == "mnv4-postmortem/lr-find" and doc["run_lr"] == pytest.approx(1e-3)
    assert len(doc["lrs"]) == len(doc["loss"]) > 0 and doc["lrs"] == sorted(doc["lrs"])
    assert doc["ratio_run_to_suggestion"] == pytest.approx(doc["run_lr"] / doc["suggestion"]["lr"])


def test_range_test_prints_nothing_of_the_upstream_package(capfd):
    # issue 17: lr-find leaked torch-lr-finder's "See the graph with ..." line and its tqdm bar
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    from torch.utils.data import DataLoader

    from mnv4_postmortem.runner.proxy import ProxyDataset

    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", num_classes=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    loader = DataLoader(ProxyDataset(4, 16, 20 * 4), batch_size=4, shuffle=True, drop_last=True)
    capfd.readouterr()
    test = lf.run_range_test(model, optimizer, loader, torch.nn.CrossEntropyLoss(), steps=20, start_lr=1e-6, end_lr=1.0)
    out, err = capfd.readouterr()
    assert len(test.lrs) >= 1
    assert "See the graph" not in out + err and "it/s" not in err and "%|" not in err
