"""Each arm's output folder in train.py's own formats, so the analyzer reads it with its parsers.

* ``args.yaml``: ``yaml.safe_dump`` of the arm's arguments, as train.py dumps its argparse namespace;
* ``train.log``: the console lines of timm 1.0's train.py (header lines the analyzer reads, ``Train:``
  lines at ``log_interval`` and on the last update, ``Test:`` / ``Test (EMA):`` lines);
* ``summary.csv``: written by timm's own ``timm.utils.update_summary``;
* ``tensorboard/``: epoch scalars (``train/loss``, ``eval/loss``, ``eval/top1``, ``eval/top5``, ``lr``).

Besides those, ``final_eval.json`` keeps the per-sample correctness of the last evaluation, of the
reported model (``correct``: the EMA's when evaluated) and of the raw model (``correct_model``) (for the paired bootstrap in :mod:`mnv4_postmortem.runner.verify`); no timm file has it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

__all__ = ["ArmWriter"]


class ArmWriter:
    def __init__(self, out_dir: Path, args: Mapping[str, Any], tensorboard: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name in ("summary.csv", "train.log", "final_eval.json"):
            (self.out_dir / name).unlink(missing_ok=True)
        dumped = {k: _yaml_value(v) for k, v in args.items()}
        dumped["output"] = str(self.out_dir)
        with open(self.out_dir / "args.yaml", "w", encoding="utf-8") as f:
            yaml.safe_dump(dumped, f, default_flow_style=False)
        self._log = open(self.out_dir / "train.log", "w", encoding="utf-8")
        self._header_written = False
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"))

    def line(self, text: str) -> None:
        self._log.write(text + "\n")

    def header(self, lines: Sequence[str]) -> None:
        for text in lines:
            self.line(text)

    def train_line(self, epoch: int, update_idx: int, updates_per_epoch: int, loss_now: float, loss_avg: float,
                   time_now: float, time_avg: float, samples: int, lr: float, data_now: float, data_avg: float) -> None:
        # timm 1.0 train.py, train_one_epoch
        self.line(
            f"Train: {epoch} [{update_idx:>4d}/{updates_per_epoch} "
            f"({100. * (update_idx + 1) / updates_per_epoch:>3.0f}%)]  "
            f"Loss: {loss_now:#.3g} ({loss_avg:#.3g})  "
            f"Time: {time_now:.3f}s, {samples / max(time_now, 1e-9):>7.2f}/s  "
            f"({time_avg:.3f}s, {samples / max(time_avg, 1e-9):>7.2f}/s)  "
            f"LR: {lr:.3e}  "
            f"Data: {data_now:.3f} ({data_avg:.3f})"
        )

    def test_line(self, suffix: str, batch_idx: int, last_idx: int, t_now: float, t_avg: float, loss_now: float,
                  loss_avg: float, top1_now: float, top1_avg: float, top5_now: float, top5_avg: float) -> None:
        # timm 1.0 train.py, validate
        self.line(
            f"Test{suffix}: [{batch_idx:>4d}/{last_idx}]  "
            f"Time: {t_now:.3f} ({t_avg:.3f})  "
            f"Loss: {loss_now:>7.3f} ({loss_avg:>6.3f})  "
            f"Acc@1: {top1_now:>7.3f} ({top1_avg:>7.3f})  "
            f"Acc@5: {top5_now:>7.3f} ({top5_avg:>7.3f})"
        )

    def epoch_end(self, epoch: int, train_metrics: Mapping[str, float], eval_metrics: Mapping[str, float], lr: float,
                  first: bool) -> None:
        from timm.utils import update_summary

        update_summary(epoch, OrderedDict(train_metrics), OrderedDict(eval_metrics),
                       filename=str(self.out_dir / "summary.csv"), lr=lr, write_header=first)
        self._log.flush()
        if self._tb is not None:
            self._tb.add_scalar("train/loss", train_metrics["loss"], epoch)
            for key in ("loss", "top1", "top5"):
                self._tb.add_scalar(f"eval/{key}", eval_metrics[key], epoch)
            self._tb.add_scalar("lr", lr, epoch)

    def final_eval(self, correct: Sequence[int], correct_model: Sequence[int], metrics: Mapping[str, float]) -> None:
        payload = {"correct": [int(c) for c in correct], "correct_model": [int(c) for c in correct_model],
                   "metrics": dict(metrics)}
        (self.out_dir / "final_eval.json").write_text(json.dumps(payload), encoding="utf-8")

    def close(self) -> None:
        self._log.close()
        if self._tb is not None:
            self._tb.close()


def _yaml_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_yaml_value(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _yaml_value(v) for k, v in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value
