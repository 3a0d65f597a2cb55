"""The built-in trainer: timm's library APIs, driven with train.py's semantics (written here, not copied).

What follows train.py (timm 1.0):

* model: ``timm.create_model`` with ``drop_rate``, ``drop_path_rate`` (and drop_block, gp, bn settings);
* optimizer: ``create_optimizer_v2(model, **optimizer_kwargs(args))``;
* schedule: ``create_scheduler_v2(optimizer, **scheduler_kwargs(args), updates_per_epoch=...)``;
  ``step_update(num_updates)`` after every optimizer update and ``step(epoch + 1, metric)`` after each
  epoch, so the schedule steps per epoch or per update exactly as the era's ``sched_on_updates`` says;
* updates are counted per optimizer step (``num_updates``), which is what the EMA sees;
* EMA: ``ModelEmaV3(decay, use_warmup, warmup_gamma)`` updated with ``step=num_updates`` (timm >= 0.9.16),
  or ``ModelEmaV2`` updated every step with a constant decay (older eras);
* Mixup/CutMix via ``timm.data.Mixup``; the loss as train.py picks it (SoftTargetCrossEntropy with
  mixup, BinaryCrossEntropy with ``bce_loss``, LabelSmoothingCrossEntropy with smoothing, else
  CrossEntropyLoss); validation loss is plain CrossEntropyLoss;
* reporting: the EMA's eval metrics REPLACE the model's in summary.csv (the raw model's numbers exist
  only in ``Test:`` lines), as train.py does when ``--model-ema`` is on and not forced to CPU.

Sharing a trajectory: :func:`train_trajectory` trains ONE raw model for a group of arms that differ
only in EMA settings, with one EMA copy per arm. The EMA never feeds back into the raw model, so
each arm's files are exactly what its own run would have written (same seed, same updates).

Hooks: ``on_step(step, model, loss, optimizer)`` runs after each ``optimizer.step()`` and before
``zero_grad`` (gradients still there, e.g. for gradient-norm logging); ``on_epoch(epoch, metrics)``
after each epoch's evaluation. Neither may change the model.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, Subset

from mnv4_postmortem.runner.artifacts import ArmWriter
from mnv4_postmortem.runner.spec import ArmSpec, InitPlan, TrainSpec, ema_decay

OnStep = Callable[[int, nn.Module, torch.Tensor, torch.optim.Optimizer], None]
OnEpoch = Callable[[int, Mapping[str, Any]], None]
Progress = Callable[[int, int, int, float], None]  # (update, total updates, epoch, running loss)

__all__ = ["ArmResult", "build_datasets", "build_model", "build_optimizer", "build_loss", "train_arm",
           "train_trajectory", "seed_everything"]


@dataclass
class ArmResult:
    """What one arm x seed produced: its folder (train.py formats) and the numbers the verdict needs."""

    arm: str
    seed: int
    out_dir: Path
    epochs: list[dict[str, float]] = field(default_factory=list)  # summary rows
    final_correct: list[int] = field(default_factory=list)        # reported model (the EMA's when evaluated)
    final_correct_model: list[int] = field(default_factory=list)  # the raw model
    ema_share_observed: float | None = None   # initial-weight share measured on timm's EMA class
    seconds: float = 0.0
    step_seconds: float = 0.0


# ------------------------------------------------------------------------------------------ setup


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        # cheap on CPU; warn_only keeps ops without a deterministic kernel usable on GPU
        torch.use_deterministic_algorithms(True, warn_only=True)


def _ns(args: Mapping[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(**dict(args))


def input_px(args: Mapping[str, Any]) -> int:
    size = args.get("input_size")
    if isinstance(size, (list, tuple)) and len(size) == 3:
        return int(size[-1])
    return int(args.get("img_size") or 224)


def build_model(args: Mapping[str, Any], init: InitPlan | None = None) -> nn.Module:
    import timm

    kwargs: dict[str, Any] = dict(
        num_classes=int(args["num_classes"]),
        drop_rate=float(args.get("drop") or 0.0),
        drop_path_rate=args.get("drop_path"),
        drop_block_rate=args.get("drop_block"),
        global_pool=args.get("gp"),
        bn_momentum=args.get("bn_momentum"),
        bn_eps=args.get("bn_eps"),
        in_chans=int(args.get("in_chans") or 3),
        **dict(args.get("model_kwargs") or {}),
    )
    pretrained, overlay = False, None
    if init is not None and init.kind == "pretrained-file":
        pretrained, overlay = True, {"file": init.path}
    elif init is not None and init.kind == "pretrained-hub":
        pretrained = True
    model = timm.create_model(str(args["model"]), pretrained=pretrained, pretrained_cfg_overlay=overlay,
                              **{k: v for k, v in kwargs.items() if v is not None})
    if init is not None and init.kind == "checkpoint" and init.path:
        _load_checkpoint(model, init.path)
    return model


def _load_checkpoint(model: nn.Module, path: str) -> None:
    """timm's load_state_dict (prefers state_dict_ema like train.py); a different head is skipped."""
    from timm.models import load_state_dict

    state = load_state_dict(path, use_ema=True)
    own = model.state_dict()
    kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(kept, strict=False)


