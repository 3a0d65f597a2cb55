"""PyTorch Lightning's ``CSVLogger`` output: ``metrics.csv`` and the ``hparams.yaml`` beside it.

``metrics.csv`` has one column per logged name and sparse rows keyed by ``epoch`` and ``step``: a
``self.log(..., on_step=True, on_epoch=True)`` name appears twice, as ``<name>_step`` on step rows and
``<name>_epoch`` on the epoch-end row; validation names (``val_loss``, ``val_acc``) appear on their own
epoch-end rows. ``epoch`` is 0-based; ``step`` is the global optimizer step.

The names are the user's own, so the mapping is by convention (``train_loss`` / ``train_loss_epoch`` /
``val_loss`` / ``val_acc`` / ``val_acc1`` / ``val_top1`` / ``lr-<optimizer>`` from ``LearningRateMonitor``);
every other column is kept under its own name and listed. Accuracy units are not fixed by Lightning: a
series whose values are all <= 1 is read as a fraction (torchmetrics' ``Accuracy`` returns one).
"""

from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mnv4_postmortem.analyzer.ingest.contribution import Contribution, EpochValues
from mnv4_postmortem.analyzer.ingest.files import open_input
from mnv4_postmortem.analyzer.ingest.trainer_rows import INFER, mean_by_epoch, step_frame, to_percent
from mnv4_postmortem.analyzer.model import Event, IngestError, IngestIssue, SourceInfo, SourceKind, SourceRef

# Epoch-level names -> the run's columns, most specific first.
EPOCH_COLUMNS = {
    "train_loss_epoch": "train_loss", "train/loss_epoch": "train_loss", "train_loss": "train_loss",
    "val_loss": "eval_loss", "val/loss": "eval_loss", "val_loss_epoch": "eval_loss",
    "val_acc": "eval_top1", "val_acc1": "eval_top1", "val_top1": "eval_top1", "val_accuracy": "eval_top1",
    "val/acc": "eval_top1", "val_acc_epoch": "eval_top1",
    "val_acc5": "eval_top5", "val_top5": "eval_top5", "val/acc5": "eval_top5",
}
STEP_LOSS = ("train_loss_step", "train/loss_step", "train_loss", "train/loss", "loss")
ACCURACY = re.compile(r"(acc|top[15]|accuracy)", re.IGNORECASE)
_LR = re.compile(r"^lr[-_/]")
_SPLIT = re.compile(r"Skipping line (\d+): (.*)")


class _LightningFormat:
    name = "lightning_csv"
    kind: SourceKind = "trainer_log"

    def sniff(self, name: str, head: bytes) -> str | None:
        if name == "hparams.yaml":
            return "Lightning hparams.yaml"
        header = head.split(b"\n", 1)[0].decode("utf-8", "replace").strip().split(",")
        if name.endswith(".csv") and "epoch" in header and "step" in header and "_step" not in header:
            return "Lightning CSVLogger metrics.csv"
        return None

    def parse(self, path: Path, shown: str) -> Contribution:
        if Path(shown).name == "hparams.yaml":
            return hparams_contribution(path, shown)
        with open_input(path, shown) as handle:
            data = handle.read()
        return metrics_contribution(data, shown)


def metrics_contribution(data: bytes, shown: str) -> Contribution:
    frame, issues, events = read_metrics(data, shown)
    per_step = step_columns(frame)
    steps, loss_column, step_notes = _steps(frame, shown, per_step)
    points, metrics, notes = _epoch_points(frame, shown, per_step)
    if steps is not None and "train_loss" not in metrics:  # no epoch-level train loss: the epoch's mean
        last_line = steps.groupby("epoch")["src_line"].max()
        points += [("train_loss", e, v, SourceRef(shown, line=int(last_line[e])))
                   for e, v in mean_by_epoch(steps["epoch"].to_numpy(), steps["train_loss"].to_numpy()).items()]
        metrics.append("train_loss")
        notes.append(f"train_loss per epoch: the mean of the logged {loss_column} values")
    if not points and steps is None:
        raise IngestError("no epoch or step values: an empty metrics.csv", SourceRef(shown))
    epochs = frame["epoch"].dropna()
    span = (int(epochs.min()), int(epochs.max())) if len(epochs) else None
    info = SourceInfo(shown, "trainer_log", "Lightning CSVLogger metrics.csv", None, tuple(dict.fromkeys(metrics)), span, len(frame),
                      (*notes, *step_notes))
    return Contribution(format="lightning_csv", sources=(info,), epochs=(EpochValues(points),) if points else (),
                        steps=steps, records=int(epochs.nunique()), events=tuple(events), issues=tuple(issues),
                        trainer="lightning")


