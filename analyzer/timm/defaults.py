"""timm ``train.py`` argparse defaults of the keys a diagnosis reads, per era (timm-formats.md §9).

args.yaml is a dump of *every* argparse key of the timm version that wrote it, so its values win.
These defaults fill what a given version did not write (or everything, when there is no
args.yaml): e.g. ``cooldown_epochs`` was 10 up to v0.6.x and 0 from v0.8.2dev0, and ``lr`` was
0.05 (v0.5-v0.6) before it became ``None`` (derived from ``lr_base``).

This is the only place a timm default is written, and the only place the table is read: :func:`build_config`
(args.yaml + the defaults of its era) and :func:`with_defaults` (a config whose values must not be filled in:
no args.yaml, another trainer's settings) put the era's defaults on the :class:`TrainConfig` once, at ingest;
every later stage (the recipe, the config table, the features, the command line) reads them there. The table
has one column per tag checked in the reference (``version.ERAS``). A version between two tags gets the column of the newest tag at or
below it, so e.g. v0.3.x reads the v0.4.12 column (keys added in v0.3-v0.4, such as ``clip_grad`` or
``checkpoint_hist``, count as present).
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any, Mapping

from mnv4_postmortem.analyzer.model import SourceRef, TrainConfig
from mnv4_postmortem.analyzer.timm.version import ERAS, TimmVersion, era_of, version_from_args

__all__ = [
    "ARGUMENT_NAMES", "COMMAND_NOISE_DEFAULTS", "DIAGNOSED_NAMES", "ERAS", "TIMM_DEFAULTS", "build_config", "command_defaults", "default",
    "defaults_for", "with_defaults",
]


class _Absent:
    """The key does not exist in that timm version."""

    def __repr__(self) -> str:
        return "—"


_ = _Absent()

# key: one value per column of ERAS (``_`` = absent in that version). Transcribed from the table.
_TABLE: dict[str, tuple[Any, ...]] = {
    #                                    0.1.1       0.4.12      0.5.4       0.6.13      0.8.2dev0   0.9.0       0.9.16      1.0.13      1.0.23      HEAD
    "model":                            ("resnet101", "resnet101", "resnet50", "resnet50", "resnet50", "resnet50", "resnet50", "resnet50", "resnet50", "resnet50"),
    "pretrained":                       (False,      False,      False,      False,      False,      False,      False,      False,      False,      False),
    "pretrained_path":                  (_,          _,          _,          _,          _,          _,          None,       None,       None,       None),
    "initial_checkpoint":               ("",         "",         "",         "",         "",         "",         "",         "",         "",         ""),
    "resume":                           ("",         "",         "",         "",         "",         "",         "",         "",         "",         ""),
    "no_resume_opt":                    (_,          False,      False,      False,      False,      False,      False,      False,      False,      False),
    "start_epoch":                      (None,       None,       None,       None,       None,       None,       None,       None,       None,       None),
    "num_classes":                      (1000,       None,       None,       None,       None,       None,       None,       None,       None,       None),
    "img_size":                         (None,       None,       None,       None,       None,       None,       None,       None,       None,       None),
    "input_size":                       (_,          None,       None,       None,       None,       None,       None,       None,       None,       None),
    "crop_pct":                         (_,          None,       None,       None,       None,       None,       None,       None,       None,       None),
    "in_chans":                         (_,          _,          _,          _,          None,       None,       None,       None,       None,       None),
    "batch_size":                       (32,         32,         128,        128,        128,        128,        128,        128,        128,        128),
    "validation_batch_size":            (_,          _,          None,       None,       None,       None,       None,       None,       None,       None),
    "validation_batch_size_multiplier": (_,          1,          _,          _,          _,          _,          _,          _,          _,          _),
    "grad_accum_steps":                 (_,          _,          _,          _,          _,          1,          1,          1,          1,          1),
    "opt":                              ("sgd",      "sgd",      "sgd",      "sgd",      "sgd",      "sgd",      "sgd",      "sgd",      "sgd",      "sgd"),
    "opt_eps":                          (1e-8,       None,       None,       None,       None,       None,       None,       None,       None,       None),
    "opt_betas":                        (_,          None,       None,       None,       None,       None,       None,       None,       None,       None),
    "momentum":                         (0.9,        0.9,        0.9,        0.9,        0.9,        0.9,        0.9,        0.9,        0.9,        0.9),
    "weight_decay":                     (0.0001,     0.0001,     2e-5,       2e-5,       2e-5,       2e-5,       2e-5,       2e-5,       2e-5,       2e-5),
    "clip_grad":                        (_,          None,       None,       None,       None,       None,       None,       None,       None,       None),
    "clip_mode":                        (_,          "norm",     "norm",     "norm",     "norm",     "norm",     "norm",     "norm",     "norm",     "norm"),
    "layer_decay":                      (_,          _,          _,          None,       None,       None,       None,       None,       None,       None),
    "sched":                            ("step",     "step",     "cosine",   "cosine",   "cosine",   "cosine",   "cosine",   "cosine",   "cosine",   "cosine"),
    "sched_on_updates":                 (_,          _,          _,          _,          False,      False,      False,      False,      False,      False),
    "lr":                               (0.01,       0.01,       0.05,       0.05,       None,       None,       None,       None,       None,       None),
    "lr_base":                          (_,          _,          _,          _,          0.1,        0.1,        0.1,        0.1,        0.1,        0.1),
    "lr_base_size":                     (_,          _,          _,          _,          256,        256,        256,        256,        256,        256),
    "lr_base_scale":                    (_,          _,          _,          _,          "",         "",         "",         "",         "",         ""),
    "warmup_lr":                        (0.0001,     0.0001,     0.0001,     0.0001,     1e-5,       1e-5,       1e-5,       1e-5,       1e-5,       1e-5),
    "min_lr":                           (_,          1e-5,       1e-6,       1e-6,       0,          0,          0,          0,          0,          0),
    "epochs":                           (200,        200,        300,        300,        300,        300,        300,        300,        300,        300),
    "warmup_epochs":                    (3,          3,          3,          3,          5,          5,          5,          5,          5,          5),
    "warmup_prefix":                    (_,          _,          _,          _,          False,      False,      False,      False,      False,      False),
    "cooldown_epochs":                  (_,          10,         10,         10,         0,          0,          0,          0,          0,          0),
    "decay_epochs":                     (30,         30,         100,        100,        90,         90,         90,         90,         90,         90),
    "decay_rate":                       (0.1,        0.1,        0.1,        0.1,        0.1,        0.1,        0.1,        0.1,        0.1,        0.1),
    "patience_epochs":                  (_,          10,         10,         10,         10,         10,         10,         10,         10,         10),
    "drop":                             (0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0),
    "drop_connect":                     (_,          None,       None,       None,       None,       None,       None,       None,       None,       None),
    "drop_path":                        (_,          None,       None,       None,       None,       None,       None,       None,       None,       None),
    "drop_block":                       (_,          None,       None,       None,       None,       None,       None,       None,       None,       None),
    "smoothing":                        (0.1,        0.1,        0.1,        0.1,        0.1,        0.1,        0.1,        0.1,        0.1,        0.1),
    "mixup":                            (0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0),
    "cutmix":                           (_,          0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0),
    "mixup_off_epoch":                  (0,          0,          0,          0,          0,          0,          0,          0,          0,          0),
    "aa":                               (_,          None,       None,       None,       None,       None,       None,       None,       None,       None),
    "reprob":                           (0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0,        0.0),
    "remode":                           ("const",    "const",    "pixel",    "pixel",    "pixel",    "pixel",    "pixel",    "pixel",    "pixel",    "pixel"),
    "jsd":                              (_,          False,      _,          _,          _,          _,          _,          _,          _,          _),
    "jsd_loss":                         (_,          _,          False,      False,      False,      False,      False,      False,      False,      False),
    "bce_loss":                         (_,          _,          False,      False,      False,      False,      False,      False,      False,      False),
    "bn_tf":                            (False,      False,      _,          _,          _,          _,          _,          _,          _,          _),
    "bn_momentum":                      (None,       None,       None,       None,       None,       None,       None,       None,       None,       None),
    "bn_eps":                           (None,       None,       None,       None,       None,       None,       None,       None,       None,       None),
    "sync_bn":                          (False,      False,      False,      False,      False,      False,      False,      False,      False,      False),
    "dist_bn":                          (_,          "",         "reduce",   "reduce",   "reduce",   "reduce",   "reduce",   "reduce",   "reduce",   "reduce"),
    "split_bn":                         (_,          False,      False,      False,      False,      False,      False,      False,      False,      False),
    "model_ema":                        (False,      False,      False,      False,      False,      False,      False,      False,      False,      False),
    "model_ema_decay":                  (0.9998,     0.9998,     0.9998,     0.9998,     0.9998,     0.9998,     0.9998,     0.9998,     0.9998,     0.9998),
    "model_ema_warmup":                 (_,          _,          _,          _,          _,          _,          False,      False,      False,      False),
    "model_ema_force_cpu":              (False,      False,      False,      False,      False,      False,      False,      False,      False,      False),
    "amp":                              (False,      False,      False,      False,      False,      False,      False,      False,      False,      False),
    "apex_amp":                         (_,          False,      False,      False,      _,          _,          _,          _,          _,          _),
    "native_amp":                       (_,          False,      False,      False,      _,          _,          _,          _,          _,          _),
    "amp_impl":                         (_,          _,          _,          _,          "native",   "native",   "native",   "native",   _,          _),
    "amp_dtype":                        (_,          _,          _,          _,          "float16",  "float16",  "float16",  "float16",  "float16",  "float16"),
    "model_dtype":                      (_,          _,          _,          _,          _,          _,          _,          None,       None,       None),
    "channels_last":                    (_,          False,      False,      False,      False,      False,      False,      False,      False,      False),
    "torchcompile":                     (_,          _,          _,          _,          None,       None,       None,       None,       None,       None),
    "seed":                             (42,         42,         42,         42,         42,         42,         42,         42,         42,         42),
    "log_interval":                     (50,         50,         50,         50,         50,         50,         50,         50,         50,         50),
    "val_interval":                     (_,          _,          _,          _,          _,          _,          _,          _,          1,          1),
    "recovery_interval":                (0,          0,          0,          0,          0,          0,          0,          0,          0,          0),
    "checkpoint_hist":                  (_,          10,         10,         10,         10,         10,         10,         10,         10,         10),
    "eval_metric":                      ("prec1",    "top1",     "top1",     "top1",     "top1",     "top1",     "top1",     "top1",     "top1",     "top1"),
    "output":                           ("",         "",         "",         "",         "",         "",         "",         "",         "",         ""),
    "experiment":                       (_,          "",         "",         "",         "",         "",         "",         "",         "",         ""),
    "log_wandb":                        (_,          False,      False,      False,      False,      False,      False,      False,      False,      False),
    "wandb_project":                    (_,          _,          _,          _,          _,          _,          _,          None,       None,       None),
    "gp":                               ("avg",      None,       None,       None,       None,       None,       None,       None,       None,       None),
    "num_gpu":                          (1,          _,          _,          _,          _,          _,          _,          _,          _,          _),
    "workers":                          (4,          4,          4,          4,          4,          4,          4,          4,          4,          4),
    "device":                           (_,          _,          _,          _,          _,          _,          "cuda",     "cuda",     "cuda",     "cuda"),
}

def defaults_for(version: TimmVersion | str | None) -> dict[str, Any]:
    """timm's defaults for the keys this version of train.py had (HEAD when ``version`` is None)."""
    column = [name for name, _first in ERAS].index(era_of(version))
    return {key: values[column] for key, values in _TABLE.items() if values[column] is not _}


