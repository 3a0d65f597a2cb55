"""Infer the class count C from the curves alone, for excerpts and runs without args.yaml or a log.

Pure functions over plain sequences: ``infer_num_classes(...) -> (C, source, confidence) | None``. It is
meant to live with the recipe arithmetic (``analyzer/timm/recipe.py``) once that package exists.

Two independent signatures of a model that predicts no better than the class prior, each exact in theory:

* **Loss at ln C.** The cross-entropy of the uniform prior over C balanced classes is ln C. A fresh model
  starts there and a model that learned nothing about the inputs stays there (eval loss especially: no
  augmentation, no smoothing). A plateau within ``LOSS_TOLERANCE`` of ln C, for a common C, is strong
  evidence of C. Smoothing and mixup push the *train* loss above ln C, so the eval loss is read first.
* **Accuracy at 100/C and 500/C.** A constant predictor scores exactly 100/C top-1 and 500/C top-5 on a
  balanced validation set; top-1 stuck at v with top-5 stuck at 5v reveals C = 100/v.

The loss route only answers with a common C; the accuracy route answers with any C the numbers pin down.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

# Class counts of the common public benchmarks: binary, CIFAR-10 / MNIST / Imagenette, CIFAR-100,
# Tiny-ImageNet / CUB-200, ImageNet-1k, ImageNet-21k-P (11,821) and ImageNet-21k (21,841). Their ln C lie
# more than 2 x LOSS_TOLERANCE apart, so one tolerance window never holds two candidates.
COMMON_CLASS_COUNTS: tuple[int, ...] = (2, 10, 100, 200, 1000, 11821, 21841)

# "Within ~1 % of ln C" (the bound): the eval loss of a stuck model wanders by well under 1 % of
# ln C epoch to epoch (it predicts the same distribution for every image), while a learning model leaves
# that window within an epoch or two.
LOSS_TOLERANCE = 0.01
# A plateau needs this many consecutive epochs: one or two epochs at ln C is where every run starts.
MIN_PLATEAU_EPOCHS = 3
# Accuracy route: top-1 and top-5 stuck (within 2 % of their median in >= 80 % of the epochs; distributed
# eval padding moves the last digit) over >= 5 epochs, and top-5 = min(100, 5 x top-1) within 1 %.
STUCK_REL = 0.02
STUCK_FRACTION = 0.8
MIN_STUCK_EPOCHS = 5

# Stated confidence of each route (the rules multiply their own confidence by it). The accuracy route is
# arithmetic on two exact numbers; the loss route can be fooled by a run passing slowly through ln C.
CONFIDENCE_ACCURACY = 0.9
CONFIDENCE_EVAL_LOSS = 0.7
CONFIDENCE_TRAIN_LOSS = 0.6
# Top-1 within 2x chance over the plateau agrees with "learned only the prior" and adds this much.
CONFIDENCE_AGREEING_TOP1 = 0.1

Inference = tuple[int, str, float]


def _finite(values: Sequence[float] | None) -> np.ndarray:
    if values is None:
        return np.empty(0)
    array = np.asarray(values, dtype="float64")
    return array[np.isfinite(array)]


def from_accuracy(top1: Sequence[float] | None, top5: Sequence[float] | None) -> Inference | None:
    """C from top-1 stuck at 100/C and top-5 at 500/C (capped at 100)."""
    t1, t5 = _finite(top1), _finite(top5)
    if len(t1) < MIN_STUCK_EPOCHS or len(t5) < MIN_STUCK_EPOCHS:
        return None
    v1, v5 = float(np.median(t1)), float(np.median(t5))
    if v1 <= 0:
        return None

    def stuck(series: np.ndarray, value: float) -> bool:
        return bool((np.abs(series - value) <= STUCK_REL * max(value, 1e-9)).mean() >= STUCK_FRACTION)

    if not (stuck(t1, v1) and stuck(t5, v5)) or abs(v5 - min(100.0, 5 * v1)) > 0.01 * v5:
        return None
    classes = round(100.0 / v1)
    if classes < 2 or abs(100.0 / classes - v1) > 0.01 * v1:
        return None
    source = f"inferred: eval_top1 stays at {v1:g} and eval_top5 at {v5:g} (= 100/C and 500/C)"
    return classes, source, CONFIDENCE_ACCURACY


def _longest_run(mask: np.ndarray) -> tuple[int, int] | None:
    """(start, end) inclusive of the longest stretch of True, or None."""
    best: tuple[int, int] | None = None
    start = None
    for i, flag in enumerate(list(mask) + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if best is None or (i - 1 - start) > (best[1] - best[0]):
                best = (start, i - 1)
            start = None
    return best


def from_loss_plateau(
    loss: Sequence[float] | None, epochs: Sequence[int] | None = None, *, name: str = "eval_loss",
    top1: Sequence[float] | None = None,
) -> Inference | None:
    """C from a loss plateau within LOSS_TOLERANCE of ln C for a common C (longest plateau wins)."""
    if loss is None:
        return None
    values = np.asarray(loss, dtype="float64")
    index = np.arange(len(values)) if epochs is None else np.asarray(epochs)
    best: tuple[int, tuple[int, int]] | None = None
    for classes in COMMON_CLASS_COUNTS:
        target = math.log(classes)
        span = _longest_run(np.isfinite(values) & (np.abs(values - target) <= LOSS_TOLERANCE * target))
        if span is None or span[1] - span[0] + 1 < MIN_PLATEAU_EPOCHS:
            continue
        if best is None or span[1] - span[0] > best[1][1] - best[1][0]:
            best = (classes, span)
    if best is None:
        return None
    classes, (lo, hi) = best
    confidence = CONFIDENCE_EVAL_LOSS if name.startswith("eval") else CONFIDENCE_TRAIN_LOSS
    if top1 is not None:
        window = _finite(np.asarray(top1, dtype="float64")[lo:hi + 1])
        if len(window) and float(np.median(window)) <= 2 * 100.0 / classes:
            confidence += CONFIDENCE_AGREEING_TOP1
    source = (f"inferred: {name} stays within {LOSS_TOLERANCE:.0%} of ln {classes} = {math.log(classes):.3f} "
              f"for epochs {int(index[lo])}-{int(index[hi])}")
    return classes, source, round(confidence, 2)


def infer_num_classes(
    *,
    train_loss: Sequence[float] | None = None,
    eval_loss: Sequence[float] | None = None,
    eval_top1: Sequence[float] | None = None,
    eval_top5: Sequence[float] | None = None,
    epochs: Sequence[int] | None = None,
) -> Inference | None:
    """(C, source, confidence) from the curves, or None. Accuracy first, then eval loss, then train loss."""
    return (
        from_accuracy(eval_top1, eval_top5)
        or from_loss_plateau(eval_loss, epochs, name="eval_loss", top1=eval_top1)
        or from_loss_plateau(train_loss, epochs, name="train_loss", top1=eval_top1)
    )


__all__ = ["COMMON_CLASS_COUNTS", "infer_num_classes", "from_accuracy", "from_loss_plateau"]
