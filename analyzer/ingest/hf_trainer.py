"""The Hugging Face ``Trainer``'s ``trainer_state.json`` (and ``training_args.json`` / ``config.json``).

``trainer_state.json`` holds ``log_history``: one entry per logging step (``loss``, ``learning_rate``,
``grad_norm``, ``epoch`` as a float, ``step``) and one per evaluation (``eval_loss``, ``eval_accuracy`` or
whatever ``compute_metrics`` returned, prefixed ``eval_``), plus a closing ``train_runtime`` entry.

Mapping: the training entries are the step frame (``update`` = ``step``; ``epoch`` = the float's whole
part); the epoch's ``train_loss`` is the mean of its logged losses (timm's per-epoch train_loss is the
epoch's average too). An evaluation at float epoch ``x`` belongs to the epoch it ends or falls in
(0-based ``ceil(x) - 1``); with several per epoch (``eval_steps``) the last one is the epoch's.
``eval_accuracy`` is a fraction of 1 (the ``evaluate`` accuracy metric); ``eval_top1``/``eval_top5``
written by a timm-style ``compute_metrics`` are read by value.

A truncated ``trainer_state.json`` (the job died while writing it) keeps every ``log_history`` entry
before the cut: they are decoded one by one.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest.contribution import Contribution, Effective, EpochValues
from mnv4_postmortem.analyzer.ingest.trainer_rows import (
    TextFormat,
    FRACTION_BY_HF,
    INFER,
    as_float,
    collect,
    epoch_contribution,
    first_lr_values,
    json_object,
    placed_rows,
    step_frame,
    train_loss_values,
)
from mnv4_postmortem.analyzer.model import Event, IngestError, IngestIssue, SourceInfo, SourceKind, SourceRef

EVAL_COLUMNS = {"eval_loss": "eval_loss", "eval_accuracy": "eval_top1", "eval_acc": "eval_top1",
                "eval_top1": "eval_top1", "eval_acc1": "eval_top1", "eval_top5": "eval_top5", "eval_acc5": "eval_top5"}
EVAL_UNITS = {"eval_accuracy": FRACTION_BY_HF, "eval_acc": FRACTION_BY_HF, "eval_top1": INFER, "eval_acc1": INFER,
              "eval_top5": INFER, "eval_acc5": INFER}
NOT_METRICS = ("epoch", "step", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second")
# training_args.json names -> the run's config names (the rest kept as written).
ARG_NAMES = {"learning_rate": "lr", "num_train_epochs": "epochs", "per_device_train_batch_size": "batch_size",
             "weight_decay": "weight_decay", "warmup_ratio": "warmup_ratio", "lr_scheduler_type": "sched",
             "gradient_accumulation_steps": "grad_accum_steps", "seed": "seed", "max_grad_norm": "clip_grad"}
# TrainingArguments.optim names an implementation (``adamw_torch_fused``, ``adamw_hf``, ``sgd``, ``adafactor``, ...):
# the optimizer it implements, in timm's ``--opt`` spelling, is its first word.
_OPTIMIZER_WORD = re.compile(r"^(adamw|adam|sgd|adafactor|adagrad|rmsprop|lion|lamb)(?:_|$)")
_LOG_HISTORY = re.compile(r'"log_history"\s*:\s*\[')


class _HfTrainerFormat(TextFormat):
    name = "hf_trainer"
    names = ("trainer_state.json",)
    kind: SourceKind = "trainer_log"

    def sniff(self, name: str, head: bytes) -> str | None:
        if b'"log_history"' in head and head.lstrip()[:1] == b"{":
            return "HF Trainer trainer_state.json"
        if name == "training_args.json" and b'"learning_rate"' in head and b'"output_dir"' in head:
            return "HF TrainingArguments (JSON)"
        if name == "config.json" and b'"architectures"' in head and (b'"id2label"' in head or b'"num_labels"' in head):
            return "HF model config.json"
        return None

    def parse_text(self, text: str, shown: str) -> Contribution:
        """The same from text in memory (a pasted excerpt, ``report -``)."""
        name = Path(shown).name
        if name == "training_args.json" and "log_history" not in text[:65536]:
            return training_args_contribution(text, shown)
        if name == "config.json" and "log_history" not in text[:65536]:
            return model_config_contribution(text, shown)
        return trainer_state_contribution(text, shown)


# ------------------------------------------------------------------------------------------ trainer_state


def log_history(text: str, shown: str) -> tuple[list[tuple[int, dict[str, Any]]], dict[str, Any], list[IngestIssue], list[Event]]:
    """The entries of ``log_history`` with their lines, the state's other top-level keys, and what was wrong."""
    issues: list[IngestIssue] = []
    events: list[Event] = []
    try:
        state = json.loads(text)
        if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
            raise IngestError("not a trainer_state.json: no 'log_history' list", SourceRef(shown))
        entries = _with_lines(text, state["log_history"])
        return entries, {k: v for k, v in state.items() if k != "log_history"}, issues, events
    except ValueError as exc:
        line = text.count("\n", 0, getattr(exc, "pos", 0)) + 1
        issues.append(IngestIssue(SourceRef(shown, line=line), f"the JSON breaks here ({getattr(exc, 'msg', exc)}); "
                                  "the log_history entries before it are kept"))
        events.append(Event("truncated", "trainer_state.json ends or breaks mid-document", SourceRef(shown, line=line)))
    match = _LOG_HISTORY.search(text)
    if match is None:
        raise IngestError("not a trainer_state.json: no readable 'log_history'", SourceRef(shown, line=1))
    decoder = json.JSONDecoder()
    entries: list[tuple[int, dict[str, Any]]] = []
    position = match.end()
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            break
        try:
            entry, end = decoder.raw_decode(text, position)
        except ValueError:
            break
        if isinstance(entry, dict):
            entries.append((text.count("\n", 0, position) + 1, entry))
        position = end
    return entries, {}, issues, events


