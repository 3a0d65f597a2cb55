"""One run in, one small row out: what the index, the CSV and the "what differs" table need.

``analyze_path`` runs in a worker process (local pool or Dask worker). It returns only a row, never the
Run or the report, so the parent's memory grows with the index rows and nothing else. When asked, the
worker also writes the run's own HTML report, so reports are rendered in parallel too.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mnv4_postmortem.analyzer.outcome import NOTHING_TO_JUDGE
from mnv4_postmortem.analyzer.session import Analyzer, AnalyzerOptions

# Settings compared between flagged and healthy runs ("what differs"). The recipe knobs the rules reason
# about: EMA, LR and schedule, input size, regularization, pretrained weights, batch.
DIFF_KEYS: tuple[str, ...] = (
    "model_ema", "model_ema_warmup", "model_ema_decay", "opt", "lr", "sched", "warmup_epochs", "epochs",
    "batch_size", "img_size", "input_size", "pretrained", "drop", "drop_path", "mixup", "cutmix", "smoothing",
    "weight_decay", "amp", "clip_grad",
)
CURVE_POINTS = 120  # eval top-1 points kept per run for the overlays (evenly spaced epochs)


@dataclass(frozen=True, slots=True)
class RunTask:
    """What every worker needs besides the run path (picklable; the same for all runs of a batch)."""

    analyzer: AnalyzerOptions = AnalyzerOptions()  # the session each worker diagnoses with (--rules, --tb-alias)
    report_dir: str | None = None       # write runs' HTML reports here (None: index only)
    line_format: str | None = None      # a "batch" renderer (text, json): the row's line for stdout
    roots: tuple[str, ...] = ()         # for short display names relative to the root they were found under


@dataclass(frozen=True, slots=True)
class RowFinding:
    """One finding of a batch row (runs.jsonl's ``findings``): enough to filter, count and rank runs."""

    rule_id: str
    cause: str
    severity: str                        # the severity's label (info / warning / error / critical)
    confidence: float
    epochs: list[int] | None = None      # first and last epoch it covers, when it names them

    @property
    def flagged(self) -> bool:
        """At warning or above (an info finding leaves the run healthy)."""
        return self.severity != "info"


@dataclass(slots=True)
class RunRow:
    path: str
    name: str
    model: str | None = None
    experiment: str | None = None
    timm_version: str | None = None
    trainer: str | None = None          # the trainer family when it is not timm's train.py (timm/trainers.py)
    epochs: int = 0
    best_top1: float | None = None
    final_top1: float | None = None
    top_cause: str | None = None
    severity: str | None = None
    confidence: float | None = None
    title: str | None = None            # the top finding's title
    findings: list[RowFinding] = field(default_factory=list)
    warnings: int = 0
    error: str | None = None
    outcome: str | None = None          # findings / no-problem-found / nothing-to-judge (analyzer/outcome.py)
    coverage: str | None = None         # the coverage statement in one line (series spans, checks that could run)
    needed: str | None = None           # what would let the curves be judged (None when they were)
    report: str | None = None           # report file name inside the batch's runs/ folder
    line: str | None = None             # the run's stdout line, rendered by the worker (RunTask.line_format)
    config: dict[str, Any] = field(default_factory=dict)
    curve_epochs: Any = None            # float32 arrays (kept small; see CURVE_POINTS)
    curve_top1: Any = None

    @property
    def healthy(self) -> bool:
        """No finding at warning or above, readable, and with the data to show a problem (not "nothing to judge")."""
        return (self.error is None and not self.nothing_to_judge
                and not any(f.flagged for f in self.findings))

    @property
    def nothing_to_judge(self) -> bool:
        """Read, but without the curves the checks need: neither healthy nor flagged (analyzer/outcome.py)."""
        return self.error is None and self.outcome == NOTHING_TO_JUDGE

    def causes(self) -> set[str]:
        return {f.cause for f in self.findings if f.flagged}

    def record(self) -> dict[str, Any]:
        """The JSON Lines / CSV shape: everything but the curve."""
        out = asdict(self)
        for name in ("curve_epochs", "curve_top1", "line"):
            out.pop(name)
        return out


_SESSIONS: dict[AnalyzerOptions, Analyzer] = {}


def _session(options: AnalyzerOptions) -> Analyzer:
    """The session, built once per worker process (workers analyse many runs each; the pack loads once)."""
    if options not in _SESSIONS:
        _SESSIONS[options] = Analyzer(options)
    return _SESSIONS[options]


def analyze_path(path: str, task: RunTask) -> RunRow:
    """Diagnose one run. Never raises: a broken run becomes a row with ``error`` set."""
    row = RunRow(path=path, name=display_name(path, task.roots))
    try:
        from mnv4_postmortem.analyzer.render import renderer

        # analyze, not diagnose: the run's page carries its reproduction's verification like `report`'s
        diagnosis = _session(task.analyzer).analyze(Path(path))
        _fill(row, diagnosis)
        if task.report_dir is not None:
            row.report = _write_report(diagnosis, Path(task.report_dir), path)
        if task.line_format is not None:
            row.line = renderer("batch", task.line_format)(diagnosis)
    except Exception as exc:  # noqa: BLE001 - one broken run must never stop the batch
        row.error = f"{type(exc).__name__}: {exc}" if not _is_ingest_error(exc) else str(exc)
        if task.line_format is not None:
            from mnv4_postmortem.analyzer.render import renderer_module

            row.line = renderer_module("batch", task.line_format).render_error(path, row.error)
    return row


def _is_ingest_error(exc: Exception) -> bool:
    from mnv4_postmortem.analyzer.model import IngestError

    return isinstance(exc, IngestError)


def _fill(row: RunRow, report) -> None:
    run = report.run
    row.model = _text(run.config.get("model"))
    row.experiment = _text(run.config.get("experiment"))
    row.timm_version = _text(run.timm_version)
    row.trainer = report.summary.trainer
    row.epochs = run.n_epochs
    top1 = run.series("eval_top1").astype("float64").dropna()
    top1 = top1[np.isfinite(top1.to_numpy())]
    if len(top1):
        row.best_top1 = round(float(top1.max()), 3)
        row.final_top1 = round(float(top1.iloc[-1]), 3)
        keep = np.unique(np.linspace(0, len(top1) - 1, min(len(top1), CURVE_POINTS)).round().astype(int))
        row.curve_epochs = top1.index.to_numpy()[keep].astype("float32")
        row.curve_top1 = top1.to_numpy()[keep].astype("float32")
    row.findings = [
        RowFinding(f.rule_id, f.cause, f.severity.label, round(float(f.confidence), 3), list(f.epochs) if f.epochs else None)
        for f in report.findings
    ]
    if report.findings:
        top = report.findings[0]
        row.top_cause, row.severity, row.title = top.cause, top.severity.label, top.title
        row.confidence = round(float(top.confidence), 3)
    row.warnings = len(report.warnings)
    if report.outcome is not None:
        row.outcome, row.needed = report.outcome.kind, report.outcome.needed
    if report.coverage is not None:
        from mnv4_postmortem.analyzer.render.coverage_lines import one_line

        row.coverage = one_line(report.coverage)
    row.config = {key: _scalar(run.config.get(key)) for key in DIFF_KEYS if run.config.get(key) is not None}
    row.config.update(_ema_settings(run))


def _ema_settings(run) -> dict[str, Any]:
    """The EMA as timm ran it (features/ema owns that): a timm without --model-ema-warmup ran without warmup."""
    from mnv4_postmortem.analyzer.features.ema import ema_model_from

    ema = ema_model_from(run)
    return {} if ema is None else {"model_ema_warmup": bool(ema.warmup), "model_ema_decay": float(ema.decay)}


def _write_report(diagnosis, folder: Path, path: str) -> str:
    from mnv4_postmortem.analyzer.render import renderer

    folder.mkdir(parents=True, exist_ok=True)
    name = report_file_name(path)
    (folder / name).write_text(renderer("report", "html")(diagnosis), encoding="utf-8")
    return name


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def report_file_name(path: str) -> str:
    """A file name that is safe anywhere (no markup, no scheme, no slashes) and unique per run path."""
    stem = _UNSAFE.sub("_", Path(path).name).strip("._")[:60] or "run"
    digest = hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{stem}-{digest}.html"


def display_name(path: str, roots: tuple[str, ...]) -> str:
    """The run's path relative to the root it was found under, prefixed with that root's name."""
    p = Path(path)
    for root in sorted(roots, key=len, reverse=True):
        r = Path(root)
        try:
            rel = p.relative_to(r)
        except ValueError:
            continue
        return str(Path(r.name) / rel) if str(rel) != "." else (r.name or str(r))
    return str(p)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _scalar(value: Any) -> Any:
    """A JSON/CSV-friendly value: numbers and booleans kept, sequences joined, the rest as text."""
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


def row_from_mapping(data: Mapping[str, Any]) -> RunRow:
    """Rebuild a row from its JSON record (curves are not stored there)."""
    known = {k: v for k, v in data.items() if k in RunRow.__dataclass_fields__}
    fields = RowFinding.__dataclass_fields__
    known["findings"] = [RowFinding(**{k: v for k, v in f.items() if k in fields}) for f in known.get("findings") or ()]
    return RunRow(**known)
