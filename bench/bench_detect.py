"""Benchmark of the detection stage on generated input (nothing is read from disk but what it writes).

    .venv/bin/python bench/bench_detect.py                    # timings against the 1 s budget
    .venv/bin/python bench/bench_detect.py --compare-methods  # the evidence behind segments.py's choices

Timings: ``detect()`` on a synthetic 600-epoch run (every canonical epoch column, model and EMA passes)
with a 300,000-row step frame, and ``segment_series`` on a 10^6-point step series, each against the
1.0 s budget and against pandas reading the same data back from CSV (the cheapest thing any analysis of
these numbers must do). Best of ``--repeat`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _detect_synth import make_run, make_steps, piecewise_signal, timm_cosine  # noqa: E402

from mnv4_postmortem.analyzer.detect import detect, segment_series  # noqa: E402

BUDGET_S = 1.0


def synthetic_run(n_epochs: int = 600, per_epoch: int = 500, seed: int = 0):
    """A 600-epoch MobileNetV4-like run: losses decay, EMA lags, cosine LR with warm-up, noisy steps."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_epochs, dtype=float)
    ln_c = math.log(1000)
    train = 2.2 + (ln_c - 2.2) * np.exp(-t / 60) + 0.01 * rng.standard_normal(n_epochs)
    model_loss = 1.0 + (ln_c - 1.0) * np.exp(-t / 60) + 0.02 * rng.standard_normal(n_epochs)
    model_top1 = 80 - 79.9 * np.exp(-t / 60) + 0.2 * rng.standard_normal(n_epochs)
    ema_top1 = np.r_[np.full(40, 0.1), model_top1[:-40]]
    columns = {
        "train_loss": train, "eval_loss": model_loss, "eval_top1": ema_top1,
        "eval_top5": np.minimum(ema_top1 * 1.2, 100), "lr": timm_cosine(n_epochs, lr=2e-3, warmup=5),
        "eval_loss_model": model_loss, "eval_top1_model": model_top1,
        "eval_top5_model": np.minimum(model_top1 * 1.2, 100), "eval_loss_ema": model_loss + 0.1,
        "eval_top1_ema": ema_top1, "eval_top5_ema": np.minimum(ema_top1 * 1.2, 100),
    }
    updates = n_epochs * per_epoch
    step_epoch = np.arange(updates) / per_epoch
    step_loss = 2.2 + (ln_c - 2.2) * np.exp(-step_epoch / 60) + 0.3 * rng.standard_normal(updates)
    step_lr = np.repeat(columns["lr"], per_epoch)
    steps = make_steps(n_epochs, per_epoch, step_loss, step_lr)
    config = {"num_classes": 1000, "epochs": n_epochs, "warmup_epochs": 5, "lr": 2e-3, "sched": "cosine",
              "warmup_lr": 1e-5}
    return make_run({k: v.tolist() for k, v in columns.items()}, config, steps=steps)


def best_of(repeat: int, function, clock=time.perf_counter) -> float:
    function()  # warm-up: imports, caches
    times = []
    for _ in range(repeat):
        start = clock()
        function()
        times.append(clock() - start)
    return min(times)


def csv_baseline(run, repeat: int) -> float:
    """Seconds pandas needs to read the run's epoch and step frames back from CSV."""
    with tempfile.TemporaryDirectory() as folder:
        epochs_csv, steps_csv = Path(folder, "summary.csv"), Path(folder, "steps.csv")
        run.epochs.to_csv(epochs_csv)
        run.steps.to_csv(steps_csv, index=False)
        return best_of(repeat, lambda: (pd.read_csv(epochs_csv), pd.read_csv(steps_csv)))


def timings(repeat: int) -> None:
    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall time suffers when above ~1)")
    run = synthetic_run()
    seconds = best_of(repeat, lambda: detect(run))
    cpu = best_of(repeat, lambda: detect(run), clock=time.process_time)
    baseline = csv_baseline(run, repeat)
    print(f"detect on 600-epoch run + {len(run.steps):,} steps: {seconds:.3f} s "
          f"(budget {BUDGET_S:.1f} s => {seconds / BUDGET_S:.2f}x)")
    print(f"detect on 600-epoch run + {len(run.steps):,} steps: {cpu:.3f} s CPU "
          f"(budget {BUDGET_S:.1f} s => {cpu / BUDGET_S:.2f}x)")
    print(f"detect on 600-epoch run + {len(run.steps):,} steps: {seconds / baseline:.2f}x the time of "
          f"pandas read_csv of the same epoch and step frames ({baseline:.3f} s)")
    rng = np.random.default_rng(1)
    n = 1_000_000
    x = np.arange(n, dtype=float)
    y = 2.0 + 4.9 * np.exp(-x / 2e5) + 0.3 * rng.standard_normal(n)
    seconds = best_of(repeat, lambda: segment_series(x, y, "step:train_loss", "step"))
    print(f"segment_series on 10^6 steps: {seconds:.3f} s (budget {BUDGET_S:.1f} s => {seconds / BUDGET_S:.2f}x)")


