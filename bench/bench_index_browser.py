"""Benchmark: the batch index with 5,000 rows in Debian's chromium (issue #9: "usable with 5,000 rows").

Rows come from analysing the bundled fixture runs once each, repeated under distinct names up to 5,000 (the
index only reads rows). Prints the page's load time, one sort (click on "best top-1") and one filter (a name fragment plus a top cause), each measured inside the page, against a 200 ms budget per interaction (the point at
which a click stops feeling immediate).
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _batch_runs import fixture_runs  # noqa: E402

from mnv4_postmortem.analyzer.batch.outputs import summarize  # noqa: E402
from mnv4_postmortem.analyzer.batch.rows import RunTask, analyze_path  # noqa: E402
from mnv4_postmortem.analyzer.render import renderer  # noqa: E402

ROWS = 5000
BUDGET_MS = 200


def main() -> None:
    from playwright.sync_api import sync_playwright

    base = [analyze_path(str(p), RunTask()) for p in fixture_runs()]
    rows = [replace(base[i % len(base)], name=f"sweep/{i:05d}/{base[i % len(base)].name}", path=f"/runs/{i:05d}")
            for i in range(ROWS)]
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index.html"
        start = time.perf_counter()
        index.write_text(renderer("batch-summary", "html")(summarize(rows)), encoding="utf-8")
        print(f"{ROWS} rows: index.html {index.stat().st_size / 2**20:.1f} MiB rendered in {time.perf_counter() - start:.2f} s")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page()
            start = time.perf_counter()
            page.goto(index.as_uri())
            page.wait_for_load_state("load")
            print(f"load: {1000 * (time.perf_counter() - start):.0f} ms")
            sort_ms = page.evaluate("""() => { const th = [...document.querySelectorAll('#runs th')].find(t => t.textContent.startsWith('best top-1'));
                const t0 = performance.now(); th.click(); return performance.now() - t0; }""")
            # the text box applies after an 80 ms typing pause; the cause menu applies the same filter at once
            filter_ms = page.evaluate("""() => { document.getElementById('filter').value = 'sweep/0';
                const c = document.getElementById('cause'); c.value = 'ema-lag';
                const t0 = performance.now(); c.dispatchEvent(new Event('change')); return performance.now() - t0; }""")
            shown = page.inner_text("#shown")
            browser.close()
    for name, ms in (("sort", sort_ms), ("filter", filter_ms)):
        print(f"{name}: {ms:.0f} ms (budget {BUDGET_MS} ms): {'met' if ms <= BUDGET_MS else 'MISSED'}")
    print(f"after filtering: {shown}")


if __name__ == "__main__":
    main()
