"""The LR schedule the config asks for, epoch by epoch, the way timm's schedulers compute it.

This is the "configured" curve a report draws beside the LR that was logged (``detect/schedule.py``
reconstructs that one, and reads its expected peak from :func:`cosine_lr` here: one owner of timm's formulas). It follows timm's scheduler factory: ``--sched cosine|step|multistep|poly|constant``, a linear
warm-up from ``--warmup-lr`` over ``--warmup-epochs`` (before the schedule with ``--warmup-prefix``, inside it
otherwise), ``--min-lr`` as the floor, and ``--cooldown-epochs`` spent at the floor after ``--epochs``.
``plateau`` depends on the eval metric and ``tanh`` is rare: for those, and without an LR, it gives None.
"""

from __future__ import annotations

import math

from mnv4_postmortem.analyzer.model import TrainConfig, as_number

SUPPORTED = ("cosine", "step", "multistep", "poly", "constant", "none", "")


def configured_lr(config: TrainConfig, n_epochs: int) -> tuple[float, ...] | None:
    """LR at epochs 0..n_epochs-1 per the config, or None when it cannot be known from the config alone."""
    base = config.number("lr")
    sched = str(config.get("sched") or "").lower()
    if base is None or base <= 0 or sched not in SUPPORTED or n_epochs <= 0:
        return None
    return tuple(_lr_at(config, sched, base, t) for t in range(n_epochs))


def cosine_lr(base: float, floor: float, t: float, epochs: float) -> float:
    """timm's CosineLRScheduler (one cycle) at epoch ``t``: a half cosine from ``base`` to ``floor``."""
    if epochs <= 0 or t >= epochs:
        return floor
    return floor + 0.5 * (base - floor) * (1.0 + math.cos(math.pi * t / epochs))


def _lr_at(config: TrainConfig, sched: str, base: float, t: int) -> float:
    warmup = int(config.number("warmup_epochs") or 0)
    warmup_lr = config.number("warmup_lr") or 0.0
    if t < warmup:
        return warmup_lr + t * (base - warmup_lr) / warmup
    if config.flag("warmup_prefix"):
        t -= warmup
    floor = config.number("min_lr") or 0.0
    epochs = int(config.number("epochs") or 0)
    if sched == "cosine":
        return cosine_lr(base, floor, t, epochs)
    if sched == "poly":
        power = config.number("decay_rate") or 0.5
        if epochs <= 0 or t >= epochs:
            return floor
        return floor + (base - floor) * (1.0 - t / epochs) ** power
    rate = config.number("decay_rate") or 0.1
    if sched == "step":
        every = config.number("decay_epochs") or 90.0
        return max(floor, base * rate ** (t // every)) if every > 0 else base
    if sched == "multistep":
        milestones = config.get("decay_milestones") or [90, 180, 270]
        passed = sum(1 for m in milestones if as_number(m) is not None and t >= as_number(m))
        return max(floor, base * rate ** passed)
    return base
