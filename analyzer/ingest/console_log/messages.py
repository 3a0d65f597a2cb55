"""Message handlers: (substring that must be present, pattern, action) for every timm start-up and
status line the parser keeps something of."""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Any, Callable

from mnv4_postmortem.analyzer.ingest.console_log.assemble import _V
from mnv4_postmortem.analyzer.ingest.console_log.data import LrCalc
from mnv4_postmortem.analyzer.ingest.console_log.grammar import _NUM, _PY_WARNING

if TYPE_CHECKING:
    from mnv4_postmortem.analyzer.ingest.console_log.parser import _Parser


# ---------------------------------------------------------------------------------------------
# The parser state



def _significant_digits(token: str) -> int:
    mantissa = token.lstrip("+-").lower().split("e")[0].replace(".", "")
    return len(mantissa.lstrip("0")) if mantissa.isdigit() else 0


def _literal(text: str) -> Any:
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
# Message handlers: (substring that must be present, pattern, action)


def _on_model(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("model", m.group(1), line)
    p.set_info("param_count", int(m.group(3)), line)
    p.evidence.append((None, (0, 4, 5)) if m.group(2) else ((0, 4, 9), None))
    p.markers.append((line, "start", {}))


def _on_single_device(p: _Parser, m: re.Match, line: int) -> None:
    if m.group(1):   # "on 1 device (cuda:0)" (v0.8.2+)
        device = m.group(1)
        p.set_info("device", device, line)
        p.evidence.append(((0, 8, 2), None) if ":" in device else ((0, 9, 16), None))
    else:            # "on 1 GPUs" (<= v0.6; printed whatever the device, so it names none)
        p.evidence.append((None, (0, 6, 13)))
    p.set_info("world_size", 1, line)
    p.set_info("distributed", False, line)
    p.markers.append((line, "start", {}))


def _on_distributed(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("world_size", int(m.group(3)), line)
    p.set_info("distributed", True, line)
    if m.group(4):
        p.set_info("device", m.group(4).rstrip("."), line)
    p.evidence.append((None, (0, 6, 13)) if m.group(1) == "GPU" else ((0, 8, 2), None))
    p.markers.append((line, "start", {}))


def _on_lr_calc(p: _Parser, m: re.Match, line: int) -> None:
    try:
        p.lr_calc = LrCalc(float(m.group(1)), float(m.group(2)), float(m.group(4)), m.group(5), p.ref(line))
    except ValueError:
        p.count_problem("learning-rate line", line)
        return
    p.evidence.append(((0, 9, 0), None) if m.group(3) else ((0, 8, 2), (0, 8, 17)))


def _on_data_config(p: _Parser, m: re.Match, line: int) -> None:
    p.data_config_line = line
    p.set_info("data_config", {}, line)


def _on_amp(p: _Parser, m: re.Match, line: int) -> None:
    text = m.group(0)
    if "APEX AMP" in text or "AMP on" in text:
        p.set_info("amp", "apex", line)
        p.set_info("train_dtype", "mixed", line)
    elif "native Torch AMP" in text:
        p.set_info("amp", "native", line)
        p.set_info("train_dtype", "mixed", line)
        p.evidence.append((None, (1, 0, 22)))
    else:
        p.set_info("amp", "off", line)
        dtype = m.group(1)
        if dtype:
            p.set_info("train_dtype", dtype.removeprefix("torch."), line)
            p.evidence.append(((1, 0, 13), None) if dtype.startswith("torch.") else (None, (1, 0, 12)))
        else:
            p.set_info("train_dtype", "float32", line)


def _on_optimizer(p: _Parser, m: re.Match, line: int) -> None:
    params = {}
    for part in _split_top_level(m.group(3)):
        key, _, value = part.partition(":")
        params[key.strip()] = _literal(value)
    p.set_info("optimizer", {"class": m.group(1), "name": m.group(2), "params": params}, line)
    p.evidence.append(((1, 0, 12), None))


def _on_scheduled(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("scheduled_epochs", int(m.group(1)), line)
    unit = re.search(r"LR stepped per (epoch|update)", m.group(3))
    if unit:
        p.set_info("lr_step_unit", unit.group(1), line)
    if m.group(2):            # "(epochs + cooldown_epochs)" explanation: v1.0.12+
        p.evidence.append(((1, 0, 12), None))
    elif unit:                # "N. LR stepped per epoch.": v0.8.2-v1.0.11
        p.evidence.append(((0, 8, 2), (1, 0, 11)))
    elif not m.group(3).strip(" ."):
        p.evidence.append((None, (0, 6, 13)))


def _on_task(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("task_criterion", m.group(1), line)
    p.evidence.append(((1, 0, 23), None))


def _on_pretrained(p: _Parser, m: re.Match, line: int) -> None:
    kind = {"Hugging Face hub": "hf-hub", "url": "url", "file": "file"}.get(m.group(1), m.group(1))
    p.set_info("pretrained_source", f"{kind}:{m.group(2)}", line)


def _on_loaded_checkpoint(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("resume_checkpoint", m.group(1), line)
    p.set_info("resume_epoch", int(m.group(2)), line)
    p.markers.append((line, "resume", {"checkpoint": m.group(1), "checkpoint_epoch": int(m.group(2))}))


def _on_restoring(p: _Parser, m: re.Match, line: int) -> None:
    p.markers.append((line, "resume", {}))


def _on_state_dict(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("loaded_state_dict", m.group(1), line)


def _on_missing_keys(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("pretrained_missing_keys", tuple(key.strip() for key in m.group(1).split(",") if key.strip()), line)


def _on_best(p: _Parser, m: re.Match, line: int) -> None:
    try:
        value = float(m.group(1))
    except ValueError:
        p.count_problem("best-metric line", line)
        return
    epoch = int(m.group(2))
    p.best.append((line, value, epoch))
    p.set_info("best_metric", value, line)
    p.set_info("best_epoch", epoch, line)


def _on_skip_eval(p: _Parser, m: re.Match, line: int) -> None:
    p.skipped_eval.append(line)


def _on_flag(key: str, value: Any, evidence: tuple[_V | None, _V | None] | None = None):
    def handler(p: _Parser, m: re.Match, line: int) -> None:
        p.set_info(key, value if value is not None else m.group(1), line)
        if evidence:
            p.evidence.append(evidence)
    return handler


def _on_ddp(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("ddp", "apex" if m.group(1) == "NVIDIA APEX" else "native", line)
    p.evidence.append((None, (1, 0, 22)))


def _on_traceback(p: _Parser, m: re.Match, line: int) -> None:
    p.traceback_line = line


def _on_py_warning(p: _Parser, m: re.Match, line: int) -> None:
    p.warning(m.group("category"), m.group("message").strip(), line)


def _on_timm_warning(p: _Parser, m: re.Match, line: int) -> None:
    p.warning("WARNING", m.group(1).strip(), line)


def _on_error(p: _Parser, m: re.Match, line: int) -> None:
    p.crash("crash", m.group(0).strip(), line)


def _on_oom(p: _Parser, m: re.Match, line: int) -> None:
    p.crash("oom", m.string.strip(), line)


def _on_num_classes(p: _Parser, m: re.Match, line: int) -> None:
    p.set_info("num_classes", int(m.group(1)), line)


def _on_known(p: _Parser, m: re.Match, line: int) -> None:
    """Lines that carry nothing we keep but are timm's own (so not 'unrecognised')."""


_HANDLERS: tuple[tuple[str, re.Pattern, Callable[[_Parser, re.Match, int], None]], ...] = (
    ("Current checkpoints", re.compile(r"Current checkpoints:"), _on_known),
    ("Traceback (most recent", re.compile(r"Traceback \(most recent call last\)"), _on_traceback),
    ("Learning rate (", re.compile(
        rf"Learning rate \(({_NUM})\) calculated from base learning rate \(({_NUM})\) and (effective )?global batch size "
        rf"\(({_NUM})\) with (\w+) scaling"), _on_lr_calc),
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
    ("Best metric:", re.compile(rf"\*\*\* Best metric: ({_NUM}) \(epoch (\d{{1,9}})\)"), _on_best),
    ("Skipping eval", re.compile(r"Skipping eval and checkpointing"), _on_skip_eval),
    ("Synchronized BatchNorm", re.compile(r"Converted model to use Synchronized BatchNorm"), _on_flag("sync_bn", True)),
    ("DistributedDataParallel", re.compile(r"Using (native Torch|NVIDIA APEX|torch) DistributedDataParallel"), _on_ddp),
    ("Preparing task for distributed", re.compile(r"Preparing task for distributed training"),
     _on_flag("ddp", "task", ((1, 0, 23), None))),
    ("Distributing BatchNorm", re.compile(r"Distributing BatchNorm running means and vars"), _on_flag("dist_bn", True)),
    ("Compiling task", re.compile(r"Compiling task(?: components)? with backend=([^,\s]+)"), _on_flag("compile_backend", None)),
    ("NaFlex", re.compile(r"Using NaFlex loader"), _on_flag("naflex", True)),
    ("KD teacher", re.compile(r"Creating KD teacher model: '?([^']+)'?"), _on_flag("kd_teacher", None)),
    ("Warning: ", _PY_WARNING, _on_py_warning),
    ("WARNING:", re.compile(r"^\s*WARNING:\s*(.*)$"), _on_timm_warning),
    ("ERROR:", re.compile(r"^\s*ERROR:\s*.*$"), _on_error),
    ("out of memory", re.compile(r"out of memory"), _on_oom),
    ("OutOfMemoryError", re.compile(r"OutOfMemoryError"), _on_oom),
    ("num_classes", re.compile(r"num_classes\s*[=:]\s*(\d{1,9})\b"), _on_num_classes),
    ("--result", re.compile(r"^--result\s*$"), _on_known),
)
