"""A PyTorch Lightning callback around :class:`~mnv4_postmortem.watch.Monitor` (needs ``lightning``).

    trainer = Trainer(callbacks=[PostmortemCallback({"num_classes": 10}, fail_on="error")])

At the start it reads the recipe Lightning knows (max_epochs, the optimizer's class and LR, batches per
epoch, the batch size) for the predictions; at each epoch end it pushes the logged epoch metrics
(``train_loss``, ``val_loss``, ``val_acc``... see ``analyzer.watch.adapt.METRIC_NAMES``). With ``fail_on``
it sets ``trainer.should_stop`` at the first finding at or above that severity.
"""

from __future__ import annotations

from typing import Any

try:
    from lightning.pytorch import Callback
except ImportError:  # the older package name
    from pytorch_lightning import Callback  # type: ignore[no-redef]

from mnv4_postmortem.analyzer.watch.adapt import MonitorHost, pick_metrics

__all__ = ["PostmortemCallback"]


class PostmortemCallback(MonitorHost, Callback):
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self.start_monitor(_recipe(trainer), _batches(trainer)):
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        if self.push_epoch(int(trainer.current_epoch), pick_metrics(trainer.callback_metrics)):
            trainer.should_stop = True


def _recipe(trainer: Any) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if trainer.max_epochs and trainer.max_epochs > 0:
        config["epochs"] = int(trainer.max_epochs)
    optimizers = getattr(trainer, "optimizers", None) or []
    if optimizers:
        optimizer = optimizers[0]
        config["opt"] = type(optimizer).__name__.lower()
        groups = getattr(optimizer, "param_groups", [])
        if groups and "lr" in groups[0]:
            config["lr"] = float(groups[0]["lr"])
    loader = getattr(trainer, "train_dataloader", None)
    batch = getattr(loader, "batch_size", None)
    if isinstance(batch, int):
        config["batch_size"] = batch
    return config


def _batches(trainer: Any) -> int | None:
    count = getattr(trainer, "num_training_batches", None)
    return int(count) if isinstance(count, (int, float)) and count not in (float("inf"),) and count > 0 else None
