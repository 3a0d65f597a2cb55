"""The trainers around timm that write the runs we read, and what each one's numbers mean.

timm's own ``train.py`` is one trainer; the training scripts of the papers built on timm (DeiT's and
ConvNeXt's ``main.py`` + ``engine.py``), Lightning modules, the HF ``Trainer`` and mmpretrain are others.
They use timm's models (and often its ``ModelEma``), but differ in what they *evaluate* and in how a
setting is spelled on their command line. This module is the one owner of those facts:

- :attr:`Trainer.ema_evaluated`: which model the reported eval numbers are:
  ``"replaces"``: timm ``train.py``: with ``--model-ema`` the EMA's eval replaces the model's;
  ``"raw"``: DeiT ``main.py``: ``--model-ema`` keeps an EMA (saved in checkpoints) but ``evaluate()``
  runs on the raw model only; ``"both"``: ConvNeXt ``main.py`` with ``--model_ema_eval``: both are
  evaluated, the raw model's as ``test_acc1`` and the EMA's as ``test_acc1_ema``; ``"unknown"``.
  The EMA rules (ema-lag) reason about the EMA *as what was evaluated*; they abstain unless "replaces".
- :attr:`Trainer.program` / :attr:`Trainer.flag_style`: how a fix is written: as that trainer's command
  line (DeiT ``--model-ema-decay``, ConvNeXt ``--model_ema_decay``) or, without a known CLI, as settings.

References: facebookresearch/deit main.py (``--model-ema``, ``--model-ema-decay``; ``evaluate(data_loader_val,
model, device)``), facebookresearch/ConvNeXt main.py (``--model_ema``, ``--model_ema_eval``; ``test_stats_ema``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping

EmaEvaluated = Literal["replaces", "raw", "both", "unknown"]
FlagStyle = Literal["dash", "underscore"]


@dataclass(frozen=True, slots=True)
class Trainer:
    key: str
    name: str                          # shown in inspect and the report header
    ema_evaluated: EmaEvaluated
    program: str | None = None         # its command, when it has a known CLI
    flag_style: FlagStyle | None = None
    specificity: int = 0               # several sources name a trainer: the most specific wins


TIMM = Trainer("timm", "timm train.py", "replaces", "python train.py", "dash", 1)
DEIT_FAMILY = Trainer("deit_family", "DeiT-family main.py (DeiT, ConvNeXt, RepViT, EfficientFormer, ...)", "unknown")
DEIT = Trainer("deit", "DeiT main.py", "raw", "python main.py", "dash", 2)
CONVNEXT = Trainer("convnext", "ConvNeXt main.py", "raw", "python main.py", "underscore", 2)
CONVNEXT_EMA_EVAL = Trainer("convnext_ema_eval", "ConvNeXt main.py (--model_ema_eval)", "both", "python main.py", "underscore", 3)
LIGHTNING = Trainer("lightning", "PyTorch Lightning (CSVLogger)", "unknown")
HF_TRAINER = Trainer("hf_trainer", "Hugging Face Trainer", "unknown")
WANDB = Trainer("wandb", "W&B local run folder (trainer not named by the files)", "unknown")
MMPRETRAIN = Trainer("mmpretrain", "mmpretrain / mmcls", "unknown")

TRAINERS: Mapping[str, Trainer] = {t.key: t for t in (TIMM, DEIT_FAMILY, DEIT, CONVNEXT, CONVNEXT_EMA_EVAL, LIGHTNING,
                                                        HF_TRAINER, WANDB, MMPRETRAIN)}

# Argument names only one of the two main.py families has (both print ``Namespace(...)`` at start).
_CONVNEXT_KEYS = ("model_ema_eval", "layer_scale_init_value", "head_init_scale", "use_amp", "enable_wandb")
_DEIT_KEYS = ("distillation_type", "teacher_model", "model_ema_force_cpu", "repeated_aug", "ThreeAugment")


def trainer(key: str | None) -> Trainer | None:
    return TRAINERS.get(key) if key else None


def most_specific(keys: Iterable[str | None]) -> str | None:
    """The trainer several sources name, the most specific first (a ConvNeXt Namespace beats a plain log.txt)."""
    known = [TRAINERS[k] for k in keys if k in TRAINERS]
    return max(known, key=lambda t: t.specificity).key if known else None


# Loggers, not trainers: a W&B folder of a timm train.py run (``--log-wandb``) is a timm run.
LOGGERS = frozenset({WANDB.key})
# The formats that only timm's train.py writes (a console log, summary.csv, args.yaml).
TIMM_FORMATS = frozenset({"console_log", "summary_csv", "args_yaml"})


def run_trainer(contributions: Iterable[tuple[str | None, str]]) -> str | None:
    """The run's trainer from its files' ``(trainer, format)`` pairs: the most specific one named, except that a
    logger's folder holding timm's own files is timm's run (None)."""
    pairs = list(contributions)
    named = most_specific(t for t, _ in pairs)
    if named in LOGGERS and any(fmt in TIMM_FORMATS for _, fmt in pairs):
        return None
    return named


def main_py_family(args: Mapping[str, Any], log_keys: Iterable[str] = ()) -> str:
    """DeiT or ConvNeXt, from the arguments a ``main.py`` printed (or args.txt/args.json) and the log's keys."""
    keys = set(log_keys)
    if any(k.endswith("_ema") for k in keys) and any(k.startswith("test_") for k in keys):
        return CONVNEXT_EMA_EVAL.key
    if any(k in args for k in _CONVNEXT_KEYS):
        return CONVNEXT_EMA_EVAL.key if _truthy(args.get("model_ema_eval")) and _truthy(args.get("model_ema")) else CONVNEXT.key
    if any(k in args for k in _DEIT_KEYS):
        return DEIT.key
    return DEIT_FAMILY.key


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def reports_ema_eval(key: str | None) -> bool:
    """True when the run's reported eval numbers are the EMA's (timm ``train.py``, or no trainer named:
    the runs of timm's own formats). The EMA facts of a trainer that evaluates the raw model, or both
    apart, must not be read as the reported eval's."""
    return ema_evaluation(key) == "replaces"


def ema_evaluation(key: str | None) -> EmaEvaluated:
    """Which model the run's reported eval is (see :class:`Trainer`); timm's own formats: ``"replaces"``."""
    found = trainer(key)
    return "replaces" if found is None else found.ema_evaluated


def _flag(key: str, style: FlagStyle) -> str:
    return "--" + (key.replace("_", "-") if style == "dash" else key)


def fix_command(key: str | None, patch: Mapping[str, Any]) -> str | None:
    """The fix in the trainer's own command-line spelling (the run's other arguments unchanged), or None
    when the trainer has no known CLI: the fix is then its settings alone. timm's own ``train.py`` line is
    built by ``command_line.py`` (it knows timm's defaults); this covers the other trainers."""
    found = trainer(key)
    if found is None or found.program is None or found.flag_style is None:
        return None
    words = [found.program, "<the run's other arguments>"]
    for name, value in patch.items():
        if value is True:
            words.append(_flag(name, found.flag_style))
        elif value is False or value is None:
            words.append(f"(drop {_flag(name, found.flag_style)})")
        else:
            words += [_flag(name, found.flag_style), str(value)]
    return " ".join(words)


__all__ = ["TRAINERS", "Trainer", "ema_evaluation", "fix_command", "main_py_family", "most_specific", "reports_ema_eval", "trainer"]
