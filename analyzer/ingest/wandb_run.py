"""W&B local run folders (``wandb/run-*/files/``), beyond the ``config.yaml`` that ``args_yaml.py`` reads
and the ``output.log`` that the console-log parser reads when it is timm's:

- ``wandb-summary.json``: the last value of every logged key (one point per metric, at the summary's
  ``epoch``; without one the values are listed but placed nowhere);
- a history export as CSV (``wandb_export_*.csv``, or any CSV with W&B's ``_step`` column): one row per
  ``wandb.log`` call, keyed by its ``epoch`` column (timm's ``--log-wandb`` logs the summary.csv row
  each epoch: ``epoch, train_loss, eval_loss, eval_top1, eval_top5, lr``);
- the binary ``run-*.wandb`` file: W&B's own protobuf record stream. Not read (out of scope); it is
  named as such, so a folder holding nothing else says so instead of "no files found".

Key names: timm's (percent accuracies) first, then Keras' and Lightning's common names (units inferred).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.ingest.contribution import Contribution
from mnv4_postmortem.analyzer.ingest.files import open_input
from mnv4_postmortem.analyzer.ingest.lightning_csv import read_metrics
from mnv4_postmortem.analyzer.ingest.trainer_rows import (
    INFER,
    PERCENT_BY_TIMM,
    as_float,
    collect,
    epoch_contribution,
    json_object,
)
from mnv4_postmortem.analyzer.model import IngestError, IngestIssue, SourceInfo, SourceKind, SourceRef

COLUMNS = {"train_loss": "train_loss", "loss": "train_loss", "train/loss": "train_loss",
           "eval_loss": "eval_loss", "val_loss": "eval_loss", "val/loss": "eval_loss",
           "eval_top1": "eval_top1", "val_accuracy": "eval_top1", "val_acc": "eval_top1", "val/acc": "eval_top1",
           "eval_top5": "eval_top5", "lr": "lr", "learning_rate": "lr"}
UNITS = {"eval_top1": PERCENT_BY_TIMM, "eval_top5": PERCENT_BY_TIMM, "val_accuracy": INFER, "val_acc": INFER,
         "val/acc": INFER, "accuracy": INFER, "train/acc": INFER, "acc": INFER}
NOT_METRICS = ("epoch", "_step", "_runtime", "_timestamp", "_wandb", "Step")
BINARY_NOTE = ("a binary W&B run file (.wandb: protobuf records) is not read: export the history as CSV "
               "(the run page's export, or wandb.Api().run(path).history().to_csv(...)) into this folder")


class _WandbFormat:
    name = "wandb_run"
    names = ("wandb-summary.json",)
    kind: SourceKind = "trainer_log"

    def sniff(self, name: str, head: bytes) -> str | None:
        if name == "wandb-summary.json":
            return "W&B wandb-summary.json"
        if name.endswith(".wandb"):
            return "W&B binary run file (.wandb, not read)"
        first = head.split(b"\n", 1)[0]
        if name.endswith(".csv") and (name.startswith("wandb_export") or b"_step" in first.split(b",")):
            return "W&B history export (CSV)"
        return None

    def parse(self, path: Path, shown: str) -> Contribution:
        name = Path(shown).name
        if name.endswith(".wandb"):
            info = SourceInfo(shown, "other", "W&B binary run file (.wandb, not read)", notes=(BINARY_NOTE,))
            return Contribution(format=self.name, sources=(info,), issues=(IngestIssue(SourceRef(shown), BINARY_NOTE),),
                                trainer="wandb")
        with open_input(path, shown) as handle:
            data = handle.read()
        if name == "wandb-summary.json":
            return summary_contribution(data, shown)
        return history_contribution(data, shown)


def summary_contribution(data: bytes, shown: str) -> Contribution:
    summary = json_object(data.decode("utf-8", "replace"), shown)
    epoch = as_float(summary.get("epoch"))
    numeric = sorted(k for k, v in summary.items() if as_float(v) is not None and k not in NOT_METRICS)
    notes = ["final values only (W&B keeps the last of each key); the curves are in the binary .wandb or a history export"]
    if epoch is None or not epoch.is_integer() or epoch < 0:
        notes.append("no 'epoch' key: the values cannot be placed on an epoch: " + ", ".join(numeric))
        info = SourceInfo(shown, "trainer_log", "W&B wandb-summary.json", None, (), None, 1, tuple(notes))
        return Contribution(format="wandb_run", sources=(info,), trainer="wandb")
    mapped = epoch_contribution(collect([(int(epoch), summary, SourceRef(shown))], skip=NOT_METRICS), COLUMNS, UNITS)
    info = SourceInfo(shown, "trainer_log", "W&B wandb-summary.json", None, mapped.metrics, mapped.span, 1,
                      (*notes, *mapped.notes))
    # the summary only fills what the history and logs lack: it is one point, the last
    return Contribution(format="wandb_run", sources=(info,), epochs=mapped.epochs, records=1, trainer="wandb")


def history_contribution(data: bytes, shown: str) -> Contribution:
    frame, issues, events = read_metrics_any(data, shown)
    key = "epoch" if "epoch" in frame.columns else "_step"
    notes = [] if key == "epoch" else ["no 'epoch' column: W&B's _step (one per wandb.log call) is taken as the epoch"]
    rows = []
    for record, line in zip(frame.drop(columns=["src_line"]).to_dict("records"), frame["src_line"]):
        epoch = as_float(record.get(key))
        if epoch is None or not math.isfinite(epoch) or epoch < 0:
            continue
        rows.append((int(epoch), {k: v for k, v in record.items() if not (isinstance(v, float) and math.isnan(v))},
                     SourceRef(shown, line=int(line))))
    if not rows:
        raise IngestError(f"no row with a usable '{key}'", SourceRef(shown))
    mapped = epoch_contribution(collect(rows, skip=NOT_METRICS), COLUMNS, UNITS)
    info = SourceInfo(shown, "trainer_log", "W&B history export (CSV)", None, mapped.metrics, mapped.span, len(rows),
                      (*notes, *mapped.notes))
    return Contribution(format="wandb_run", sources=(info,), epochs=mapped.epochs, records=len(rows),
                        events=tuple(events), issues=tuple(issues), trainer="wandb")


def read_metrics_any(data: bytes, shown: str) -> tuple[pd.DataFrame, list, list]:
    """:func:`lightning_csv.read_metrics` without its Lightning column check (same bad-row handling)."""
    try:
        return read_metrics(data, shown)
    except IngestError as exc:
        if "'epoch' and 'step'" not in exc.message:
            raise
    frame = pd.read_csv(io.BytesIO(data), on_bad_lines="skip", low_memory=False).apply(pd.to_numeric, errors="coerce")
    frame["src_line"] = np.arange(2, len(frame) + 2)
    return frame, [], []


WANDB_RUN = _WandbFormat()
