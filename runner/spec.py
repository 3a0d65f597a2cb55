"""The training spec: what a reproduction trains, built from the normalized run (torch-free).

A spec starts from the run's config as the analyzer normalized it (args.yaml, the log's effective
values, timm's defaults for the run's era), is scaled to the reproduction's budget
(:mod:`mnv4_postmortem.runner.scaling`), and records every decision as a :class:`SpecEntry`
(kept / scaled / replaced, and why) so it can be printed before anything runs.

This module is the one place the runner imports the analyzer's timm knowledge (the train.py command
line, the era); timm's defaults come with the run (``run.config.defaults``, resolved once at ingest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping

# --- the analyzer's timm knowledge: read here only (analyzer/timm/ owns it) ---------------------
from mnv4_postmortem.analyzer.model import Run
from mnv4_postmortem.analyzer.session import ema_version, recipe_quantities
from mnv4_postmortem.analyzer.timm.command_line import render_train_command, train_command
from mnv4_postmortem.analyzer.timm.version import era_of
from mnv4_postmortem.runner import scaling

if TYPE_CHECKING:
    from mnv4_postmortem.analyzer.features.derived import Derived

__all__ = [
    "ArmSpec", "Budget", "InitPlan", "SpecEntry", "TrainSpec", "build_spec", "apply_patch", "canonical",
    "command_for", "ema_decay", "with_budget", "render_train_command", "train_command", "EMA_KEYS",
]

Status = Literal["kept", "scaled", "replaced"]

# Keys that only change the EMA copy: arms differing only in these share one training trajectory.
EMA_KEYS = ("model_ema", "model_ema_decay", "model_ema_warmup", "model_ema_force_cpu")

DEFAULT_MAX_SAMPLES = 128
DEFAULT_VAL_SAMPLES = 300  # the seed run's validation set size; fewer scatter a near-chance EMA too much
DEFAULT_MAX_EPOCHS = 8
MIN_UPDATES_PER_EPOCH = 8
EVAL_BATCH = 100


# Settings where "unset" and 0 mean the same to timm (no dropout, no mixup, ...).
_ZERO_IS_UNSET = frozenset({"drop", "drop_path", "drop_block", "drop_connect", "mixup", "cutmix", "smoothing", "reprob"})


def canonical(key: str, value: Any) -> Any:
    if key in _ZERO_IS_UNSET and (value is None or value == 0):
        return 0.0
    return value


@dataclass(frozen=True, slots=True)
class SpecEntry:
    """One line of the printed spec: a setting, its original and reproduction values, and why."""

    name: str
    original: Any
    value: Any
    status: Status
    why: str = ""


@dataclass(frozen=True, slots=True)
class InitPlan:
    """Where the weights start. ``kind``: pretrained-file, pretrained-hub, checkpoint or random."""

    kind: str
    path: str | None = None
    note: str = ""        # why, when the original's weights could not be used
    changes: str = ""     # what this changes for the verdict (empty when the original init is used)


@dataclass(frozen=True, slots=True)
class Budget:
    """The original run's size and the reproduction's, in optimizer updates."""

    original_updates: int
    original_updates_per_epoch: int
    original_epochs: int
    original_batch: int
    original_train_samples: int | None
    updates: int
    updates_per_epoch: int
    epochs: int
    batch: int
    train_samples: int
    val_samples: int

    @property
    def ratio(self) -> float:
        """U / U': how many original updates one reproduction update stands for."""
        return self.original_updates / max(self.updates, 1)


@dataclass(frozen=True, slots=True)
class ArmSpec:
    """One arm: train.py arguments (already scaled) plus what train.py cannot express.

    ``ema_warmup_gamma`` is ModelEmaV3's ``warmup_gamma`` for the scaled warmup (train.py always uses
    1.0; the built-in trainer passes the scaled value, ``--train-script`` cannot).
    """

    name: str
    role: Literal["control", "treatment"]
    args: Mapping[str, Any]
    ema_warmup_gamma: float = 1.0
    patch: Mapping[str, Any] = field(default_factory=dict)
    entries: tuple[SpecEntry, ...] = ()

    def trajectory_key(self) -> tuple:
        """Arms with the same key train the same raw model (they differ only in EMA settings)."""
        return tuple(sorted((k, repr(canonical(k, v))) for k, v in self.args.items()
                            if k not in EMA_KEYS and k != "experiment"))

    def same_as(self, other: "ArmSpec") -> bool:
        """Same training and same EMA: one folder serves both."""
        keys = set(self.args) | set(other.args)
        return self.ema_warmup_gamma == other.ema_warmup_gamma and all(
            canonical(k, self.args.get(k)) == canonical(k, other.args.get(k)) for k in keys if k != "experiment")

    @property
    def ema_on(self) -> bool:
        return bool(self.args.get("model_ema")) and not bool(self.args.get("model_ema_force_cpu"))


