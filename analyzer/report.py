"""The finished analysis handed to renderers: data only, nothing computed here.

``diagnose.py`` builds it from the Run, the detection result and the ranked findings;
renderers (``render/``) only read it. Segments and facts are plain dicts so that renderers
never import the detection or rule stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from mnv4_postmortem.analyzer.findings import Finding, Fix
from mnv4_postmortem.analyzer.model import Run

SCHEMA_VERSION = "1.0"


@dataclass(frozen=True, slots=True, eq=False)
class Report:
    run: Run
    findings: tuple[Finding, ...]              # most likely first
    differential: tuple[str, ...]              # why each alternative ranks lower
    segments: Mapping[str, list[dict[str, Any]]]  # per metric, JSON-ready
    facts: Mapping[str, Any]                   # derived quantities worth showing (lr, EMA horizon, ...)
    warnings: tuple[str, ...]                  # ingest issues, rendered
    rule_errors: tuple[str, ...]               # broken rule files / rules that failed to evaluate
    combined_fix: Fix | None = None            # top cause + latent causes fixed together (findings.combined_fix)
    schema_version: str = SCHEMA_VERSION

    @property
    def run_info(self) -> dict[str, Any]:
        run = self.run
        return {
            "path": str(run.run_dir),
            "model": run.config.get("model"),
            "timm_version": str(run.timm_version) if run.timm_version is not None else None,
            "epochs": run.epoch_span(),
        }
