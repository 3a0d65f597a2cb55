"""timm's recipe arithmetic: what train.py derives from its arguments at run time, done once at ingest.

train.py never writes these to args.yaml, so they are recomputed here, the way timm computes them,
and stored with their source in ``TrainConfig.effective`` / ``effective_sources`` by
:func:`resolve_recipe` (the ingest's last step). Detection and features only read them.

- ``global_batch``: ``batch_size * world_size * grad_accum_steps`` (timm >= 0.9 counts an update as
  ``grad_accum_steps`` micro-batches).
- ``lr``: ``--lr`` when set; else (timm >= 0.8.2dev0, timm-formats.md §6.6) ``lr_base * ratio`` with
  ``ratio = global_batch / lr_base_size`` (linear) or its square root (sqrt).
- ``epochs_scheduled``: the epochs the LR schedule spans: the log's ``Scheduled epochs`` line, else
  timm's scheduler factory rule (cycle schedulers: cycles + ``cooldown_epochs`` + a prefix warmup).
- ``updates_per_epoch``: optimizer updates per epoch: the ``N`` of the log's ``Train: e [i/N]`` lines
  (per epoch, and the most common value), else a dataset-size hint the ingest found.
- ``num_classes``: when the config has none, read off a run stuck at chance level (top-1/top-5 at 100/C and
  500/C), or off a loss plateau within 1 % of ln C for a common C; the Recipe keeps the inference's confidence.

Each value lands in the run's typed :class:`~mnv4_postmortem.analyzer.model.Recipe` with its source, kind
(log, args, default, inferred) and confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np

from mnv4_postmortem.analyzer.model import Recipe, Resolved, TrainConfig, as_count, as_number

__all__ = [
    "CYCLE_SCHEDULERS",
    "SAMPLES_HINTS",
    "LrCalculation",
    "RecipeFacts",
    "UpdatesPerEpoch",
    "updates_per_epoch",
    "global_batch",
    "COMMON_CLASS_COUNTS",
    "LOSS_TOLERANCE",
    "from_loss_plateau",
    "infer_num_classes",
    "num_classes_from_curves",
    "resolve_lr",
    "resolve_recipe",
    "schedule_length",
]

# timm's schedulers with a cycle length (``get_cycle_length``): only these add cooldown epochs and a
# prefix warmup to the schedule; step, multistep and plateau run exactly ``epochs``.
CYCLE_SCHEDULERS = ("cosine", "tanh", "poly")

# Keys the ingest may put in ``effective`` when a run has no Train: lines but says how big it is.
UPDATES_HINTS = ("updates_per_epoch", "steps_per_epoch")
BATCHES_HINTS = ("batches_per_epoch",)
SAMPLES_HINTS = ("train_samples", "dataset_size", "num_train_samples")


@dataclass(frozen=True, slots=True)
class LrCalculation:
    """timm's own ``Learning rate (X) calculated from base learning rate (Y) and global batch size (Z)``."""

    lr: float
    lr_base: float
    global_batch: float
    scaling: str
    source: str


@dataclass(frozen=True, slots=True)
class RecipeFacts:
    """What the run's own files say about the recipe (the ingest gathers it; all optional).

    scheduled_epochs / scheduled_ref: the log's ``Scheduled epochs: N`` and where it was printed.
    eval_top1 / eval_top5: the reported per-epoch accuracies (for reading num_classes off chance level).
    train_loss / eval_loss / epochs: the per-epoch losses and their epochs (num_classes from a plateau at ln C).
    """

    scheduled_epochs: int | None = None
    scheduled_ref: str | None = None
    eval_top1: np.ndarray | None = None
    eval_top5: np.ndarray | None = None
    step_epoch: np.ndarray | None = None
    step_per_epoch: np.ndarray | None = None
    train_loss: np.ndarray | None = None
    eval_loss: np.ndarray | None = None
    epochs: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class UpdatesPerEpoch:
    """Optimizer updates per epoch: ``by_epoch`` (epoch -> N; key -1 for a single hinted value), the
    most common value ``typical`` (the latest epoch's on a tie), and the kind of source."""

    by_epoch: Mapping[int, int]
    typical: int
    kind: str  # "log" or "dataset hint"
    how: str


