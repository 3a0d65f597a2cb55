"""The DeiT-family ``main.py`` + ``engine.py`` outputs (DeiT, ConvNeXt, RepViT, EfficientFormer, P2T, PVT, ...).

Three kinds of file, one format:

- ``log.txt``: one JSON line per epoch, ``{"train_lr", "train_loss", "test_loss", "test_acc1", "test_acc5",
  "epoch", "n_parameters"}``, optional ``train_min_lr``, ``train_weight_decay``, ``test_*_ema`` (ConvNeXt
  ``--model_ema_eval``), ``max_accuracy``; the ``test_*`` keys are absent on epochs without evaluation.
  ``epoch`` is 0-based, accuracies are percent (``timm.utils.accuracy``);
- stdout: ``Namespace(...)`` at start, MetricLogger lines ``Epoch: [3]  [ 100/1251]  eta: ...  lr: ...
  loss: 6.91 (6.93) ...``, ``* Acc@1 ... Acc@5 ... loss ...``, ``Accuracy of the network on the N test
  images: x%`` (ConvNeXt adds ``Accuracy of the model EMA on ...``);
- arguments: the ``Namespace(...)`` print, or ``args.txt`` / ``args.json`` where a fork writes one. The
  Namespace is read with ``ast`` literals only: nothing in it is ever evaluated.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from mnv4_postmortem.analyzer.ingest.contribution import Contribution, EpochColumn, EpochValues
from mnv4_postmortem.analyzer.ingest.trainer_rows import (
    TextFormat,
    PERCENT_BY_TIMM,
    as_float,
    collect,
    epoch_contribution,
    json_lines_text,
    placed_rows,
    step_frame,
)
from mnv4_postmortem.analyzer.model import Event, IngestError, IngestIssue, SourceInfo, SourceKind, SourceRef
from mnv4_postmortem.analyzer.timm.trainers import main_py_family

# log.txt keys -> the run's columns. With ``test_*_ema`` present (both evaluated) the raw model's keys
# also fill ``eval_*_model``.
COLUMNS = {"train_loss": "train_loss", "train_lr": "lr", "test_loss": "eval_loss", "test_acc1": "eval_top1",
           "test_acc5": "eval_top5", "test_loss_ema": "eval_loss_ema", "test_acc1_ema": "eval_top1_ema",
           "test_acc5_ema": "eval_top5_ema"}
RAW_TWINS = {"test_loss": "eval_loss_model", "test_acc1": "eval_top1_model", "test_acc5": "eval_top5_model"}
ACCURACY_KEYS = ("test_acc1", "test_acc5", "test_acc1_ema", "test_acc5_ema", "max_accuracy", "max_accuracy_ema")
NOT_METRICS = ("epoch", "n_parameters")
_LOG_KEYS = (b'"train_lr"', b'"train_loss"', b'"test_acc1"', b'"test_loss"')
_ARGS_KEYS = ("model", "batch_size", "epochs", "lr", "output_dir", "data_path")

_NAMESPACE = re.compile(r"^\s*Namespace\((.*)\)\s*$")
_NAMESPACE_OPEN = re.compile(r"^\s*Namespace\((.*)$")  # cut short (an excerpt)
_STEP = re.compile(r"^Epoch: \[(\d+)\]\s+\[\s*(\d+)/(\d+)\]\s+eta:.*?\blr: ([-+0-9.eE]+|nan|inf)\s.*?\bloss: ([-+0-9.eE]+|nan|inf) \(([-+0-9.eE]+|nan|inf)\)")
_ACC = re.compile(r"^\* Acc@1 ([-+0-9.eE]+|nan) Acc@5 ([-+0-9.eE]+|nan) loss ([-+0-9.eE]+|nan)")
# DeiT prints "Accuracy of the network on ...", ConvNeXt "Accuracy of the model on ..." and "... the model EMA on ...".
_ACC_LINE = re.compile(r"^Accuracy of the (network|model EMA|model ema|model) on (?:the )?\d+ test images: ([-+0-9.eE]+|nan)%")
_EPOCH_END = re.compile(r"^Epoch: \[(\d+)\]\s+Total time:")   # MetricLogger's end-of-epoch line
_AVERAGED_LR = re.compile(r"^Averaged stats: lr: ([-+0-9.eE]+|nan|inf)\s")
# A pasted command line: `python main.py --flags` (a notebook's `!python`, a launcher before main.py).
_COMMAND = re.compile(r"^[!$]?\s*(?:\S*python\S*\s+)(?:.*\s)?\S*main\.py(\s.*)?$")
_STEP_HEAD = re.compile(rb"Epoch: \[\d+\]\s+\[\s*\d+/\d+\]\s+eta:")
_STDOUT_HEAD = re.compile(rb"(?m)^\s*(?:Namespace\(.*\bmodel=|\* Acc@1 [\d.]+ Acc@5 [\d.]+ loss |Accuracy of the (?:network|model) on "
                          rb"(?:the )?\d+ test images: |Epoch: \[\d+\]\s+Total time: )")
# main.py argument names that mean a timm train.py setting under another name (the run's config reads timm's).
ARG_NAMES = {"nb_classes": "num_classes", "update_freq": "grad_accum_steps"}  # ConvNeXt: update_freq = accumulation


class _DeitFormat(TextFormat):
    """DeiT-family log.txt, stdout, and args.txt/args.json."""

    name = "deit_log"
    kind: SourceKind = "trainer_log"

    def sniff(self, name: str, head: bytes) -> str | None:
        first = head.lstrip()[:1]
        if first == b"{" and b'"epoch"' in head and sum(k in head for k in _LOG_KEYS) >= 2 and b'"mode"' not in head:
            return "DeiT-family log.txt (JSON lines)"
        if _STEP_HEAD.search(head) or _STDOUT_HEAD.search(head):
            return "DeiT-family main.py stdout"
        if name in ("args.txt", "args.json") and (first == b"{" or head.lstrip().startswith(b"Namespace(")):
            return f"DeiT-family {name}"
        return None

    def parse_text(self, text: str, shown: str) -> Contribution:
        """The same from text in memory (a pasted excerpt, ``report -``)."""
        family = self.sniff(Path(shown).name, text[:65536].encode("utf-8", "replace")) or "DeiT-family file"
        if family.endswith("(JSON lines)"):
            return log_txt_contribution(text, shown, family)
        if family.endswith("stdout"):
            return stdout_contribution(text, shown, family)
        return args_file_contribution(text, shown, family)


# ------------------------------------------------------------------------------------------- log.txt


def _whole_epoch(record: dict[str, Any]) -> int | None:
    epoch = record.get("epoch")
    if type(epoch) is int and epoch >= 0:  # what main.py writes
        return epoch
    epoch = as_float(epoch)  # anything else, the slow way
    if epoch is None or not float(epoch).is_integer() or epoch < 0:
        return None
    return int(epoch)


def log_txt_contribution(text: str, shown: str, family: str) -> Contribution:
    lines = json_lines_text(text, shown)
    issues = list(lines.issues)
    rows, skipped = placed_rows(lines.records, _whole_epoch, shown, "a record without a whole 'epoch'; skipped")
    issues += skipped
    if not rows:
        raise IngestError("no epoch record: expected JSON lines with 'epoch' and train_/test_ keys", SourceRef(shown))
    keys = set().union(*[record for _, record, _ in rows])
    collected = collect(rows, skip=NOT_METRICS)
    both = any(k.endswith("_ema") and k.startswith("test_") for k in keys)
    units = {k: PERCENT_BY_TIMM for k in ACCURACY_KEYS}
    mapped = epoch_contribution(collected, COLUMNS, units)
    epochs = list(mapped.epochs)
    if both:  # the raw model's eval, as its own pass, when the EMA's was logged beside it
        twins = [EpochColumn(RAW_TWINS[k], *collected.values[k]) for k in RAW_TWINS if k in collected.values]
        epochs.append(EpochValues(columns=twins))
    trainer = main_py_family({}, keys)
    notes = (*mapped.notes, "the reported test_* are the raw model's: main.py's evaluate() runs on the model"
             + (", and the EMA's are logged apart as test_*_ema" if both else
                " (an EMA, if kept, is not what was evaluated)"))
    info = SourceInfo(shown, "trainer_log", family, None, mapped.metrics, mapped.span, len(rows), notes)
    return Contribution(format="deit_log", sources=(info,), epochs=tuple(epochs), records=len(rows),
                        events=tuple(lines.events), issues=tuple(issues), trainer=trainer)


# ------------------------------------------------------------------------------------------- stdout


def stdout_contribution(text: str, shown: str, family: str) -> Contribution:
    issues: list[IngestIssue] = []
    events: list[Event] = []
    args: dict[str, Any] | None = None
    args_line = 0
    step_rows: list[tuple[int, int, int, float, float, float, int]] = []
    evals: list[tuple[int, str, float, float, float, int]] = []  # epoch, pass, top1, top5, loss, line
    averaged: list[tuple[int, float, float | None, int]] = []  # epoch, loss, lr, line
    epoch = -1
    pending: tuple[float, float, float, int] | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        if args is None and (m := _NAMESPACE.match(line) or _NAMESPACE_OPEN.match(line)):
            args, problem = parse_namespace(m.group(1))
            args, args_line = with_timm_names(args), number
            if problem:
                issues.append(IngestIssue(SourceRef(shown, line=number), problem))
            continue
        if args is None and (m := _COMMAND.match(line)):
            args, args_line = command_line_args(m.group(1) or ""), number
            continue
        if m := _EPOCH_END.match(line):
            epoch = int(m.group(1))
            continue
        if m := _STEP.match(line):
            epoch = int(m.group(1))
            step_rows.append((epoch, int(m.group(2)), int(m.group(3)), float(m.group(4)), float(m.group(5)),
                              float(m.group(6)), number))
            continue
        if line.startswith("Averaged stats:") and (m := re.search(r"\bloss: \S+ \(([-+0-9.eE]+|nan|inf)\)", line)):
            lr = _AVERAGED_LR.match(line)
            averaged.append((epoch, float(m.group(1)), float(lr.group(1)) if lr else None, number))
            continue
        if m := _ACC.match(line):
            if pending is not None:  # a "* Acc@1" without its "Accuracy of ..." line: the model's
                evals.append((epoch, "model", *pending))
            pending = (float(m.group(1)), float(m.group(2)), float(m.group(3)), number)
            continue
        if m := _ACC_LINE.match(line):
            which = "ema" if m.group(1).lower() == "model ema" else "model"
            if pending is not None:
                evals.append((epoch, which, *pending))
                pending = None
            else:  # the summary line alone (no "* Acc@1" line pasted): its top-1 only
                evals.append((epoch, which, float(m.group(2)), None, None, number))
            continue
        if line.startswith("Traceback (most recent call last)") or "CUDA out of memory" in line:
            kind = "oom" if "out of memory" in line else "crash"
            events.append(Event(kind, line[:200], SourceRef(shown, line=number), epoch if epoch >= 0 else None))
    if pending is not None:
        evals.append((epoch, "model", *pending))
    # An evaluation before any "Epoch: [e]" line (a pasted final result, main.py --eval) has no epoch: it is
    # listed, not placed on epoch 0.
    unplaced = [e for e in evals if e[0] < 0]
    evals = [e for e in evals if e[0] >= 0]
    placed = [a for a in averaged if a[0] >= 0]
    if not step_rows and not evals and not unplaced and not placed and args is None:
        raise IngestError("no MetricLogger 'Epoch: [e] [i/N]' lines, no '* Acc@1' lines and no Namespace(...)",
                          SourceRef(shown))
    points, has_ema = _eval_points(evals, shown)
    epochs = [EpochValues(points)] if points else []
    steps = None
    if step_rows:
        e, i, n, lr, loss, avg, ln = (np.array(col, dtype="float64") for col in zip(*step_rows))
        steps = step_frame(epoch=e, idx=i, per_epoch=n, update=e * n + i, loss=loss, loss_avg=avg, lr=lr,
                           src_line=ln.astype("int64"), src_file=shown)
        # the epoch's averaged loss (MetricLogger's global average), else the last step's running average
        last = {int(r[0]): (r[5], r[6]) for r in step_rows}
        for ep, value, _, ln2 in averaged:
            if ep >= 0:
                last[ep] = (value, ln2)
        epochs.append(EpochValues([("train_loss", ep, v, SourceRef(shown, line=l)) for ep, (v, l) in last.items()]))
        first_lr = {}
        for r in step_rows:
            first_lr.setdefault(r[0], (r[3], r[6]))
        epochs.append(EpochValues([("lr", ep, v, SourceRef(shown, line=l)) for ep, (v, l) in first_lr.items()],
                                  only_new_column=True))
    else:  # only the epochs' "Averaged stats" lines: MetricLogger's global average loss and the epoch's last lr
        epochs.append(EpochValues([("train_loss", ep, v, SourceRef(shown, line=l)) for ep, v, _, l in placed]))
        epochs.append(EpochValues([("lr", ep, lr, SourceRef(shown, line=l)) for ep, _, lr, l in placed if lr is not None],
                                  only_new_column=True))
    trainer = main_py_family(args or {}, ("test_acc1_ema", "test_acc1") if has_ema else ())
    notes = [f"{shown}:{e[5]}: an evaluation with no epoch before it (Acc@1 {e[2]:g}, Acc@5 {e[3]:g}, loss {e[4]:g}); "
             "listed only" for e in unplaced]
    notes += ["accuracies: percent (timm.utils.accuracy)",
             "eval passes: " + ("the raw model and the EMA ('Accuracy of the model EMA')" if has_ema else "the raw model")]
    every = sorted({p[1] for p in points} | {int(r[0]) for r in step_rows} | {a[0] for a in placed})
    span = (every[0], every[-1]) if every else None
    metrics = tuple(dict.fromkeys([p[0] for p in points] + (["train_loss", "lr"] if step_rows or placed else [])))
    info = SourceInfo(shown, "trainer_log", family, None, metrics, span, len(step_rows) + len(evals), tuple(notes))
    return Contribution(format="deit_log", sources=(info,), epochs=tuple(epochs), steps=steps, args=args,
                        args_source=SourceRef(shown, line=args_line) if args is not None else None,
                        records=len(evals), events=tuple(events), issues=tuple(issues), trainer=trainer)


def _eval_points(evals, shown: str) -> tuple[list[tuple[str, int, float, SourceRef]], bool]:
    has_ema = any(kind == "ema" for _, kind, *_ in evals)
    points = []
    for epoch, kind, top1, top5, loss, line in evals:
        ref = SourceRef(shown, line=line)
        suffix = "_ema" if kind == "ema" else ("_model" if has_ema else "")
        for column, value in (("eval_top1", top1), ("eval_top5", top5), ("eval_loss", loss)):
            if value is None:  # not printed (an "Accuracy of ..." line alone has top-1 only)
                continue
            points.append((column + suffix, epoch, value, ref))
            if kind == "model" and has_ema:  # the raw model's is the reported eval (evaluate(model))
                points.append((column, epoch, value, ref))
    return points, has_ema


# ------------------------------------------------------------------------------------------- arguments


_ARG_START = re.compile(r"(?:^|,\s*)([A-Za-z_]\w*)=")


def parse_namespace(inner: str) -> tuple[dict[str, Any], str | None]:
    """``a=1, b='x', c=[1, 2]`` (the inside of argparse's ``Namespace(...)``) as a dict, by ``ast`` literals
    only (nothing is evaluated). A value that is not a literal (``PosixPath('x')``) is kept as its text; a
    print cut short (a pasted excerpt) keeps the arguments before the cut."""
    try:
        call = ast.parse(f"f({inner})", mode="eval").body
    except SyntaxError:
        return _namespace_prefix(inner)
    out: dict[str, Any] = {}
    for keyword in getattr(call, "keywords", []):
        if keyword.arg is None:
            continue
        try:
            out[keyword.arg] = ast.literal_eval(keyword.value)
        except (ValueError, SyntaxError, TypeError, RecursionError):
            out[keyword.arg] = ast.get_source_segment(f"f({inner})", keyword.value)
    return out, None


def _namespace_prefix(inner: str) -> tuple[dict[str, Any], str | None]:
    """The complete ``key=value`` pairs of a Namespace print that does not parse as a whole."""
    starts = [(m.start(1), m.group(1)) for m in _ARG_START.finditer(inner)]
    out: dict[str, Any] = {}
    for (start, key), following in zip(starts, [*starts[1:], (None, None)]):
        end = following[0] if following[0] is not None else len(inner)
        text = inner[start + len(key) + 1:end].rstrip().rstrip(",").rstrip()
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, RecursionError):
            if following[0] is None:
                return out, f"Namespace(...) is cut short at '{key}='; the {len(out)} arguments before it are kept"
            out[key] = text
    return out, "Namespace(...) does not parse as a whole; its key=value pairs were read one by one"


def command_line_args(flags: str) -> dict[str, Any]:
    """``--key value`` / ``--flag`` words of a pasted ``python main.py ...`` line as arguments (dashes as
    underscores, as argparse stores them); numbers read as numbers, everything else kept as written."""
    try:
        words = shlex.split(flags)
    except ValueError:  # an unbalanced quote in a pasted line: split on spaces
        words = flags.split()
    out: dict[str, Any] = {}
    key = None
    for word in words:
        if word.startswith("--") and len(word) > 2:
            name, _, value = word[2:].partition("=")
            key = name.replace("-", "_")
            out[key] = _number(value) if value else True
            if value:
                key = None
        elif key is not None:
            out[key] = _number(word)
            key = None
    return with_timm_names(out)


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def with_timm_names(args: dict[str, Any]) -> dict[str, Any]:
    """The arguments as main.py named them, plus the timm name of each one that has one (:data:`ARG_NAMES`)."""
    extra = {timm: args[name] for name, timm in ARG_NAMES.items() if name in args and timm not in args}
    return {**args, **extra} if extra else args


def args_file_contribution(text: str, shown: str, family: str) -> Contribution:
    stripped = text.strip()
    if stripped.startswith("Namespace(") and stripped.endswith(")"):
        args, problem = parse_namespace(stripped[len("Namespace("):-1])
        if problem:
            raise IngestError(problem, SourceRef(shown, line=1))
    else:
        try:
            args = json.loads(stripped)
        except ValueError as exc:
            raise IngestError(f"not a JSON object of arguments ({exc.msg})", SourceRef(shown, line=exc.lineno)) from None
        if not isinstance(args, dict):
            raise IngestError("not a JSON object of arguments", SourceRef(shown, line=1))
    if sum(k in args for k in _ARGS_KEYS) < 2:
        raise IngestError("not a main.py argument set: fewer than two of " + ", ".join(_ARGS_KEYS), SourceRef(shown))
    args = with_timm_names(args)
    info = SourceInfo(shown, "trainer_config", family, None, (), None, len(args),
                      ("arguments as main.py spells them",))
    return Contribution(format="deit_log", sources=(info,), args=args, args_source=SourceRef(shown),
                        trainer=main_py_family(args))


DEIT_LOG = _DeitFormat()
