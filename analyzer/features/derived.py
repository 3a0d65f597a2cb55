"""Derived quantities: the numbers the diagnosis rules reason with, computed once from a :class:`Run`.

Rules see these as ``derived.<field>`` (and ``derived.regularization.<field>``, ``derived.ema.<field>``).
Each field is documented in the ``Attributes`` section of :class:`Derived` / :class:`Regularization`;
:data:`DERIVED_FIELD_DOCS` and :data:`REGULARIZATION_FIELD_DOCS` expose that text to the rule documentation.

Nothing here raises on odd input: a value that cannot be derived (missing, or not a number in args.yaml)
becomes None and its ``*_source`` says ``"unknown"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.detect.metrics import chance_value
from mnv4_postmortem.analyzer.model import Run, TrainConfig, as_count, as_number
from mnv4_postmortem.analyzer.timm.version import TimmVersion

from mnv4_postmortem.analyzer.timm.recipe import SAMPLES_HINTS

from mnv4_postmortem.analyzer.features.ema import EmaModel, ema_model_from
from mnv4_postmortem.analyzer.timm.trainers import ema_evaluation
from mnv4_postmortem.analyzer.features.input_size import input_size_px
from mnv4_postmortem.analyzer.features.input_size import pretrained_input_size as _native_input_size

# ---------------------------------------------------------------------------------------------------
# Regularization

# Weight of each knob in Regularization.strength, per unit of the knob (see Regularization). Chosen so a
# plain recipe (timm defaults: smoothing 0.1, small weight decay) scores ~0.1-0.15 and a DeiT-style
# recipe (drop_path 0.1, mixup 0.8 + cutmix 1.0, smoothing 0.1, reprob 0.25, rand-m9, AdamW wd 0.05)
# scores ~0.9. Only the ordering is meant to be used, never the exact value.
STRENGTH_WEIGHTS: Mapping[str, float] = MappingProxyType({
    "drop": 1.0,          # classifier dropout rate
    "drop_path": 1.0,     # stochastic depth rate
    "drop_block": 1.0,    # DropBlock rate
    "mixup_cutmix": 0.25,  # max(mixup, cutmix) alpha (capped at 1) x mixup_prob: timm alternates the two
    "smoothing": 1.0,     # label smoothing
    "reprob": 0.5,        # random erasing probability
    "aa": 0.02,           # per unit of augmentation magnitude (rand-m9 -> 0.18); unknown magnitude counts as 5
    "weight_decay": 0.1,  # per "typical" decay: 0.05 for decoupled optimizers (AdamW, LAMB...), 1e-4 for SGD-like
})

_TYPICAL_WEIGHT_DECAY = {"decoupled": 0.05, "coupled": 1e-4}
_DEFAULT_AA_MAGNITUDE = 5.0
# Optimizers whose weight decay is decoupled from the gradient (scaled by LR, not added to it), so their
# usual values are ~500x those of SGD. timm names: adamw, nadamw, sgdw, madgradw, ... and these.
_DECOUPLED_OPTIMIZERS = frozenset({"lamb", "lambc", "lion", "adan", "adafactorbv", "adopt", "laprop"})
# --drop-connect is recorded but ignored since timm 0.8.2dev0 (commit 87939e6f, timm-formats.md §9).
_DROP_CONNECT_IGNORED_SINCE = (0, 8, 2)


@dataclass(frozen=True, slots=True)
class Regularization:
    """How hard the recipe regularizes, knob by knob, plus one comparable score.

    Attributes:
        drop: classifier dropout rate (``--drop``).
        drop_path: stochastic-depth rate the model really got: ``--drop-path``, or ``--drop-connect`` on
            timm <= 0.6 where it was an alias (0 when neither is set).
        drop_connect: ``--drop-connect`` as recorded in args.yaml (None when unset).
        drop_connect_ignored: True when ``--drop-connect`` was set but the run's timm (>= 0.8.2dev0)
            ignores it: the run trained without the stochastic depth the command line suggests.
        drop_block: DropBlock rate (``--drop-block``; 0 when unset).
        mixup: mixup alpha (``--mixup``; 0 = off).
        cutmix: CutMix alpha (``--cutmix``; 0 = off).
        mixup_prob: probability of applying mixup/CutMix to a batch (``--mixup-prob``, default 1).
        smoothing: label smoothing (``--smoothing``, timm default 0.1).
        weight_decay: ``--weight-decay``.
        weight_decay_decoupled: True when the optimizer decouples weight decay (AdamW, LAMB, Lion...),
            whose typical values (~0.05) are far larger than SGD's (~1e-4).
        reprob: random-erasing probability (``--reprob``).
        aa: auto-augment policy string (``--aa``, e.g. ``rand-m9-mstd0.5-inc1``), None when off.
        aa_magnitude: magnitude parsed from ``aa`` (``m9`` -> 9), 5 for a policy without one, 0 when off.
        strength: one scalar for comparing recipes: the sum of ``strength_terms``. Roughly 0.1 for timm's
            plain defaults, ~0.5 for drop 0.2 + drop_path 0.2, ~0.9 for a DeiT-style heavy recipe. Use it
            to order recipes, not as a physical quantity.
        strength_terms: each knob's contribution to ``strength`` (weights in ``STRENGTH_WEIGHTS``).
    """

    drop: float = 0.0
    drop_path: float = 0.0
    drop_connect: float | None = None
    drop_connect_ignored: bool = False
    drop_block: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    mixup_prob: float = 1.0
    smoothing: float = 0.0
    weight_decay: float = 0.0
    weight_decay_decoupled: bool = False
    reprob: float = 0.0
    aa: str | None = None
    aa_magnitude: float = 0.0
    strength: float = 0.0
    # compare=False: a mapping is unhashable, and the terms follow from the other fields anyway.
    strength_terms: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}), compare=False)


def regularization_from(config: TrainConfig, timm_version: TimmVersion | str | None = None) -> Regularization:
    """Read the regularization knobs from a run's config (timm's defaults fill missing keys upstream)."""
    drop = config.number("drop", 0.0, minimum=0.0, maximum=1.0)
    drop_connect = config.number("drop_connect", minimum=0.0)
    drop_path_arg = config.number("drop_path", minimum=0.0)
    connect_used = drop_connect is not None and _drop_connect_used(config, timm_version)
    drop_path = drop_path_arg if drop_path_arg is not None else (drop_connect if connect_used else 0.0)
    drop_path = drop_path or 0.0
    drop_block = config.number("drop_block", 0.0, minimum=0.0, maximum=1.0)
    mixup = config.number("mixup", 0.0, minimum=0.0)
    cutmix = config.number("cutmix", 0.0, minimum=0.0)
    mixup_prob = config.number("mixup_prob", 1.0, minimum=0.0, maximum=1.0)
    smoothing = config.number("smoothing", 0.0, minimum=0.0, maximum=1.0)
    weight_decay = config.number("weight_decay", 0.0, minimum=0.0)
    decoupled = is_decoupled_weight_decay(config.get("opt"))
    reprob = config.number("reprob", 0.0, minimum=0.0, maximum=1.0)
    aa = _aa_policy(config.get("aa"))
    aa_magnitude = _aa_magnitude(aa)

    typical_wd = _TYPICAL_WEIGHT_DECAY["decoupled" if decoupled else "coupled"]
    terms = {
        "drop": STRENGTH_WEIGHTS["drop"] * drop,
        "drop_path": STRENGTH_WEIGHTS["drop_path"] * drop_path,
        "drop_block": STRENGTH_WEIGHTS["drop_block"] * drop_block,
        "mixup_cutmix": STRENGTH_WEIGHTS["mixup_cutmix"] * min(1.0, max(mixup, cutmix)) * mixup_prob,
        "smoothing": STRENGTH_WEIGHTS["smoothing"] * smoothing,
        "reprob": STRENGTH_WEIGHTS["reprob"] * reprob,
        "aa": STRENGTH_WEIGHTS["aa"] * aa_magnitude,
        # Capped so an absurd decay cannot swamp every other knob.
        "weight_decay": STRENGTH_WEIGHTS["weight_decay"] * min(weight_decay / typical_wd, 10.0),
    }
    return Regularization(
        drop=drop,
        drop_path=drop_path,
        drop_connect=drop_connect,
        drop_connect_ignored=bool(drop_connect) and not connect_used,
        drop_block=drop_block,
        mixup=mixup,
        cutmix=cutmix,
        mixup_prob=mixup_prob,
        smoothing=smoothing,
        weight_decay=weight_decay,
        weight_decay_decoupled=decoupled,
        reprob=reprob,
        aa=aa,
        aa_magnitude=aa_magnitude,
        strength=float(sum(terms.values())),
        strength_terms=MappingProxyType(terms),
    )


def is_decoupled_weight_decay(opt: Any) -> bool:
    """True for timm optimizers with decoupled weight decay (``adamw``, ``nadamw``, ``lamb``, ``lion``...)."""
    if not isinstance(opt, str):
        return False
    name = opt.strip().lower().rsplit("_", 1)[-1]  # "lookahead_adamw", "fused_lamb" -> the optimizer
    return name.endswith("w") or name in _DECOUPLED_OPTIMIZERS


def _drop_connect_used(config: TrainConfig, timm_version: TimmVersion | str | None) -> bool:
    """Whether the run's timm still passed ``--drop-connect`` to the model (timm < 0.8.2dev0)."""
    version = TimmVersion.parse(timm_version)
    if version is not None:
        if version.below(_DROP_CONNECT_IGNORED_SINCE):
            return True
        if version.at_least(_DROP_CONNECT_IGNORED_SINCE):
            return False
    if config.args:
        return "lr_base" not in config.args  # lr_base arrived in the same release (0.8.2dev0)
    return False  # assume a current timm