def resolve_recipe(config: TrainConfig, facts: RecipeFacts | None = None) -> TrainConfig:
    """``config`` with its typed :class:`Recipe` (each value with its source, kind and confidence).

    The resolved values also stay readable through ``config.get`` (``effective``) for the rule namespace;
    the bookkeeping (kinds of source, per-epoch update counts, confidences) lives only in the Recipe, so
    nothing that is not a train.py setting reaches the config table. Values already in ``effective``
    (read from the log: timm's own LR line, world size, num_classes) are kept; only what is missing is computed.
    """
    facts = facts or RecipeFacts()
    effective, sources = dict(config.effective), dict(config.effective_sources)
    parts: dict[str, Any] = {}
    world = as_count(effective.get("world_size"), minimum=1) or 1
    if "world_size" in effective:
        parts["world_size"] = Resolved(world, sources.get("world_size", "the log"), "log")
    if effective.get("lr") is None:
        lr, how = resolve_lr(config, world)
        if lr is not None:
            effective["lr"], sources["lr"] = lr, how
            parts["lr"] = Resolved(lr, how, _lr_kind(config))
    else:
        parts["lr"] = Resolved(effective["lr"], sources.get("lr", "the log"), "log")
    if "global_batch" not in effective:
        batch = global_batch(config, world)
        if batch is not None:
            effective["global_batch"], sources["global_batch"] = batch
            parts["global_batch"] = Resolved(batch[0], batch[1], "inferred")
    else:
        parts["global_batch"] = Resolved(effective["global_batch"], sources.get("global_batch", "the log"), "log")
    scheduled = schedule_length(config, facts.scheduled_epochs, facts.scheduled_ref)
    if scheduled is not None:
        effective["epochs_scheduled"], sources["epochs_scheduled"], kind = scheduled
        parts["epochs_scheduled"] = Resolved(scheduled[0], scheduled[1], "log" if kind == "log" else "args")
    updates = updates_per_epoch(config, facts.step_epoch, facts.step_per_epoch)
    if updates is not None:
        effective["updates_per_epoch"], sources["updates_per_epoch"] = updates.typical, updates.how
        parts["updates_per_epoch"] = Resolved(updates.typical, updates.how, "log" if updates.kind == "log" else "inferred")
        parts["updates_by_epoch"] = dict(updates.by_epoch)
    if not config.get("num_classes"):
        inferred = num_classes_from_curves(facts)
        if inferred is not None:
            classes, how, confidence = inferred
            effective["num_classes"] = classes
            sources["num_classes"] = f"{how} (confidence {confidence:.2f})"
            parts["num_classes"] = Resolved(classes, how, "inferred", confidence)
    elif config.get("num_classes") is not None:
        stated = "log" if "num_classes" in config.effective else ("default" if "num_classes" in config.defaulted else "args")
        parts["num_classes"] = Resolved(config.get("num_classes"), sources.get("num_classes", stated), stated)
    return replace(config, effective=effective, effective_sources=sources, recipe=Recipe(**parts))


def _lr_kind(config: TrainConfig) -> str:
    if as_number(config.values.get("lr")) is None:
        return "inferred"  # lr_base x batch ratio
    return "default" if "lr" in config.defaulted else "args"


def global_batch(config: TrainConfig, world_size: int = 1) -> tuple[int, str] | None:
    """Samples per optimizer update and how it was found; None without a usable ``batch_size``."""
    batch = config.values.get("batch_size")
    if isinstance(batch, bool) or not isinstance(batch, (int, float)):
        return None
    accum = int(config.values.get("grad_accum_steps") or 1)
    return int(batch) * world_size * accum, f"batch_size {batch} x world size {world_size} x grad_accum_steps {accum}"


