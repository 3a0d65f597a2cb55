"""Benchmark: the built-in trainer's time per optimizer update against timm's own train.py, same config.

Target (issue 7): within 1.3x of train.py. The config is the seed recipe (seed_mnv4: mobilenetv4_conv_small
at 56 px, adamw, cosine with warmup, --model-ema, drop 0.2, drop-path 0.2, smoothing 0.1) at batch 16 on
128 proxy images written as a PNG ImageFolder, 3 epochs. Both sides read the same folder through timm's
transforms, run one intra-op thread (OMP_NUM_THREADS=1) and no loader workers; the first epoch is
skipped (warm-up). train.py's time is the average update time it logs itself (``Time: ... (avg)`` in its
``Train:`` lines); ours is measured the same way, from one update's end to the next.

timm's train.py is not in this repository: fetch it yourself (e.g. from a checkout of
huggingface/pytorch-image-models matching your installed timm) and pass its path:

    python bench/bench_runner.py --train-py /tmp/timm_train.py
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AVG_TIME = re.compile(r"^Train: (\d+) \[\s*(\d+)/(\d+).*?Time: [\d.]+s,\s+[\d.]+/s\s+\(([\d.]+)s,", re.M)


def logged_update_times(log: Path, skip_epochs: int = 1) -> float:
    """Mean of the per-epoch average update times train.py logs on each epoch's last Train line."""
    per_epoch: dict[int, float] = {}
    for match in AVG_TIME.finditer(log.read_text(encoding="utf-8", errors="replace")):
        epoch, idx, total, avg = int(match[1]), int(match[2]), int(match[3]), float(match[4])
        if idx + 1 >= total:
            per_epoch[epoch] = avg
    values = [v for e, v in sorted(per_epoch.items()) if e >= skip_epochs]
    if not values:
        raise SystemExit(f"{log}: no complete epoch after the first; see the log")
    return statistics.mean(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-py", type=Path, required=True, help="timm's train.py (fetched outside the repo)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=128)
    options = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"

    from mnv4_postmortem.analyzer.ingest import load_run
    from mnv4_postmortem.runner.script import materialize_proxy, run_train_script
    from mnv4_postmortem.runner.spec import build_spec
    from mnv4_postmortem.runner.trainer import train_arm

    spec = build_spec(load_run(REPO / "fixtures/runs/seed_mnv4"), epochs=options.epochs, max_samples=options.samples,
                      val_samples=64)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = replace(spec, data=str(materialize_proxy(spec, root)))
        arm = spec.arm("control", "control")
        ours = train_arm(spec, arm, 0, root / "arms" / "builtin" / "seed0", tensorboard=False)
        theirs = run_train_script(options.train_py, spec, arm, 0, root / "arms" / "train_py" / "seed0")
        ours_s = logged_update_times(ours.out_dir / "train.log")
        theirs_s = logged_update_times(theirs.out_dir / "train.log")
    load = os.getloadavg()[0]
    print(f"config: {arm.args['model']} {arm.args['img_size']} px, batch {arm.args['batch_size']}, "
          f"{spec.budget.updates_per_epoch} updates/epoch x {options.epochs} epochs, EMA on; load average {load:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"built-in trainer : {ours_s * 1000:8.1f} ms per update")
    print(f"timm train.py    : {theirs_s * 1000:8.1f} ms per update (baseline)")
    ratio = ours_s / theirs_s
    print(f"ratio            : {ratio:.2f}x train.py (target <= 1.30x): {'met' if ratio <= 1.3 else 'missed'}")
    sys.exit(0)


if __name__ == "__main__":
    main()
