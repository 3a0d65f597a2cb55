"""Message handlers: (substring that must be present, pattern, handler) for every timm start-up and
status line the parser keeps something of. A handler reads one matched line and returns what it says,
as parsed events (:data:`Parsed`); the parser alone records them (``Parser.record``)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Union

from mnv4_postmortem.analyzer.ingest.console_log.data import Version
from mnv4_postmortem.analyzer.ingest.console_log.grammar import NUM, PY_WARNING


# ---------------------------------------------------------------------------------------------
# What a message line says


@dataclass(frozen=True, slots=True)
class Info:
    """A run-time fact (``ConsoleLog.info[key]``); the latest line wins."""

    key: str
    value: Any


@dataclass(frozen=True, slots=True)
class VersionHint:
    """The line's wording holds only in timm versions ``low``..``high`` (None: unbounded)."""

    low: Version | None
    high: Version | None


@dataclass(frozen=True, slots=True)
class Restart:
    """A start-up (``start``) or resume (``resume``) message: a restart when training output came before it."""

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LrLine:
    """``Learning rate (X) calculated from base learning rate (Y) and global batch size (Z) with S scaling``."""

    lr: float
    lr_base: float
    global_batch: float
    scaling: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A line of a known kind whose numbers could not be read (counted, reported once per kind)."""

    what: str


@dataclass(frozen=True, slots=True)
class DataConfigStart:
    """``Data processing configuration ...``: the indented ``key: value`` lines after it are its entries."""


@dataclass(frozen=True, slots=True)
class BestMetric:
    value: float
    epoch: int


@dataclass(frozen=True, slots=True)
class SkippedEval:
    """``Skipping eval and checkpointing`` (``--val-interval``)."""


@dataclass(frozen=True, slots=True)
class TracebackStart:
    """``Traceback (most recent call last)``: the lines after it belong to it up to the exception line."""


@dataclass(frozen=True, slots=True)
class Warned:
    category: str
    text: str


@dataclass(frozen=True, slots=True)
class Crashed:
    kind: str          # "crash" | "oom"
    text: str


Parsed = Union[Info, VersionHint, Restart, LrLine, Unreadable, DataConfigStart, BestMetric, SkippedEval,
               TracebackStart, Warned, Crashed]
Handler = Callable[[re.Match], tuple[Parsed, ...]]


def literal(text: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text.strip()


def _split_top_level(text: str) -> list[str]:
    """Split ``a: 1, b: (2, 3)`` at commas that are not inside brackets."""
    parts, depth, current = [], 0, []
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth <= 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in (p.strip() for p in parts) if part]


# ---------------------------------------------------------------------------------------------
# Message handlers: (substring that must be present, pattern, handler)


def _on_model(m: re.Match) -> tuple[Parsed, ...]:
    hint = VersionHint(None, (0, 4, 5)) if m.group(2) else VersionHint((0, 4, 9), None)
    return Info("model", m.group(1)), Info("param_count", int(m.group(3))), hint, Restart("start")


def _on_single_device(m: re.Match) -> tuple[Parsed, ...]:
    out: list[Parsed] = []
    if m.group(1):   # "on 1 device (cuda:0)" (v0.8.2+)
        device = m.group(1)
        out += [Info("device", device), VersionHint((0, 8, 2), None) if ":" in device else VersionHint((0, 9, 16), None)]
    else:            # "on 1 GPUs" (<= v0.6; printed whatever the device, so it names none)
        out.append(VersionHint(None, (0, 6, 13)))
    return (*out, Info("world_size", 1), Info("distributed", False), Restart("start"))


def _on_distributed(m: re.Match) -> tuple[Parsed, ...]:
    out: list[Parsed] = [Info("world_size", int(m.group(3))), Info("distributed", True)]
    if m.group(4):
        out.append(Info("device", m.group(4).rstrip(".")))
    out.append(VersionHint(None, (0, 6, 13)) if m.group(1) == "GPU" else VersionHint((0, 8, 2), None))
    return (*out, Restart("start"))


def _on_lr_calc(m: re.Match) -> tuple[Parsed, ...]:
    try:
        calc = LrLine(float(m.group(1)), float(m.group(2)), float(m.group(4)), m.group(5))
    except ValueError:
        return (Unreadable("learning-rate line"),)
    return calc, VersionHint((0, 9, 0), None) if m.group(3) else VersionHint((0, 8, 2), (0, 8, 17))


def _on_data_config(m: re.Match) -> tuple[Parsed, ...]:
    return (DataConfigStart(),)


def _on_amp(m: re.Match) -> tuple[Parsed, ...]:
    text = m.group(0)
    if "APEX AMP" in text or "AMP on" in text:
        return Info("amp", "apex"), Info("train_dtype", "mixed")
    if "native Torch AMP" in text:
        return Info("amp", "native"), Info("train_dtype", "mixed"), VersionHint(None, (1, 0, 22))
    dtype = m.group(1)
    if not dtype:
        return Info("amp", "off"), Info("train_dtype", "float32")
    hint = VersionHint((1, 0, 13), None) if dtype.startswith("torch.") else VersionHint(None, (1, 0, 12))
    return Info("amp", "off"), Info("train_dtype", dtype.removeprefix("torch.")), hint


def _on_optimizer(m: re.Match) -> tuple[Parsed, ...]:
    params = {}
    for part in _split_top_level(m.group(3)):
        key, _, value = part.partition(":")
        params[key.strip()] = literal(value)
    return Info("optimizer", {"class": m.group(1), "name": m.group(2), "params": params}), VersionHint((1, 0, 12), None)


def _on_scheduled(m: re.Match) -> tuple[Parsed, ...]:
    out: list[Parsed] = [Info("scheduled_epochs", int(m.group(1)))]
    unit = re.search(r"LR stepped per (epoch|update)", m.group(3))
    if unit:
        out.append(Info("lr_step_unit", unit.group(1)))
    if m.group(2):            # "(epochs + cooldown_epochs)" explanation: v1.0.12+
        out.append(VersionHint((1, 0, 12), None))
    elif unit:                # "N. LR stepped per epoch.": v0.8.2-v1.0.11
        out.append(VersionHint((0, 8, 2), (1, 0, 11)))
    elif not m.group(3).strip(" ."):
        out.append(VersionHint(None, (0, 6, 13)))
    return tuple(out)


def _on_task(m: re.Match) -> tuple[Parsed, ...]:
    return Info("task_criterion", m.group(1)), VersionHint((1, 0, 23), None)


def _on_pretrained(m: re.Match) -> tuple[Parsed, ...]:
    kind = {"Hugging Face hub": "hf-hub", "url": "url", "file": "file"}.get(m.group(1), m.group(1))
    return (Info("pretrained_source", f"{kind}:{m.group(2)}"),)


def _on_loaded_checkpoint(m: re.Match) -> tuple[Parsed, ...]:
    return (Info("resume_checkpoint", m.group(1)), Info("resume_epoch", int(m.group(2))),
            Restart("resume", {"checkpoint": m.group(1), "checkpoint_epoch": int(m.group(2))}))


def _on_restoring(m: re.Match) -> tuple[Parsed, ...]:
    return (Restart("resume"),)


def _on_state_dict(m: re.Match) -> tuple[Parsed, ...]:
    return (Info("loaded_state_dict", m.group(1)),)


def _on_missing_keys(m: re.Match) -> tuple[Parsed, ...]:
    return (Info("pretrained_missing_keys", tuple(key.strip() for key in m.group(1).split(",") if key.strip())),)


def _on_best(m: re.Match) -> tuple[Parsed, ...]:
    try:
        value = float(m.group(1))
    except ValueError:
        return (Unreadable("best-metric line"),)
    epoch = int(m.group(2))
    return BestMetric(value, epoch), Info("best_metric", value), Info("best_epoch", epoch)


def _on_skip_eval(m: re.Match) -> tuple[Parsed, ...]:
    return (SkippedEval(),)


def _on_flag(key: str, value: Any, hint: VersionHint | None = None) -> Handler:
    def handler(m: re.Match) -> tuple[Parsed, ...]:
        found = Info(key, value if value is not None else m.group(1))
        return (found, hint) if hint else (found,)
    return handler


def _on_ddp(m: re.Match) -> tuple[Parsed, ...]:
    return Info("ddp", "apex" if m.group(1) == "NVIDIA APEX" else "native"), VersionHint(None, (1, 0, 22))


def _on_traceback(m: re.Match) -> tuple[Parsed, ...]:
    return (TracebackStart(),)


def _on_py_warning(m: re.Match) -> tuple[Parsed, ...]:
    return (Warned(m.group("category"), m.group("message").strip()),)


def _on_timm_warning(m: re.Match) -> tuple[Parsed, ...]:
    return (Warned("WARNING", m.group(1).strip()),)


def _on_error(m: re.Match) -> tuple[Parsed, ...]:
    return (Crashed("crash", m.group(0).strip()),)


def _on_oom(m: re.Match) -> tuple[Parsed, ...]:
    return (Crashed("oom", m.string.strip()),)


def _on_num_classes(m: re.Match) -> tuple[Parsed, ...]:
    return (Info("num_classes", int(m.group(1))),)


def _on_known(m: re.Match) -> tuple[Parsed, ...]:
    """Lines that carry nothing we keep but are timm's own (so not 'unrecognised')."""
    return ()


