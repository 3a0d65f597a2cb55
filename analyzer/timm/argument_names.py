"""Does a settings file hold timm ``train.py`` arguments? The principle, stated once.

timm writes args.yaml as ``yaml.safe_dump(vars(args))``: every key is one of train.py's argument names.
Another trainer's settings file (Lightning's ``hparams.yaml``, Ultralytics' ``args.yaml``, a config of
one's own) shares some generic names with it (``lr``, ``batch_size``, ``epochs``) and little else. Taking
such a file for timm's arguments is harmful: timm's defaults would fill every key it lacks, and the rules
would reason about an EMA, a schedule or a drop-path the run never had. So a file is timm's arguments when
both hold:

1. **most of its keys are train.py argument names** (more than half, ``defaults.ARGUMENT_NAMES``): train.py
   writes nothing else; "half" leaves room for a fork's own extra arguments and for names of newer timm
   versions that the tables do not list;
2. **at least one is a timm hallmark**: an argument name that is timm's own spelling of a feature
   (``model_ema_decay``, ``drop_path``, ``reprob``, ``smoothing``, ``warmup_lr``, ``sched`` ...), that is, any
   argument name outside :data:`GENERIC_NAMES`, the hyper-parameter names every training script may use.

Neither is a count fitted to files at hand: (1) is a majority, (2) asks for one piece of timm-specific
evidence. A file that fails is kept as "other config": its keys are listed, nothing is read as a setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from mnv4_postmortem.analyzer.timm.defaults import ARGUMENT_NAMES, DIAGNOSED_NAMES

# Names any training script's settings may carry, timm's or not: the train.py names that other trainers'
# own settings also use (Ultralytics' args.yaml: model, epochs, pretrained, seed, amp, workers, device, resume,
# momentum, weight_decay, warmup_epochs, mixup, scale; HF TrainingArguments: seed, weight_decay, local_rank)
# and the textbook hyper-parameters a hand-written module is configured with.
GENERIC_NAMES: frozenset[str] = frozenset({
    "model", "pretrained", "resume", "num_classes", "batch_size", "epochs", "lr", "opt", "momentum",
    "weight_decay", "min_lr", "warmup_epochs", "seed", "workers", "device", "amp", "output", "experiment",
    "local_rank", "log_interval", "drop", "mixup", "scale", "ratio", "img_size", "input_size", "in_chans",
    "start_epoch", "hflip", "vflip", "crop_pct",
})
HALLMARK_NAMES: frozenset[str] = ARGUMENT_NAMES - GENERIC_NAMES


@dataclass(frozen=True, slots=True)
class ArgsVerdict:
    timm: bool
    keys: int
    argument_names: int       # keys that are train.py argument names
    hallmarks: tuple[str, ...]

    def reason(self) -> str:
        """Why, in a phrase inspect can show."""
        hallmark = f"timm-specific: {', '.join(self.hallmarks[:3])}" if self.hallmarks else "none specific to timm"
        return f"{self.argument_names} of {self.keys} keys are timm train.py argument names ({hallmark})"


def classify_args(keys: Iterable[object]) -> ArgsVerdict:
    """The verdict on a settings file's top-level keys (see the module docstring for the principle)."""
    names = {str(k) for k in keys}
    known = names & ARGUMENT_NAMES
    hallmarks = tuple(sorted(known & HALLMARK_NAMES))
    timm = bool(names) and 2 * len(known) > len(names) and bool(hallmarks)
    return ArgsVerdict(timm, len(names), len(known), hallmarks)


__all__ = ["ARGUMENT_NAMES", "DIAGNOSED_NAMES", "GENERIC_NAMES", "HALLMARK_NAMES", "ArgsVerdict", "classify_args"]
