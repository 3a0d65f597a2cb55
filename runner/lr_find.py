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

Suggestions. Each rule is named where it comes from; none is tuned here:

- ``steepest``: the LR where the smoothed loss falls fastest against log(LR), after trimming the first
  10 and last 5 points: torch-lr-finder's ``plot(suggest_lr=True)`` and Lightning's
  ``Tuner.lr_find().suggestion()``. One change: only the descent (the points up to the minimum) is
  searched; both anchors search the whole window and can pick a fall *after* the minimum, where the
  loss recovers from a spike on its way to diverging. It is the suggested LR.
- ``minimum/10``: one decade below the LR of the smoothed minimum (fastai's ``minimum`` suggestion): at the
  minimum the loss is already about to climb, so the largest safe LR is an order of magnitude lower.

The suggested range spans the two: from the steepest descent (below it the loss falls more slowly) to a
decade below the minimum (above it training is on the edge of diverging).
"""

from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

__all__ = ["RangeTest", "LrSuggestion", "run_range_test", "suggest", "plot_range_test", "text_plot"]

START_LR = 1e-7          # fastai's start_lr
END_LR = 10.0            # fastai's and torch-lr-finder's end_lr
STEPS = 200
SMOOTH_F = 0.05          # torch-lr-finder's default exponential smoothing
DIVERGE_TH = 4.0         # Lightning's early_stop_threshold: stop once the smoothed loss is 4x its best
SKIP_START = 10          # torch-lr-finder's plot() trims
SKIP_END = 5


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

    started = time.perf_counter()
    # The package prints to stdout; stdout is for data here.
    with contextlib.redirect_stdout(sys.stderr):
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
    slopes = np.gradient(window_loss[descent], np.log10(window_lr[descent]))
    steepest = float(window_lr[descent][int(np.argmin(slopes))])
    tenth = min_lr / 10.0
    return LrSuggestion(
        lr=steepest, rule="steepest descent of the smoothed loss (torch-lr-finder, Lightning)",
        low=min(steepest, tenth), high=max(steepest, tenth),
        range_rule="from the steepest descent to a decade below the loss minimum (fastai's minimum/10)",
        steepest=steepest, min_loss_lr=min_lr, min_loss=float(window_loss[at_min]),
    )


def plot_range_test(test: RangeTest, suggestion: LrSuggestion | None, run_lr: float | None, out_base: Path,
                    *, title: str = "") -> list[Path]:
    """Loss vs LR (log x): raw losses faint, smoothed line, the suggested range shaded, the run's LR marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(test.lrs, test.raw_losses[: len(test.lrs)], ".", color="0.75", markersize=3, label="loss per batch")
    ax.plot(test.lrs, test.losses, color="C0", linewidth=2, label="smoothed loss")
    if suggestion is not None:
        ax.axvspan(suggestion.low, suggestion.high, color="C2", alpha=0.18, label="suggested range")
        ax.axvline(suggestion.lr, color="C2", linestyle="--", label=f"suggested lr {suggestion.lr:.3g}")
    if run_lr:
        ax.axvline(run_lr, color="C3", linewidth=2, label=f"the run's lr {run_lr:.3g}")
    ax.set_xscale("log")
    finite = [x for x in test.losses if math.isfinite(x)]
    if finite:
        low, high = min(finite), max(finite[: max(1, len(finite) // 2)] + [finite[0]])
        ax.set_ylim(low - 0.1 * abs(low), max(high, low) * 1.6 + 0.1)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("train loss")
    ax.set_title(title or "LR range test")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    out_base.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_base.with_suffix(".png"), out_base.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths


def text_plot(test: RangeTest, suggestion: LrSuggestion | None, run_lr: float | None, *, width: int = 60,
              height: int = 10) -> str:
    """The smoothed curve as characters, for the terminal: ``*`` loss, ``|`` the run's LR, ``:`` the range."""
    lrs = np.asarray(test.lrs, float)
    losses = np.asarray(test.losses, float)
    keep = np.isfinite(losses) & (lrs > 0)
    if keep.sum() < 2:
        return ""
    lrs, losses = lrs[keep], losses[keep]
    lo_x, hi_x = math.log10(lrs[0]), math.log10(lrs[-1])
    top = float(min(losses.max(), losses[0] * 1.6 + 0.1))
    bottom = float(losses.min())
    grid = [[" "] * width for _ in range(height)]

    def col(lr: float) -> int | None:
        if lr <= 0 or not lo_x <= math.log10(lr) <= hi_x:
            return None
        return min(width - 1, int((math.log10(lr) - lo_x) / max(hi_x - lo_x, 1e-12) * (width - 1)))

    if suggestion is not None:
        a, b = col(suggestion.low), col(suggestion.high)
        for c in range(a if a is not None else 0, (b if b is not None else width - 1) + 1):
            for r in range(height):
                grid[r][c] = ":"
    for lr, loss in zip(lrs, losses):
        c = col(float(lr))
        r = int(round((min(loss, top) - bottom) / max(top - bottom, 1e-12) * (height - 1)))
        grid[height - 1 - r][c] = "*"
    c = col(run_lr) if run_lr else None
    if c is not None:
        for r in range(height):
            grid[r][c] = "|"
    lines = [f"{top:8.3g} " + "".join(grid[0])]
    lines += ["         " + "".join(row) for row in grid[1:-1]]
    lines.append(f"{bottom:8.3g} " + "".join(grid[-1]))
    lines.append(f"         lr {lrs[0]:.0e}" + " " * max(1, width - 18) + f"{lrs[-1]:.0e}")
    return "\n".join(lines)


def to_json(test: RangeTest, suggestion: LrSuggestion | None, run_lr: float | None) -> dict[str, Any]:
    return {
        "run_lr": run_lr,
        "suggestion": asdict(suggestion) if suggestion else None,
        "ratio": (run_lr / suggestion.lr) if (run_lr and suggestion) else None,
        "in_range": bool(suggestion and run_lr and suggestion.low <= run_lr <= suggestion.high),
        "test": {k: v for k, v in asdict(test).items()},
    }