def _with_lines(text: str, entries: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    """Each entry with the line its ``{`` is on (entries are written one per indented block, in order)."""
    match = _LOG_HISTORY.search(text)
    position = match.end() if match else 0
    out = []
    for entry in entries:
        position = text.find("{", position)
        out.append((text.count("\n", 0, position) + 1 if position >= 0 else 0, entry))
        if position >= 0:
            position += 1
            depth = 1
            while depth and position < len(text):  # skip to the entry's end (entries are flat dicts)
                char = text[position]
                depth += char == "{"
                depth -= char == "}"
                position += 1
        if not isinstance(entry, dict):
            out.pop()
    return out


def _epoch_of(value: Any) -> int | None:
    x = as_float(value)
    if x is None or not math.isfinite(x) or x < 0:
        return None
    return max(int(math.ceil(x - 1e-9)) - 1, 0)


def trainer_state_contribution(text: str, shown: str) -> Contribution:
    entries, state, issues, events = log_history(text, shown)
    train = [(line, e) for line, e in entries if "loss" in e and as_float(e.get("step")) is not None]
    evals = [(line, e) for line, e in entries if any(k.startswith("eval_") and k not in NOT_METRICS for k in e)]
    if not train and not evals:
        raise IngestError("log_history has no training or evaluation entries", SourceRef(shown))
    notes: list[str] = []
    epochs: list[EpochValues] = []
    steps = None
    step_scalars = None
    if train:
        step = np.array([as_float(e["step"]) for _, e in train], dtype="float64")
        epoch_float = np.array([as_float(e.get("epoch")) if as_float(e.get("epoch")) is not None else np.nan for _, e in train])
        loss = np.array([as_float(e.get("loss")) if as_float(e.get("loss")) is not None else np.nan for _, e in train])
        lr = np.array([as_float(e.get("learning_rate")) if as_float(e.get("learning_rate")) is not None else np.nan for _, e in train])
        per = _steps_per_epoch(state, step, epoch_float)
        epoch = np.floor(np.maximum(step - 1, 0) / per) if per else np.floor(epoch_float)
        lines = np.array([line for line, _ in train], dtype="int64")
        steps = step_frame(epoch=epoch, idx=step - epoch * per if per else np.full(len(step), np.nan),
                           per_epoch=np.full(len(step), float(per) if per else np.nan), update=step, loss=loss, lr=lr,
                           src_line=lines, src_file=shown)
        logged = np.isfinite(lr)
        epochs += [train_loss_values(epoch, loss, lines, shown),
                   first_lr_values(epoch[logged], lr[logged], lines[logged], shown)]
        notes.append(f"train_loss per epoch: the mean of the logged step losses; {per or '?'} steps per epoch")
        if any("grad_norm" in e for _, e in train):
            norms = pd.Series({float(s): as_float(e.get("grad_norm")) for s, (_, e) in zip(step, train)}, dtype="float64")
            step_scalars = pd.DataFrame({"grad_norm": norms})
    if evals:
        rows, skipped = placed_rows(evals, lambda entry: _epoch_of(entry.get("epoch")), shown,
                                    "an eval entry without an epoch; skipped")
        issues += skipped
        mapped = epoch_contribution(collect(rows, skip=NOT_METRICS), EVAL_COLUMNS, EVAL_UNITS)
        epochs += list(mapped.epochs)
        notes += list(mapped.notes)
        metrics = list(mapped.metrics)
    else:
        metrics = []
    scheduled = as_float(state.get("num_train_epochs"))
    every = sorted(set(int(e) for e in steps["epoch"]) if steps is not None else set())
    span = (every[0], every[-1]) if every else None
    info = SourceInfo(shown, "trainer_log", "HF Trainer trainer_state.json", None,
                      tuple(dict.fromkeys((["train_loss", "lr"] if train else []) + metrics)), span,
                      len(entries), tuple(notes))
    effective = []
    if state.get("train_batch_size") is not None:
        effective.append(Effective("batch_size", state["train_batch_size"], f"{shown}: train_batch_size"))
    return Contribution(format="hf_trainer", sources=(info,), epochs=tuple(epochs), steps=steps,
                        step_scalars=step_scalars, effective=tuple(effective),
                        scheduled_epochs=(int(scheduled), f"{shown}: num_train_epochs") if scheduled and scheduled.is_integer() else None,
                        records=len(evals), events=tuple(events), issues=tuple(issues), trainer="hf_trainer")


def _steps_per_epoch(state: dict[str, Any], step: np.ndarray, epoch_float: np.ndarray) -> int | None:
    """Optimizer steps per epoch: max_steps / num_train_epochs when the state has them, else step / epoch."""
    max_steps, n_epochs = as_float(state.get("max_steps")), as_float(state.get("num_train_epochs"))
    if max_steps and n_epochs:
        return max(int(round(max_steps / n_epochs)), 1)
    keep = np.isfinite(epoch_float) & (epoch_float > 0)
    if not keep.any():
        return None
    return max(int(round(float(np.median(step[keep] / epoch_float[keep])))), 1)


# ------------------------------------------------------------------------------------------ configs


def training_args_contribution(text: str, shown: str) -> Contribution:
    written = json_object(text, shown)
    args = {ARG_NAMES.get(k, k): v for k, v in written.items()}
    renamed = sorted(k for k in written if k in ARG_NAMES and ARG_NAMES[k] != k)
    optimizer = _OPTIMIZER_WORD.match(str(written.get("optim", "")).lower())
    if optimizer and "opt" not in args:
        args["opt"] = optimizer.group(1)
        renamed.append("optim")
    info = SourceInfo(shown, "trainer_config", "HF TrainingArguments (JSON)", None, (), None, len(args),
                      ("read as the run's settings; renamed: " + ", ".join(f"{k} -> {ARG_NAMES.get(k, 'opt')}" for k in renamed),))
    return Contribution(format="hf_trainer", sources=(info,), args=args, args_source=SourceRef(shown), trainer="hf_trainer")


def model_config_contribution(text: str, shown: str) -> Contribution:
    config = json_object(text, shown)
    effective = []
    labels = config.get("id2label")
    classes = len(labels) if isinstance(labels, dict) and labels else config.get("num_labels")
    if isinstance(classes, int) and classes > 0:
        effective.append(Effective("num_classes", classes, f"{shown}: id2label"))
    architecture = config.get("architecture") or config.get("model_type")
    if isinstance(architecture, str):
        effective.append(Effective("model", architecture, f"{shown}: {'architecture' if config.get('architecture') else 'model_type'}"))
    info = SourceInfo(shown, "trainer_config", "HF model config.json", None, (), None, len(config),
                      ("model facts only (classes, architecture): not training settings",))
    return Contribution(format="hf_trainer", sources=(info,), effective=tuple(effective), trainer="hf_trainer")


HF_TRAINER = _HfTrainerFormat()
