"""Benchmark: the HTML report of a 600-epoch run (issue #9 targets: at most 2 MB, and rendering at most 2x the
analysis time). The run is the analysis benchmark's (bench_analysis.make_run: timm's own formats, 600 epochs,
10 Train lines per epoch). Imports and matplotlib's first-use set-up are excluded from both timings by one
warm-up pass; then the best of three of each is compared.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_analysis import make_run  # noqa: E402

from mnv4_postmortem.analyzer.engine.loader import load_pack as load_rules  # noqa: E402
from mnv4_postmortem.analyzer.features.names import is_known_name  # noqa: E402
from mnv4_postmortem.analyzer.ingest import load_run  # noqa: E402
from mnv4_postmortem.analyzer.pipeline import diagnose as analyze  # noqa: E402
from mnv4_postmortem.analyzer.render.html import render as render_html  # noqa: E402


def load_pack():
    return load_rules([], known_names=is_known_name)

MAX_BYTES = 2 * 1024 * 1024
MAX_RATIO = 2.0


def best_of(n: int, func):
    times, result = [], None
    for _ in range(n):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        make_run(Path(tmp))
        pack = load_pack()
        render_html(analyze(load_run(Path(tmp)), pack))  # warm-up: imports, fonts
        analysis, report = best_of(3, lambda: analyze(load_run(Path(tmp)), pack))
        rendering, html = best_of(3, lambda: render_html(report))
        size = len(html.encode("utf-8"))
        ratio = rendering / analysis
        print(f"600-epoch run: analysis (load_run + analyze) {analysis:.3f} s, HTML rendering {rendering:.3f} s")
        print(f"rendering / analysis = {ratio:.2f}x (target <= {MAX_RATIO}x): {'met' if ratio <= MAX_RATIO else 'MISSED'}")
        print(f"report size {size / 1024:.0f} KiB (target <= {MAX_BYTES // 1024} KiB): {'met' if size <= MAX_BYTES else 'MISSED'}")


if __name__ == "__main__":
    main()
