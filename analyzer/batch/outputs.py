"""A batch's files in ``--out DIR``: runs.jsonl and runs.csv (streamed, one line per finished run), and at the
end index.html (with the eval top-1 overlays and the "what differs" table) and summary.md.

Rows are written as they arrive; only the rows themselves stay in memory for the index.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Sequence

from mnv4_postmortem.analyzer.batch.differs import Difference, what_differs
from mnv4_postmortem.analyzer.batch.rows import DIFF_KEYS, RunRow

CSV_COLUMNS = ("name", "path", "model", "experiment", "timm_version", "epochs", "best_top1", "final_top1",
               "top_cause", "severity", "confidence", "causes", "warnings", "error", "report", "trainer",
               "outcome", "coverage", "needed")
REPORTS_FOLDER = "runs"


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What the batch-summary renderers (index.html, summary.md) show."""

    rows: Sequence[RunRow]
    differences: Sequence[Difference]
    reports_folder: str = REPORTS_FOLDER


def summarize(rows: Sequence[RunRow]) -> BatchSummary:
    return BatchSummary(rows=rows, differences=what_differs(rows))


class BatchOutputs:
    """Open for the duration of a batch: ``add(row)`` per finished run, then ``finish()``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._jsonl: IO[str] = open(folder / "runs.jsonl", "w", encoding="utf-8")
        self._csv_file: IO[str] = open(folder / "runs.csv", "w", encoding="utf-8", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=[*CSV_COLUMNS, *(f"config.{k}" for k in DIFF_KEYS)])
        self._csv.writeheader()

    def add(self, row: RunRow) -> None:
        record = row.record()
        self._jsonl.write(json.dumps(_finite(record), ensure_ascii=False) + "\n")
        flat = {k: record.get(k) for k in CSV_COLUMNS if k != "causes"}
        flat["causes"] = " ".join(sorted(row.causes()))
        flat.update({f"config.{k}": v for k, v in row.config.items()})
        self._csv.writerow(flat)

    def finish(self, rows: list[RunRow]) -> BatchSummary:
        from mnv4_postmortem.analyzer.render import renderer

        self._jsonl.close()
        self._csv_file.close()
        summary = summarize(rows)
        (self.folder / "index.html").write_text(renderer("batch-summary", "html")(summary), encoding="utf-8")
        (self.folder / "summary.md").write_text(renderer("batch-summary", "md")(summary), encoding="utf-8")
        return summary

    def close(self) -> None:
        for handle in (self._jsonl, self._csv_file):
            if not handle.closed:
                handle.close()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
