"""The push API: a training loop of any kind reports its metrics, and gets back what changed.

    monitor = Monitor({"opt": "sgd", "lr": 0.5, "batch_size": 32, "epochs": 30, "num_classes": 10})
    for epoch in range(30):
        ...train, evaluate...
        for change in monitor.log_epoch(epoch, train_loss=loss, eval_loss=val_loss, eval_top1=top1):
            print(change.kind, change.finding.rule_id if change.finding else "")

``config`` uses timm's argument names (``opt``, ``lr``, ``batch_size``, ``epochs``, ``warmup_epochs``,
``model_ema``, ``model_ema_decay``, ``num_classes``...): the rules read the same names as for a timm run.
Metrics use the report's names: ``train_loss``, ``eval_loss``, ``eval_top1`` and ``eval_top5`` (percent),
``lr``. The run is rebuilt from what was pushed (``ingest.synthetic``) and diagnosed by the same pipeline
and tracker as ``watch``; nothing is read from or written to disk.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from mnv4_postmortem.analyzer.watch.tracker import Change

METRICS = ("train_loss", "eval_loss", "eval_top1", "eval_top5", "lr")


class Monitor:
    def __init__(self, config: Mapping[str, Any] | None = None, *, steps_per_epoch: int | None = None,
                 rules: Sequence[str] = (), confirm: int = 3, pack: Any = None):
        from mnv4_postmortem.analyzer.engine.loader import load_pack
        from mnv4_postmortem.analyzer.watch.live import LiveDiagnosis

        self.config: dict[str, Any] = dict(config or {})
        self.steps_per_epoch = steps_per_epoch
        self.series: dict[str, list[float]] = {name: [] for name in METRICS}
        self.epochs: list[int] = []
        self.live = LiveDiagnosis(pack if pack is not None else load_pack(list(rules)), confirm)
        self.changes: list[Change] = []

    # -- what the loop pushes ------------------------------------------------------------------
    def set_config(self, config: Mapping[str, Any]) -> None:
        self.config.update(config)

    def log_step(self, epoch: int, index: int, per_epoch: int) -> None:
        """A training step (only its position matters: the update count per epoch, for EMA and schedule)."""
        if per_epoch > 0:
            self.steps_per_epoch = int(per_epoch)

    def start(self) -> list[Change]:
        """Before the first epoch: the predictions the config alone supports."""
        return self._update()

    def log_epoch(self, epoch: int, **metrics: float | None) -> list[Change]:
        """One finished epoch's metrics; returns the changes (new findings, findings gone, top cause)."""
        unknown = set(metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metric(s) {sorted(unknown)}; use {', '.join(METRICS)}")
        if self.epochs and epoch <= self.epochs[-1]:
            raise ValueError(f"epoch {epoch} was already logged (epochs must increase)")
        # epochs are consecutive in the synthetic run: a gap is NaN rows
        expected = self.epochs[-1] + 1 if self.epochs else 0
        for missing in range(expected, epoch):
            self._append(missing, {})
        self._append(epoch, metrics)
        return self._update()

    @property
    def findings(self) -> list[Any]:
        """The findings announced now."""
        return [change.finding for change in self.live.tracker.active()]

    # -- internals -------------------------------------------------------------------------------
    def _append(self, epoch: int, metrics: Mapping[str, float | None]) -> None:
        self.epochs.append(epoch)
        for name in METRICS:
            value = metrics.get(name)
            self.series[name].append(math.nan if value is None else float(value))

    def _update(self) -> list[Change]:
        from mnv4_postmortem.analyzer.ingest.synthetic import synthetic_run

        series = {name: values for name, values in self.series.items() if any(not math.isnan(v) for v in values)}
        run = synthetic_run(self.config, series, self.steps_per_epoch)
        changes = self.live.update(run)
        self.changes += changes
        return changes
