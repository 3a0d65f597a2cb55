"""Budget-faithful scaling: keep the quantities a rule reasons about when a run is made smaller.

A reproduction makes U' optimizer updates where the original made U. What must not change is what
the diagnosis is about, measured as a fraction of the run:

* EMA without warmup: the share of the initial weights still inside the EMA at matching fractions
  of the run. With a constant decay the share after k updates is ``decay**k`` (ModelEma/V2) or
  ``decay**(k-1)`` (ModelEmaV3 copies the model on its first update), so ``decay' = decay**(U/U')``
  (V3: ``decay**((U-1)/(U'-1))``) gives the same share at every matching fraction.
* EMA with warmup (ModelEmaV3, ``d(s) = 1 - (1 + s/gamma)**-p``, p = 2/3): the initial share is ~0
  either way after a few updates; what matters is the averaging window as a fraction of the run.
  Matching ``(1 - d'(s')) * U' = (1 - d(s)) * U`` at matching fractions ``s'/U' = s/U`` gives
  ``gamma' = gamma * (U/U')**(1/p - 1)`` (= sqrt(U/U') for p = 2/3), and the cap
  ``decay' = decay**(U/U')``.
* Warmup and other epoch-valued schedule settings: their fraction of the run.
* LR: per-sample LR kept when the batch changes (linear), or timm's ``lr_base`` rule when the LR was
  derived from ``lr_base`` (train.py: ``lr = lr_base * (batch/lr_base_size)``, square-rooted for
  adaptive optimizers when ``lr_base_scale`` is empty).
* Regularization, input size and model: kept (nothing here touches them).

Torch-free: the EMA arithmetic is the analyzer's EmaModel (one owner of timm's EMA rules), asked
through the session (``ema_initial_share``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from mnv4_postmortem.analyzer.session import ema_initial_share

WARMUP_POWER = 2.0 / 3.0  # train.py builds ModelEmaV3 with timm's default warmup_power


@dataclass(frozen=True, slots=True)
class EmaPlan:
    decay: float
    warmup_gamma: float
    predicted_share: float        # initial share at the end of the reproduction (= the original's)
    original_share: float
    why: str
    gamma_why: str = ""


def scale_ema(decay: float, warmup: bool, version: str, updates: int, new_updates: int) -> EmaPlan:
    """decay' (and ModelEmaV3 warmup_gamma') for ``new_updates`` standing for ``updates``."""
    updates, new_updates = max(int(updates), 1), max(int(new_updates), 1)
    ratio = updates / new_updates
    if warmup:
        new_decay = decay ** ratio
        gamma = ratio ** (1.0 / WARMUP_POWER - 1.0)
        return EmaPlan(new_decay, gamma, _warmup_share(new_decay, new_updates, gamma),
                       ema_initial_share(decay, updates, warmup=warmup, version=version),
                       f"warmup cap decay^(U/U') = {decay}^({updates}/{new_updates})",
                       f"warmup ramp at matching fractions of the run: gamma' = (U/U')^(1/p-1) = {gamma:.4g}")
    if version == "v3":
        # ModelEmaV3: the first update copies; the other U-1 updates decay the initial weights.
        exponent = (updates - 1) / max(new_updates - 1, 1)
        rule = f"{decay}^((U-1)/(U'-1)) = {decay}^({updates - 1}/{new_updates - 1})"
    else:
        exponent = ratio
        rule = f"{decay}^(U/U') = {decay}^({updates}/{new_updates})"
    new_decay = decay ** exponent
    predicted = ema_initial_share(new_decay, new_updates, version=version)
    share = ema_initial_share(decay, updates, warmup=warmup, version=version)
    return EmaPlan(new_decay, 1.0, predicted, share,
                   f"same initial-weight share at matching fractions ({share:.3g} at the end): {rule}")


def _warmup_share(decay: float, updates: int, gamma: float) -> float:
    """Initial share of a ModelEmaV3 with warmup_gamma ``gamma`` after ``updates`` (the analyzer's model
    has gamma 1; this one sums the same product with the scaled ramp)."""
    log_share = 0.0
    for s in range(1, updates):
        d = max(min(1.0 - (1.0 + s / gamma) ** -WARMUP_POWER, decay), 0.0)
        if d <= 0.0:
            return 0.0
        log_share += math.log(d)
    return math.exp(log_share)


def warmup_decay(step: int, decay: float, gamma: float = 1.0) -> float:
    """ModelEmaV3.get_decay(step) with warmup (timm-formats.md §10), for tests and printing."""
    s = max(0, step - 1)
    if s <= 0:
        return 0.0
    return max(min(1.0 - (1.0 + s / gamma) ** -WARMUP_POWER, decay), 0.0)


def scale_epochs(value: float, factor: float) -> int | float:
    """An epoch-valued setting at the same fraction of a run ``factor`` times as long (>= 1 if it was)."""
    scaled = value * factor
    if isinstance(value, int):
        return max(1, int(round(scaled))) if value > 0 else 0
    return scaled


def scale_lr(lr: Any, batch: int, new_batch: int, args: Mapping[str, Any], from_base: bool = False) -> float | None:
    """The LR for ``new_batch`` that keeps the per-sample LR (or timm's lr_base rule when lr was derived)."""
    if from_base and args.get("lr_base"):
        return resolve_lr_from_base(args, new_batch)
    if not isinstance(lr, (int, float)) or isinstance(lr, bool):
        return resolve_lr_from_base(args, new_batch)
    if new_batch == batch:
        return float(lr)
    return float(lr) * new_batch / batch


def resolve_lr_from_base(args: Mapping[str, Any], global_batch: int) -> float | None:
    """train.py's rule when ``--lr`` is not given: lr_base scaled by global batch / lr_base_size."""
    base = args.get("lr_base")
    if base is None:
        return None
    ratio = global_batch / float(args.get("lr_base_size") or 256)
    scale = args.get("lr_base_scale") or ""
    if not scale:
        opt = str(args.get("opt") or "sgd").lower()
        scale = "sqrt" if any(o in opt for o in ("ada", "lamb")) else "linear"
    if scale == "sqrt":
        ratio = ratio ** 0.5
    return float(base) * ratio