# ----------------------------------------------------------------------------------------------------------
# --compare-methods: search and cost alternatives, noise estimators


def compare_methods(seeds: int) -> None:
    import ruptures as rpt
    from ruptures.base import BaseCost
    from ruptures.metrics import precision_recall

    from mnv4_postmortem.analyzer.detect import metrics, segments

    class LinearTrend(segments.CostLinearTrend, BaseCost):
        """The analyzer's cost as a ruptures cost (ruptures' searches take only BaseCost subclasses)."""

    def ours(x, y):
        return [s.end for s in segment_series(x, y, "signal")]

    def with_search(search):
        def run(x, y):
            signal = np.column_stack([y, x])
            pen = segments.PENALTY_C * metrics.diff_noise(y) ** 2 * math.log(y.size)
            return search(signal, pen)
        return run

    def kernel_l2(signal, pen):
        # piecewise constant; BIC for two parameters per segment (start, mean)
        y = signal[:, 0]
        pen_l2 = 2.0 * metrics.diff_noise(y) ** 2 * math.log(y.size)
        return [int(b) for b in rpt.KernelCPD(kernel="linear", min_size=3).fit(y).predict(pen=pen_l2)]

    def binseg(signal, pen):
        cost = LinearTrend()
        return rpt.Binseg(custom_cost=cost, min_size=3, jump=1).fit(signal).predict(pen=pen)

    def pelt_exact(signal, pen):
        cost = LinearTrend()
        return rpt.Pelt(custom_cost=cost, min_size=3, jump=1).fit(signal).predict(pen=pen)

    methods = {
        "ours: PELT grid + polish, linear trend": ours,
        "PELT exact (jump=1), linear trend": with_search(pelt_exact),
        "Binseg, linear trend": with_search(binseg),
        "KernelCPD linear kernel (l2, constant)": with_search(kernel_l2),
    }
    cases = [("constant", 150, 3), ("linear", 300, 4), ("linear", 600, 6), ("linear", 2000, 8)]
    print(f"breakpoint precision / recall (margin max(3, n/50)), mean time; {seeds} seeds each")
    for kind, n, n_bkps in cases:
        print(f"  {kind} n={n} ({n_bkps} changes)")
        for name, method in methods.items():
            if name.startswith("PELT exact") and n > 600:
                print(f"    {name:42s} skipped (O(n^2) Python loop)")
                continue
            scores, times = [], []
            for seed in range(seeds):
                x, y, truth = piecewise_signal(seed, n, n_bkps, kind)
                start = time.perf_counter()
                found = method(x, y)
                times.append(time.perf_counter() - start)
                scores.append(precision_recall(truth, found, margin=max(3, n // 50)))
            precision, recall = np.mean(scores, axis=0)
            print(f"    {name:42s} P={precision:.2f} R={recall:.2f} {1000 * np.mean(times):7.1f} ms")

    print("straight noisy line (slope 1.5, sigma 0.3): share of seeds left as one segment")
    trimmed = metrics.diff_noise
    estimators = {
        "trimmed RMS of differences (ours)": trimmed,
        "1.4826 MAD(diff)/sqrt 2": lambda y: metrics.robust_sigma(np.diff(y)) / math.sqrt(2.0),
    }
    try:
        for name, estimator in estimators.items():
            metrics.diff_noise = estimator
            for c in (3.0, 4.0):
                segments.PENALTY_C = c
                shares = []
                for n in (12, 20, 40, 100):
                    ones = 0
                    for seed in range(40):
                        rng = np.random.default_rng(seed)
                        y = 20 + 1.5 * np.arange(n) + rng.normal(0, 0.3, n)
                        ones += len(segment_series(np.arange(n, dtype=float), y, "signal")) == 1
                    shares.append(f"n={n}: {ones / 40:.2f}")
                print(f"    {name:36s} c={c:g}  " + "  ".join(shares))
    finally:
        metrics.diff_noise = trimmed
        segments.PENALTY_C = 4.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare-methods", action="store_true")
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    if args.compare_methods:
        compare_methods(args.seeds)
    else:
        timings(args.repeat)


if __name__ == "__main__":
    main()