@dataclass(frozen=True, slots=True)
class TrainSpec:
    """The scaled recipe of one run: the base (control) args and everything around them."""

    run_name: str
    run_dir: Path
    timm_version: str | None
    era: str
    ema_version: str
    args: Mapping[str, Any]              # control arm's train.py args, scaled
    original_args: Mapping[str, Any]     # the run's effective args, unscaled
    budget: Budget
    init: InitPlan
    data: str                            # "proxy" or an ImageFolder path
    entries: tuple[SpecEntry, ...]
    ema_warmup_gamma: float = 1.0
    derived: Derived | None = None
    lr_from_base: bool = False

    def arm(self, name: str, role: Literal["control", "treatment"], patch: Mapping[str, Any] | None = None) -> ArmSpec:
        """The arm with ``patch`` applied to the ORIGINAL recipe, then scaled like the control."""
        if not patch:
            return ArmSpec(name, role, dict(self.args), self.ema_warmup_gamma, {}, self.entries)
        args, gamma, entries = apply_patch(self, patch)
        return ArmSpec(name, role, args, gamma, dict(patch), entries)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run_name,
            "timm_version": self.timm_version,
            "era": self.era,
            "ema_version": self.ema_version,
            "budget": {k: getattr(self.budget, k) for k in self.budget.__dataclass_fields__},
            "init": {"kind": self.init.kind, "path": self.init.path, "note": self.init.note, "changes": self.init.changes},
            "data": self.data,
            "entries": [entry_json(e) for e in self.entries],
        }


def entry_json(e: SpecEntry) -> dict[str, Any]:
    return {"name": e.name, "original": _plain(e.original), "value": _plain(e.value), "status": e.status, "why": e.why}


