"""Derived quantities from synthetic runs (parsers are built elsewhere) and from the timm fixture runs' args."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from mnv4_postmortem.analyzer.features.derived import (
    DERIVED_FIELD_DOCS,
    REGULARIZATION_FIELD_DOCS,
    Derived,
    Regularization,
    derive,
    is_decoupled_weight_decay,
)
from mnv4_postmortem.analyzer.model import EPOCH_COLUMNS, STEP_COLUMNS, Run, TrainConfig
from mnv4_postmortem.analyzer.ingest.merge import step_counts
from mnv4_postmortem.analyzer.timm.recipe import RecipeFacts, resolve_recipe

FIXTURE_RUNS = Path(__file__).resolve().parents[1] / "fixtures" / "runs"


def make_steps(per_epoch: dict[int, int], last_idx: dict[int, int] | None = None) -> pd.DataFrame:
    """Train-line rows: the first and last logged update of each epoch, as the parsers emit them."""
    rows = []
    for epoch, n in per_epoch.items():
        final = (last_idx or {}).get(epoch, n - 1)
        for idx in sorted({0, final}):
            rows.append({"epoch": epoch, "idx": idx, "per_epoch": n, "update": epoch * n + idx,
                         "train_loss": 2.0, "lr": 1e-3, "samples_per_sec": 100.0})
    return pd.DataFrame(rows, columns=list(STEP_COLUMNS)) if rows else pd.DataFrame(columns=list(STEP_COLUMNS))


def make_run(
    values: dict[str, Any] | None = None,
    *,
    effective: dict[str, Any] | None = None,
    effective_sources: dict[str, str] | None = None,
    args: dict[str, Any] | None = None,
    defaulted: frozenset[str] = frozenset(),
    n_epochs: int = 0,
    steps: pd.DataFrame | None = None,
    timm_version: str | None = None,
    epochs_scheduled: int | None = None,
) -> Run:
    epochs = pd.DataFrame(
        {"train_loss": np.linspace(3.0, 1.0, n_epochs), "eval_top1": np.linspace(10, 60, n_epochs)},
        index=pd.Index(range(n_epochs), name="epoch"),
        columns=["train_loss", "eval_top1"],
    )
    assert set(epochs.columns) <= set(EPOCH_COLUMNS)
    # As the ingest does: timm's recipe arithmetic (LR, global batch, schedule length) resolved once.
    config = resolve_recipe(
        TrainConfig(values=values or {}, args=args or {}, defaulted=defaulted,
                    effective=effective or {}, effective_sources=effective_sources or {}),
        RecipeFacts(scheduled_epochs=epochs_scheduled, scheduled_ref="test log", **step_counts(steps)),
    )
    return Run(
        run_dir=Path("x"),
        config=config,
        epochs=epochs,
        epoch_refs=pd.DataFrame(),
        steps=steps if steps is not None else pd.DataFrame(columns=list(STEP_COLUMNS)),
        events=(),
        sources=(),
        issues=(),
        timm_version=timm_version,
        epochs_scheduled=config.effective.get("epochs_scheduled"),
    )


def sig3(x: float) -> str:
    return f"{x:.3g}"


# ----------------------------------------------------------------------------- LR and batch


def test_global_batch_and_lr_per_sample() -> None:
    run = make_run({"batch_size": 256, "grad_accum_steps": 2, "lr": 0.004},
                   effective={"world_size": 4}, args={"lr": 0.004})
    d = derive(run)
    assert d.global_batch == 256 * 4 * 2
    assert d.world_size == 4 and d.grad_accum_steps == 2 and d.batch_size == 256
    assert d.lr == 0.004 and d.lr_source == "args.yaml lr"
    assert d.lr_per_sample == pytest.approx(0.004 / 2048)


def test_resolved_lr_and_global_batch_from_the_log_win() -> None:
    run = make_run({"batch_size": 128, "lr": None, "lr_base": 0.1},
                   effective={"lr": 0.4, "global_batch": 1024},
                   effective_sources={"lr": "console log: Learning rate (0.4) calculated ..."})
    d = derive(run)
    assert (d.lr, d.global_batch) == (0.4, 1024)
    assert d.lr_source.startswith("console log")


@pytest.mark.parametrize(
    ("opt", "scale", "expected"),
    [("sgd", "", 0.1 * 1024 / 256), ("adamw", "", 0.002 * math.sqrt(1024 / 256)),
     ("lamb", "", 0.002 * 2), ("adamw", "linear", 0.002 * 4)],
)
def test_lr_from_lr_base_scaling(opt: str, scale: str, expected: float) -> None:
    base = 0.1 if opt == "sgd" else 0.002
    run = make_run({"batch_size": 256, "lr": None, "lr_base": base, "lr_base_size": 256,
                    "lr_base_scale": scale, "opt": opt}, effective={"world_size": 4})
    d = derive(run)
    assert d.lr == pytest.approx(expected) and d.lr_source.startswith(f"lr_base {base:g} x ")


def test_defaulted_lr_is_labelled() -> None:
    d = derive(make_run({"lr": 0.05, "batch_size": 128}, defaulted=frozenset({"lr"})))
    assert d.lr_source == "timm default"


# ----------------------------------------------------------------------------- updates and epochs


def test_updates_from_the_log() -> None:
    run = make_run({"batch_size": 32, "epochs": 12}, n_epochs=12, steps=make_steps({e: 31 for e in range(12)}))
    d = derive(run)
    assert (d.steps_per_epoch, d.steps_per_epoch_source, d.updates_per_epoch) == (31, "log", 31)
    assert d.epochs_run == 12 and d.updates_run == 12 * 31
    assert d.epochs_scheduled == 12 and d.updates_scheduled == 12 * 31
    assert d.dataset_size_hint == 31 * 32 and d.dataset_size_source == "steps x global batch"


def test_updates_run_counts_a_crashed_partial_epoch_and_varying_epoch_lengths() -> None:
    # Resumed with a different batch size from epoch 2; the run then dies in epoch 3 after update 40.
    steps = make_steps({0: 100, 1: 100, 2: 50, 3: 50}, last_idx={3: 40})
    d = derive(make_run({"batch_size": 64}, n_epochs=3, steps=steps))
    assert d.epochs_run == 4
    assert d.updates_run == 100 + 100 + 50 + 41  # summed per epoch; epoch 3 stopped after idx 40 (0-based)
    assert d.steps_per_epoch in (50, 100)


def test_no_log_means_unknown_updates_unless_hinted() -> None:
    d = derive(make_run({"batch_size": 32}, n_epochs=5))
    assert d.steps_per_epoch is None and d.steps_per_epoch_source == "unknown"
    assert d.updates_run is None and d.ema_init_share_by_epoch == ()
    hinted = derive(make_run({"batch_size": 32, "grad_accum_steps": 2}, effective={"train_samples": 1000}, n_epochs=5))
    # drop_last: 1000 // 32 = 31 batches -> ceil(31 / 2) = 16 updates
    assert hinted.steps_per_epoch == 16 and hinted.steps_per_epoch_source == "dataset hint"
    assert hinted.updates_run == 5 * 16 and hinted.dataset_size_hint == 1000


@pytest.mark.parametrize(
    ("values", "logged", "expected"),
    [
        ({"epochs": 300, "sched": "cosine", "cooldown_epochs": 10}, None, 310),  # timm <= 0.6 default cooldown
        ({"epochs": 300, "sched": "cosine", "warmup_prefix": True, "warmup_epochs": 5}, None, 305),
        ({"epochs": 100, "sched": "cosine", "lr_cycle_limit": 3, "lr_cycle_mul": 2.0}, None, 700),
        ({"epochs": 90, "sched": "step", "cooldown_epochs": 10}, None, 90),
        ({"epochs": 300, "sched": "cosine", "cooldown_epochs": 10}, 20, 20),  # the log's "Scheduled epochs" wins
    ],
)
def test_epochs_scheduled(values: dict, logged: int | None, expected: int) -> None:
    d = derive(make_run(values, epochs_scheduled=logged))
    assert d.epochs_scheduled == expected
    assert d.epochs_scheduled_source == ("log" if logged else "args.yaml")


# ----------------------------------------------------------------------------- EMA


def test_ema_share_by_epoch_on_a_small_dataset() -> None:
    # v09_ema_lag's shape: 31 updates per epoch, 10 epochs, decay 0.9998, timm 0.9.16 (ModelEmaV3).
    run = make_run({"batch_size": 32, "model_ema": True, "model_ema_decay": 0.9998, "model_ema_warmup": False},
                   args={"model_ema_warmup": False}, n_epochs=10, steps=make_steps({e: 31 for e in range(10)}),
                   timm_version="0.9.0-1.0.7")
    d = derive(run)
    assert d.ema is not None and d.ema.version == "v3" and d.ema_evaluated
    shares = d.ema_init_share_by_epoch
    assert len(shares) == 10
    assert sig3(shares[0]) == sig3(0.9998**30) and sig3(shares[-1]) == "0.94"  # 0.9998 ** (310 - 1)
    assert all(a > b for a, b in zip(shares, shares[1:], strict=False))
    assert d.ema_init_share_final == shares[-1]
    assert d.ema_horizon_epochs == pytest.approx(5000 / 31)
    assert d.ema_half_life_epochs == pytest.approx(3465.39 / 31, rel=1e-4)
    # share < 0.5 first after update 3467 (3466 decays after the copy): epoch e ends at 31 * (e + 1).
    assert d.ema_half_share_epoch == math.ceil(3467 / 31) - 1


def test_ema_with_warmup_forgets_the_start_within_the_first_epoch() -> None:
    run = make_run({"model_ema": True, "model_ema_decay": 0.9998, "model_ema_warmup": True}, n_epochs=3,
                   steps=make_steps({e: 31 for e in range(3)}))
    d = derive(run)
    assert d.ema_init_share_by_epoch[0] < 0.01 and d.ema_half_share_epoch == 0


def test_no_ema_numbers_without_ema_or_with_cpu_ema() -> None:
    steps = make_steps({e: 31 for e in range(3)})
    for values in ({"model_ema": False}, {"model_ema": True, "model_ema_force_cpu": True}):
        d = derive(make_run(values, n_epochs=3, steps=steps))
        assert d.ema is None and not d.ema_evaluated
        assert d.ema_init_share_by_epoch == () and d.ema_half_share_epoch is None


# ----------------------------------------------------------------------------- input size


def test_56px_run_of_a_224px_model_has_ratio_one_quarter() -> None:
    d = derive(make_run({"model": "mobilenetv4_conv_small", "img_size": 56}))
    assert (d.run_input_size, d.pretrained_input_size, d.input_size_ratio) == (56, 224, 0.25)
    assert d.run_input_size_source == "args.yaml img_size" and d.input_size_source == "timm"


def test_input_size_from_the_log_beats_args() -> None:
    run = make_run({"model": "mobilenetv4_conv_medium", "img_size": 224},
                   effective={"input_size": (3, 64, 64)}, effective_sources={"input_size": "console log"})
    d = derive(run)
    assert d.run_input_size == 64 and d.run_input_size_source == "console log"
    assert d.input_size_ratio == pytest.approx(64 / 256)


def test_without_a_size_timm_uses_the_model_default() -> None:
    d = derive(make_run({"model": "mobilenetv4_conv_large"}))
    assert (d.run_input_size, d.run_input_size_source, d.input_size_ratio) == (384, "model default", 1.0)
    unknown = derive(make_run({"model": "my_net"}))
    assert unknown.run_input_size is None and unknown.input_size_ratio is None


# ----------------------------------------------------------------------------- init, classes


@pytest.mark.parametrize(
    ("values", "source"),
    [({"pretrained": True}, "pretrained"), ({"pretrained": True, "pretrained_path": "/w.safetensors"}, "pretrained_path"),
     # train.py reads --pretrained-path only with --pretrained (issue 10: pretrained-not-loaded)
     ({"pretrained_path": "/w.safetensors"}, "scratch"),
     ({"initial_checkpoint": "ckpt.pth"}, "initial_checkpoint"),
     ({"pretrained": False, "pretrained_path": None, "initial_checkpoint": ""}, "scratch")],
)
def test_init_source(values: dict, source: str) -> None:
    d = derive(make_run(values))
    assert d.init_source == source and d.uses_pretrained == (source != "scratch")


def test_chance_accuracy_from_num_classes() -> None:
    d = derive(make_run({"num_classes": 10}))
    assert (d.num_classes, d.chance_top1, d.chance_top5) == (10, 10.0, 50.0)
    big = derive(make_run({"num_classes": 1000}))
    assert (big.chance_top1, big.chance_top5) == (0.1, 0.5)


# ----------------------------------------------------------------------------- regularization

PLAIN = {"drop": 0.0, "drop_path": None, "mixup": 0.0, "cutmix": 0.0, "smoothing": 0.1,
         "weight_decay": 2e-5, "reprob": 0.0, "aa": None, "opt": "sgd"}


def test_seed_recipe_regularizes_more_than_a_plain_one() -> None:
    plain = derive(make_run(PLAIN)).regularization
    seed = derive(make_run({**PLAIN, "drop": 0.2, "drop_path": 0.2})).regularization
    deit = derive(make_run({**PLAIN, "drop_path": 0.1, "mixup": 0.8, "cutmix": 1.0, "reprob": 0.25,
                            "aa": "rand-m9-mstd0.5-inc1", "opt": "adamw", "weight_decay": 0.05})).regularization
    assert plain.strength < seed.strength < deit.strength
    assert seed.strength - plain.strength == pytest.approx(0.4)
    assert sum(seed.strength_terms.values()) == pytest.approx(seed.strength)
    assert deit.aa_magnitude == 9 and deit.weight_decay_decoupled


def test_weight_decay_is_compared_per_optimizer_family() -> None:
    sgd = derive(make_run({**PLAIN, "opt": "sgd", "weight_decay": 1e-4})).regularization
    adamw = derive(make_run({**PLAIN, "opt": "adamw", "weight_decay": 0.05})).regularization
    assert sgd.strength_terms["weight_decay"] == pytest.approx(adamw.strength_terms["weight_decay"])
    assert is_decoupled_weight_decay("lookahead_adamw") and is_decoupled_weight_decay("lamb")
    assert not is_decoupled_weight_decay("rmsproptf") and not is_decoupled_weight_decay(None)


def test_drop_connect_is_ignored_by_newer_timm() -> None:
    old = derive(make_run({"drop_connect": 0.2, "drop_path": None}, timm_version="0.5-0.6")).regularization
    new = derive(make_run({"drop_connect": 0.2, "drop_path": None}, timm_version=">=1.0.23")).regularization
    assert old.drop_path == 0.2 and not old.drop_connect_ignored
    assert new.drop_path == 0.0 and new.drop_connect_ignored
    by_args = derive(make_run({"drop_connect": 0.2}, args={"lr_base": 0.1, "drop_connect": 0.2})).regularization
    assert by_args.drop_connect_ignored


# ----------------------------------------------------------------------------- robustness and docs


def test_hostile_config_values_give_unknowns_not_errors() -> None:
    junk = {"batch_size": "lots", "grad_accum_steps": [1, 2], "lr": "fast", "epochs": -3, "model": 7,
            "img_size": "huge", "model_ema": "yes", "model_ema_decay": 5, "num_classes": 0.5,
            "drop": "x", "mixup": float("nan"), "weight_decay": float("inf"), "aa": 3, "opt": None,
            "pretrained": {"a": 1}, "initial_checkpoint": 3}
    steps = pd.DataFrame({"epoch": ["a", None], "per_epoch": [float("nan"), -4], "update": [None, "z"]})
    d = derive(make_run(junk, steps=steps))
    assert d.global_batch is None and d.lr is None and d.lr_source == "unknown"
    assert d.epochs_scheduled is None and d.model is None and d.ema is None
    assert d.steps_per_epoch is None and d.num_classes is None and not d.uses_pretrained
    assert d.regularization.strength == pytest.approx(0.0)


def test_empty_run() -> None:
    d = derive(make_run())
    assert d.epochs_run == 0 and d.updates_run is None and d.global_batch is None
    assert isinstance(d, Derived) and hash(d) is not None


def test_every_field_is_documented() -> None:
    for cls, docs in ((Derived, DERIVED_FIELD_DOCS), (Regularization, REGULARIZATION_FIELD_DOCS)):
        names = {f.name for f in dataclasses.fields(cls)}
        assert names == set(docs), names ^ set(docs)
        assert all(len(text) > 15 for text in docs.values())


# ----------------------------------------------------------------------------- fixture runs (real args.yaml)


def fixture_run(name: str) -> Run:
    """A Run from a real timm run's args.yaml and the [i/N] of its first Train: line."""
    folder = FIXTURE_RUNS / name
    if not folder.is_dir():
        pytest.skip(f"fixture {name} missing")
    args = yaml.safe_load((folder / "args.yaml").read_text())
    log = (folder / "train.log").read_text(errors="replace")
    per_epoch = int(re.search(r"Train: \d+ \[\s*\d+/(\d+)", log).group(1))
    n_epochs = int(args["epochs"])
    return make_run(dict(args), args=args, n_epochs=n_epochs,
                    steps=make_steps({e: per_epoch for e in range(n_epochs)}),
                    effective={"input_size": (3, 56, 56)})


