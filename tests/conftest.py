"""Shared test helpers: where the bundled fixtures and the shared real runs live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_RUNS = REPO / "fixtures" / "runs"
SHARED = REPO.parent / "shared"
REAL_RUNS = SHARED / "real-runs"
TIMM_RUNS = SHARED / "timm-runs"


def labelled_runs(root: Path) -> dict[str, str]:
    """``run name -> expected top cause`` from a LABELS.md table (last column)."""
    labels: dict[str, str] = {}
    path = root / "LABELS.md"
    if not path.exists():
        return labels
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] and cells[0] != "run" and not set(cells[0]) <= {"-", ":"}:
            labels[cells[0].strip("`")] = cells[-1]
    return labels


@pytest.fixture(scope="session")
def real_runs() -> Path:
    if not REAL_RUNS.is_dir():
        pytest.skip("../shared/real-runs is not available")
    return REAL_RUNS


def report_json(text: str) -> dict:
    """Parse a ``report --format json`` document and validate it against the shipped JSON Schema."""
    import json

    import jsonschema

    from mnv4_postmortem.analyzer.render.json_render import schema

    document = json.loads(text)
    jsonschema.validate(document, schema(), cls=jsonschema.Draft202012Validator)
    return document
