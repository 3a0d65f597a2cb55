"""analyzer/timm/: the one owner of timm facts (versions, defaults, recipe arithmetic, command lines)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.model import TrainConfig
from mnv4_postmortem.analyzer.timm.command_line import train_command
from mnv4_postmortem.analyzer.timm.recipe import RecipeFacts, infer_num_classes, resolve_recipe, schedule_length
from mnv4_postmortem.analyzer.timm.version import TimmVersion, narrowest, version_from_args
from mnv4_postmortem.cli import cli



# ----------------------------------------------------------------------------- version


@pytest.mark.parametrize("text", [">=1.0.23", "<=0.4.12", "0.9.0-1.0.7", "1.0.23", "0.5-0.8"])
def test_version_text_round_trips(text: str) -> None:
    assert str(TimmVersion.parse(text)) == text


def test_version_bounds_of_the_ingest_guesses() -> None:
    assert TimmVersion.parse(">=1.0.23").bounds() == ((1, 0, 23), None)
    assert TimmVersion.parse("<=0.4.12").bounds() == (None, (0, 4, 12))
    low, high = TimmVersion.parse("0.5-0.8").bounds()
    assert low == (0, 5) and (0, 8, 17) <= high < (0, 9)
    assert TimmVersion.parse("0.8.2dev0-0.8.17dev0").bounds() == ((0, 8, 2), (0, 8, 17))
    assert TimmVersion.parse("1.0.29.dev0") == TimmVersion((1, 0, 29), (1, 0, 29))
    assert TimmVersion.parse("nonsense") is None and TimmVersion.parse(None) is None


def test_summary_csv_families_read_as_ranges() -> None:
    assert TimmVersion.parse("v0.8.2+ (with lr)") == TimmVersion((0, 8, 2), None)
    assert TimmVersion.parse("v0.2-v0.6").era == "0.4.12"
    assert TimmVersion.parse("non-standard (extra columns: foo)") is None


def test_narrowing_keeps_the_first_source_when_they_contradict() -> None:
    args, csv = TimmVersion.parse(">=1.0.23"), TimmVersion.parse("v0.8.2+ (with lr)")
    assert narrowest([args, csv]) == args
    assert narrowest([TimmVersion.parse(">=0.9.16"), TimmVersion.parse("0.2-0.6")]) == TimmVersion.parse(">=0.9.16")
    assert str(narrowest([TimmVersion.parse(">=0.8.0"), TimmVersion.parse("0.9.0-1.0.7")])) == "0.9.0-1.0.7"
    assert narrowest([None, None]) is None


def test_args_keys_give_the_era_of_their_column() -> None:
    assert version_from_args({"val_interval": 1, "lr_base": 0.1}).era == "1.0.23"
    assert version_from_args({"lr_base": 0.1}).era == "0.8.2dev0"
    assert version_from_args({"model": "resnet50"}) is None


# ----------------------------------------------------------------------------- recipe


def _config(values: dict, *, defaulted: frozenset[str] = frozenset()) -> TrainConfig:
    return TrainConfig(values=values, args=values, defaulted=defaulted)


def test_schedule_length_follows_timms_scheduler_factory() -> None:
    assert schedule_length(_config({"epochs": 100, "sched": "step", "cooldown_epochs": 10}))[:1] == (100,)
    assert schedule_length(_config({"epochs": 100, "sched": "cosine", "cooldown_epochs": 10}))[0] == 110
    prefix = {"epochs": 100, "sched": "cosine", "cooldown_epochs": 0, "warmup_prefix": True, "warmup_epochs": 5}
    assert schedule_length(_config(prefix))[0] == 105
    cycles = {"epochs": 10, "sched": "cosine", "lr_cycle_limit": 3, "lr_cycle_mul": 2.0}
    assert schedule_length(_config(cycles))[0] == 10 + 20 + 40
    assert schedule_length(_config({"epochs": 300}, defaulted=frozenset({"epochs"}))) is None
    logged = schedule_length(_config({"epochs": 100}), 42, "log.txt:7")
    assert logged == (42, "the log's 'Scheduled epochs' line (log.txt:7)", "log")


def test_resolve_recipe_computes_lr_global_batch_and_schedule_once() -> None:
    values = {"lr": None, "lr_base": 0.1, "lr_base_size": 256, "batch_size": 64, "grad_accum_steps": 2,
              "opt": "sgd", "epochs": 20, "sched": "cosine", "cooldown_epochs": 0}
    config = resolve_recipe(TrainConfig(values=values, effective={"world_size": 2}))
    assert config.effective["global_batch"] == 256 and config.effective["lr"] == pytest.approx(0.1)
    assert config.effective["epochs_scheduled"] == 20 and config.recipe.epochs_scheduled.kind == "args"
    assert "world size 2" in config.effective_sources["global_batch"]


def test_num_classes_is_read_off_a_run_stuck_at_chance() -> None:
    stuck = infer_num_classes(np.full(8, 10.0), np.full(8, 50.0))
    assert stuck is not None and stuck[0] == 10
    assert infer_num_classes(np.linspace(10, 60, 8), np.linspace(50, 90, 8)) is None
    assert infer_num_classes(np.full(3, 10.0), np.full(3, 50.0)) is None
    config = resolve_recipe(TrainConfig(values={}), RecipeFacts(eval_top1=np.full(6, 1.0), eval_top5=np.full(6, 5.0)))
    assert config.get("num_classes") == 100 and config.effective_sources["num_classes"].startswith("inferred")


# ----------------------------------------------------------------------------- typed readers


def test_train_config_readers_coerce_in_one_place() -> None:
    config = TrainConfig(values={"a": "1e-3", "b": True, "c": "yes", "d": 4.0, "e": 4.5, "f": " none ", "g": "x"})
    assert config.number("a") == pytest.approx(1e-3) and config.number("b") is None
    assert config.flag("b") and config.flag("c") and not config.flag("g") and config.flag("missing", True)
    assert config.count("d") == 4 and config.count("e") is None and config.count("e", 1) == 1
    assert config.text("f") is None and config.text("g") == "x"


def test_command_line_public_function_uses_the_config_era() -> None:
    config = TrainConfig(values={}, args={"model": "resnet50", "data_dir": "/d", "amp_impl": "native", "lr": 0.1},
                         timm_version=TimmVersion.parse("0.9.16"))
    command = train_command(config, {"model_ema": True})
    assert command.startswith("python train.py /d --model resnet50") and "--model-ema" in command
    assert "--amp-impl" not in command  # native was 0.9.16's default
    newer = train_command(TrainConfig(values={}, args=dict(config.args), timm_version=TimmVersion.parse(">=1.0.23")))
    assert "--amp-impl native" in newer  # 1.0.23 has no amp_impl: the user's value is kept


def test_updates_per_epoch_from_the_log_and_from_hints() -> None:
    from mnv4_postmortem.analyzer.timm.recipe import updates_per_epoch

    # Epoch 1 logged twice (a resume with another batch size): its last line counts. 100 vs 50 tie: latest wins.
    logged = updates_per_epoch(TrainConfig(values={}), np.array([0, 1, 1, 2]), np.array([100, 100, 50, 50]))
    assert logged is not None and dict(logged.by_epoch) == {0: 100, 1: 50, 2: 50} and logged.typical == 50
    assert logged.kind == "log"
    hinted = updates_per_epoch(TrainConfig(values={"batch_size": 32, "grad_accum_steps": 2},
                                           effective={"train_samples": 1000}))
    assert hinted is not None and hinted.typical == 16 and hinted.kind == "dataset hint"  # ceil((1000 // 32) / 2)
    assert updates_per_epoch(TrainConfig(values={"batch_size": 32})) is None


def test_narrowing_a_tie_keeps_the_shorter_spelling() -> None:
    assert str(narrowest([TimmVersion((0, 2, 0), None), TimmVersion.parse("v0.2-v0.6")])) == "0.2-0.6"
