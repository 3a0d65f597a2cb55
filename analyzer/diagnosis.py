"""The one result type of a diagnosis: what every renderer reads, and nothing else.

:func:`mnv4_postmortem.analyzer.pipeline.diagnose` builds it; renderers (``render/``) only read it.
It holds the run summary, the change-point segments, the ranked findings, the differential, the
rules that were considered but did not fire, the ingest warnings, the rule errors and the schema
version of the JSON document. Segments are :class:`CurveSegment` records (numbers already made
JSON-safe by the pipeline) so that renderers never import the detection or rule stages; ``run`` is the
normalized run itself, for renderers that draw its curves or tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from mnv4_postmortem.analyzer.findings import Fix, Considered, Finding, Symptom, UnexplainedSymptom
from mnv4_postmortem.analyzer.model import Run

if TYPE_CHECKING:
    from mnv4_postmortem.analyzer.coverage import Coverage
    from mnv4_postmortem.analyzer.outcome import Outcome
    from mnv4_postmortem.analyzer.report_facts import ReportFacts
    from mnv4_postmortem.analyzer.verification import Verification

# 1.1: evidence items are {"text", "refs"}; fixes carry "note" and "safety"; "considered" lists the
# rules suspected but not fired.
# 1.2 (issue 13): "unexplained_symptoms" (symptoms at warning+ that no finding explains, with candidate causes
# and what would tell them apart), "symptoms" (every symptom that fired), each finding's "symptoms" and "score",
# and "units" (the accuracy unit inferred per series). 1.2 (issue 18): each finding's optional visible_from /
# predictable. 1.2 (issue 19): "coverage" (series read with their spans, config facts and where from, other
# config, which checks could run) and "outcome" (findings / no-problem-found / nothing-to-judge).
# Schema: render/schema/report-1.2.schema.json.
SCHEMA_VERSION = "1.2"


@dataclass(frozen=True, slots=True)
class RunSummary:
    path: str
    model: str | None
    timm_version: str | None
    epochs: Mapping[str, Any]  # {"first", "last", "count", "scheduled"}
    trainer: str | None = None  # the trainer family when it is not timm's train.py (timm/trainers.py)

    @classmethod
    def of(cls, run: Run) -> RunSummary:
        from mnv4_postmortem.analyzer.timm.trainers import trainer

        model = run.config.get("model")
        found = trainer(getattr(run, "trainer", None))
        return cls(path=str(run.run_dir), model=None if model is None else str(model),
                   timm_version=str(run.timm_version) if run.timm_version is not None else None, epochs=run.epoch_span(),
                   trainer=found.name if found else None)

    def as_dict(self) -> dict[str, Any]:
        out = {"path": self.path, "model": self.model, "timm_version": self.timm_version, "epochs": dict(self.epochs)}
        if self.trainer is not None:  # only for other trainers' runs: timm runs' reports stay as they were
            out["trainer"] = self.trainer
        return out


@dataclass(frozen=True, slots=True)
class CurveSegment:
    """One regime of one metric's curve, as the report shows it (detect/segments.py found it).

    ``start``/``end``: the first and last x of the regime in ``unit`` (epoch or step); ``n`` points;
    ``label``: improving / plateau / worsening / collapsed ...; ``level`` and ``slope``: the fitted line
    (slope per ``unit``) with its confidence interval ``slope_ci``; ``noise``: the residual spread. A
    number the fit could not give (too few points) is None.
    """

    start: float | None
    end: float | None
    unit: str
    n: int
    label: str
    level: float | None
    slope: float | None
    slope_ci: tuple[float | None, float | None]
    noise: float | None

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "unit": self.unit, "n": self.n, "label": self.label,
                "level": self.level, "slope": self.slope, "slope_ci": list(self.slope_ci), "noise": self.noise}


@dataclass(frozen=True, slots=True, eq=False)
class Diagnosis:
    run: Run                                      # the normalized run (curves, config) for rich renderers
    summary: RunSummary                           # what the report header says about the run
    findings: tuple[Finding, ...]                 # most likely first; fixes carry their command lines
    differential: tuple[str, ...]                 # why each alternative ranks lower
    considered: tuple[Considered, ...]            # rules suspected but not fired
    segments: Mapping[str, tuple[CurveSegment, ...]]  # per metric, in x order
    warnings: tuple[str, ...]                     # ingest issues, rendered
    rule_errors: tuple[str, ...]                  # broken rule files / rules that failed to evaluate
    combined_fix: "Fix | None" = None             # the top cause's fix merged with every latent cause's (with its command)
    schema_version: str = SCHEMA_VERSION
    report_facts: "ReportFacts | None" = None     # excerpts, config table, schedules, versions (rich renderers)
    verification: "Verification | None" = None    # a `reproduce` result attached by the caller (report --verification)
    # rule_id -> when the finding was first visible (analyzer.watch.timeline.Visibility), attached by ``report``
    timeline: Mapping[str, Any] = field(default_factory=dict)
    symptoms: tuple[Symptom, ...] = ()            # every symptom rule that fired (what the curves show)
    unexplained: tuple[UnexplainedSymptom, ...] = ()  # symptoms at warning+ that no finding explains

    @property
    def problem_found(self) -> bool:
        """False only when nothing at warning or above was found: no such finding and no such symptom.
        Renderers say "No problem found" exactly then (issue 13: no strong symptom goes unreported)."""
        from mnv4_postmortem.analyzer.findings import Severity

        return (any(f.severity >= Severity.WARNING for f in self.findings) or bool(self.unexplained)
                or any(s.severity >= Severity.WARNING for s in self.symptoms))
    # issue 19: what the run's files let the checks judge (coverage.py), and the outcome decided from the
    # findings and that coverage (outcome.py). Set by pipeline.diagnose; None only for hand-built diagnoses.
    coverage: "Coverage | None" = None
    outcome: "Outcome | None" = None


__all__ = ["SCHEMA_VERSION", "CurveSegment", "Diagnosis", "RunSummary"]
