"""A batch's files in ``--out DIR``: runs.jsonl and runs.csv (streamed, one line per finished run), and at the
end index.html (with the eval top-1 overlays and the "what differs" table) and summary.md.

Rows are written as they arrive; only the rows themselves stay in memory for the index.

The outputs are one consistent set, also after Ctrl-C: everything is written into a staging folder inside
``--out`` (``.mnv4-batch-*``), and ``finish`` (a complete batch, or the finished rows of an interrupted one)
writes the index for exactly those rows, then swaps them in: the previous batch's ``index.html``,
``summary.md``, ``runs.csv``, ``runs.jsonl`` and report files (``runs/*-<hash>.html``, the names this tool
gives) are removed first, so no stale file is left beside new ones, and reports of runs whose row did not
make it (still in flight at the interrupt) are dropped. Other files in ``--out`` are never touched.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Sequence

from mnv4_postmortem.analyzer.batch.differs import Difference, what_differs
from mnv4_postmortem.analyzer.batch.rows import DIFF_KEYS, RunRow
from mnv4_postmortem.analyzer.render.csv_cells import csv_cell
from mnv4_postmortem.analyzer.render.terminal import terminal_safe

CSV_COLUMNS = ("name", "path", "model", "experiment", "timm_version", "epochs", "best_top1", "final_top1",
               "top_cause", "severity", "confidence", "causes", "warnings", "error", "report", "trainer",
               "outcome", "coverage", "needed")
REPORTS_FOLDER = "runs"
OUTPUT_FILES = ("index.html", "summary.md", "runs.csv", "runs.jsonl")
STAGING_PREFIX = ".mnv4-batch-"
REPORT_NAME = re.compile(r"^.+-[0-9a-f]{10}\.html$")  # rows.report_file_name's shape: ours to replace


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What the batch-summary renderers (index.html, summary.md) show."""

    rows: Sequence[RunRow]
    differences: Sequence[Difference]
    reports_folder: str = REPORTS_FOLDER
    interrupted: bool = False   # Ctrl-C: the rows are the runs that finished


def summarize(rows: Sequence[RunRow], interrupted: bool = False) -> BatchSummary:
    return BatchSummary(rows=rows, differences=what_differs(rows), interrupted=interrupted)


class BatchOutputs:
    """Open for the duration of a batch: ``add(row)`` per finished run, then ``finish()``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
        self._jsonl: IO[str] = open(self.staging / "runs.jsonl", "w", encoding="utf-8")
        self._csv_file: IO[str] = open(self.staging / "runs.csv", "w", encoding="utf-8", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=[*CSV_COLUMNS, *(f"config.{k}" for k in DIFF_KEYS)])
        self._csv.writeheader()

    def add(self, row: RunRow) -> None:
        record = row.record()
        # terminal_safe is lossless inside JSON strings (\u001b reads back as ESC): no raw controls in the file
        self._jsonl.write(terminal_safe(json.dumps(_finite(record), ensure_ascii=False)) + "\n")
        flat = {k: record.get(k) for k in CSV_COLUMNS if k != "causes"}
        flat["causes"] = " ".join(sorted(row.causes()))
        flat.update({f"config.{k}": v for k, v in row.config.items()})
        self._csv.writerow({k: csv_cell(v) for k, v in flat.items()})

    @property
    def reports_dir(self) -> Path:
        """Where workers write the runs' HTML reports (inside the staging folder until ``finish``)."""
        return self.staging / REPORTS_FOLDER

    def finish(self, rows: list[RunRow], interrupted: bool = False) -> BatchSummary:
        """The index and summary of exactly ``rows``, then the whole set swapped into ``--out``."""
        from mnv4_postmortem.analyzer.render import renderer

        self.close()
        summary = summarize(rows, interrupted)
        (self.staging / "index.html").write_text(renderer("batch-summary", "html")(summary), encoding="utf-8")
        (self.staging / "summary.md").write_text(terminal_safe(renderer("batch-summary", "md")(summary)), encoding="utf-8")
        self._swap({r.report for r in rows if r.report})
        return summary

    def _swap(self, reports: set[str]) -> None:
        old_reports = self.folder / REPORTS_FOLDER
        for name in OUTPUT_FILES:
            (self.folder / name).unlink(missing_ok=True)
        if old_reports.is_dir():
            for stale in old_reports.iterdir():
                if REPORT_NAME.match(stale.name) and stale.is_file():
                    stale.unlink()
        for name in OUTPUT_FILES:
            (self.staging / name).replace(self.folder / name)
        if reports:
            old_reports.mkdir(exist_ok=True)
            for name in sorted(reports):
                if (self.reports_dir / name).is_file():
                    (self.reports_dir / name).replace(old_reports / name)
        shutil.rmtree(self.staging, ignore_errors=True)

    def close(self) -> None:
        for handle in (self._jsonl, self._csv_file):
            if not handle.closed:
                handle.close()

    def abandon(self) -> None:
        """The batch failed: leave ``--out`` as it was (the previous outputs included)."""
        self.close()
        shutil.rmtree(self.staging, ignore_errors=True)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