# HEAD defaults. Keys only older versions had (``jsd``, ``apex_amp``, ``num_gpu`` ...) are in
# ``defaults_for`` of those versions, not here.
TIMM_DEFAULTS: Mapping[str, Any] = MappingProxyType(defaults_for(None))


# argparse defaults of train.py options that never matter for a diagnosis (augmentation details,
# knowledge distillation, NaFlex, LR-noise ...). They are only used so that a rendered fix command
# line repeats what the user really set, not every value args.yaml dumps. Values as timm HEAD's
# argparse declares them; a key absent from a run's args.yaml is simply not consulted.
COMMAND_NOISE_DEFAULTS: Mapping[str, Any] = MappingProxyType({
    "train_split": "train", "val_split": "validation", "epoch_repeats": 0.0, "decay_milestones": [90, 180, 270],
    "mixup_prob": 1.0, "mixup_switch_prob": 0.5, "mixup_mode": "batch", "recount": 1, "color_jitter": 0.4,
    "color_jitter_prob": None, "hflip": 0.5, "vflip": 0.0, "scale": [0.08, 1.0], "ratio": [0.75, 1.3333333333333333],
    "aug_repeats": 0, "aug_splits": 0, "layer_decay_min_scale": 0, "lr_cycle_decay": 0.5, "lr_cycle_limit": 1,
    "lr_cycle_mul": 1.0, "lr_k_decay": 1.0, "lr_noise_pct": 0.67, "lr_noise_std": 1.0, "train_interpolation": "random",
    "tta": 0, "worker_seeding": "all", "kd_distill_type": "logit", "kd_loss_type": "kl", "kd_temperature": 4.0,
    "kd_token_distill_type": "soft", "naflex_loss_scale": "linear", "naflex_max_seq_len": 576,
    "naflex_train_seq_lens": [128, 256, 576, 784, 1024], "train_size_random_mix": 0.1,
    "train_size_schedule": "constant", "train_size_schedule_spread": 0.65, "variable_batch_loss_scale": "none",
    "output": "", "experiment": "", "device": "cuda", "checkpoint_hist": 10, "log_interval": 50, "workers": 4,
    "seed": 42, "pin_mem": False, "no_prefetcher": False, "eval_metric": "top1", "recovery_interval": 0,
    "local_rank": 0, "dist_bn": "reduce", "remode": "pixel", "resplit": False, "split_bn": False,
})