def resolve_lr(config: TrainConfig | Mapping[str, Any], world_size: int = 1) -> tuple[float | None, str]:
    """The learning rate timm used, and how it was found.

    ``lr`` when set. Otherwise timm (v0.8.2dev0+, §6.6) computes ``lr_base * ratio`` with
    ``ratio = global_batch / lr_base_size`` (linear) or its square root (sqrt), where
    ``global_batch = batch_size * world_size * grad_accum_steps``; an empty ``lr_base_scale``
    means sqrt for optimizers whose name contains "ada" or "lamb" (adamw, lamb ...), else linear.
    Returns ``(None, why)`` when the values do not determine it.
    """
    values = config.values if isinstance(config, TrainConfig) else config
    defaulted = config.defaulted if isinstance(config, TrainConfig) else frozenset()
    lr = as_number(values.get("lr"))
    if lr is not None:
        return lr, "timm default" if "lr" in defaulted else "args.yaml lr"
    lr_base = as_number(values.get("lr_base"))
    if lr_base is None:
        return None, "lr is not set and there is no lr_base to derive it from"
    batch = as_number(values.get("batch_size"))
    base_size = as_number(values.get("lr_base_size"))
    accum = as_number(values.get("grad_accum_steps"))
    accum = 1.0 if accum is None else accum
    if batch is None or base_size is None or base_size <= 0 or batch <= 0 or accum <= 0 or world_size <= 0:
        return None, "lr is not set and batch_size / lr_base_size cannot give the global batch"
    batch_total = batch * world_size * accum
    scale = _lr_scale(values)
    ratio = batch_total / base_size
    lr = lr_base * (math.sqrt(ratio) if scale == "sqrt" else ratio)
    if not math.isfinite(lr):
        return None, "lr is not set and lr_base x batch ratio is not a finite number"
    ratio_text = f"{batch_total:g}/{base_size:g}"
    how = f"lr_base {lr_base:g} x {'sqrt(' + ratio_text + ')' if scale == 'sqrt' else ratio_text} ({scale} scaling rule)"
    if world_size != 1 or accum != 1:
        how += f"; global batch = batch_size {batch:g} x world size {world_size} x grad_accum_steps {accum:g}"
    return lr, how


def _lr_scale(values: Mapping[str, Any]) -> str:
    scale = values.get("lr_base_scale")
    if isinstance(scale, str) and scale:
        return "sqrt" if scale == "sqrt" else "linear"  # timm: anything but 'sqrt' scales linearly
    opt = str(values.get("opt") or "").lower()
    return "sqrt" if "ada" in opt or "lamb" in opt else "linear"


def schedule_length(
    config: TrainConfig, logged: int | None = None, logged_ref: str | None = None,
) -> tuple[int, str, str] | None:
    """The epochs the LR schedule spans: ``(epochs, where from, "log" | "args.yaml")``, or None when unknown.

    The log's ``Scheduled epochs`` line wins. Otherwise timm's scheduler factory rule on args.yaml
    (a defaulted ``epochs`` is no evidence: None): cycle schedulers (cosine, tanh, poly) run
    ``epochs x lr_cycle_limit`` (geometric with ``lr_cycle_mul``) + ``cooldown_epochs``, plus
    ``warmup_epochs`` with ``--warmup-prefix``; the others exactly ``epochs``.
    """
    count = as_count(logged, minimum=1)
    if count is not None:
        return count, f"the log's 'Scheduled epochs' line ({logged_ref or 'console log'})", "log"
    epochs = as_count(config.values.get("epochs"), minimum=1)
    if epochs is None or "epochs" in config.defaulted:
        return None
    where = config.source.path if config.source else "args.yaml"
    how = f"{where}: epochs {epochs}"
    if str(config.values.get("sched") or "").lower() not in CYCLE_SCHEDULERS:
        return epochs, how, "args.yaml"
    # The cycle settings are train.py options a diagnosis does not otherwise read: a missing one is the
    # default of the config's era (resolved at ingest); unknown altogether, the schedule is one cycle long.
    cycles = config.count("lr_cycle_limit", config.command_defaults.get("lr_cycle_limit"), minimum=1)
    mul = config.number("lr_cycle_mul", config.command_defaults.get("lr_cycle_mul"))
    total = epochs
    if cycles is not None and mul is not None:
        total = epochs * cycles if mul == 1.0 else math.floor(-epochs * (mul**cycles - 1) / (1 - mul))
    if total != epochs:
        how += f" over {cycles} cycles (lr_cycle_mul {mul:g}) = {total}"
    cooldown = config.count("cooldown_epochs") or 0
    if cooldown:
        total += cooldown
        how += f" + cooldown_epochs {cooldown}"
    if config.flag("warmup_prefix"):
        warmup = config.count("warmup_epochs") or 0
        if warmup:
            total += warmup
            how += f" + warmup_epochs {warmup} (warmup prefix)"
    return total, how, "args.yaml"


