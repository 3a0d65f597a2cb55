"""mmpretrain (1.x) ``vis_data/scalars.json`` and mmcls (0.x) ``*.log.json``, and the dumped ``.py`` config.

- mmcls 0.x ``*.log.json``: JSON lines; the first may be ``{"env_info": ..., "config": ..., "seed": ...}``;
  then ``{"mode": "train", "epoch": 1, "iter": 100, "lr": ..., "loss": ...}`` and
  ``{"mode": "val", "epoch": 1, "iter": ..., "accuracy_top-1": ..., "accuracy_top-5": ...}``.
- mmpretrain 1.x ``scalars.json``: ``{"lr", "loss", "epoch", "iter", "step"}`` per logged train iteration and
  ``{"accuracy/top1", "accuracy/top5", "step"}`` per validation, where ``step`` is the epoch for an
  epoch-based loop.

``epoch`` is 1-based in both (converted to the run's 0-based epochs); ``iter`` is the iteration inside the
epoch (0.x) or the global iteration (1.x). Accuracies are percent (mmpretrain's ``Accuracy`` metric
multiplies by 100).

The text log (``*.log``: ``... - mmcls - INFO - Epoch [1][10/50]\tlr: 1.000e-01, ..., loss: 2.3026`` and
``Epoch(val) [32][2]\taccuracy_top-1: 8.8235, accuracy_top-5: 94.1176``; mmpretrain 1.x ``Epoch(train) [1][ 10/391]
lr: 1.0000e-01 ... loss: 2.3``) gives the same records, one per line.

The config (``configs/*.py`` dumped into the work dir) is Python; it is read as text with ``ast``:
top-level ``name = literal`` and ``dict(...)`` / ``[...]`` assignments only. Nothing is imported or run.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import numpy as np

from mnv4_postmortem.analyzer.ingest.contribution import Contribution, EpochValues
from mnv4_postmortem.analyzer.ingest.trainer_rows import (
    TextFormat,
    JsonLines,
    Unit,
    as_float,
    collect,
    epoch_contribution,
    json_lines_text,
    placed_rows,
    first_lr_values,
    step_frame,
    train_loss_values,
)
from mnv4_postmortem.analyzer.model import IngestError, IngestIssue, SourceInfo, SourceKind, SourceRef

PERCENT_BY_MM = Unit("percent", "mmpretrain's Accuracy metric returns percent")
COLUMNS = {"accuracy_top-1": "eval_top1", "accuracy/top1": "eval_top1", "accuracy_top-5": "eval_top5",
           "accuracy/top5": "eval_top5", "loss": "eval_loss"}
UNITS = {k: PERCENT_BY_MM for k in ("accuracy_top-1", "accuracy/top1", "accuracy_top-5", "accuracy/top5")}
NOT_METRICS = ("mode", "epoch", "iter", "step", "time", "data_time", "memory", "lr")
_TEXT_LINE = re.compile(r"Epoch(?:\((train|val)\))?\s*\[(\d+)\]\[\s*(\d+)(?:/\d+)?\]\s+(.*)$")
_TEXT_HEAD = re.compile(rb"(- mm\w+ - INFO - Epoch|Epoch\((?:train|val)\)\s*\[\d+\])")
_PAIR = re.compile(r"([A-Za-z_][\w/@.-]*):\s*([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))")
_CONFIG_MARKS = (b"model = dict(", b"model=dict(")
_CONFIG_SECOND = (b"optim_wrapper", b"optimizer = dict(", b"train_cfg", b"runner = dict(", b"data = dict(", b"train_dataloader")


class _MmpretrainFormat(TextFormat):
    name = "mmpretrain_log"
    names = ("scalars.json",)
    kind: SourceKind = "trainer_log"

    def sniff(self, name: str, head: bytes) -> str | None:
        if name.endswith(".py"):
            if any(m in head for m in _CONFIG_MARKS) and any(m in head for m in _CONFIG_SECOND):
                return "mmpretrain config (.py, read as text)"
            return None
        if head.lstrip()[:1] != b"{":
            return "mmcls/mmpretrain text log" if _TEXT_HEAD.search(head) else None
        if b'"mode": "train"' in head or b'"mode": "val"' in head or b'"accuracy_top-1"' in head:
            return "mmcls *.log.json"
        if b'"accuracy/top1"' in head or (b'"data_time"' in head and b'"iter"' in head and b'"step"' in head):
            return "mmpretrain scalars.json"
        return None

    def parse_text(self, text: str, shown: str) -> Contribution:
        """The same from text in memory (a pasted excerpt, ``report -``)."""
        if shown.endswith(".py"):
            return config_contribution(text, shown)
        if text.lstrip()[:1] != "{":
            return log_contribution(text_records(text), shown, "mmcls/mmpretrain text log")
        return log_contribution(json_lines_text(text, shown), shown)


def text_records(text: str) -> JsonLines:
    """The text log's ``Epoch [e][i/N] key: value, ...`` lines as the JSON log's records (``mode``, ``epoch``, ``iter``)."""
    out = JsonLines()
    for number, line in enumerate(text.split("\n"), start=1):
        match = _TEXT_LINE.search(line)
        if match is None:
            continue
        mode = match.group(1) or ("val" if "accuracy" in match.group(4) else "train")
        record: dict[str, Any] = {"mode": mode, "epoch": int(match.group(2)), "iter": int(match.group(3))}
        record.update({k: float(v) for k, v in _PAIR.findall(match.group(4)) if k != "eta"})
        out.records.append((number, record))
    return out


def log_contribution(lines: JsonLines, shown: str, family: str | None = None) -> Contribution:
    issues = list(lines.issues)
    train: list[tuple[int, dict[str, Any]]] = []
    val: list[tuple[int, dict[str, Any]]] = []
    for line, record in lines.records:
        if record.get("mode") == "train" or (record.get("mode") is None and "loss" in record and "lr" in record):
            train.append((line, record))
        elif record.get("mode") == "val" or any(k in record for k in UNITS):
            val.append((line, record))
    if not train and not val:
        raise IngestError("no train or val records: expected mmcls/mmpretrain JSON lines (lr, loss, accuracy)", SourceRef(shown))
    epochs: list[EpochValues] = []
    steps = None
    notes: list[str] = []
    if train:
        epoch = np.array([_epoch0(r.get("epoch")) for _, r in train], dtype="float64")
        iters = np.array([as_float(r.get("iter")) if as_float(r.get("iter")) is not None else np.nan for _, r in train])
        loss = np.array([as_float(r.get("loss")) if as_float(r.get("loss")) is not None else np.nan for _, r in train])
        lr = np.array([as_float(r.get("lr")) if as_float(r.get("lr")) is not None else np.nan for _, r in train])
        lines_ = np.array([line for line, _ in train], dtype="int64")
        keep = np.isfinite(epoch)
        steps = step_frame(epoch=epoch[keep], idx=iters[keep], per_epoch=np.full(int(keep.sum()), np.nan),
                           update=np.arange(int(keep.sum()), dtype="float64"), loss=loss[keep], lr=lr[keep],
                           src_line=lines_[keep], src_file=shown)
        # (mean_by_epoch drops the rows without an epoch itself, so the kept rows give the same means)
        epochs += [train_loss_values(epoch[keep], loss[keep], lines_[keep], shown),
                   first_lr_values(epoch[keep], lr[keep], lines_[keep], shown)]
        notes.append("train_loss per epoch: the mean of the logged iteration losses; epochs 1-based in the file")
    rows, skipped = placed_rows(val, lambda record: _epoch0(record.get("epoch", record.get("step"))), shown,
                                "a val record without an epoch or step; skipped")
    issues += skipped
    mapped = epoch_contribution(collect(rows, skip=NOT_METRICS), COLUMNS, UNITS)
    epochs += list(mapped.epochs)
    notes += list(mapped.notes)
    family = family or ("mmcls *.log.json" if any("mode" in r for _, r in lines.records) else "mmpretrain scalars.json")
    every = sorted({int(e) for e in steps["epoch"]} if steps is not None else set() | {r[0] for r in rows})
    info = SourceInfo(shown, "trainer_log", family, None,
                      tuple(dict.fromkeys((["train_loss", "lr"] if train else []) + list(mapped.metrics))),
                      (every[0], every[-1]) if every else None, len(lines.records), tuple(notes))
    return Contribution(format="mmpretrain_log", sources=(info,), epochs=tuple(epochs), steps=steps, records=len(rows),
                        events=tuple(lines.events), issues=tuple(issues), trainer="mmpretrain")


def _epoch0(value: Any) -> int | None:
    number = as_float(value)
    if number is None or not number.is_integer() or number < 1:
        return None
    return int(number) - 1


# ------------------------------------------------------------------------------------------ config


def read_config(text: str, shown: str) -> tuple[dict[str, Any], list[IngestIssue]]:
    """Top-level literal assignments of an mm config, ``dict(a=1)`` calls read as dicts; never executed."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise IngestError(f"not readable as a config ({exc.msg})", SourceRef(shown, line=exc.lineno)) from None
    out: dict[str, Any] = {}
    issues: list[IngestIssue] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = _literal(node.value)
            except ValueError:
                issues.append(IngestIssue(SourceRef(shown, line=node.lineno),
                                          f"'{node.targets[0].id}' is not a literal; not read"))
    return out, issues


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {k.arg: _literal(k.value) for k in node.keywords if k.arg is not None}
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values) if k is not None}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(v) for v in node.elts]
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, RecursionError):
        raise ValueError("not a literal") from None