def _aa_policy(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return None if text.lower() in ("", "none", "null", "false") else text


def _aa_magnitude(policy: str | None) -> float:
    if policy is None:
        return 0.0
    match = re.search(r"(?:^|-)m(\d+(?:\.\d+)?)(?:-|$)", policy)
    return float(match.group(1)) if match else _DEFAULT_AA_MAGNITUDE


# ---------------------------------------------------------------------------------------------------
# Derived


@dataclass(frozen=True, slots=True)
class Derived:
    """Quantities derived from a run's config and logs, in the units timm uses.

    Attributes:
        model: model name as given to timm (``--model``), None when unknown.
        timm_version: the ingest's guess of the timm version, e.g. ``">=1.0.23"``.
        lr: peak learning rate the run used: the resolved LR (log line or ``lr_base`` scaling), else
            args.yaml ``lr``; None when unknown.
        lr_source: where ``lr`` came from: the ingest's note for a resolved LR, ``"args.yaml"``,
            ``"timm default"``, ``"lr_base scaling"`` (computed here as timm does), or ``"unknown"``.
        batch_size: per-process batch size (``--batch-size``).
        grad_accum_steps: micro-batches per optimizer update (``--grad-accum-steps``, 1 before timm 0.9).
        world_size: number of training processes (1 unless the log shows distributed training).
        global_batch: samples per optimizer update: ``batch_size * world_size * grad_accum_steps``.
        lr_per_sample: ``lr / global_batch``: comparable across batch sizes under linear LR scaling.
        steps_per_epoch: optimizer updates per epoch, the ``N`` in the log's ``Train: e [i/N]`` (timm >= 0.9
            counts updates, older versions batches, which are the same without gradient accumulation);
            the most common ``N`` when it changed (a resume with another batch size).
        steps_per_epoch_source: ``"log"``, ``"dataset hint"`` (a size the ingest found), or ``"unknown"``.
        updates_per_epoch: optimizer updates per epoch (equals ``steps_per_epoch``).
        updates_run: optimizer updates done by the end of the run, summed over epochs 0..epochs_run-1
            (updates before a resume included). For a final epoch the run stopped inside, only up to
            its last logged update (a lower bound, short by less than ``log_interval``).
        updates_scheduled: ``updates_per_epoch * epochs_scheduled``.
        epochs_run: epochs trained: last epoch index seen (summary or log) + 1, a final unfinished epoch
            included; 0 for an empty run.
        epochs_scheduled: epochs the LR schedule spans (log's ``Scheduled epochs``, else from args.yaml:
            ``epochs`` + cycles + ``cooldown_epochs`` + prefix warmup for cosine/tanh/poly).
        epochs_scheduled_source: ``"log"``, ``"args.yaml"`` or ``"unknown"``.
        ema: the EMA whose numbers timm reported (``EmaModel``: decay, warmup, version, horizon,
            half_life), None when EMA is off or forced to CPU (then eval metrics are the raw model's).
        ema_evaluated: True when the reported eval metrics are the EMA copy's (``ema`` is not None).
        ema_init_share_by_epoch: share of the initial weights still inside the EMA at the END of each
            epoch (for an unfinished last epoch: at its last logged update); index = epoch (0-based),
            covering epochs ``0 .. epochs_run - 1``. Empty when there is no EMA or the updates per epoch
            are unknown. Near 1 means the EMA is still the initial model.
        ema_init_share_final: the last value of ``ema_init_share_by_epoch`` (None when empty).
        ema_horizon_epochs: the EMA's averaging window in epochs: ``ema.horizon / updates_per_epoch``.
        ema_half_life_epochs: epochs for the initial share to halve at full decay:
            ``ema.half_life / updates_per_epoch``.
        ema_half_share_epoch: the first epoch (0-based) at whose end the initial share is below 0.5
            (may lie beyond the run); None when unknown or never.
        run_input_size: square input size (px) the run trained at: the log's data config, args.yaml
            ``input_size`` / ``img_size``, else the model's default (what timm falls back to).
        run_input_size_source: ``"log"`` (or the ingest's note), ``"args.yaml input_size"``,
            ``"args.yaml img_size"``, ``"model default"`` or ``"unknown"``.
        pretrained_input_size: the model's native input size (its default pretrained config).
        input_size_source: where ``pretrained_input_size`` came from: ``"timm"`` (timm's registry, as the
            shipped table holds it), ``"estimate"`` (not in that table: estimated from the name) or ``"unknown"``.
        input_size_ratio: ``run_input_size / pretrained_input_size`` (0.25 for 56 px on a 224 px model).
        uses_pretrained: True when the weights did not start random: ``--pretrained`` (with or without
            ``--pretrained-path``; the path alone is ignored by train.py), a log that shows pretrained
            weights loading, or ``--initial-checkpoint``.
        init_source: ``"pretrained"``, ``"pretrained_path"``, ``"initial_checkpoint"`` or ``"scratch"``.
        num_classes: classes of the classifier (the log's, else args.yaml), None when unknown.
        chance_top1: top-1 accuracy (%) of a constant or random predictor: ``100 / num_classes``.
        chance_top5: top-5 accuracy (%) of a random predictor: ``500 / num_classes``; None for 5 classes or
            fewer, where top-5 is 100 % for every model. Both are ``detect.metrics.chance_value``, the one
            computation of chance levels.
        regularization: the recipe's regularization knobs and their ``strength`` (see ``Regularization``).
        dataset_size_hint: approximate number of training samples: ``steps_per_epoch * global_batch``
            (timm drops the last partial batch, so the real size is up to one global batch larger), or
            a size the ingest found; None when unknown.
        dataset_size_source: ``"steps x global batch"``, ``"dataset hint"`` or ``"unknown"``.
        trainer: the trainer family (a ``timm/trainers.py`` key); None for timm's own train.py.
        ema_evaluation: which model the reported eval is: ``"replaces"`` (the EMA's when one is kept, timm),
            ``"raw"`` (the model's even with an EMA, DeiT), ``"both"`` (the two apart) or ``"unknown"``.
    """

    model: str | None = None
    timm_version: str | None = None  # the text of the run's TimmVersion, for rules and reports
    lr: float | None = None
    lr_source: str = "unknown"
    batch_size: int | None = None
    grad_accum_steps: int = 1
    world_size: int = 1
    global_batch: int | None = None
    lr_per_sample: float | None = None
    steps_per_epoch: int | None = None
    steps_per_epoch_source: str = "unknown"
    updates_per_epoch: int | None = None
    updates_run: int | None = None
    updates_scheduled: int | None = None
    epochs_run: int = 0
    epochs_scheduled: int | None = None
    epochs_scheduled_source: str = "unknown"
    ema: EmaModel | None = None
    ema_evaluated: bool = False
    ema_init_share_by_epoch: tuple[float, ...] = ()
    ema_init_share_final: float | None = None
    ema_horizon_epochs: float | None = None
    ema_half_life_epochs: float | None = None
    ema_half_share_epoch: int | None = None
    run_input_size: int | None = None
    run_input_size_source: str = "unknown"
    pretrained_input_size: int | None = None
    input_size_source: str = "unknown"
    input_size_ratio: float | None = None
    uses_pretrained: bool = False
    init_source: str = "scratch"
    num_classes: int | None = None
    chance_top1: float | None = None
    chance_top5: float | None = None
    regularization: Regularization = Regularization()
    dataset_size_hint: int | None = None
    dataset_size_source: str = "unknown"
    # The trainer family (timm/trainers.py key; None: timm's own train.py) and which model its reported
    # eval numbers are ("replaces": the EMA's when one is kept; "raw": the model's even with an EMA;
    # "both": the two apart; "unknown"). ``ema`` is None unless "replaces": the EMA facts describe the
    # evaluated model only when the EMA is what was evaluated.
    trainer: str | None = None
    ema_evaluation: str = "replaces"


def derive(run: Run) -> Derived:
    """Compute every derived quantity of ``run`` (pure: reads the run, writes nothing)."""
    config = run.config
    batch = _batch_facts(config)
    lr, lr_source = _learning_rate(config)
    per_epoch, steps_source, upe = _updates_per_epoch(run)
    epochs_run = _epochs_run(run)
    ends = _updates_at_epoch_ends(run, per_epoch, upe, epochs_run)
    updates_run = int(ends[-1]) if ends.size else None
    epochs_scheduled, epochs_scheduled_source = _epochs_scheduled(run)
    ema = ema_model_from(run)
    ema_facts = _ema_facts(ema, ends, upe)
    input_facts = _input_size_facts(run)
    init_source = _init_source(config)
    num_classes = config.count("num_classes", minimum=1)
    dataset_size, dataset_source = _dataset_size(config, upe, steps_source, batch["global_batch"])
    global_batch = batch["global_batch"]
    model = config.get("model")
    return Derived(
        model=model if isinstance(model, str) else None,
        timm_version=str(run.timm_version) if run.timm_version is not None else None,
        lr=lr,
        lr_source=lr_source,
        batch_size=batch["batch_size"],
        grad_accum_steps=batch["grad_accum_steps"],
        world_size=batch["world_size"],
        global_batch=global_batch,
        lr_per_sample=lr / global_batch if lr is not None and global_batch else None,
        steps_per_epoch=upe,
        steps_per_epoch_source=steps_source,
        updates_per_epoch=upe,
        updates_run=updates_run,
        updates_scheduled=upe * epochs_scheduled if upe is not None and epochs_scheduled is not None else None,
        epochs_run=epochs_run,
        epochs_scheduled=epochs_scheduled,
        epochs_scheduled_source=epochs_scheduled_source,
        ema=ema,
        ema_evaluated=ema is not None,
        **ema_facts,
        **input_facts,
        uses_pretrained=init_source != "scratch",
        init_source=init_source,
        num_classes=num_classes,
        chance_top1=chance_value("eval_top1", num_classes),
        chance_top5=chance_value("eval_top5", num_classes),
        regularization=regularization_from(config, run.timm_version),
        trainer=getattr(run, "trainer", None),
        ema_evaluation=ema_evaluation(getattr(run, "trainer", None)),
        dataset_size_hint=dataset_size,
        dataset_size_source=dataset_source,
    )


# ----------------------------------------------------------------------------- batch and LR


def _batch_facts(config: TrainConfig) -> dict[str, Any]:
    """Batch sizes as the ingest resolved them (``global_batch`` is timm.recipe's, computed once)."""
    return {
        "batch_size": config.count("batch_size", minimum=1),
        "grad_accum_steps": config.count("grad_accum_steps", 1, minimum=1),
        "world_size": config.count("world_size", 1, minimum=1),
        "global_batch": config.count("global_batch", minimum=1),
    }


def _learning_rate(config: TrainConfig) -> tuple[float | None, str]:
    """The peak LR as the ingest resolved it (timm.recipe: the log's line, ``lr``, or ``lr_base`` scaling)."""
    resolved = as_number(config.effective.get("lr"))
    if resolved is not None and resolved > 0:
        return resolved, config.effective_sources.get("lr", "resolved")
    given = as_number(config.values.get("lr"))
    if given is not None and given > 0:
        return given, "timm default" if "lr" in config.defaulted else "args.yaml"
    return None, "unknown"


# ----------------------------------------------------------------------------- updates and epochs

def _updates_per_epoch(run: Run) -> tuple[dict[int, int], str, int | None]:
    """Updates per epoch as the ingest resolved them (the Recipe's): by epoch (key -1 for one hinted
    value), the kind of source ("log" or "dataset hint"), and the typical value."""
    resolved = run.recipe.updates_per_epoch
    typical = as_count(resolved.value, minimum=1) if resolved is not None else None
    by_epoch = run.recipe.updates_by_epoch
    if typical is None or not by_epoch:
        return {}, "unknown", None
    kind = "log" if resolved.kind == "log" else "dataset hint"
    return {int(e): int(n) for e, n in by_epoch.items()}, kind, typical


def _epoch_indices(run: Run) -> list[int]:
    indices: list[int] = []
    for values in (run.epochs.index if isinstance(run.epochs, pd.DataFrame) else [],
                   run.steps["epoch"] if isinstance(run.steps, pd.DataFrame) and "epoch" in run.steps else []):
        numbers = pd.to_numeric(pd.Series(list(values), dtype="object"), errors="coerce").dropna()
        indices.extend(int(v) for v in numbers if 0 <= v < 1e7)
    return indices


def _epochs_run(run: Run) -> int:
    indices = _epoch_indices(run)
    return max(indices) + 1 if indices else 0


def _updates_at_epoch_ends(run: Run, per_epoch: Mapping[int, int], typical: int | None, epochs_run: int) -> np.ndarray:
    """Updates done by the end of epochs 0..epochs_run-1 (epochs absent from the log use ``typical``).

    Summed epoch by epoch rather than read from timm's global counter, which restarts at
    ``start_epoch * updates_per_epoch`` on resume and so miscounts when the batch size changed.
    A final epoch with Train: lines but no epoch row (the run stopped inside it) counts only up to
    its last logged update: a lower bound, short by less than ``log_interval`` updates.
    """
    if typical is None or epochs_run == 0:
        return np.zeros(0, dtype=np.int64)
    counts = np.array([per_epoch.get(e, typical) for e in range(epochs_run)], dtype=np.int64)
    partial = _partial_last_epoch_updates(run, epochs_run - 1)
    if partial is not None:
        counts[-1] = min(int(counts[-1]), partial)
    return np.cumsum(counts)


def _partial_last_epoch_updates(run: Run, last_epoch: int) -> int | None:
    """Updates logged in ``last_epoch`` when it has no epoch row (an unfinished epoch), else None."""
    if _epoch_in_index(run.epochs, last_epoch):
        return None
    steps = run.steps
    if not isinstance(steps, pd.DataFrame) or steps.empty or not {"epoch", "idx"} <= set(steps.columns):
        return None
    epochs = pd.to_numeric(steps["epoch"], errors="coerce")
    idx = pd.to_numeric(steps["idx"], errors="coerce")[epochs == last_epoch].dropna()
    if idx.empty or not 0 <= idx.max() < 1e12:
        return None
    return int(idx.max()) + 1  # idx is 0-based


def _epoch_in_index(epochs: pd.DataFrame, epoch: int) -> bool:
    if not isinstance(epochs, pd.DataFrame) or epochs.empty:
        return False
    numbers = pd.to_numeric(pd.Series(list(epochs.index), dtype="object"), errors="coerce")
    return bool((numbers == epoch).any())


def _epochs_scheduled(run: Run) -> tuple[int | None, str]:
    """The schedule length the ingest resolved (timm.recipe.schedule_length) and its kind of source."""
    scheduled = as_count(run.epochs_scheduled, minimum=1)
    if scheduled is None:
        return None, "unknown"
    resolved = run.recipe.epochs_scheduled
    if resolved is None:
        return scheduled, "unknown"
    return scheduled, "log" if resolved.kind == "log" else "args.yaml"


# ----------------------------------------------------------------------------- EMA


def _ema_facts(ema: EmaModel | None, ends: np.ndarray, upe: int | None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "ema_init_share_by_epoch": (),
        "ema_init_share_final": None,
        "ema_horizon_epochs": None,
        "ema_half_life_epochs": None,
        "ema_half_share_epoch": None,
    }
    if ema is None or upe is None:
        return facts
    shares = tuple(float(v) for v in ema.init_weight_after_many(ends)) if ends.size else ()
    facts["ema_init_share_by_epoch"] = shares
    facts["ema_init_share_final"] = shares[-1] if shares else None
    facts["ema_horizon_epochs"] = ema.horizon / upe
    facts["ema_half_life_epochs"] = ema.half_life / upe
    facts["ema_half_share_epoch"] = _first_epoch_below(ema, 0.5, ends, upe)
    return facts


def _first_epoch_below(ema: EmaModel, share: float, ends: np.ndarray, upe: int) -> int | None:
    if ends.size:
        below = np.flatnonzero(ema.init_weight_after_many(ends) < share)
        if below.size:
            return int(below[0])
    needed = ema.updates_until_share(share)
    if needed is None:
        return None
    # Beyond the run: later epochs would add ``upe`` updates each. Epoch e (>= epochs run) ends at
    # done_updates + (e - last_epoch) * upe.
    last_epoch = int(ends.size) - 1
    done_updates = int(ends[-1]) if ends.size else 0
    return last_epoch + math.ceil((needed - done_updates) / upe)


# ----------------------------------------------------------------------------- input size, init, data


def _input_size_facts(run: Run) -> dict[str, Any]:
    config = run.config
    model = config.get("model")
    native, native_source = _native_input_size(model, run.timm_version)
    size, source = None, "unknown"
    if input_size_px(config.effective.get("input_size")) is not None:
        size = input_size_px(config.effective.get("input_size"))
        source = config.effective_sources.get("input_size", "log")
    elif input_size_px(config.values.get("input_size")) is not None:
        size, source = input_size_px(config.values.get("input_size")), "args.yaml input_size"
    elif input_size_px(config.get("img_size")) is not None:
        size, source = input_size_px(config.get("img_size")), "args.yaml img_size"
    elif native is not None:
        size, source = native, "model default"
    return {
        "run_input_size": size,
        "run_input_size_source": source,
        "pretrained_input_size": native,
        "input_size_source": native_source,
        "input_size_ratio": size / native if size is not None and native else None,
    }


def _init_source(config: TrainConfig) -> str:
    # timm's train.py passes --pretrained-path only as a pretrained_cfg overlay: without --pretrained the file
    # is never read (every release that has the flag, 0.9.16 on), so the path alone is a random init.
    if config.flag("pretrained"):
        return "pretrained_path" if config.text("pretrained_path") else "pretrained"
    if config.effective.get("pretrained_source"):
        return "pretrained"
    if config.text("initial_checkpoint"):
        return "initial_checkpoint"
    return "scratch"


def _dataset_size(
    config: TrainConfig, upe: int | None, steps_source: str, global_batch: int | None
) -> tuple[int | None, str]:
    if steps_source == "log" and upe is not None and global_batch is not None:
        return upe * global_batch, "steps x global batch"
    for key in SAMPLES_HINTS:
        value = as_count(config.effective.get(key), minimum=1)
        if value is not None:
            return value, "dataset hint"
    if upe is not None and global_batch is not None:
        return upe * global_batch, "steps x global batch"
    return None, "unknown"


# ----------------------------------------------------------------------------- field docs


def _attribute_docs(cls: type) -> Mapping[str, str]:
    """``name -> text`` from the ``Attributes:`` section of a class docstring (one source of truth)."""
    docs: dict[str, str] = {}
    lines = (cls.__doc__ or "").split("Attributes:", 1)[-1].splitlines()
    current: str | None = None
    for line in lines:
        match = re.match(r"^ {8}(\w+): (.*)$", line)
        if match:
            current = match.group(1)
            docs[current] = match.group(2).strip()
        elif current and line.startswith(" " * 12):
            docs[current] += " " + line.strip()
    return MappingProxyType(docs)


DERIVED_FIELD_DOCS: Mapping[str, str] = _attribute_docs(Derived)
"""``derived.<field>`` -> its documentation, for the rule reference."""

REGULARIZATION_FIELD_DOCS: Mapping[str, str] = _attribute_docs(Regularization)
"""``derived.regularization.<field>`` -> its documentation."""

__all__ = [
    "DERIVED_FIELD_DOCS",
    "REGULARIZATION_FIELD_DOCS",
    "STRENGTH_WEIGHTS",
    "Derived",
    "Regularization",
    "derive",
    "is_decoupled_weight_decay",
    "regularization_from",
]
