"""When each finding of a finished run could first have been known: the report's "visible from epoch N"
and "predictable before training".

The finished run is replayed as ``watch`` would have seen it: first its recipe with the first epoch's
updates and no evaluation (the moment the first ``Train:`` line is printed), then the run cut after
epoch 0, 1, 2... (every epoch up to ``MAX_PREFIXES`` diagnoses; a longer run is sampled evenly, so its
"visible from" is the first sampled epoch at which the rule fired). Each prefix goes through the same
pipeline as the report, stopped once the findings are ranked (``pipeline.ranked_findings``): a prefix's
coverage, report facts and fix command lines are never shown, and skipping them is a third of the replay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np

from mnv4_postmortem.analyzer.engine import RulePack
from mnv4_postmortem.analyzer.findings import Finding
from mnv4_postmortem.analyzer.model import Run

MAX_PREFIXES = 40       # diagnoses one timeline costs at most (a 12-epoch run: 13)


@dataclass(frozen=True, slots=True)
class Visibility:
    visible_from_epoch: int | None          # the first (checked) epoch whose prefix fires the finding's rule
    predictable_before_training: bool       # the recipe and the first updates already decided it
    exact: bool = True                      # False: epochs were sampled, the true first epoch may be earlier

    def describe(self) -> str:
        """The report's words for it (text and HTML show the same)."""
        parts = []
        if self.visible_from_epoch is not None:
            parts.append(f"visible from epoch {self.visible_from_epoch}" + ("" if self.exact else " (epochs sampled)"))
        if self.predictable_before_training:
            parts.append("predictable before training")
        return "; ".join(parts)


def finding_timeline(run: Run, pack: RulePack, findings: Sequence[Finding]) -> Mapping[str, Visibility]:
    """``rule_id -> Visibility`` for ``findings`` (the report's, of the whole run)."""
    from mnv4_postmortem.analyzer.features.derived import derive
    from mnv4_postmortem.analyzer.pipeline import ranked_findings
    from mnv4_postmortem.analyzer.watch.predict import predict

    if not findings or not len(run.epochs):
        return {}
    wanted = {f.rule_id: f.cause for f in findings}
    before = before_training(run)
    early = {f.rule_id for f in ranked_findings(before, pack)}
    predicted = {p.finding.cause for p in predict(before, derive(before), pack)}
    epochs = [int(e) for e in run.epochs.index]
    checked = _sampled(epochs)
    first: dict[str, int] = {}
    for epoch in checked:
        for finding in ranked_findings(prefix(run, epoch), pack):
            if finding.rule_id in wanted and finding.rule_id not in first:
                first[finding.rule_id] = epoch
        if len(first) == len(wanted):
            break
    exact = len(checked) == len(epochs)
    return {rule: Visibility(first.get(rule), rule in early or cause in predicted, exact)
            for rule, cause in wanted.items()}


def prefix(run: Run, last: int) -> Run:
    """The run as it stood when epoch ``last`` had been evaluated."""
    keep = run.epochs.index <= last
    steps = run.steps[run.steps["epoch"] <= last] if "epoch" in run.steps.columns else run.steps
    updates = steps["update"].max() if "update" in steps.columns and len(steps) else None
    scalars = run.step_scalars
    if len(scalars) and updates is not None and np.isfinite(updates):
        scalars = scalars[scalars.index <= updates]
    events = tuple(e for e in run.events if e.epoch is not None and e.epoch <= last)
    return replace(run, epochs=run.epochs[keep], epoch_refs=run.epoch_refs[keep], steps=steps,
                   step_scalars=scalars, events=events)


def before_training(run: Run) -> Run:
    """The recipe and the first logged update, nothing evaluated: what a watcher has at the first ``Train:`` line."""
    steps = run.steps.head(1)
    return replace(run, epochs=run.epochs.iloc[:0], epoch_refs=run.epoch_refs.iloc[:0], steps=steps,
                   step_scalars=run.step_scalars.iloc[:0], events=())


def _sampled(epochs: list[int]) -> list[int]:
    if len(epochs) <= MAX_PREFIXES:
        return epochs
    picks = np.unique(np.linspace(0, len(epochs) - 1, MAX_PREFIXES).round().astype(int))
    return [epochs[i] for i in picks]
