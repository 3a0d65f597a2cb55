"""``--train-script PATH``: run the user's own train.py for an arm and read its output folder.

The arm's arguments become a train.py command line (the analyzer's command renderer, the same one
that prints fixes), plus ``--output``, ``--experiment``, ``--seed``, ``--epochs``, ``--batch-size``
and the data folder. With ``--proxy`` the proxy dataset is written once as a PNG ImageFolder
(``<out>/proxy-data/{train,validation}/<class>/``) so any train.py can read it. The console output
is captured as ``train.log`` next to the ``summary.csv`` and ``args.yaml`` the script writes.

What a script cannot be told: the scaled EMA warmup ramp (train.py builds ModelEmaV3 with
warmup_gamma 1) and the proxy's exact float images (PNG is 8-bit); the spec says so.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from mnv4_postmortem.runner.spec import ArmSpec, TrainSpec, train_command

__all__ = ["run_train_script", "script_command", "materialize_proxy"]

# Keys the runner sets itself on the command line (or that name the original machine).
_OWN = ("output", "experiment", "seed", "data_dir", "data", "resume", "device", "workers", "log_wandb",
        "initial_checkpoint", "pretrained_path", "pretrained")


def script_command(script: Path, spec: TrainSpec, arm: ArmSpec, seed: int, out_dir: Path, data_dir: Path,
                   device: str = "cpu") -> list[str]:
    args = {k: v for k, v in arm.args.items() if k not in _OWN}
    rendered = train_command(args, timm_version=spec.timm_version, program="")
    words = shlex.split(rendered)
    words += ["--batch-size", str(arm.args["batch_size"]), "--epochs", str(arm.args["epochs"]),
              "--num-classes", str(arm.args["num_classes"]),
              "--seed", str(seed), "--output", str(out_dir.parent), "--experiment", out_dir.name,
              "--workers", "0", "--device", device]
    if spec.init.kind == "checkpoint" and spec.init.path:
        words += ["--initial-checkpoint", spec.init.path]
    return [sys.executable, str(script), str(data_dir), *words]


def run_train_script(script: Path, spec: TrainSpec, arm: ArmSpec, seed: int, out_dir: Path, device: str = "cpu"):
    from mnv4_postmortem.runner.trainer import ArmResult

    data_dir = materialize_proxy(spec, out_dir.parents[2]) if spec.data == "proxy" else Path(spec.data)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = script_command(script, spec, arm, seed, out_dir, data_dir, device)
    started = time.time()
    with open(out_dir / "train.log", "w", encoding="utf-8") as log:
        proc = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=out_dir, env={**os.environ},
                              check=False)
    (out_dir / "command.txt").write_text(shlex.join(command) + "\n", encoding="utf-8")
    if proc.returncode != 0:
        raise RuntimeError(f"{script} exited {proc.returncode} for arm {arm.name} seed {seed}; see {out_dir / 'train.log'}")
    return ArmResult(arm.name, seed, out_dir, seconds=time.time() - started)


def materialize_proxy(spec: TrainSpec, root: Path) -> Path:
    """The proxy dataset as PNG files (once per output folder), for scripts that read an ImageFolder."""
    import numpy as np
    from PIL import Image

    from mnv4_postmortem.runner.proxy import ProxyDataset
    from mnv4_postmortem.runner.trainer import input_px

    folder = root / "proxy-data"
    done = folder / ".complete"
    if done.is_file():
        return folder
    size, classes = input_px(spec.args), int(spec.args["num_classes"])
    for split, n in (("train", spec.budget.train_samples), ("validation", spec.budget.val_samples)):
        dataset = ProxyDataset(classes, size, n, split)
        for i in range(n):
            image, label = dataset[i]
            pixels = np.clip(image.permute(1, 2, 0).numpy() * 48 + 128, 0, 255).astype("uint8")
            path = folder / split / f"class{label:03d}" / f"{i:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path)
    done.write_text("ok\n", encoding="utf-8")
    return folder