def read_metrics(data: bytes, shown: str) -> tuple[pd.DataFrame, list[IngestIssue], list[Event]]:
    """The CSV by pandas' C reader; a malformed row is skipped with an issue naming its line (pandas
    reports it), and a file that ends mid-row is a ``truncated`` event."""
    issues: list[IngestIssue] = []
    events: list[Event] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(io.BytesIO(data), on_bad_lines="warn", low_memory=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
            raise IngestError(f"not a readable CSV ({str(exc).splitlines()[0]})", SourceRef(shown)) from None
    for warning in caught:
        for line, what in _SPLIT.findall(str(warning.message)):
            issues.append(IngestIssue(SourceRef(shown, line=int(line)), f"malformed row ({what}); skipped"))
    if "epoch" not in frame.columns or "step" not in frame.columns:
        raise IngestError("not a CSVLogger metrics.csv: no 'epoch' and 'step' columns", SourceRef(shown, line=1))
    # a stray word in a numeric column (pandas reads the column as text: object, or pandas 3's str)
    text_columns = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if text_columns:
        frame[text_columns] = frame[text_columns].apply(pd.to_numeric, errors="coerce")
    frame["src_line"] = np.arange(2, len(frame) + 2)
    # LearningRateMonitor's rows carry a step but no epoch: they belong to the epoch of the next row.
    frame["epoch"] = frame["epoch"].bfill().ffill()
    if data and not data.endswith(b"\n"):
        last = data.count(b"\n") + 1
        events.append(Event("truncated", "the file ends mid-row", SourceRef(shown, line=last)))
        issues.append(IngestIssue(SourceRef(shown, line=last), "the last row is cut off; its values are not used"))
        frame = frame.iloc[:-1]
    return frame, issues, events


def step_columns(frame: pd.DataFrame) -> set[str]:
    """Columns logged per step: ``<name>_step``, or a column with more values than 1.5 per epoch (an epoch-level
    column has one per epoch, a few more where a resumed epoch repeats; a per-step one has many)."""
    n_epochs = max(int(frame["epoch"].nunique()), 1)
    counts = frame.count()
    return {str(c) for c in frame.columns
            if c not in ("epoch", "step", "src_line") and (str(c).endswith("_step") or counts[c] > 1.5 * n_epochs)}


def _steps(frame: pd.DataFrame, shown: str, per_step: set[str]) -> tuple[pd.DataFrame | None, str | None, tuple[str, ...]]:
    column = next((c for c in STEP_LOSS if c in per_step), None)
    if column is None:
        return None, None, ()
    loss = frame[column].to_numpy("float64")
    epoch, step = frame["epoch"].to_numpy("float64"), frame["step"].to_numpy("float64")
    keep = np.flatnonzero(~(np.isnan(loss) | np.isnan(epoch) | np.isnan(step)))
    if not len(keep):
        return None, None, ()
    epoch, step = epoch[keep], step[keep]
    epochs, of_row = np.unique(epoch, return_inverse=True)
    starts = np.full(len(epochs), np.inf)
    np.minimum.at(starts, of_row, step)   # each epoch's first logged step
    # updates per epoch: the steps between two epochs' first logged steps (a complete epoch's span)
    per = float(np.median(np.diff(starts))) if len(starts) > 1 else np.nan
    lr_column = next((c for c in frame.columns if _LR.match(str(c))), None)
    lr = frame[lr_column].to_numpy("float64")[keep] if lr_column and lr_column in per_step else None
    steps = step_frame(epoch=epoch, idx=step - starts[of_row], per_epoch=np.full(len(keep), per), update=step,
                       loss=loss[keep], lr=lr, src_line=frame["src_line"].to_numpy()[keep], src_file=shown)
    return steps, column, (f"step frame: {column} on {len(keep)} rows; global step = Lightning's 'step'",)


def _epoch_points(frame: pd.DataFrame, shown: str, per_step: set[str]) -> tuple[list, list[str], list[str]]:
    points: list[tuple[str, int, float, SourceRef]] = []
    metrics: list[str] = []
    notes: list[str] = []
    unknown: list[str] = []
    taken: set[str] = set()
    epoch = frame["epoch"].to_numpy("float64")
    lines = frame["src_line"].to_numpy()
    for name in frame.columns:
        if name in ("epoch", "step", "src_line") or str(name) in per_step:
            continue
        column = "lr" if _LR.match(str(name)) else EPOCH_COLUMNS.get(str(name))
        if column in taken:
            column = None  # a less specific alias of a column already filled: kept as its own name
        rows = _epoch_end_rows(epoch, frame[name].to_numpy("float64"))
        if not len(rows):
            continue
        values = frame[name].to_numpy("float64")[rows].tolist()
        if ACCURACY.search(str(name)) and "loss" not in str(name):
            values, note = to_percent(values, INFER, str(name))
            notes.append(note)
        if column is None:
            column = str(name)
            unknown.append(column)
        else:
            taken.add(column)
        metrics.append(column)
        points += [(column, int(e), v, SourceRef(shown, line=int(l)))
                   for e, v, l in zip(epoch[rows], values, lines[rows]) if not math.isnan(v)]
    if unknown:
        notes.append("kept under their own names (no canonical column): " + ", ".join(sorted(unknown)))
    return points, metrics, notes


def _epoch_end_rows(epoch: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The rows, in file order, holding each epoch's last value of a column (a resumed epoch: its latest)."""
    present = np.flatnonzero(~(np.isnan(epoch) | np.isnan(values)))
    if not len(present):
        return present
    _, last_from_end = np.unique(epoch[present][::-1], return_index=True)
    return present[np.sort(len(present) - 1 - last_from_end)]


def hparams_contribution(path: Path, shown: str) -> Contribution:
    with open_input(path, shown) as handle:
        text = handle.read(1 << 20).decode("utf-8", "replace")
    try:
        args = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise IngestError(f"not readable YAML ({getattr(exc, 'problem', exc)})",
                          SourceRef(shown, line=mark.line + 1 if mark else None)) from None
    if not isinstance(args, dict) or not args:
        raise IngestError("no hyperparameters: the top level is not key: value pairs", SourceRef(shown))
    info = SourceInfo(shown, "trainer_config", "Lightning hparams.yaml", None, (), None, len(args),
                      ("hyperparameters as the LightningModule named them (save_hyperparameters)",))
    return Contribution(format="lightning_csv", sources=(info,), args=args, args_source=SourceRef(shown),
                        trainer="lightning")


LIGHTNING_CSV = _LightningFormat()