def updates_per_epoch(
    config: TrainConfig, step_epoch: np.ndarray | None = None, step_per_epoch: np.ndarray | None = None,
) -> UpdatesPerEpoch | None:
    """Updates per epoch from the log's ``[i/N]`` (timm >= 0.9 counts updates, older versions batches,
    the same without gradient accumulation); else from a size hint in ``config.effective``; else None."""
    logged = _logged_per_epoch(step_epoch, step_per_epoch)
    if logged:
        return UpdatesPerEpoch(logged, _typical(logged), "log", "the log's Train: [i/N] counts")
    effective = config.effective
    for key in UPDATES_HINTS:
        value = as_count(effective.get(key), minimum=1)
        if value:
            return UpdatesPerEpoch({-1: value}, value, "dataset hint", f"{key} {value}")
    accum = config.count("grad_accum_steps", 1, minimum=1)
    for key in BATCHES_HINTS:
        value = as_count(effective.get(key), minimum=1)
        if value:
            updates = math.ceil(value / accum)
            return UpdatesPerEpoch({-1: updates}, updates, "dataset hint", f"{key} {value} / grad_accum_steps {accum}")
    samples = next((as_count(effective.get(k), minimum=1) for k in SAMPLES_HINTS if effective.get(k) is not None), None)
    batch = config.count("batch_size", minimum=1)
    world = config.count("world_size", 1, minimum=1)
    if samples and batch:
        # timm's training loader drops the last partial batch (drop_last=True).
        batches = samples // (batch * world)
        if batches > 0:
            updates = math.ceil(batches / accum)
            how = f"{samples} samples // (batch_size {batch} x world size {world}) / grad_accum_steps {accum}"
            return UpdatesPerEpoch({-1: updates}, updates, "dataset hint", how)
    return None


def _logged_per_epoch(epoch: np.ndarray | None, per_epoch: np.ndarray | None) -> dict[int, int]:
    """epoch -> N of its last logged Train: line (a resumed epoch may be logged twice; the last counts)."""
    if epoch is None or per_epoch is None or len(epoch) == 0:
        return {}
    epoch = np.asarray(epoch, dtype="float64")
    per_epoch = np.asarray(per_epoch, dtype="float64")
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(epoch) & np.isfinite(per_epoch) & (epoch >= 0) & (per_epoch >= 1) & (per_epoch < 1e12)
    epoch, per_epoch = epoch[keep], per_epoch[keep]
    if epoch.size == 0:
        return {}
    if epoch.size == 1 or bool(np.all(epoch[1:] >= epoch[:-1])):
        # in log order (the common case): each epoch's last line is where the next epoch begins, no sort needed
        ends = np.append(np.flatnonzero(np.diff(epoch)), epoch.size - 1)
        unique, last = epoch[ends], per_epoch[ends]
    else:
        # The first occurrence in reversed order is each epoch's last line.
        unique, first_from_end = np.unique(epoch[::-1], return_index=True)
        last = per_epoch[::-1][first_from_end]
    return {int(e): int(n) for e, n in zip(unique, last)}


def _typical(per_epoch: Mapping[int, int]) -> int:
    """The most common updates-per-epoch value (the latest epoch's on a tie)."""
    counts: dict[int, int] = {}
    for value in per_epoch.values():
        counts[value] = counts.get(value, 0) + 1
    best = max(counts.values())
    return next(per_epoch[e] for e in sorted(per_epoch, reverse=True) if counts[per_epoch[e]] == best)