def build_optimizer(model: nn.Module, args: Mapping[str, Any]) -> torch.optim.Optimizer:
    from timm.optim import create_optimizer_v2, optimizer_kwargs

    return create_optimizer_v2(model, **optimizer_kwargs(cfg=_ns(args)))


def build_scheduler(optimizer: torch.optim.Optimizer, args: Mapping[str, Any], updates_per_epoch: int):
    from timm.scheduler import create_scheduler_v2, scheduler_kwargs

    decreasing = "loss" in str(args.get("eval_metric") or "top1")
    return create_scheduler_v2(optimizer, **scheduler_kwargs(_ns(args), decreasing_metric=decreasing),
                               updates_per_epoch=updates_per_epoch)


def build_mixup(args: Mapping[str, Any]):
    from timm.data import Mixup

    mixup, cutmix = float(args.get("mixup") or 0), float(args.get("cutmix") or 0)
    if not (mixup > 0 or cutmix > 0 or args.get("cutmix_minmax") is not None):
        return None
    return Mixup(mixup_alpha=mixup, cutmix_alpha=cutmix, cutmix_minmax=args.get("cutmix_minmax"),
                 prob=float(args.get("mixup_prob", 1.0)), switch_prob=float(args.get("mixup_switch_prob", 0.5)),
                 mode=str(args.get("mixup_mode") or "batch"), label_smoothing=float(args.get("smoothing") or 0),
                 num_classes=int(args["num_classes"]))


def build_loss(args: Mapping[str, Any], mixup_active: bool) -> tuple[nn.Module, str]:
    """train.py's choice of training loss (JSD needs aug splits, which the runner does not build)."""
    from timm.loss import BinaryCrossEntropy, LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

    bce = bool(args.get("bce_loss"))
    bce_kwargs = dict(target_threshold=args.get("bce_target_thresh"), sum_classes=bool(args.get("bce_sum")),
                      pos_weight=args.get("bce_pos_weight"))
    smoothing = float(args.get("smoothing") or 0)
    if mixup_active:
        return (BinaryCrossEntropy(**bce_kwargs), "BinaryCrossEntropy") if bce else (SoftTargetCrossEntropy(), "SoftTargetCrossEntropy")
    if smoothing:
        if bce:
            return BinaryCrossEntropy(smoothing=smoothing, **bce_kwargs), "BinaryCrossEntropy"
        return LabelSmoothingCrossEntropy(smoothing=smoothing), "LabelSmoothingCrossEntropy"
    return nn.CrossEntropyLoss(), "CrossEntropyLoss"


