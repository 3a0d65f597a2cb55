"""An LR range test (Smith 2015, "Cyclical Learning Rates"; popularized by fastai's ``lr_find``).

The sweep itself is the ``torch-lr-finder`` package (``LRFinder.range_test``): it fits timm, because
timm's optimizers (``create_optimizer_v2``) are ordinary ``torch.optim.Optimizer`` objects, and it saves
and restores the model's and the optimizer's ``state_dict`` (BatchNorm statistics and momentum buffers
included) around the test. Two things it cannot take from timm, and what is done instead:

- a timm scheduler: ``create_scheduler_v2`` writes ``initial_lr`` into the param groups and the package
  refuses such an optimizer. The range test replaces the schedule anyway (the LR rises exponentially from
  ``start_lr`` to ``end_lr``), so the optimizer is built without a scheduler.
- per-group LR scales (``--layer-decay`` writes ``lr_scale``): the package sets every group to the same LR.
  The sweep then measures the largest group's LR; the report says so when a run uses layer decay.

Mixup/CutMix is applied to each batch through the package's ``TrainDataLoaderIter`` hook, so the sweep
sees the loss the run trained on.

Suggestions. Each rule is named after the anchor it comes from:

- ``steepest``: the LR where the smoothed loss falls fastest against log(LR), after trimming the first
  10 and last 5 points: torch-lr-finder's ``plot(suggest_lr=True)`` and Lightning's
  ``Tuner.lr_find().suggestion()``. Two changes, both against noise: the slope at a point is a
  least-squares line over half a decade of LR around it (the anchors take neighbour differences, which
  on a small batch pick whichever two batches happened to differ most), and only the descent (the
  points up to the minimum) is searched (the anchors can pick a fall *after* the minimum, where the
  loss recovers from a spike on its way to diverging).
- ``minimum/10``: one decade below the LR of the smoothed minimum (fastai's ``minimum`` suggestion): at the
  minimum the loss is already about to climb, so the largest safe LR is an order of magnitude lower.

The suggested LR is the steepest descent, or ``minimum/10`` when the steepest descent lies above it (within a
decade of the minimum): the suggestion never leaves the range below.

The suggested range is Smith's: from where the loss starts to fall (the first LR at which 10% of its
fall from the start to the minimum is done: a fraction of the fall, so the bar scales with the curve and
not with the batch noise) to where it stops falling, taken conservatively as a decade below the minimum
(fastai's ``minimum/10``; above it training is on the edge of diverging).
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

# The summary, its character plot and the PNG/SVG plot are the registry's ``lr-find`` renderers
# (analyzer/render/lr_find.py), drawn from result_json's document.
__all__ = ["RangeTest", "LrSuggestion", "RunLrFind", "lr_find_for_run", "run_range_test", "suggest", "result_json"]

START_LR = 1e-7          # fastai's start_lr
END_LR = 10.0            # fastai's and torch-lr-finder's end_lr
STEPS = 200
SMOOTH_F = 0.05          # torch-lr-finder's default exponential smoothing
DIVERGE_TH = 4.0         # Lightning's early_stop_threshold: stop once the smoothed loss is 4x its best
SKIP_START = 10          # torch-lr-finder's plot() trims
SKIP_END = 5
START_FALL = 0.10          # the loss "starts to fall" once 10% of its fall to the minimum is done
SLOPE_HALF_DECADES = 0.25  # slopes are fitted over half a decade of LR (window_slopes)


@dataclass(frozen=True, slots=True)
class RangeTest:
    lrs: tuple[float, ...]
    losses: tuple[float, ...]       # smoothed (torch-lr-finder's exponential smoothing, smooth_f)
    raw_losses: tuple[float, ...]   # the loss of each batch as computed
    start_lr: float
    end_lr: float
    steps_planned: int
    stopped_early: bool             # the smoothed loss passed DIVERGE_TH x its best
    restored: bool                  # model and optimizer state_dicts restored afterwards
    seconds: float = math.nan


@dataclass(frozen=True, slots=True)
class LrSuggestion:
    lr: float                       # the suggested LR (``rule``)
    rule: str
    low: float                      # the suggested range
    high: float
    range_rule: str
    steepest: float
    min_loss_lr: float
    min_loss: float


def run_range_test(
    model: Any,
    optimizer: Any,
    loader: Iterable,
    criterion: Callable,
    *,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    steps: int = STEPS,
    device: str = "cpu",
    batch_fn: Callable[[Any, Any], tuple[Any, Any]] | None = None,
) -> RangeTest:
    """Sweep the LR exponentially over ``steps`` batches; the model and optimizer are restored after."""
    import time

    from torch_lr_finder import LRFinder, TrainDataLoaderIter

    raw: list[float] = []

    def recording(outputs, targets):
        loss = criterion(outputs, targets)
        raw.append(float(loss.detach()))
        return loss

    class _Batches(TrainDataLoaderIter):
        def inputs_labels_from_batch(self, batch_data):
            inputs, targets = batch_data[0], batch_data[1]
            return batch_fn(inputs, targets) if batch_fn is not None else (inputs, targets)

    import functools
    from unittest import mock

    import torch_lr_finder.lr_finder as upstream
    from tqdm.autonotebook import tqdm

    started = time.perf_counter()
    # The package prints its own hints ("See the graph with lr_finder.plot()", "Stopping early...") and a
    # tqdm bar: neither is ours to show (stdout is for data; our plot and stopped_early say the same), so
    # the prints are captured and dropped and the bar is created disabled.
    with contextlib.redirect_stdout(io.StringIO()), \
            mock.patch.object(upstream, "tqdm", functools.partial(tqdm, disable=True)):
        finder = LRFinder(model, optimizer, recording, device=device)
        finder.range_test(_Batches(loader), start_lr=start_lr, end_lr=end_lr, num_iter=steps, step_mode="exp",
                          smooth_f=SMOOTH_F, diverge_th=DIVERGE_TH)
        history = dict(finder.history)
        finder.reset()
    lrs = tuple(float(x) for x in history["lr"])
    return RangeTest(
        lrs=lrs, losses=tuple(float(x) for x in history["loss"]), raw_losses=tuple(raw[: len(lrs)]),
        start_lr=start_lr, end_lr=end_lr, steps_planned=steps, stopped_early=len(lrs) < steps, restored=True,
        seconds=time.perf_counter() - started,
    )


def suggest(test: RangeTest) -> LrSuggestion | None:
    """The steepest-descent LR and the range up to a decade below the minimum (module docstring)."""
    lrs, losses = np.asarray(test.lrs, float), np.asarray(test.losses, float)
    end = lrs.size - SKIP_END
    if end - SKIP_START < 3:
        return None
    window_lr, window_loss = lrs[SKIP_START:end], losses[SKIP_START:end]
    finite = np.isfinite(window_loss)
    if finite.sum() < 3:
        return None
    window_lr, window_loss = window_lr[finite], window_loss[finite]
    at_min = int(np.argmin(window_loss))
    min_lr = float(window_lr[at_min])
    # The descent is the curve up to its minimum: past it the loss is diverging, and a local fall there
    # is a recovery from a spike, not learning.
    descent = slice(0, max(at_min + 1, 3))
    slopes = window_slopes(np.log10(window_lr[descent]), window_loss[descent])
    steepest = float(window_lr[descent][int(np.nanargmin(slopes))])
    tenth = min_lr / 10.0
    start = float(np.median(window_loss[: max(3, min(10, at_min + 1))]))
    falling = np.flatnonzero(window_loss[: at_min + 1] <= start - START_FALL * (start - window_loss[at_min]))
    onset = float(window_lr[falling[0]]) if falling.size and start > window_loss[at_min] else min(steepest, tenth)
    if steepest <= tenth:
        lr, rule = steepest, "steepest descent of the smoothed loss (torch-lr-finder, Lightning)"
    else:
        lr, rule = tenth, (f"a decade below the loss minimum (fastai's minimum/10): the steepest descent ({steepest:.3g}) "
                           "lies within a decade of the minimum, too close to divergence")
    return LrSuggestion(
        lr=lr, rule=rule,
        low=min(onset, tenth), high=max(onset, tenth),
        range_rule=("Smith's range test: from where the loss starts to fall (10% of its fall to the minimum done) "
                    "to a decade below the loss minimum (fastai's minimum/10)"),
        steepest=steepest, min_loss_lr=min_lr, min_loss=float(window_loss[at_min]),
    )


def window_slopes(log_lr: np.ndarray, loss: np.ndarray, half_width: float = SLOPE_HALF_DECADES) -> np.ndarray:
    """d loss / d log10(lr) at each point: a least-squares line over the points within +-``half_width`` decades.

    A fall that holds over half a decade of LR is a property of the LR; one over two or three batches
    (what neighbour differences see) is batch noise.
    """
    out = np.full(log_lr.size, np.nan)
    for i, centre in enumerate(log_lr):
        near = np.abs(log_lr - centre) <= half_width
        if near.sum() >= 3:
            x, y = log_lr[near], loss[near]
            dx = x - x.mean()
            denom = float((dx * dx).sum())
            if denom > 0:
                out[i] = float((dx * (y - y.mean())).sum()) / denom
    if np.isnan(out).all():
        out[:] = np.gradient(loss, log_lr) if log_lr.size > 1 else 0.0
    return out


def to_json(test: RangeTest, suggestion: LrSuggestion | None, run_lr: float | None) -> dict[str, Any]:
    return {
        "run_lr": run_lr,
        "suggestion": asdict(suggestion) if suggestion else None,
        "ratio": (run_lr / suggestion.lr) if (run_lr and suggestion) else None,
        "in_range": bool(suggestion and run_lr and suggestion.low <= run_lr <= suggestion.high),
        "test": {k: v for k, v in asdict(test).items()},
    }


# ------------------------------------------------------------------------------------------ a run's own


@dataclass(frozen=True, slots=True)
class RunLrFind:
    """The range test of one run's recipe (scaled like a reproduction) and what it suggests."""

    run_name: str
    opt: str
    batch: int
    run_lr: float | None            # the recipe's LR at this batch (per-sample LR kept when it changed)
    original_lr: float | None
    test: RangeTest
    suggestion: LrSuggestion | None
    data: str
    init: str
    notes: tuple[str, ...] = ()

    @property
    def ratio(self) -> float | None:
        return (self.run_lr / self.suggestion.lr) if (self.run_lr and self.suggestion) else None

    @property
    def in_range(self) -> bool | None:
        if not (self.run_lr and self.suggestion):
            return None
        return self.suggestion.low <= self.run_lr <= self.suggestion.high


