"""From successive diagnoses of a growing run to the changes worth printing.

A finding is identified by its cause (``ema-lag`` predicted, then ``ema-lag-latent``, then ``ema-lag``
is one story told in three steps, not three alarms). The tracker announces:

- ``started``: a cause starts to fire (with the epoch it first fired at; ``predicted`` when the recipe
  decided it before any evaluation showed it);
- ``confirmed``: a predicted cause is now also seen in the curves;
- ``escalated``: a cause already announced fires at a higher severity;
- ``stopped``: a cause no longer fires;
- ``top-cause``: the most likely cause changed.

Debounce: a finding read from the curves (not predicted) is announced once it has fired at ``confirm``
successive diagnoses (3 by default, the persistence the rules ask of a pattern, ``for: 3``), and
withdrawn once it has been absent for as many: the curves of a run in
progress are short, and one epoch's values can tip a rule either way. Predictions from the recipe do
not depend on the curves and are announced at once.

Rules whose premise is that the run has ended (``incomplete-run``: a run being written is incomplete by
definition) are left out while the run is live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

from mnv4_postmortem.analyzer.findings import Finding, Severity

END_OF_RUN_RULES = frozenset({"incomplete-run"})
# The rules ask a pattern to hold for 3 epochs (``for: 3``); a finding of a run in progress must hold
# as long before it is announced.
DEFAULT_CONFIRM = 3

ChangeKind = Literal["started", "confirmed", "escalated", "stopped", "top-cause"]


@dataclass(frozen=True, slots=True)
class Observation:
    """One finding at one diagnosis: from the rules (curves), or predicted from the recipe."""

    finding: Finding
    predicted: bool
    symptom_epoch: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    epoch: int | None                   # the last epoch of the data this diagnosis saw (None: before epoch 0)
    finding: Finding | None = None
    predicted: bool = False
    visible_from: int | None = None     # the epoch the cause first fired at (predicted: the epoch it was predicted at)
    symptom_epoch: int | None = None    # predicted: the epoch whose values will show it
    previous: str | None = None         # top-cause: the cause before


@dataclass
class _State:
    observation: Observation
    first_epoch: int | None
    announced: bool = False
    seen_in_curves: bool = False
    streak: int = 0
    absent: int = 0
    severity: Severity = Severity.INFO      # the highest severity announced so far
    counted: object = "none"                # the epoch last counted in streak/absent (one count per epoch)


@dataclass
class Tracker:
    confirm: int = DEFAULT_CONFIRM
    states: dict[str, _State] = field(default_factory=dict)
    top: str | None = None

    def update(self, epoch: int | None, observed: Sequence[Finding], predictions: Sequence[Observation],
               *, live: bool = True) -> list[Change]:
        """The changes since the previous call. ``observed``: the rules' findings, ranked (most likely
        first); ``predictions``: what the recipe decides; ``epoch``: the last epoch of the data."""
        changes: list[Change] = []
        now: dict[str, Observation] = {}
        for finding in observed:
            if live and finding.rule_id in END_OF_RUN_RULES:
                continue
            now.setdefault(finding.cause, Observation(finding, predicted=epoch is None))
        for prediction in predictions:
            if prediction.finding.cause not in now:
                now[prediction.finding.cause] = prediction
        for cause, observation in now.items():
            # a finished run gets no more epochs to confirm a finding with: it is announced at once
            changes += self._fired(cause, observation, epoch, 1 if not live else self.confirm)
        for cause, state in list(self.states.items()):
            if cause not in now:
                changes += self._absent(cause, state, epoch)
        changes += self._top(epoch, [f.cause for f in observed], now)
        return changes

    def active(self) -> list[Change]:
        """What is announced now, as ``started`` changes (for a summary)."""
        return [self._change("started", s, s.first_epoch) for s in self.states.values() if s.announced]

    def _fired(self, cause: str, observation: Observation, epoch: int | None, confirm: int) -> list[Change]:
        state = self.states.get(cause)
        from_curves = not observation.predicted
        if state is None:
            state = self.states[cause] = _State(observation, epoch)
        if state.absent:
            state.absent, state.counted = 0, "none"
        state.observation = observation
        if epoch != state.counted:      # several diagnoses within one epoch count once
            state.streak, state.counted = state.streak + 1, epoch
        if not state.announced:
            if observation.predicted or state.streak >= confirm:
                state.announced, state.seen_in_curves = True, from_curves
                state.severity = observation.finding.severity
                return [self._change("started", state, epoch)]
            return []
        out: list[Change] = []
        if from_curves and not state.seen_in_curves:
            state.seen_in_curves = True
            out.append(self._change("confirmed", state, epoch))
        elif observation.finding.severity > state.severity:
            out.append(self._change("escalated", state, epoch))
        state.severity = max(state.severity, observation.finding.severity)
        return out

    def _absent(self, cause: str, state: _State, epoch: int | None) -> list[Change]:
        if not state.absent:
            state.counted = "none"
        state.streak = 0
        if epoch != state.counted:
            state.absent, state.counted = state.absent + 1, epoch
        if not state.announced:
            del self.states[cause]
            return []
        if state.absent >= self.confirm:
            del self.states[cause]
            return [self._change("stopped", state, epoch)]
        return []

    def _top(self, epoch: int | None, ranked_causes: list[str], now: dict[str, Observation]) -> list[Change]:
        announced = [c for c in ranked_causes if c in self.states and self.states[c].announced
                     and not self.states[c].observation.finding.latent]
        if not announced:   # only predictions: the most severe one
            predicted = sorted((s for c, s in self.states.items() if s.announced and c in now),
                               key=lambda s: -int(s.observation.finding.severity))
            announced = [predicted[0].observation.finding.cause] if predicted else []
        top = announced[0] if announced else None
        if top == self.top:
            return []
        previous, self.top = self.top, top
        if top is None:
            return [Change("top-cause", epoch, None, previous=previous)]
        return [Change("top-cause", epoch, self.states[top].observation.finding, previous=previous,
                       predicted=self.states[top].observation.predicted)]

    def _change(self, kind: ChangeKind, state: _State, epoch: int | None) -> Change:
        observation = state.observation
        return Change(kind, epoch, observation.finding, observation.predicted, state.first_epoch,
                      observation.symptom_epoch)


def at_least(change: Change, severity: Severity) -> bool:
    """A started/confirmed/escalated finding at or above ``severity`` (what ``--fail-on`` stops for)."""
    return change.kind in ("started", "confirmed", "escalated") and change.finding is not None \
        and change.finding.severity >= severity


def change_json(change: Change, when: str) -> dict[str, Any]:
    """One event of ``watch --format json`` (one JSON object per line)."""
    from mnv4_postmortem.analyzer.findings import to_json_dict

    out: dict[str, Any] = {"time": when, "event": change.kind, "epoch": change.epoch}
    if change.finding is not None:
        out["cause"] = change.finding.cause
        out["finding"] = to_json_dict(change.finding)
        out["predicted"] = change.predicted
        out["visible_from_epoch"] = change.visible_from
        if change.symptom_epoch is not None:
            out["symptom_epoch"] = change.symptom_epoch
    if change.previous is not None or change.kind == "top-cause":
        out["previous"] = change.previous
    return out
