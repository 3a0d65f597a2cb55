"""A fix rendered as the changed timm train.py command line."""

from __future__ import annotations

import shlex

import yaml

from _engine_fakes import RUNS
from mnv4_postmortem.analyzer.timm.command_line import effective_args, render_train_command

# A slice of timm 1.0's argparse defaults (timm-formats.md section 9).
DEFAULTS = {
    "model": "resnet50", "batch_size": 128, "opt": "sgd", "momentum": 0.9, "weight_decay": 2e-5, "lr": None,
    "lr_base": 0.1, "lr_base_size": 256, "warmup_lr": 1e-5, "min_lr": 0, "epochs": 300, "warmup_epochs": 5,
    "sched": "cosine", "model_ema": False, "model_ema_decay": 0.9998, "model_ema_warmup": False,
    "smoothing": 0.1, "mixup": 0.0, "drop_path": None, "img_size": None, "num_classes": None, "amp": False,
    "decay_milestones": [90, 180, 270], "seed": 42, "data_dir": None, "data": None, "local_rank": 0,
}


def test_real_args_yaml_with_an_ema_patch():
    args = yaml.safe_load((RUNS / "v1_ema_lag" / "args.yaml").read_text())
    known = {k: v for k, v in DEFAULTS.items()}
    command = render_train_command(args, {"model_ema_warmup": True}, known)
    words = shlex.split(command)
    assert words[:3] == ["python", "train.py", "/data/shapes10"]
    assert words[3:5] == ["--model", "mobilenetv4_conv_small"]
    # model first, then data, optimizer, lr, schedule, ema: the fixed group order
    order = [words.index(flag) for flag in
             ("--model", "--img-size", "--batch-size", "--opt", "--weight-decay", "--lr", "--epochs",
              "--warmup-epochs", "--model-ema", "--model-ema-decay", "--model-ema-warmup")]
    assert order == sorted(order)
    assert words[words.index("--model-ema-decay") + 1] == "0.9999"
    assert "--momentum" not in words       # equals the default
    assert "--local-rank" not in words     # never copied
    assert "--decay-milestones" not in words  # the default list


def test_patch_rules():
    args = {"model": "m", "data_dir": "/d", "model_ema": True, "lr": 0.5, "mixup": 0.8, "opt_betas": None}
    patch = {"model_ema": False, "lr": None, "mixup": 0.0, "decay_milestones": [30, 60], "model_kwargs": {"a": 1}}
    command = render_train_command(args, patch, DEFAULTS)
    assert command == "python train.py /d --model m --model-kwargs a=1 --decay-milestones 30 60"


def test_values_are_shell_quoted_and_positional_data_falls_back_to_data():
    args = {"model": "m", "data": "/my data/x", "experiment": "it's"}
    command = render_train_command(args, {}, {"experiment": ""})
    assert shlex.split(command) == ["python", "train.py", "/my data/x", "--model", "m", "--experiment", "it's"]


def test_booleans_are_bare_flags_and_numbers_stay_exact():
    command = render_train_command({"model": "m"}, {"amp": True, "lr": 1e-5, "epochs": 30}, DEFAULTS)
    assert command == "python train.py --model m --lr 1e-05 --epochs 30 --amp"


def test_a_flag_is_not_a_number():
    # True must not be taken as equal to a default of 1, nor 1.0 to the default 1 as different.
    chosen = effective_args({"model": "m", "grad_accum_steps": True, "min_lr": 0.0}, {}, {"grad_accum_steps": 1, "min_lr": 0})
    assert chosen == {"model": "m", "grad_accum_steps": True}


def test_without_defaults_only_set_values_are_kept():
    chosen = effective_args({"model": "m", "aa": None, "amp": False, "class_map": "", "lr": 0.1, "mean": []}, {}, {})
    assert chosen == {"model": "m", "lr": 0.1}


def test_numpy_values_render_plainly():
    import numpy as np

    command = render_train_command({"model": "m"}, {"lr": np.float64(0.05), "epochs": np.int64(10)}, {})
    assert command == "python train.py --model m --lr 0.05 --epochs 10"
