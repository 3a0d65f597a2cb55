"""Synthetic runs and seedable signals with known truth for the detection tests and bench."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mnv4_postmortem.analyzer.model import STEP_COLUMNS, Run, TrainConfig
from mnv4_postmortem.analyzer.timm.recipe import RecipeFacts, resolve_recipe

FIXTURE_RUNS = Path(__file__).resolve().parents[1] / "fixtures" / "runs"


def make_run(
    epochs: dict[str, list[float]],
    config: dict | None = None,
    steps: pd.DataFrame | None = None,
    *,
    epochs_scheduled: int | None = None,
    events: tuple = (),
    first_epoch: int = 0,
) -> Run:
    """A ``Run`` whose epoch frame holds ``epochs`` (equal-length columns, index from ``first_epoch``)."""
    lengths = {len(v) for v in epochs.values()}
    n = lengths.pop() if lengths else 0
    frame = pd.DataFrame(
        {k: np.asarray(v, dtype=float) for k, v in epochs.items()},
        index=pd.Index(range(first_epoch, first_epoch + n), name="epoch"),
    )
    # As the ingest does: the schedule length (and the rest of timm's recipe arithmetic) resolved once.
    resolved = resolve_recipe(TrainConfig(values=dict(config or {})),
                              RecipeFacts(scheduled_epochs=epochs_scheduled, scheduled_ref="test log"))
    return Run(
        run_dir=Path("/nonexistent/synthetic"),
        config=resolved,
        epochs=frame,
        epoch_refs=pd.DataFrame(index=frame.index, columns=frame.columns, dtype=object),
        steps=steps if steps is not None else pd.DataFrame(columns=[*STEP_COLUMNS, "src_file", "src_line"]),
        events=events,
        sources=(),
        issues=(),
        epochs_scheduled=resolved.effective.get("epochs_scheduled"),
    )


def make_steps(
    n_epochs: int, per_epoch: int, loss: np.ndarray, lr: np.ndarray | None = None,
) -> pd.DataFrame:
    """A step frame with one row per update: ``loss`` (and ``lr``) of length n_epochs * per_epoch."""
    total = n_epochs * per_epoch
    update = np.arange(total)
    frame = pd.DataFrame({
        "epoch": update // per_epoch,
        "idx": update % per_epoch,
        "per_epoch": np.full(total, per_epoch),
        "update": update,
        "train_loss": np.asarray(loss, dtype=float),
        "train_loss_avg": np.asarray(loss, dtype=float),
        "lr": np.asarray(lr, dtype=float) if lr is not None else np.full(total, 1e-3),
        "samples_per_sec": np.full(total, 1000.0),
        "batch_time": np.full(total, 0.1),
        "data_time": np.full(total, 0.01),
        "src_file": "train.log",
        "src_line": update + 1,
    })
    return frame


def piecewise_signal(
    seed: int, n: int, n_bkps: int, kind: str, noise: float = 0.3, min_gap: int = 20,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """x, y and the true breakpoints (segment ends, last = n) of a seeded piecewise signal.

    kind "constant": level jumps of 3-6 noise sigmas. kind "linear": slopes that change sign at each
    breakpoint (|slope| 0.03-0.1 per point), plus a level jump at half of them, so every change is large
    against the noise over a >= ``min_gap``-point segment.
    """
    rng = np.random.default_rng(seed)
    while True:
        bkps = np.sort(rng.choice(np.arange(min_gap, n - min_gap), size=n_bkps, replace=False))
        if n_bkps < 2 or np.min(np.diff(bkps)) >= min_gap:
            break
    edges = [0, *bkps.tolist(), n]
    y = np.empty(n)
    level, slope_sign = 0.0, 1.0
    for start, end in zip(edges[:-1], edges[1:]):
        if kind == "constant":
            level += rng.choice([-1.0, 1.0]) * rng.uniform(3.0, 6.0) * noise
            y[start:end] = level
        else:
            slope = slope_sign * rng.uniform(0.03, 0.1)
            slope_sign = -slope_sign
            if rng.random() < 0.5:
                level += rng.choice([-1.0, 1.0]) * rng.uniform(4.0, 8.0) * noise
            y[start:end] = level + slope * np.arange(end - start)
            level = y[end - 1] + slope
    y = y + noise * rng.standard_normal(n)
    return np.arange(n, dtype=float), y, edges[1:]


def healthy_curves(seed: int, n: int = 100, num_classes: int = 100) -> dict[str, list[float]]:
    """A clean run: losses decay with noise, accuracies rise and saturate, cosine LR with warm-up 5."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    ln_c = math.log(num_classes)
    train = 1.2 + (ln_c - 1.2) * np.exp(-t / 15) + 0.02 * rng.standard_normal(n)
    evals = 1.0 + (ln_c - 1.0) * np.exp(-t / 15) + 0.03 * rng.standard_normal(n)
    top1 = 75 - 70 * np.exp(-t / 15) + 0.4 * rng.standard_normal(n)
    top5 = 92 - 80 * np.exp(-t / 12) + 0.3 * rng.standard_normal(n)
    return {
        "train_loss": train.tolist(), "eval_loss": evals.tolist(),
        "eval_top1": top1.tolist(), "eval_top5": np.minimum(top5, 100).tolist(),
        "lr": timm_cosine(n, lr=1e-3, warmup=5, warmup_lr=1e-5).tolist(),
    }


def timm_cosine(
    n: int, lr: float, warmup: int = 0, warmup_lr: float = 1e-5, min_lr: float = 0.0,
    total: int | None = None, cooldown: int = 0,
) -> np.ndarray:
    """Per-epoch LRs of a linear warm-up then a half cosine from epoch 0 (timm without warmup_prefix)."""
    total = total or n
    out = np.empty(n)
    for e in range(n):
        if e < warmup:
            out[e] = warmup_lr + e * (lr - warmup_lr) / warmup
        elif e < total:
            out[e] = min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * e / total))
        else:
            out[e] = min_lr
    return out


def fixture_run(name: str) -> Run:
    """A fixture run's real numbers (summary.csv, args.yaml) without going through ingest."""
    folder = FIXTURE_RUNS / name
    lines = folder.joinpath("summary.csv").read_text().splitlines()
    header = lines[0]
    body = [line for line in lines[1:] if line and line != header]
    frame = pd.read_csv(io.StringIO("\n".join([header, *body])))
    frame = frame.drop_duplicates("epoch", keep="last").set_index("epoch")
    config = yaml.safe_load(folder.joinpath("args.yaml").read_text())
    return make_run({c: frame[c].tolist() for c in frame.columns}, config)