@pytest.mark.parametrize("name", ["v09_ema_lag", "v1_ema_lag", "v06_ema_lag"])
def test_fixture_ema_lag_runs_end_with_an_ema_still_mostly_initial(name: str) -> None:
    d = derive(fixture_run(name))
    assert d.ema is not None and d.ema.decay >= 0.9998
    assert d.ema_init_share_final is not None and d.ema_init_share_final > 0.9
    assert d.ema_half_share_epoch is not None and d.ema_half_share_epoch > 10 * d.epochs_run


def test_fixture_healthy_run_facts() -> None:
    d = derive(fixture_run("v1_healthy"))
    assert d.ema is None and d.model == "mobilenetv4_conv_small"
    assert d.input_size_ratio == 0.25 and d.num_classes == 10 and d.global_batch == 32


# ----------------------------------------------------------------------------- public runs (read in place)

REAL_RUNS = Path(__file__).resolve().parents[1].parent / "shared" / "real-runs"


def real_args_run(name: str) -> Run:
    path = REAL_RUNS / name / "args.yaml"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    args = yaml.safe_load(path.read_text(errors="replace"))
    return make_run(dict(args), args=args)


def test_every_public_args_yaml_derives() -> None:
    paths = sorted(REAL_RUNS.glob("*/args.yaml"))
    if not paths:
        pytest.skip("shared/real-runs not available")
    for path in paths:
        d = derive(real_args_run(path.parent.name))
        assert d.epochs_scheduled is None or d.epochs_scheduled >= 1, path
        assert d.regularization.strength >= 0, path


def test_public_runs_facts() -> None:
    convnext = derive(real_args_run("vuthehuy-convnext-cifar100-overfit"))  # lr: null, lr_base 0.1, sgd, bs 32
    assert convnext.lr == pytest.approx(0.1 * 32 / 256) and convnext.lr_source == "lr_base 0.1 x 32/256 (linear scaling rule)"
    effb7 = derive(real_args_run("neudeep-effb7ns-aliproducts-210ep"))  # a 600 px model trained at 224
    assert effb7.pretrained_input_size == 600 and effb7.input_size_ratio == pytest.approx(224 / 600)
    a3 = derive(real_args_run("eileen-resnet50-a3-amp"))  # LAMB, wd 0.02, mixup 0.1 / cutmix 1.0
    assert a3.regularization.weight_decay_decoupled
    assert a3.regularization.strength > convnext.regularization.strength