def build_datasets(spec: TrainSpec, args: Mapping[str, Any]) -> tuple[Dataset, Dataset]:
    """The arm's train and validation sets: the proxy, or an ImageFolder subsampled to the budget."""
    size = input_px(args)
    classes = int(args["num_classes"])
    budget = spec.budget
    if spec.data == "proxy":
        from mnv4_postmortem.runner.proxy import ProxyDataset

        return (ProxyDataset(classes, size, budget.train_samples, "train"),
                ProxyDataset(classes, size, budget.val_samples, "validation"))
    return _image_folder(Path(spec.data), args, size, budget.train_samples, budget.val_samples)


def _image_folder(root: Path, args: Mapping[str, Any], size: int, n_train: int, n_val: int) -> tuple[Dataset, Dataset]:
    from timm.data import ImageDataset, create_transform, resolve_data_config

    given = {"input_size": (3, size, size), "interpolation": args.get("interpolation"), "mean": args.get("mean"),
             "std": args.get("std"), "crop_pct": args.get("crop_pct")}
    cfg = resolve_data_config({k: v for k, v in given.items() if v not in (None, "")})
    train_tf = create_transform(cfg["input_size"], is_training=True, no_aug=bool(args.get("no_aug")),
                                scale=args.get("scale"), ratio=args.get("ratio"),
                                hflip=float(args.get("hflip", 0.5)), vflip=float(args.get("vflip", 0.0)),
                                color_jitter=args.get("color_jitter", 0.4), auto_augment=args.get("aa"),
                                interpolation=args.get("train_interpolation") or "random", mean=cfg["mean"], std=cfg["std"],
                                re_prob=float(args.get("reprob") or 0), re_mode=args.get("remode", "pixel"),
                                re_count=int(args.get("recount") or 1))
    eval_tf = create_transform(cfg["input_size"], is_training=False, interpolation=cfg["interpolation"],
                               mean=cfg["mean"], std=cfg["std"], crop_pct=cfg["crop_pct"])
    train_dir = _split_dir(root, (str(args.get("train_split") or "train"), "train"))
    val_dir = _split_dir(root, (str(args.get("val_split") or "validation"), "validation", "val"))
    train, val = ImageDataset(str(train_dir), transform=train_tf), ImageDataset(str(val_dir), transform=eval_tf)
    return _subset(train, n_train), _subset(val, n_val)


def _split_dir(root: Path, names: Sequence[str]) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"{root}: no {' / '.join(dict.fromkeys(names))} folder (an ImageFolder per split)")


def _subset(dataset: Dataset, n: int) -> Dataset:
    total = len(dataset)  # type: ignore[arg-type]
    if n >= total:
        return dataset
    order = np.random.default_rng(0).permutation(total)[:n]  # fixed: the same subset for every arm and seed
    return Subset(dataset, sorted(int(i) for i in order))


def _make_ema(arm: ArmSpec, model: nn.Module, version: str):
    from timm.utils import ModelEmaV2, ModelEmaV3

    if not arm.ema_on:
        return None, None
    decay = ema_decay(arm.args)
    if version == "v3":
        kwargs = dict(decay=decay, use_warmup=bool(arm.args.get("model_ema_warmup")), warmup_gamma=arm.ema_warmup_gamma)
        return ModelEmaV3(model, **kwargs), ModelEmaV3(_ShareTracer(), **kwargs)
    return ModelEmaV2(model, decay=decay), ModelEmaV2(_ShareTracer(), decay=decay)


class _ShareTracer(nn.Module):
    """One weight that starts at 1 while the "model" it follows sits at 0: the EMA copy of it is, exactly,
    the share of the initial weights left in an EMA driven by the same class, settings and steps.
    ModelEmaV3 copies the model on update 1; the model after one step counts as the initial weights
    (as in the analyzer's EmaModel), so the followed value is 1 at update 1 for V3."""

    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.full((1,), float(value), dtype=torch.float64), requires_grad=False)


_FOLLOWED = {0.0: _ShareTracer(0.0), 1.0: _ShareTracer(1.0)}


