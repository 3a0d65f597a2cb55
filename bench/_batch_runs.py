"""Run folders for the batch benchmarks: links to the bundled fixture runs (real timm output), so a
thousand runs cost a thousand small folders of symlinks, not copies."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures" / "runs"


def fixture_runs() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.is_dir())


def make_runs(root: Path, count: int, *, files: tuple[str, ...] | None = None) -> list[Path]:
    """``count`` run folders under ``root``, cycling through the fixture runs; ``files`` keeps only those."""
    sources = fixture_runs()
    runs = []
    for i in range(count):
        source = sources[i % len(sources)]
        run = root / f"group{i // 100:03d}" / f"{source.name}-{i:05d}"
        run.mkdir(parents=True)
        for f in sorted(source.iterdir()):
            if f.is_file() and (files is None or f.name in files):
                os.symlink(f, run / f.name)
        runs.append(run)
    return runs
