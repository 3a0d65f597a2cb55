"""One growing run, diagnosed again as it grows: the stage shared by ``watch`` and :class:`Monitor`.

``LiveDiagnosis.update(run)`` runs the ordinary pipeline (``pipeline.diagnose``, the same evidence as
``report``) on the run as it stands, adds the recipe's predictions (``predict.py``) and hands both to the
:class:`~analyzer.watch.tracker.Tracker`, which returns only what changed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from mnv4_postmortem.analyzer.diagnosis import Diagnosis
from mnv4_postmortem.analyzer.engine import RulePack
from mnv4_postmortem.analyzer.model import Run
from mnv4_postmortem.analyzer.watch.predict import predict, symptom_epoch_of
from mnv4_postmortem.analyzer.watch.tracker import DEFAULT_CONFIRM, END_OF_RUN_RULES, Change, Observation, Tracker

_EVAL_COLUMNS = ("eval_top1", "eval_loss", "eval_top5")


def last_epoch(run: Run) -> int | None:
    """The last evaluated epoch (None: none yet). An epoch in training adds a train loss but no
    evaluation: diagnoses during it count as the epoch before."""
    frame = run.epochs
    present = [frame.index[frame[c].notna().to_numpy()] for c in _EVAL_COLUMNS if c in frame.columns]
    epochs = [int(index.max()) for index in present if len(index)]
    return max(epochs) if epochs else (int(frame.index.max()) if len(frame) else None)


def evaluated(run: Run) -> bool:
    """Whether any evaluation has been seen: before it, a firing rule can only have read the recipe (and
    the first updates' train loss), so it is a prediction."""
    frame = run.epochs
    return any(c in frame.columns and frame[c].notna().any() for c in _EVAL_COLUMNS)


def settled(run: Run) -> Run:
    """The run up to its last evaluated epoch: the epoch in training has only a running train loss of
    part of its updates. (Its step rows stay: a NaN loss mid-epoch is news.)"""
    from dataclasses import replace

    if not evaluated(run):
        return run
    last = last_epoch(run)
    keep = run.epochs.index <= last
    if keep.all():
        return run
    return replace(run, epochs=run.epochs[keep], epoch_refs=run.epoch_refs[keep])


@dataclass
class LiveDiagnosis:
    pack: RulePack
    confirm: int = DEFAULT_CONFIRM
    tracker: Tracker = field(init=False)
    diagnosis: Diagnosis | None = None
    cpu_seconds: float = 0.0          # spent in update(), for the back-off between diagnoses
    last_cost: float = 0.0

    def __post_init__(self) -> None:
        self.tracker = Tracker(self.confirm)

    def warm_up(self) -> None:
        """Run the pipeline once on an empty recipe: its first call pays one-time costs (lazy imports)
        that must not count as the cost of a diagnosis when pacing the next one."""
        from mnv4_postmortem.analyzer.ingest.synthetic import synthetic_run
        from mnv4_postmortem.analyzer.pipeline import diagnose

        diagnose(synthetic_run({"num_classes": 10}, {"train_loss": [2.3, 2.2, 2.1], "eval_top1": [10, 11, 12]}), self.pack)

    def update(self, run: Run, *, live: bool = True) -> list[Change]:
        from mnv4_postmortem.analyzer.features.derived import derive
        from mnv4_postmortem.analyzer.pipeline import diagnose

        started = time.process_time()
        if live:
            run = settled(run)
        diagnosis = diagnose(run, self.pack)
        self.diagnosis = diagnosis
        before_any_epoch = not evaluated(run)
        epoch = None if before_any_epoch else last_epoch(run)
        observed = list(diagnosis.findings)
        predictions = [Observation(p.finding, True, p.symptom_epoch) for p in predict(run, derive(run), self.pack)]
        if before_any_epoch:    # rules that fire on the recipe alone are predictions too (after the
            # predictors', which say more: the scheduled end and the epoch the symptom shows at)
            predictions += [Observation(f, True, symptom_epoch_of(run, f)) for f in observed
                            if not (live and f.rule_id in END_OF_RUN_RULES)]
            observed = []
        changes = self.tracker.update(epoch, observed, predictions, live=live)
        self.last_cost = time.process_time() - started
        self.cpu_seconds += self.last_cost
        return changes


def next_diagnosis_delay(last_cost: float, poll: float, duty: float = 0.1) -> float:
    """Seconds to wait before the next diagnosis: at most ``duty`` of one core goes to diagnosing, so a
    run whose epochs arrive faster than it can be diagnosed gets its epochs coalesced, not queued."""
    if not math.isfinite(last_cost) or last_cost <= 0:
        return poll
    return max(poll, last_cost / duty)