def infer_num_classes(top1: np.ndarray | None, top5: np.ndarray | None) -> tuple[int, str] | None:
    """num_classes read off a run stuck at chance level, and why; None when the numbers do not show it.

    A model that predicts one class scores exactly 100/C top-1 and 500/C top-5 on a balanced
    validation set, so top-1 stuck at v with top-5 stuck at 5v for many epochs reveals C = 100/v.
    """
    if top1 is None or top5 is None:
        return None
    top1 = _finite(top1)
    top5 = _finite(top5)
    if top1.size < MIN_STUCK_EPOCHS or top5.size < MIN_STUCK_EPOCHS:
        return None
    value1, value5 = float(np.median(top1)), float(np.median(top5))
    if value1 <= 0 or not (_stuck(top1, value1) and _stuck(top5, value5)):
        return None
    if abs(value5 - min(100.0, 5 * value1)) > 0.01 * value5:
        return None
    classes = round(100.0 / value1)
    if classes < 2 or abs(100.0 / classes - value1) > 0.01 * value1:
        return None
    return classes, f"inferred: eval_top1 stays at {value1:g} and eval_top5 at {value5:g} (= 100/C and 500/C)"


def _finite(values: np.ndarray) -> np.ndarray:
    """The non-missing values (NaN is "not logged"; inf stays and so breaks a stuck reading)."""
    array = np.asarray(values, dtype="float64")
    return array[~np.isnan(array)]


def _stuck(values: np.ndarray, level: float) -> bool:
    """Nearly every epoch within 2 % of the median."""
    return bool((np.abs(values - level) <= STUCK_REL * max(level, 1e-9)).mean() >= STUCK_FRACTION)


# ----------------------------------------------------------------------------- num_classes from the curves
# A second signature of a model that predicts no better than the class prior, beside top-1/top-5 at 100/C and
# 500/C (``infer_num_classes``): the cross-entropy of the uniform prior over C balanced classes is ln C. A fresh
# model starts there and a model that learned nothing about the inputs stays there (the eval loss especially:
# no augmentation, no smoothing; smoothing and mixup push the *train* loss above ln C). A plateau within
# LOSS_TOLERANCE of ln C for a common C is strong evidence of C; the loss route only answers with a common C.

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
# The loss route is discounted because a run can pass slowly through ln C; one that stays within 1 % of it for 20
# epochs or more (no-learning's "any real fit leaves the band within a few epochs", several times over) is not
# passing through, and counts as much as the accuracy route. rules/symptoms/stuck-at-prior.yaml uses the same 20
# epochs for a train loss with no eval.
LONG_PLATEAU_EPOCHS = 20
# Top-1 within 2x chance (CHANCE_TOP1_FACTOR) over the plateau agrees with "learned only the prior" and adds this much.
CONFIDENCE_AGREEING_TOP1 = 0.1
# "Near chance" for top-1: within this factor of 100/C (the plateau's agreeing top-1, the prior signature, the first eval).
CHANCE_TOP1_FACTOR = 2.0

def _longest_run(mask: np.ndarray) -> tuple[int, int] | None:
    """(start, end) inclusive of the longest stretch of True (the earliest of equal ones), or None."""
    flags = np.asarray(mask, dtype=bool)
    if not flags.any():
        return None
    edges = np.flatnonzero(np.diff(np.concatenate(([False], flags, [False]))))  # where a stretch starts / ends + 1
    starts, ends = edges[0::2], edges[1::2] - 1
    longest = int(np.argmax(ends - starts))  # argmax takes the first of equal maxima
    return int(starts[longest]), int(ends[longest])


def _window_median(values: Sequence[float] | None, span: tuple[int, int]) -> float | None:
    if values is None:
        return None
    window = _finite(np.asarray(values, dtype="float64")[span[0]:span[1] + 1])
    return float(np.median(window)) if len(window) else None


def _accuracy_contradicts(classes: int, span: tuple[int, int], top1: Sequence[float] | None,
                          top5: Sequence[float] | None) -> bool:
    """Whether the accuracies over a loss plateau rule out C: top-5 under 100 % with C <= 5 (top-5 of five
    classes or fewer is 100 % by construction), or top-1 beyond stuck-at-prior's band (5x chance, at most
    chance + 10 points): a loss that passes through ln C while the model is that accurate is not the prior's."""
    median5 = _window_median(top5, span)
    if classes <= 5 and median5 is not None and median5 < 99.0:
        return True
    median1 = _window_median(top1, span)
    chance = 100.0 / classes
    return median1 is not None and median1 > min(5 * chance, chance + 10)


