"""Benchmark (issue 17 item 4): ``inspect`` on TensorBoard files with many tags must scale linearly.

Files of ``N`` distinct tags with no eval or ``epoch`` tag (per-layer statistics, the layout that was
quadratic: 5,000 tags took 21 s, 10,000 took 58 s) beside a per-step ``train/loss``, each tag logged at
``--steps`` steps, plus one
file of 200 per-layer tags x 1,000 steps. Every record is a plain ``add_scalar`` event (the bytes
``torch.utils.tensorboard.SummaryWriter`` writes for one scalar), framed with real CRCs. Each file is
read by a whole ``mnv4-postmortem inspect FILE --format json`` process; the script prints wall and
CPU (user+sys of the child) time, and the ratio of the 10,000-tag time to the 1,000-tag time: linear
scaling is about 10x (the fixed start-up makes it less), quadratic was about 100x.

    .venv/bin/python bench/bench_tensorboard_tags.py [--steps 3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2

from _process import time_process  # the benches' one whole-process timer
from bench_tensorboard import frame_record  # the same TFRecord writer (bench/ is on sys.path when run)


def write_tags(path: Path, n_tags: int, n_steps: int) -> int:
    chunks = [frame_record(event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString())]
    for step in range(n_steps):
        loss = event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="train/loss", simple_value=2.0 - 0.001 * step)]))
        chunks.append(frame_record(loss.SerializeToString()))
        for t in range(n_tags):
            event = event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag=f"layers/block{t // 10}.conv{t % 10}/weight_norm",
                                                 simple_value=1.0 + 0.001 * t + 0.01 * step)]))
            chunks.append(frame_record(event.SerializeToString()))
    path.write_bytes(b"".join(chunks))
    return (n_tags + 1) * n_steps


def _inspect(path: Path, repeat: int) -> tuple[float, float, dict]:
    """Best wall and best CPU (user+sys of the child) of ``repeat`` whole ``inspect`` processes."""
    best_wall, best_cpu, result = time_process(
        [sys.executable, "-m", "mnv4_postmortem", "inspect", str(path), "--format", "json"], repeat)
    if result.returncode != 0:
        raise SystemExit(f"inspect exited {result.returncode}: {result.stderr[-500:]}")
    return best_wall, best_cpu, json.loads(result.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="steps per tag in the many-tag files")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    times: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_tb_tags_") as tmp:
        for name, tags, steps in (("1,000 tags", 1000, args.steps), ("10,000 tags", 10000, args.steps),
                                  ("200 tags x 1,000 steps", 200, 1000)):
            path = Path(tmp) / f"events.out.tfevents.{tags}.{steps}.bench.1.0"
            scalars = write_tags(path, tags, steps)
            wall, cpu, view = _inspect(path, args.repeat)
            metrics = len(view["sources"][0]["metrics"]) if view.get("sources") else 0
            times[name] = (wall, cpu)
            print(f"{name:>24}: {scalars:>8,} scalars, {path.stat().st_size / 1e6:5.1f} MB; inspect wall {wall:6.2f} s, "
                  f"CPU {cpu:6.2f} s; {metrics:,} metrics listed")
    (w1, c1), (w10, c10) = times["1,000 tags"], times["10,000 tags"]
    print(f"10,000 tags / 1,000 tags: wall {w10 / w1:.1f}x, CPU {c10 / c1:.1f}x "
          f"(10x data: linear <= ~10x, quadratic ~100x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