def _plain(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


# ------------------------------------------------------------------------------------------- build


def build_spec(
    run: Run,
    *,
    data: str = "proxy",
    epochs: int | None = None,
    max_samples: int | None = None,
    val_samples: int | None = None,
    img_size: int | None = None,
    init_checkpoint: Path | None = None,
    hub_available: bool = False,
) -> TrainSpec:
    """The control arm's spec: the run's recipe, scaled to the reproduction's budget."""
    derived = recipe_quantities(run)
    original = _original_args(run, derived)
    budget = _budget(original, derived, epochs, max_samples, val_samples)
    entries: list[SpecEntry] = []
    args = dict(original)

    _keep(entries, original, ("model", "opt", "sched", "weight_decay", "momentum", "drop", "drop_path",
                              "mixup", "cutmix", "smoothing", "num_classes", "clip_grad"))
    if img_size is not None and img_size != _input_px(original):
        args["img_size"], args["input_size"] = img_size, None
        entries.append(SpecEntry("img_size", _input_px(original), img_size, "replaced", "--img-size given"))
    else:
        entries.append(SpecEntry("img_size", _input_px(original), _input_px(original), "kept",
                                 "input size is a suspect itself (input-size-mismatch): never scaled"))

    _scale_budget(entries, args, original, budget)
    _scale_schedule(entries, args, original, budget)
    lr_from_base = run.config.args.get("lr") is None and bool(original.get("lr_base"))
    _scale_lr(entries, args, original, budget, lr_from_base)
    gamma = _scale_ema(entries, args, original, budget, run)
    init = _init_plan(original, init_checkpoint, hub_available)
    _note_init(entries, args, original, init)
    _note_data(entries, data, budget)
    _note_unsupported(entries, args, original)
    args["experiment"] = ""
    era = era_of(run.timm_version)
    version = ema_version(run, bool(original.get("model_ema_warmup")))
    return TrainSpec(
        run_name=run.run_dir.resolve().name, run_dir=run.run_dir,
        timm_version=str(run.timm_version) if run.timm_version is not None else None, era=era,
        ema_version=version, args=args, original_args=original, budget=budget, init=init, data=data,
        entries=tuple(entries), ema_warmup_gamma=gamma, derived=derived, lr_from_base=lr_from_base,
    )


def apply_patch(spec: TrainSpec, patch: Mapping[str, Any]) -> tuple[dict[str, Any], float, tuple[SpecEntry, ...]]:
    """A fix is a patch on the ORIGINAL recipe (the rule computed it at the original's scale); the
    patched recipe is then scaled with the control's budget, so both arms stand for the same run."""
    original = {**spec.original_args, **patch}
    if "lr" in patch:
        original["lr"] = patch["lr"]
    entries: list[SpecEntry] = []
    args = dict(original)
    _scale_budget(entries, args, original, spec.budget)
    _scale_schedule(entries, args, original, spec.budget)
    _scale_lr(entries, args, original, spec.budget, spec.lr_from_base and "lr" not in patch)
    gamma = _scale_ema(entries, args, original, spec.budget, None, spec.ema_version)
    for key in ("pretrained", "pretrained_path", "initial_checkpoint", "img_size", "input_size"):
        if key not in patch:
            args[key] = spec.args.get(key)
    args["experiment"] = ""
    kept = [e for e in spec.entries if e.name not in {x.name for x in entries}]
    for key, value in patch.items():
        kept = [e for e in kept if e.name != key]
        if key not in {e.name for e in entries}:
            before = spec.original_args.get(key)
            same = canonical(key, before) == canonical(key, value)
            entries.append(SpecEntry(key, before, value, "kept" if same else "replaced",
                                     "the fix leaves it as it was" if same else "the fix"))
    return args, gamma, tuple(kept + entries)


def _original_args(run: Run, derived: Derived) -> dict[str, Any]:
    """train.py's args as the run used them: args.yaml over the era's defaults, effective values on top."""
    # timm's defaults for the run's era come from the config (ingest resolved them once from the table).
    args = dict(run.config.defaults)
    args.update({k: v for k, v in run.config.values.items()})
    for key in ("lr", "num_classes", "input_size"):
        value = run.config.get(key)
        if value is not None:
            args[key] = value
    if derived.lr is not None:
        args["lr"] = derived.lr
    if derived.num_classes:
        args["num_classes"] = derived.num_classes
    if derived.run_input_size and not args.get("img_size") and not args.get("input_size"):
        args["img_size"] = derived.run_input_size
    args.setdefault("grad_accum_steps", 1)
    args["grad_accum_steps"] = args.get("grad_accum_steps") or 1
    # An EMA decay left empty in args.yaml is timm's default: resolved here once, so every arm carries one.
    args["model_ema_decay"] = args.get("model_ema_decay") or run.config.or_default("model_ema_decay")
    return args


def ema_decay(args: Mapping[str, Any]) -> float:
    """The EMA decay an arm's args train with (a spec's args always carry one, see :func:`_original_args`)."""
    return float(args["model_ema_decay"])


def _input_px(args: Mapping[str, Any]) -> int | None:
    size = args.get("input_size")
    if isinstance(size, (list, tuple)) and len(size) == 3:
        return int(size[-1])
    return int(args["img_size"]) if args.get("img_size") else None


def _budget(original: Mapping[str, Any], derived: Derived, epochs: int | None, max_samples: int | None,
            val_samples: int | None) -> Budget:
    # samples per optimizer update, world size included (the reproduction is one process)
    batch = int(derived.global_batch or int(original.get("batch_size") or 32) * int(original.get("grad_accum_steps") or 1))
    upe = int(derived.updates_per_epoch or 0) or 1
    orig_epochs = int(derived.epochs_scheduled or original.get("epochs") or derived.epochs_run or 1)
    orig_samples = upe * batch if derived.updates_per_epoch else None
    samples = min(max_samples or DEFAULT_MAX_SAMPLES, orig_samples or (max_samples or DEFAULT_MAX_SAMPLES))
    new_batch = min(batch, max(1, samples // MIN_UPDATES_PER_EPOCH))
    new_upe = max(1, samples // new_batch)  # drop_last, as timm's train loader
    new_epochs = int(epochs or min(orig_epochs, DEFAULT_MAX_EPOCHS))
    return Budget(
        original_updates=upe * orig_epochs, original_updates_per_epoch=upe, original_epochs=orig_epochs,
        original_batch=batch, original_train_samples=orig_samples, updates=new_upe * new_epochs,
        updates_per_epoch=new_upe, epochs=new_epochs, batch=new_batch, train_samples=new_upe * new_batch,
        val_samples=int(val_samples or DEFAULT_VAL_SAMPLES),
    )


def _keep(entries: list[SpecEntry], original: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    why = {"drop": "regularization is kept as run", "drop_path": "regularization is kept as run",
           "mixup": "regularization is kept as run", "cutmix": "regularization is kept as run",
           "smoothing": "regularization is kept as run", "model": "the model is kept"}
    for key in keys:
        entries.append(SpecEntry(key, original.get(key), original.get(key), "kept", why.get(key, "")))


def _scale_budget(entries: list[SpecEntry], args: dict[str, Any], original: Mapping[str, Any], budget: Budget) -> None:
    args["batch_size"], args["grad_accum_steps"] = budget.batch, 1
    if not original.get("validation_batch_size"):
        # eval runs in eval mode: the batch size changes speed, not the numbers
        args["validation_batch_size"] = max(budget.batch, EVAL_BATCH)
    args["epochs"] = budget.epochs
    entries.append(SpecEntry("train samples", budget.original_train_samples, budget.train_samples, "scaled",
                             "--max-samples: a reproduction is small"))
    entries.append(SpecEntry("batch_size", budget.original_batch, budget.batch,
                             "kept" if budget.batch == budget.original_batch else "scaled",
                             f"at least {MIN_UPDATES_PER_EPOCH} updates per epoch"))
    entries.append(SpecEntry("epochs", budget.original_epochs, budget.epochs,
                             "kept" if budget.epochs == budget.original_epochs else "scaled", "--epochs / budget"))
    entries.append(SpecEntry("optimizer updates", budget.original_updates, budget.updates, "scaled",
                             f"{budget.updates_per_epoch}/epoch x {budget.epochs} (original "
                             f"{budget.original_updates_per_epoch}/epoch x {budget.original_epochs})"))


def _scale_schedule(entries: list[SpecEntry], args: dict[str, Any], original: Mapping[str, Any], budget: Budget) -> None:
    """Epoch-valued schedule settings keep their fraction of the run."""
    factor = budget.epochs / max(budget.original_epochs, 1)
    for key in ("warmup_epochs", "cooldown_epochs", "decay_epochs", "patience_epochs", "mixup_off_epoch"):
        value = original.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value == 0:
            continue
        new = scaling.scale_epochs(value, factor)
        args[key] = new
        if key == "warmup_epochs" or new != value:
            before, after = value / max(budget.original_epochs, 1), new / max(budget.epochs, 1)
            if abs(before - after) < 1e-9:
                why = f"fraction of the run kept ({value}/{budget.original_epochs} -> {new}/{budget.epochs})"
            else:
                why = (f"nearest whole epoch to the same fraction: {value}/{budget.original_epochs} ({before:.0%}) -> "
                       f"{new}/{budget.epochs} ({after:.0%})")
            entries.append(SpecEntry(key, value, new, "kept" if new == value and budget.epochs == budget.original_epochs
                                     else "scaled", why))
    milestones = original.get("decay_milestones")
    if isinstance(milestones, (list, tuple)) and factor != 1:
        args["decay_milestones"] = [scaling.scale_epochs(m, factor) for m in milestones]


def _scale_lr(entries: list[SpecEntry], args: dict[str, Any], original: Mapping[str, Any], budget: Budget,
              from_base: bool = False) -> None:
    lr = original.get("lr")
    new = scaling.scale_lr(lr, budget.original_batch, budget.batch, original, from_base)
    args["lr"] = new
    if from_base:
        how = "lr was derived from lr_base: timm's rule applied to the new batch"
    elif budget.batch != budget.original_batch:
        how = "per-sample LR kept (linear in the batch)"
    else:
        how = "same batch: LR kept"
    entries.append(SpecEntry("lr", lr, new, "kept" if new == lr else "scaled", how))
    for key in ("warmup_lr", "min_lr"):
        value = original.get(key)
        if isinstance(value, (int, float)) and value and lr:
            args[key] = value * (new / lr) if new and lr else value


def _scale_ema(entries: list[SpecEntry], args: dict[str, Any], original: Mapping[str, Any], budget: Budget,
               run: Run | None, version: str | None = None) -> float:
    if not original.get("model_ema"):
        return 1.0
    decay = ema_decay(original)
    warmup = bool(original.get("model_ema_warmup"))
    if version is None:
        version = ema_version(run, warmup) if run is not None else "v3"
    plan = scaling.scale_ema(decay, warmup, version, budget.original_updates, budget.updates)
    args["model_ema_decay"] = plan.decay
    entries.append(SpecEntry("model_ema_decay", decay, round(plan.decay, 6), "scaled", plan.why))
    if warmup:
        entries.append(SpecEntry("ema warmup_gamma", 1.0, round(plan.warmup_gamma, 4), "scaled", plan.gamma_why))
    return plan.warmup_gamma


def _init_plan(original: Mapping[str, Any], init_checkpoint: Path | None, hub_available: bool) -> InitPlan:
    checkpoint = original.get("initial_checkpoint")
    if checkpoint and Path(str(checkpoint)).is_file():
        return InitPlan("checkpoint", str(checkpoint))
    if not original.get("pretrained"):
        if checkpoint:
            return _fallback(init_checkpoint, f"--initial-checkpoint {checkpoint} does not exist here",
                             "the original started from that checkpoint")
        return InitPlan("random")
    path = original.get("pretrained_path")
    if path:
        if Path(str(path)).is_file():
            return InitPlan("pretrained-file", str(path))
        return _fallback(init_checkpoint, f"--pretrained-path {path} does not exist on this machine",
                         "the original fine-tuned pretrained weights")
    if hub_available:
        return InitPlan("pretrained-hub")
    return _fallback(init_checkpoint, "pretrained hub weights cannot be downloaded here (no network, not cached)",
                     "the original fine-tuned pretrained weights")


def _fallback(init_checkpoint: Path | None, note: str, original: str) -> InitPlan:
    if init_checkpoint is not None:
        return InitPlan("checkpoint", str(init_checkpoint), note + f"; starting from --init-checkpoint {init_checkpoint}",
                        f"{original}; this reproduction starts from {init_checkpoint.name} instead, so effects that "
                        "depend on those exact weights (input-size mismatch, fine-tuning LR) are only approximated")
    return InitPlan("random", None, note + "; starting from random init",
                    f"{original}; this reproduction starts from random init, so it tests the recipe from scratch: "
                    "input-size-mismatch cannot be tested, and the EMA keeps random (not pretrained) weights")


def _note_init(entries: list[SpecEntry], args: dict[str, Any], original: Mapping[str, Any], init: InitPlan) -> None:
    orig = "pretrained" if original.get("pretrained") else ("checkpoint" if original.get("initial_checkpoint") else "random")
    if init.note:
        entries.append(SpecEntry("init", orig, init.kind, "replaced", init.note))
        args["pretrained"], args["pretrained_path"] = False, None
        args["initial_checkpoint"] = init.path or ""
    else:
        entries.append(SpecEntry("init", orig, init.kind, "kept", ""))


def _note_data(entries: list[SpecEntry], data: str, budget: Budget) -> None:
    if data == "proxy":
        entries.append(SpecEntry("data", "original dataset", "proxy", "replaced",
                                 "--proxy: procedural images at the run's size and class count (no downloads); "
                                 "timm's image augmentations are not applied to it"))
    else:
        entries.append(SpecEntry("data", "original dataset", data, "replaced", "--data-dir ImageFolder, subsampled"))
    entries.append(SpecEntry("val samples", None, budget.val_samples, "scaled", "a small fixed validation set"))


def _note_unsupported(entries: list[SpecEntry], args: dict[str, Any], original: Mapping[str, Any]) -> None:
    """What the built-in trainer does not reproduce, said out loud (``--train-script`` runs them as given)."""
    if original.get("amp"):
        args["amp"] = False
        entries.append(SpecEntry("amp", True, False, "replaced", "the built-in trainer runs float32"))
    if original.get("jsd_loss") or int(original.get("aug_splits") or 0) > 1:
        args["jsd_loss"], args["aug_splits"] = False, 0
        entries.append(SpecEntry("jsd_loss / aug_splits", True, False, "replaced",
                                 "augmentation splits are not built; the loss falls back to train.py's next choice"))
    world = original.get("world_size")
    if isinstance(world, int) and world > 1:
        entries.append(SpecEntry("world_size", world, 1, "replaced", "one process; the global batch is scaled instead"))


def with_budget(spec: TrainSpec, **changes: Any) -> TrainSpec:
    """The spec with some budget fields changed (lr-find sweeps its own number of samples)."""
    return replace(spec, budget=replace(spec.budget, **changes))


def command_for(spec: TrainSpec, patch: Mapping[str, Any] | None = None) -> str:
    """The original recipe (plus patch) as a train.py command line, in the run's era."""
    return train_command(spec.original_args, patch, timm_version=spec.timm_version)