def from_loss_plateau(
    loss: Sequence[float] | None, epochs: Sequence[int] | None = None, *, name: str = "eval_loss",
    top1: Sequence[float] | None = None, top5: Sequence[float] | None = None,
) -> Inference | None:
    """C from a loss plateau within LOSS_TOLERANCE of ln C for a common C (longest plateau wins), unless the
    accuracies of the same epochs contradict it (see :func:`_accuracy_contradicts`)."""
    if loss is None:
        return None
    values = np.asarray(loss, dtype="float64")
    index = np.arange(len(values)) if epochs is None else np.asarray(epochs)
    best: tuple[int, tuple[int, int]] | None = None
    for classes in COMMON_CLASS_COUNTS:
        target = math.log(classes)
        span = _longest_run(np.isfinite(values) & (np.abs(values - target) <= LOSS_TOLERANCE * target))
        # Measured in epochs, not rows: a paste that keeps a few epochs far apart (21 and 58) at ln C shows a
        # plateau as long as the epochs between them.
        if span is None or int(index[span[1]]) - int(index[span[0]]) + 1 < MIN_PLATEAU_EPOCHS:
            continue
        if _accuracy_contradicts(classes, span, top1, top5):
            continue
        if best is None or span[1] - span[0] > best[1][1] - best[1][0]:
            best = (classes, span)
    if best is None:
        return None
    classes, (lo, hi) = best
    confidence = CONFIDENCE_EVAL_LOSS if name.startswith("eval") else CONFIDENCE_TRAIN_LOSS
    if int(index[hi]) - int(index[lo]) + 1 >= LONG_PLATEAU_EPOCHS:
        confidence = max(confidence, CONFIDENCE_ACCURACY)
    if top1 is not None:
        window = _finite(np.asarray(top1, dtype="float64")[lo:hi + 1])
        if len(window) and float(np.median(window)) <= CHANCE_TOP1_FACTOR * 100.0 / classes:
            confidence += CONFIDENCE_AGREEING_TOP1
    source = (f"inferred: {name} stays within {LOSS_TOLERANCE:.0%} of ln {classes} = {math.log(classes):.3f} "
              f"for epochs {int(index[lo])}-{int(index[hi])}")
    return classes, source, round(confidence, 2)


# A third signature, for pastes whose accuracies are noisy rather than stuck (a few hundred eval images, or an EMA
# still made of the initial weights): a model that ranks the classes independently of the input scores k/C top-k
# in expectation, so top-5 sits near 500/C while top-1 stays within 2x 100/C (the band of the former
# no-learning-prior rule; the symptoms now allow 5x, at most chance + 10 points: this route is the stricter).
# PRIOR_TOP5_TOLERANCE is about 3 binomial standard deviations of top-5 at 50 % on a few hundred images (the
# smallest eval sets that people paste); PRIOR_MIN_EPOCHS as MIN_PLATEAU_EPOCHS; and the epochs must start the
# run or be half of it (a learning model passes through chance once, at the start, and leaves it).
PRIOR_TOP5_TOLERANCE = 0.2
PRIOR_TOP1_FACTOR = CHANCE_TOP1_FACTOR
PRIOR_MIN_EPOCHS = MIN_PLATEAU_EPOCHS
# Two noisy numbers agreeing on one common C: below the exact accuracy route, above a lone loss plateau.
CONFIDENCE_PRIOR_SIGNATURE = 0.8