def _dig(config: dict[str, Any], *path: str) -> Any:
    value: Any = config
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def config_contribution(text: str, shown: str) -> Contribution:
    config, issues = read_config(text, shown)
    optimizer = _dig(config, "optim_wrapper", "optimizer") or config.get("optimizer") or {}
    backbone = _dig(config, "model", "backbone") or {}
    facts = {
        "model": "/".join(str(v) for v in (backbone.get("type"), backbone.get("arch") or backbone.get("model_name") or backbone.get("depth")) if v)
        if isinstance(backbone, dict) else None,
        "num_classes": _dig(config, "model", "head", "num_classes"),
        "epochs": _dig(config, "train_cfg", "max_epochs") or _dig(config, "runner", "max_epochs") or config.get("total_epochs"),
        "batch_size": _dig(config, "train_dataloader", "batch_size") or _dig(config, "data", "samples_per_gpu"),
        "opt": optimizer.get("type") if isinstance(optimizer, dict) else None,
        "lr": optimizer.get("lr") if isinstance(optimizer, dict) else None,
        "weight_decay": optimizer.get("weight_decay") if isinstance(optimizer, dict) else None,
    }
    args = {k: v for k, v in facts.items() if v not in (None, "")}
    if not args:
        raise IngestError("no model, optimizer or schedule settings found in the config", SourceRef(shown))
    info = SourceInfo(shown, "trainer_config", "mmpretrain config (.py, read as text)", None, (), None, len(config),
                      ("settings read from literal assignments (model.backbone, optim_wrapper.optimizer, train_cfg, "
                       "train_dataloader); nothing executed",))
    return Contribution(format="mmpretrain_log", sources=(info,), args=args, args_source=SourceRef(shown),
                        issues=tuple(issues), trainer="mmpretrain")


MMPRETRAIN_LOG = _MmpretrainFormat()