# Every train.py argument name these tables know (any era): what tells timm's args.yaml from another trainer's
# settings file (timm/argument_names.py).
ARGUMENT_NAMES: frozenset[str] = frozenset(_TABLE) | frozenset(COMMAND_NOISE_DEFAULTS)
# The names of the settings a diagnosis reads, as timm HEAD spells them: what marks a ``key: value`` line of a
# pasted excerpt as an argument (ingest/excerpt.py, through timm/argument_names.py). Names only.
DIAGNOSED_NAMES: frozenset[str] = frozenset(TIMM_DEFAULTS)


def command_defaults(version: TimmVersion | str | None) -> dict[str, Any]:
    """Defaults used when rendering a fix as a train.py command: diagnosis keys of that era plus the rest."""
    return {**COMMAND_NOISE_DEFAULTS, **defaults_for(version)}


def default(key: str, version: TimmVersion | str | None = None) -> Any:
    """One key's timm default in that version (HEAD when None); None when neither table has the key."""
    return command_defaults(version).get(key)


def build_config(
    args: Mapping[str, Any] | None,
    source: SourceRef | None = None,
    timm_version: TimmVersion | str | None = None,
) -> TrainConfig:
    """``args`` as read, plus timm's defaults for the keys it lacks, with the era's defaults attached.

    The defaults are those of ``timm_version``; without one, of the era the keys of ``args`` point
    to (e.g. ``lr_base`` -> v0.8.2dev0+); with neither, of timm HEAD. The version used is kept as
    ``TrainConfig.timm_version``. ``effective`` stays empty: what timm derived at run time (the LR
    from ``lr_base``, world size) is added by the merge step (``timm.recipe.resolve_recipe``).
    """
    given = dict(args or {})
    version = TimmVersion.parse(timm_version) or version_from_args(given)
    defaults = defaults_for(version)
    missing = frozenset(key for key in defaults if key not in given)
    return TrainConfig(values={**defaults, **given}, args=given, defaulted=missing, source=source,
                       timm_version=version, defaults=defaults, command_defaults=command_defaults(version))


def with_defaults(config: TrainConfig) -> TrainConfig:
    """``config`` with the defaults of its era attached but none filled into its values: for a run without
    args.yaml (no recipe is invented) or with another trainer's settings (timm's defaults are not that trainer's)."""
    version = config.timm_version
    return replace(config, defaults=defaults_for(version), command_defaults=command_defaults(version))
