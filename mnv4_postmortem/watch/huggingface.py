"""A Hugging Face ``TrainerCallback`` around :class:`~mnv4_postmortem.watch.Monitor` (needs ``transformers``).

    trainer = Trainer(..., callbacks=[PostmortemCallback({"num_classes": 10}, fail_on="error")])

The recipe comes from ``TrainingArguments`` (epochs, learning rate, optimizer, batch size, warmup); the
train loss from the ``on_log`` records and the eval metrics from ``on_evaluate`` (``eval_loss``,
``eval_accuracy``...). Use ``eval_strategy="epoch"``: the Monitor's unit is the epoch. With ``fail_on``
it sets ``control.should_training_stop`` at the first finding at or above that severity.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from transformers import TrainerCallback

from mnv4_postmortem.analyzer.watch.adapt import MonitorHost, pick_metrics
from mnv4_postmortem.analyzer.watch.tracker import Change

__all__ = ["PostmortemCallback"]


class PostmortemCallback(MonitorHost, TrainerCallback):
    def __init__(self, config: Mapping[str, Any] | None = None, *, fail_on: str | None = None,
                 on_change: Callable[[Change], None] | None = None, confirm: int = 3):
        super().__init__(config, fail_on=fail_on, on_change=on_change, confirm=confirm)
        self.train_loss: float | None = None
        self.last_epoch = -1

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        steps_per_epoch = None
        if state.max_steps and args.num_train_epochs:
            steps_per_epoch = max(1, round(state.max_steps / math.ceil(args.num_train_epochs)))
        if self.start_monitor(_recipe(args, steps_per_epoch), steps_per_epoch):
            control.should_training_stop = True

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.train_loss = pick_metrics({"loss": logs["loss"]}).get("train_loss")

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None,
                    **kwargs: Any) -> None:
        if self.monitor is None or state.epoch is None:
            return
        epoch = max(int(math.ceil(state.epoch - 1e-6)) - 1, self.last_epoch + 1)
        values = pick_metrics(metrics or {})
        if self.train_loss is not None:
            values.setdefault("train_loss", self.train_loss)
        self.last_epoch = epoch
        if self.push_epoch(epoch, values):
            control.should_training_stop = True


def _recipe(args: Any, steps_per_epoch: int | None) -> dict[str, Any]:
    epochs = int(math.ceil(args.num_train_epochs)) if args.num_train_epochs else None
    world = max(int(getattr(args, "world_size", 1) or 1), 1)
    config: dict[str, Any] = {
        "lr": float(args.learning_rate),
        "opt": str(getattr(args.optim, "value", args.optim)).split("_")[0],   # "adamw_torch" -> "adamw"
        "batch_size": int(args.per_device_train_batch_size),
        "world_size": world,
        "grad_accum_steps": int(args.gradient_accumulation_steps or 1),
    }
    if epochs:
        config["epochs"] = epochs
    warmup_steps = args.warmup_steps or 0
    if not warmup_steps and getattr(args, "warmup_ratio", 0) and epochs:
        config["warmup_epochs"] = round(args.warmup_ratio * epochs)
    elif warmup_steps and steps_per_epoch:
        config["warmup_epochs"] = round(warmup_steps / steps_per_epoch)
    else:
        config["warmup_epochs"] = 0
    return config