def lr_find_for_run(
    run: Any,
    *,
    data: str = "proxy",
    steps: int = STEPS,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    device: str = "cpu",
    seed: int = 0,
    init_checkpoint: Path | None = None,
) -> RunLrFind:
    """The range test on the run's model, optimizer, loss, batch and data (or the proxy), via the runner's
    spec and trainer building blocks; the model starts where a reproduction would (``spec.init``)."""
    from torch.utils.data import DataLoader

    from mnv4_postmortem.runner.spec import build_spec, with_budget
    from mnv4_postmortem.runner.trainer import (
        build_datasets, build_loss, build_mixup, build_model, build_optimizer, seed_everything, set_cpu_threads,
    )

    if device == "cpu":
        set_cpu_threads()
    # The run's own batch (a reproduction scales it down for its small budget; a range test must not) and
    # one pass over fresh samples (cycling a tiny set would measure memorization).
    original_batch = int(run.config.get("batch_size") or 32) * int(run.config.get("grad_accum_steps") or 1)
    spec = build_spec(run, data=data, init_checkpoint=init_checkpoint, max_samples=steps * original_batch)
    args = dict(spec.args)
    batch = int(args["batch_size"])
    spec = with_budget(spec, train_samples=steps * batch)
    seed_everything(seed)
    train_set, _ = build_datasets(spec, args)
    model = build_model(args, spec.init).to(device)
    optimizer = build_optimizer(model, args)
    mixup = build_mixup(args)
    criterion, _ = build_loss(args, mixup is not None)
    import torch

    loader = DataLoader(train_set, batch_size=batch, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed), num_workers=0)
    test = run_range_test(model, optimizer, loader, criterion, start_lr=start_lr, end_lr=end_lr, steps=steps,
                          device=device, batch_fn=mixup)
    notes = []
    if args.get("layer_decay"):
        notes.append("--layer-decay: every param group swept at one LR (the package ignores lr_scale)")
    if spec.init.note:
        notes.append(f"init: {spec.init.note}")
    if args.get("clip_grad") is not None:
        notes.append("--clip-grad is not applied during the sweep (torch-lr-finder has no clipping hook)")
    return RunLrFind(
        run_name=spec.run_name, opt=str(args.get("opt")), batch=batch, run_lr=_float(args.get("lr")),
        original_lr=_float(spec.original_args.get("lr")), test=test, suggestion=suggest(test), data=data,
        init=spec.init.kind, notes=tuple(notes),
    )


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def result_json(result: RunLrFind, plots: Sequence[Path] = ()) -> dict[str, Any]:
    s = result.suggestion
    return {
        "schema": "mnv4-postmortem/lr-find", "schema_version": "1.0",
        "run": result.run_name, "opt": result.opt, "batch": result.batch, "data": result.data, "init": result.init,
        "run_lr": result.run_lr, "original_lr": result.original_lr,
        "suggestion": asdict(s) if s else None,
        "ratio_run_to_suggestion": result.ratio, "run_lr_in_range": result.in_range,
        "sweep": {"start_lr": result.test.start_lr, "end_lr": result.test.end_lr, "steps_planned": result.test.steps_planned,
                  "steps_run": len(result.test.lrs), "stopped_early": result.test.stopped_early,
                  "restored": result.test.restored, "seconds": round(result.test.seconds, 1),
                  "smoothing": f"exponential, smooth_f={SMOOTH_F} (torch-lr-finder)",
                  "stop_rule": f"smoothed loss > {DIVERGE_TH:g}x its best (Lightning's early_stop_threshold)"},
        "lrs": list(result.test.lrs), "loss": list(result.test.losses), "raw_loss": list(result.test.raw_losses),
        "notes": list(result.notes), "plots": [str(p) for p in plots],
    }


LR_CAUSES = ("lr-too-high", "lr-too-low")


def with_finder_lr(run: Any, targets: Sequence[Any], data: str, device: str, console: Any = None,
                   init_checkpoint: Path | None = None, finder: Callable[..., RunLrFind] | None = None) -> list[Any]:
    """``reproduce``: an lr-too-high / lr-too-low target whose rule's fix gives no LR gets the range test's
    suggested LR as its treatment (on the original recipe's scale: the test runs at the run's own batch)."""
    from dataclasses import replace

    out = []
    for target in targets:
        if target.cause in LR_CAUSES and "lr" not in (target.patch or {}):
            result = (finder or lr_find_for_run)(run, data=data, device=device, init_checkpoint=init_checkpoint)
            if result.suggestion is not None:
                patch = {**(target.patch or {}), "lr": round(result.suggestion.lr, 8)}
                note = (f"lr {patch['lr']:g} from the LR range test ({result.suggestion.rule}); the rule's fix gives none")
                target = replace(target, patch=patch, note="; ".join(n for n in (target.note, note) if n))
                if console is not None:
                    console.print(f"{target.id}: {note}")
        out.append(target)
    return out
