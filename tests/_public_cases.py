"""The public cases (fixtures/public/LABELS.yaml): labels in the fixtures/labels.yaml schema plus a holdout flag.

Shared by tests/test_public_cases.py (the collection is well formed) and bench/bench_public_cases.py (the tool's
top-cause accuracy, dev and holdout apart), so that both read the same labels and the same holdout rule.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from _labelled import Label, load_labels

REPO = Path(__file__).resolve().parents[1]
PUBLIC_DIR = REPO / "fixtures" / "public"
PUBLIC_LABELS = PUBLIC_DIR / "LABELS.yaml"


def holdout_by_rule(case_name: str) -> bool:
    """The holdout rule fixed before any case was collected: a third of the cases, by a hash of the folder name
    (so that nobody, the collector included, chooses which cases are held out)."""
    return int(hashlib.sha256(case_name.encode("utf-8")).hexdigest(), 16) % 3 == 0


@dataclass(frozen=True)
class PublicCase:
    label: Label
    holdout: bool
    basis: str

    @property
    def name(self) -> str:
        return self.label.path.name


def load_public_cases(path: Path = PUBLIC_LABELS) -> list[PublicCase]:
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))["runs"]
    return [
        PublicCase(label=label, holdout=bool(entries[label.run].get("holdout", False)),
                   basis=str(entries[label.run].get("basis", "")))
        for label in load_labels(path)
    ]