def _followed(step: int, copies_first: bool) -> nn.Module:
    return _FOLLOWED[1.0 if copies_first and step == 1 else 0.0]


# ------------------------------------------------------------------------------------------ loops


def _header(args: Mapping[str, Any], model: nn.Module, device: torch.device, size: int, criterion: str,
            optimizer: torch.optim.Optimizer, num_epochs: int, t_in_epochs: bool, init: InitPlan | None) -> list[str]:
    params = sum(p.numel() for p in model.parameters())
    lines = [f"Training with a single process on 1 device ({device.type})."]
    if init is not None and init.kind == "checkpoint" and init.path:
        lines.append(f"Loaded state_dict from checkpoint '{init.path}'")
    lines += [
        f"Model {args['model']} created, param count:{params}",
        "Data processing configuration for current model + dataset:",
        f"\tinput_size: (3, {size}, {size})",
        "AMP not enabled. Training in torch.float32.",
        f"ClassificationTask: criterion={criterion}",
        f"Created {type(optimizer).__name__} ({args.get('opt')}) optimizer: lr: {args.get('lr')}",
        f"Scheduled epochs: {num_epochs} (epochs + cooldown_epochs). Warmup within epochs when warmup_prefix=False. "
        f"LR stepped per {'epoch' if t_in_epochs else 'update'}.",
    ]
    return lines


@torch.inference_mode()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, log_interval: int,
             writers: Sequence[tuple[ArmWriter, str]] = ()) -> tuple[dict[str, float], list[int]]:
    """train.py's validate(): plain cross-entropy, top-1/top-5 averaged by batch size; per-sample correctness."""
    from timm.utils import AverageMeter, accuracy

    loss_fn = nn.CrossEntropyLoss()
    model.eval()
    losses, top1, top5, batch_time = AverageMeter(), AverageMeter(), AverageMeter(), AverageMeter()
    correct: list[int] = []
    last_idx = len(loader) - 1
    end = time.time()
    for batch_idx, (images, target) in enumerate(loader):
        images, target = images.to(device), target.to(device)
        output = model(images)
        if isinstance(output, (tuple, list)):
            output = output[0]
        loss = loss_fn(output, target)
        k5 = min(5, output.shape[1])
        acc1, acc5 = accuracy(output, target, topk=(1, k5))
        n = output.shape[0]
        losses.update(loss.item(), n)
        top1.update(acc1.item(), n)
        top5.update(acc5.item(), n)
        correct.extend((output.argmax(1) == target).int().tolist())
        batch_time.update(time.time() - end)
        end = time.time()
        if batch_idx == last_idx or batch_idx % log_interval == 0:
            for writer, suffix in writers:
                writer.test_line(suffix, batch_idx, last_idx, batch_time.val, batch_time.avg, losses.val, losses.avg,
                                 top1.val, top1.avg, top5.val, top5.avg)
    return {"loss": losses.avg, "top1": top1.avg, "top5": top5.avg}, correct