HANDLERS: tuple[tuple[str, re.Pattern, Handler], ...] = (
    ("Current checkpoints", re.compile(r"Current checkpoints:"), _on_known),
    ("Traceback (most recent", re.compile(r"Traceback \(most recent call last\)"), _on_traceback),
    ("Learning rate (", re.compile(
        rf"Learning rate \(({NUM})\) calculated from base learning rate \(({NUM})\) and (effective )?global batch size "
        rf"\(({NUM})\) with (\w+) scaling"), _on_lr_calc),
    ("created, param count", re.compile(r"Model (\S+) created, param count:( )?\s*(\d{1,15})"), _on_model),
    ("Data processing configuration", re.compile(r"Data processing configuration"), _on_data_config),
    ("Training with a single process", re.compile(
        r"Training with a single process on \d+ (?:device \(([^)]*)\)|GPUs?)"), _on_single_device),
    ("Training in distributed mode", re.compile(
        r"Training in distributed mode with multiple processes, 1 (GPU|device) per process\.\s*"
        r"Process (\d+), total (\d{1,9})(?:, device (\S+))?"), _on_distributed),
    ("AMP", re.compile(r"Using NVIDIA APEX AMP|Using native Torch AMP|AMP not enabled\. Training in ([\w.]+?)\.?\s*$"
                       r"|NVIDIA APEX (?:not )?installed\. AMP (?:on|off)|AMP not enabled"), _on_amp),
    ("optimizer:", re.compile(r"Created (\w+) \(([^)]*)\) optimizer:\s*(.*)$"), _on_optimizer),
    ("Scheduled epochs:", re.compile(r"Scheduled epochs: (\d{1,9})( \([^)]*\))?(.*)$"), _on_scheduled),
    ("ClassificationTask", re.compile(r"ClassificationTask: criterion=(\w+)"), _on_task),
    ("Loading pretrained weights from", re.compile(
        r"Loading pretrained weights from (Hugging Face hub|url|file) \((.+)\)"), _on_pretrained),
    ("Loaded checkpoint", re.compile(r"Loaded checkpoint '(.*)' \(epoch (\d{1,9})\)"), _on_loaded_checkpoint),
    ("Restoring ", re.compile(r"Restoring (?:model|optimizer|Optimizer|AMP loss scaler|NVIDIA AMP) state"), _on_restoring),
    ("Loaded state_dict", re.compile(r"Loaded state_dict(?:_ema)? from checkpoint '(.*)'"), _on_state_dict),
    ("Missing keys", re.compile(r"Missing keys \(([^)]*)\) discovered while loading pretrained weights"), _on_missing_keys),
    ("Best metric:", re.compile(rf"\*\*\* Best metric: ({NUM}) \(epoch (\d{{1,9}})\)"), _on_best),
    ("Skipping eval", re.compile(r"Skipping eval and checkpointing"), _on_skip_eval),
    ("Synchronized BatchNorm", re.compile(r"Converted model to use Synchronized BatchNorm"), _on_flag("sync_bn", True)),
    ("DistributedDataParallel", re.compile(r"Using (native Torch|NVIDIA APEX|torch) DistributedDataParallel"), _on_ddp),
    ("Preparing task for distributed", re.compile(r"Preparing task for distributed training"),
     _on_flag("ddp", "task", VersionHint((1, 0, 23), None))),
    ("Distributing BatchNorm", re.compile(r"Distributing BatchNorm running means and vars"), _on_flag("dist_bn", True)),
    ("Compiling task", re.compile(r"Compiling task(?: components)? with backend=([^,\s]+)"), _on_flag("compile_backend", None)),
    ("NaFlex", re.compile(r"Using NaFlex loader"), _on_flag("naflex", True)),
    ("KD teacher", re.compile(r"Creating KD teacher model: '?([^']+)'?"), _on_flag("kd_teacher", None)),
    ("Warning: ", PY_WARNING, _on_py_warning),
    ("WARNING:", re.compile(r"^\s*WARNING:\s*(.*)$"), _on_timm_warning),
    ("ERROR:", re.compile(r"^\s*ERROR:\s*.*$"), _on_error),
    ("out of memory", re.compile(r"out of memory"), _on_oom),
    ("OutOfMemoryError", re.compile(r"OutOfMemoryError"), _on_oom),
    ("num_classes", re.compile(r"num_classes\s*[=:]\s*(\d{1,9})\b"), _on_num_classes),
    ("--result", re.compile(r"^--result\s*$"), _on_known),
)
