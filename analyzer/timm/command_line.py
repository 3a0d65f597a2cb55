"""A timm ``train.py`` command line from a run's config and a patch (a fix, or a reproduction's changes).

Public entry points: :func:`train_command` (a :class:`TrainConfig` + patch, defaults of the config's own
timm era: what the report's fixes and the runner use) and :func:`render_train_command` (plain mappings).

Start from the run's arguments (args.yaml), keep what differs from timm's defaults (plus the
model, always), apply the fix's patch, and print it the way train.py's argparse reads it:
``data_dir`` / ``data`` as the positional path first, ``model_ema_warmup`` as ``--model-ema-warmup``,
``True`` as a bare flag, ``False``/``None`` as no flag, lists as space-separated values,
``model_kwargs``-style dicts as ``key=value`` pairs. Options come in a fixed order: model, data,
optimizer, learning rate, schedule, EMA, regularization, then the rest alphabetically.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from typing import Any

from mnv4_postmortem.analyzer.model import TrainConfig
from mnv4_postmortem.analyzer.timm.defaults import with_defaults
from mnv4_postmortem.analyzer.timm.version import TimmVersion

PROGRAM = "python train.py"
POSITIONAL_KEYS = ("data_dir", "data")

# Bookkeeping that a reproduction must not copy: timm derives these or they name this machine.
NEVER_EMIT = frozenset(
    {"config", "local_rank", "rank", "world_size", "distributed", "prefetcher", "device_modules"}
)

ORDER_GROUPS: tuple[tuple[str, ...], ...] = (
    ("model", "pretrained", "pretrained_path", "initial_checkpoint", "resume", "num_classes", "in_chans",
     "gp", "model_kwargs"),
    ("dataset", "train_split", "val_split", "class_map", "img_size", "input_size", "crop_pct",
     "interpolation", "mean", "std", "batch_size", "validation_batch_size", "grad_accum_steps", "workers"),
    ("opt", "opt_eps", "opt_betas", "momentum", "weight_decay", "clip_grad", "clip_mode", "layer_decay"),
    ("lr", "lr_base", "lr_base_size", "lr_base_scale", "warmup_lr", "min_lr"),
    ("sched", "sched_on_updates", "epochs", "epoch_repeats", "start_epoch", "decay_milestones",
     "decay_epochs", "decay_rate", "warmup_epochs", "warmup_prefix", "cooldown_epochs", "patience_epochs"),
    ("model_ema", "model_ema_decay", "model_ema_warmup", "model_ema_force_cpu"),
    ("smoothing", "drop", "drop_path", "drop_block", "drop_connect", "mixup", "cutmix", "cutmix_minmax",
     "mixup_prob", "mixup_switch_prob", "mixup_mode", "mixup_off_epoch", "aa", "reprob", "remode",
     "recount", "color_jitter", "hflip", "vflip", "scale", "ratio"),
)
_RANK = {name: (group, position) for group, names in enumerate(ORDER_GROUPS) for position, name in enumerate(names)}


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _same(a: Any, b: Any) -> bool:
    a, b = _plain(a), _plain(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, bool) != isinstance(b, bool):
        return False  # True must not equal 1 here: a flag and a number are different settings
    return a == b


def _is_unset(value: Any) -> bool:
    return value is None or value is False or value == "" or (isinstance(value, (list, tuple, dict)) and not value)


def _format_value(value: Any) -> list[str]:
    value = _plain(value)
    if isinstance(value, float):
        return [repr(value)]
    if isinstance(value, (list, tuple)):
        return [item for v in value for item in _format_value(v)]
    if isinstance(value, Mapping):
        return [f"{k}={' '.join(_format_value(v))}" for k, v in value.items()]
    return [str(value)]


def _option(key: str) -> str:
    return "--" + key.replace("_", "-")


def _order(key: str) -> tuple[int, int, str]:
    group, position = _RANK.get(key, (len(ORDER_GROUPS), 0))
    return group, position, key


def effective_args(args: Mapping[str, Any], patch: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The options the new command sets: the run's non-defaults plus model, with the patch applied."""
    chosen: dict[str, Any] = {}
    for key, value in args.items():
        if key in NEVER_EMIT or key in POSITIONAL_KEYS:
            continue
        if key == "model" and value is not None:
            chosen[key] = value
        elif key in defaults:
            if not _same(value, defaults[key]):
                chosen[key] = value
        elif not _is_unset(value):
            chosen[key] = value
    for key, value in patch.items():
        if key in POSITIONAL_KEYS:
            continue
        if key != "model" and (_is_unset(value) or (key in defaults and _same(value, defaults[key]))):
            chosen.pop(key, None)  # back to timm's default: the flag goes away
        else:
            chosen[key] = value
    return chosen


def render_train_command(
    args: Mapping[str, Any],
    patch: Mapping[str, Any],
    defaults: Mapping[str, Any],
    *,
    program: str = PROGRAM,
) -> str:
    """``python train.py /data/x --model m ... --model-ema --model-ema-warmup`` for ``args`` + ``patch``."""
    words: list[str] = []
    merged = {**args, **{k: v for k, v in patch.items() if k in POSITIONAL_KEYS}}
    data_dir = next((merged[k] for k in POSITIONAL_KEYS if not _is_unset(merged.get(k))), None)
    if data_dir is not None:
        words.append(shlex.quote(str(data_dir)))
    chosen = effective_args(args, patch, defaults)
    for key in sorted(chosen, key=_order):
        value = _plain(chosen[key])
        if value is True:
            words.append(_option(key))
        elif value is False or value is None:
            continue
        else:
            words.append(_option(key))
            words.extend(shlex.quote(v) for v in _format_value(value))
    return " ".join([program, *words])


def train_command(config: TrainConfig | Mapping[str, Any], patch: Mapping[str, Any] | None = None, *,
                  timm_version: Any = None, program: str = PROGRAM) -> str:
    """The ``train.py`` command that repeats ``config``'s run with ``patch`` applied: the one builder of
    command lines (fixes, the run's own line, the runner's arms and --train-script).

    Options equal to timm's defaults are left out, using the defaults the ingest resolved for the config
    (``config.command_defaults``, of the era its values were filled from), so the command and the config
    never disagree on a default. A plain args mapping (or a config built by hand) gets the defaults of
    ``timm_version`` (its own version) resolved the same way. ``patch`` maps args.yaml keys to new values;
    ``None``/``False`` removes a flag.
    """
    if not isinstance(config, TrainConfig):
        config = TrainConfig(values={}, args=dict(config), timm_version=TimmVersion.parse(timm_version))
    if not config.command_defaults:
        config = with_defaults(config)
    return render_train_command(dict(config.args), dict(patch or {}), config.command_defaults, program=program)


__all__ = ["PROGRAM", "effective_args", "render_train_command", "train_command"]