def train_trajectory(
    spec: TrainSpec,
    arms: Sequence[ArmSpec],
    seed: int,
    out_dirs: Sequence[Path],
    *,
    device: str = "cpu",
    on_step: OnStep | None = None,
    on_epoch: OnEpoch | None = None,
    progress: Progress | None = None,
    tensorboard: bool = True,
) -> list[ArmResult]:
    """Train one raw model for ``arms`` (all with the same non-EMA args); one EMA and one folder per arm."""
    if not arms or len(arms) != len(out_dirs):
        raise ValueError("one output folder per arm")
    key = arms[0].trajectory_key()
    if any(a.trajectory_key() != key for a in arms[1:]):
        raise ValueError("arms that share a trajectory may differ only in EMA settings")
    started = time.time()
    args = dict(arms[0].args)
    dev = torch.device(device)
    if dev.type == "cpu":
        set_cpu_threads()
    seed_everything(seed)
    train_set, val_set = build_datasets(spec, args)
    model = build_model(args, spec.init).to(dev)
    generator = torch.Generator().manual_seed(seed)
    batch = int(args["batch_size"])
    train_loader = DataLoader(train_set, batch_size=batch, shuffle=True, drop_last=True, generator=generator, num_workers=0)
    # Its own generator: every DataLoader iteration draws a base seed, and from the global RNG that would
    # shift dropout by the number of EMA arms evaluated (arms must not depend on their neighbours).
    val_loader = DataLoader(val_set, batch_size=int(args.get("validation_batch_size") or batch), shuffle=False,
                            num_workers=0, generator=torch.Generator().manual_seed(seed))
    updates_per_epoch = len(train_loader)
    optimizer = build_optimizer(model, args)
    scheduler, num_epochs = build_scheduler(optimizer, args, updates_per_epoch)
    mixup = build_mixup(args)
    train_loss_fn, criterion = build_loss(args, mixup is not None)
    log_interval = int(args.get("log_interval") or 50)

    emas = [_make_ema(arm, model, spec.ema_version) for arm in arms]
    writers = [ArmWriter(d, {**arm.args, "seed": seed}, tensorboard) for arm, d in zip(arms, out_dirs)]
    results = [ArmResult(arm.name, seed, Path(d)) for arm, d in zip(arms, out_dirs)]
    header = _header(args, model, dev, input_px(args), criterion, optimizer, num_epochs,
                     bool(getattr(scheduler, "t_in_epochs", True)), spec.init)
    for writer in writers:
        writer.header(header)
    monitor = None
    if tensorboard:  # per-step gradient norms (global, per layer group) and a few histograms, to TensorBoard
        from mnv4_postmortem.runner.monitor import GradMonitor, chain_steps

        monitor = GradMonitor(model, out_dirs, num_epochs * updates_per_epoch)
        on_step = chain_steps(monitor, on_step)

    num_updates = 0
    step_time_total, step_count = 0.0, 0
    try:
        for epoch in range(num_epochs):
            if args.get("mixup_off_epoch") and epoch >= int(args["mixup_off_epoch"]) and mixup is not None:
                mixup.mixup_enabled = False
            train_metrics, num_updates, spent, steps = _train_one_epoch(
                epoch, model, train_loader, optimizer, scheduler, train_loss_fn, mixup, emas, writers, dev, args,
                num_updates, num_epochs * updates_per_epoch, log_interval, on_step, progress)
            step_time_total, step_count = step_time_total + spent, step_count + steps
            model_metrics, model_correct = evaluate(model, val_loader, dev, log_interval, [(w, "") for w in writers])
            lrs = [group["lr"] for group in optimizer.param_groups]
            lr = sum(lrs) / len(lrs)
            for arm, (ema, _), writer, result in zip(arms, emas, writers, results):
                reported, correct = model_metrics, model_correct
                if ema is not None:
                    # train.py: eval_metrics = ema_eval_metrics (the EMA REPLACES the model in what is reported)
                    reported, correct = evaluate(ema.module, val_loader, dev, log_interval, [(writer, " (EMA)")])
                writer.epoch_end(epoch, train_metrics, reported, lr, first=epoch == 0)
                result.epochs.append({"epoch": epoch, "train_loss": train_metrics["loss"],
                                      "eval_loss": reported["loss"], "eval_top1": reported["top1"],
                                      "eval_top5": reported["top5"], "eval_top1_model": model_metrics["top1"], "lr": lr})
                result.final_correct, result.final_correct_model = correct, model_correct
            if on_epoch is not None:
                on_epoch(epoch, {"train": train_metrics, "eval_model": model_metrics, "lr": lr})
            metric_name = str(args.get("eval_metric") or "top1")
            scheduler.step(epoch + 1, results[0].epochs[-1].get(f"eval_{metric_name}", model_metrics.get(metric_name)))
    finally:
        if monitor is not None:
            monitor.close()
        for writer, result, (ema, tracer) in zip(writers, results, emas):
            if result.epochs:
                last = result.epochs[-1]
                writer.final_eval(result.final_correct, result.final_correct_model,
                                  {"top1": last["eval_top1"], "loss": last["eval_loss"], "top1_model": last["eval_top1_model"]})
            if tracer is not None:
                result.ema_share_observed = float(_tracer_value(tracer))
            writer.close()
            result.seconds = time.time() - started
            result.step_seconds = step_time_total / max(step_count, 1)
    return results


