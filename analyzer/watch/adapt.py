"""What the trainer adapters share: metric names of other loops mapped to the report's, and what to do
with the changes a :class:`Monitor` returns. No trainer library is imported here."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from mnv4_postmortem.analyzer.findings import Severity
from mnv4_postmortem.analyzer.watch.monitor import Monitor
from mnv4_postmortem.analyzer.watch.tracker import Change, at_least

# The report's metric <- the names loops commonly log it under, first match wins. Accuracies logged as
# fractions (every value in [0, 1]) are read as percent like TensorBoard's.
METRIC_NAMES: Mapping[str, tuple[str, ...]] = {
    "train_loss": ("train_loss_epoch", "train_loss", "train/loss", "loss"),
    "eval_loss": ("val_loss", "eval_loss", "val/loss", "valid_loss"),
    "eval_top1": ("val_acc", "val_accuracy", "eval_accuracy", "val/acc", "val_top1", "eval_top1", "val_acc1"),
    "eval_top5": ("val_top5", "eval_top5", "val_acc5"),
}
ACCURACIES = frozenset({"eval_top1", "eval_top5"})


def pick_metrics(logged: Mapping[str, Any]) -> dict[str, float]:
    """The report's metrics from a loop's logged values (tensors and numbers; missing ones left out)."""
    out: dict[str, float] = {}
    for metric, names in METRIC_NAMES.items():
        for name in names:
            if name in logged:
                value = _number(logged[name])
                if value is not None:
                    out[metric] = value * 100.0 if metric in ACCURACIES and 0.0 <= value <= 1.0 else value
                    break
    return out


def _number(value: Any) -> float | None:
    try:
        number = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return None
    return number


class ChangeHandler:
    """Collects the changes, calls ``on_change`` for each, and says when ``fail_on`` is reached."""

    def __init__(self, fail_on: str | Severity | None, on_change: Callable[[Change], None] | None):
        self.fail_on = Severity.parse(fail_on) if fail_on is not None else None
        self.on_change = on_change
        self.changes: list[Change] = []
        self.stop_reason: Change | None = None

    def __call__(self, changes: list[Change]) -> bool:
        """True when training should stop."""
        for change in changes:
            self.changes.append(change)
            if self.on_change is not None:
                self.on_change(change)
            if self.fail_on is not None and self.stop_reason is None and at_least(change, self.fail_on):
                self.stop_reason = change
        return self.stop_reason is not None


class MonitorHost:
    """The part of a trainer callback that is not about the trainer: the user's config over the recipe the
    trainer knows, one :class:`Monitor`, and the changes it returns (``handler``). The adapters
    (``mnv4_postmortem.watch.lightning`` / ``.huggingface``) only read their trainer's state into these calls."""

    def __init__(self, config: Mapping[str, Any] | None = None, *, fail_on: str | None = None,
                 on_change: Callable[[Change], None] | None = None, confirm: int = 3):
        self.user_config = dict(config or {})
        self.monitor: Monitor | None = None
        self.confirm = confirm
        self.handler = ChangeHandler(fail_on, on_change)

    @property
    def changes(self) -> list[Change]:
        return self.handler.changes

    def start_monitor(self, recipe: Mapping[str, Any], steps_per_epoch: int | None) -> bool:
        """Start the Monitor on the trainer's recipe (what the user passed wins); True when training should stop."""
        self.monitor = Monitor({**recipe, **self.user_config}, steps_per_epoch=steps_per_epoch, confirm=self.confirm)
        return self.handler(self.monitor.start())

    def push_epoch(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        """One evaluated epoch's metrics; True when training should stop (False before the Monitor started)."""
        return self.monitor is not None and self.handler(self.monitor.log_epoch(epoch, **metrics))
