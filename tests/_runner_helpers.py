"""Tiny specs for the runner tests: timm's test_efficientnet at 32 px, a few updates."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from conftest import REPO

TINY_MODEL = "test_efficientnet"


def tiny_spec(run: str = "seed_mnv4", *, epochs: int = 2, max_samples: int = 32, val_samples: int = 16, img_size: int = 32,
              **overrides):
    from mnv4_postmortem.analyzer.ingest import load_run
    from mnv4_postmortem.runner.spec import build_spec

    spec = build_spec(load_run(REPO / "fixtures" / "runs" / run), epochs=epochs, max_samples=max_samples,
                      val_samples=val_samples, img_size=img_size)
    tiny = {"model": TINY_MODEL, "log_interval": 2, **overrides}
    return replace(spec, args={**spec.args, **tiny}, original_args={**spec.original_args, **tiny})


def summary_rows(folder: Path) -> list[dict[str, float]]:
    import csv

    with open(folder / "summary.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