def _tracer_value(tracer) -> float:
    module = getattr(tracer, "module", tracer)
    return float(module.w.detach()[0])


def _train_one_epoch(epoch, model, loader, optimizer, scheduler, loss_fn, mixup, emas, writers, dev, args,
                     num_updates, total_updates, log_interval, on_step, progress):
    from timm.utils import AverageMeter

    model.train()
    losses, update_time, data_time = AverageMeter(), AverageMeter(), AverageMeter()
    updates_per_epoch = len(loader)
    clip = args.get("clip_grad")
    spent = 0.0
    data_start = update_start = time.time()
    optimizer.zero_grad()
    for update_idx, (images, target) in enumerate(loader):
        last_batch = update_idx == updates_per_epoch - 1
        images, target = images.to(dev), target.to(dev)
        if mixup is not None:
            images, target = mixup(images, target)
        data_time.update(time.time() - data_start)
        loss = loss_fn(model(images), target)
        loss.backward()
        if clip is not None:
            from timm.utils import dispatch_clip_grad

            dispatch_clip_grad(model.parameters(), value=float(clip), mode=str(args.get("clip_mode") or "norm"))
        optimizer.step()
        losses.update(loss.item(), images.shape[0])
        num_updates += 1
        if on_step is not None:
            on_step(num_updates, model, loss.detach(), optimizer)  # gradients are still in place here
        optimizer.zero_grad()
        for ema, tracer in emas:
            if ema is None:
                continue
            if hasattr(ema, "get_decay"):  # ModelEmaV3: train.py passes step=num_updates
                ema.update(model, step=num_updates)
                tracer.update(_followed(num_updates, True), step=num_updates)
            else:  # ModelEmaV2 (older eras): constant decay every update
                ema.update(model)
                tracer.update(_followed(num_updates, False))
        now = time.time()
        update_time.update(now - update_start)
        spent += now - update_start
        update_start = now
        if update_idx % log_interval == 0 or last_batch:
            lrs = [group["lr"] for group in optimizer.param_groups]
            for writer in writers:
                writer.train_line(epoch, update_idx, updates_per_epoch, losses.val, losses.avg, update_time.val,
                                  update_time.avg, images.shape[0], sum(lrs) / len(lrs), data_time.val, data_time.avg)
        scheduler.step_update(num_updates=num_updates, metric=losses.avg)
        if progress is not None:
            progress(num_updates, total_updates, epoch, losses.avg)
        # a non-finite loss does not stop train.py, nor us: the analyzer reads the NaNs
        data_start = time.time()
    return {"loss": losses.avg}, num_updates, spent, updates_per_epoch


def train_arm(spec: TrainSpec, arm: ArmSpec, seed: int, out_dir: Path, **kwargs: Any) -> ArmResult:
    """One arm, one seed (a trajectory of its own)."""
    return train_trajectory(spec, [arm], seed, [out_dir], **kwargs)[0]


def set_cpu_threads() -> int:
    """One intra-op thread on CPU unless OMP_NUM_THREADS says otherwise.

    Tiny models at small input sizes gain little from more threads, and on a busy machine torch's
    spinning threads lose a lot: measured here (2 cores, load 13), a mobilenetv4_conv_small step at
    56 px took 0.65 s with one thread and 10-27 s with two.
    """
    wanted = os.environ.get("OMP_NUM_THREADS", "")
    threads = max(1, int(wanted)) if wanted.isdigit() else 1
    torch.set_num_threads(threads)
    return threads