def from_prior_signature(top1: Sequence[float] | None, top5: Sequence[float] | None,
                         epochs: Sequence[int] | None = None) -> Inference | None:
    """C from top-5 near 500/C with top-1 near chance, over the run's first epochs or half of it."""
    if top1 is None or top5 is None:
        return None
    top1 = np.asarray(top1, dtype="float64")
    top5 = np.asarray(top5, dtype="float64")
    if len(top1) != len(top5) or len(top1) < PRIOR_MIN_EPOCHS:
        return None
    index = np.arange(len(top1)) if epochs is None else np.asarray(epochs)
    best: tuple[int, int, int] | None = None  # (count, classes, leading)
    for classes in COMMON_CLASS_COUNTS:
        chance5 = 500.0 / classes
        if chance5 >= 100.0:
            continue  # top-5 is 100 % whatever the model does: nothing to read
        ok = (np.isfinite(top1) & np.isfinite(top5) & (np.abs(top5 - chance5) <= PRIOR_TOP5_TOLERANCE * chance5)
              & (top1 <= PRIOR_TOP1_FACTOR * 100.0 / classes))
        leading = int(np.argmin(ok)) if not ok.all() else len(ok)
        count = int(ok.sum())
        if leading < PRIOR_MIN_EPOCHS and not (count >= PRIOR_MIN_EPOCHS and count >= 0.5 * len(ok)):
            continue
        if best is None or count > best[0]:
            best = (count, classes, leading)
    if best is None:
        return None
    count, classes, leading = best
    where = (f"epochs {int(index[0])}-{int(index[leading - 1])}" if leading >= PRIOR_MIN_EPOCHS
             else f"{count} of {len(top1)} epochs")
    source = (f"inferred: eval_top5 near 500/{classes} and eval_top1 within {PRIOR_TOP1_FACTOR:g}x 100/{classes} "
              f"for {where} (a model that ranks the classes independently of the input)")
    return classes, source, CONFIDENCE_PRIOR_SIGNATURE


# A fourth, for short or noisy pastes whose first eval is that of a model that knows nothing yet: the first epoch's
# eval loss within the detector's chance band of ln C (2 %), its top-1 within 2x 100/C and its top-5 (required)
# within PRIOR_TOP5_TOLERANCE of 500/C: three numbers agreeing on one common C at one epoch. A learning model
# leaves at least one of them after its first epoch; when all three agree, C is what they say.
# detect.metrics.CHANCE_LOSS_REL_TOL restated (not imported: the recipe does not load the detectors).
FIRST_EVAL_LOSS_TOLERANCE = 0.02
CONFIDENCE_FIRST_EVAL = 0.6


def from_first_eval(eval_loss: Sequence[float] | None, top1: Sequence[float] | None,
                    top5: Sequence[float] | None, epochs: Sequence[int] | None = None) -> Inference | None:
    """C from the first epoch's eval loss, top-1 and top-5 all at the prior of one common C."""
    if eval_loss is None or top1 is None or top5 is None or not len(eval_loss):
        return None
    first = [float(np.asarray(a, dtype="float64")[0]) for a in (eval_loss, top1, top5)]
    if not all(math.isfinite(v) for v in first):
        return None
    loss, acc1, acc5 = first
    for classes in COMMON_CLASS_COUNTS:
        chance5 = 500.0 / classes
        if (chance5 < 100.0 and abs(loss - math.log(classes)) <= FIRST_EVAL_LOSS_TOLERANCE * math.log(classes)
                and acc1 <= PRIOR_TOP1_FACTOR * 100.0 / classes
                and abs(acc5 - chance5) <= PRIOR_TOP5_TOLERANCE * chance5):
            epoch = int(np.asarray(epochs)[0]) if epochs is not None and len(epochs) else 0
            source = (f"inferred: epoch {epoch}'s eval loss {loss:.3f} ~ ln {classes}, top-1 {acc1:g} ~ 100/{classes} "
                      f"and top-5 {acc5:g} ~ 500/{classes} (a model that knows nothing yet)")
            return classes, source, CONFIDENCE_FIRST_EVAL
    return None


def num_classes_from_curves(facts: "RecipeFacts") -> tuple[int, str, float] | None:
    """(C, source, confidence) from the curves: top-1/top-5 at chance first, then an eval-loss plateau at ln C,
    then a train-loss plateau, then top-5 near 500/C with top-1 near chance, then the first eval at the prior;
    None when none shows it. The
    confidence is what rules scale their own by."""
    accuracy = infer_num_classes(facts.eval_top1, facts.eval_top5)
    if accuracy is not None:
        return accuracy[0], accuracy[1], CONFIDENCE_ACCURACY
    return (from_loss_plateau(facts.eval_loss, facts.epochs, name="eval_loss", top1=facts.eval_top1, top5=facts.eval_top5)
            or from_loss_plateau(facts.train_loss, facts.epochs, name="train_loss", top1=facts.eval_top1,
                                 top5=facts.eval_top5)
            or from_prior_signature(facts.eval_top1, facts.eval_top5, facts.epochs)
            or from_first_eval(facts.eval_loss, facts.eval_top1, facts.eval_top5, facts.epochs))
