"""The coverage statement as plain sentences, shared by the text, Markdown and batch renderers (HTML and
JSON lay out the same Coverage object themselves). Layout only: the Coverage is computed upstream."""

from __future__ import annotations

from mnv4_postmortem.analyzer.coverage import Coverage, SeriesSpan


def span_phrase(series: SeriesSpan) -> str:
    """``train loss epochs 0-11 (12)``; step loss: ``step loss 48 steps, epochs 0-11``."""
    if series.axis == "step":
        where = f", epochs {series.first}-{series.last}" if series.first is not None else " (epochs unknown)"
        return f"{series.label} {series.points} steps{where}"
    return f"{series.label} epochs {series.first}-{series.last} ({series.points})"


def series_line(coverage: Coverage) -> str:
    present = [span_phrase(s) for s in coverage.series if s.present]
    absent = [s.label for s in coverage.series if not s.present]
    text = "; ".join(present) if present else "no series"
    return text + (f"; not found: {', '.join(absent)}" if absent else "")


def config_line(coverage: Coverage) -> str:
    known = [c for c in coverage.config if c.known]
    unknown = [c.label for c in coverage.config if not c.known]
    if not known:
        return "no timm settings known"
    files = ", ".join(coverage.config_files) if coverage.config_files else "timm's defaults"
    text = f"{len(known)} of {len(coverage.config)} facts known, from {files}"
    return text + (f"; unknown: {', '.join(unknown)}" if unknown else "")


def other_config_lines(coverage: Coverage) -> list[str]:
    return [f"{o.path}: {len(o.keys)} key(s) kept as other config, not read as train.py settings: {', '.join(o.keys)}"
            for o in coverage.other_config]


def checks_line(coverage: Coverage) -> str:
    ran = [c.label for c in coverage.checks if c.can_run]
    if len(ran) == len(coverage.checks):
        return f"all {len(ran)} checks could run"
    return f"{len(ran)} of {len(coverage.checks)} checks could run" + (f": {', '.join(ran)}" if ran else "")


def blocked_lines(coverage: Coverage) -> list[str]:
    """One sentence per check that could not run: ``EMA lag: cannot be judged, no eval curve ...``."""
    return [c.sentence() for c in coverage.checks if not c.can_run]


def one_line(coverage: Coverage) -> str:
    """The batch row's coverage: the series present and how many checks could run."""
    present = [f"{s.label} {s.first}-{s.last}" if s.first is not None else f"{s.label} ({s.points})"
               for s in coverage.series if s.present]
    ran = sum(1 for c in coverage.checks if c.can_run)
    return f"{', '.join(present) if present else 'no series'}; {ran}/{len(coverage.checks)} checks could run"


__all__ = ["blocked_lines", "checks_line", "config_line", "one_line", "other_config_lines", "series_line", "span_phrase"]
