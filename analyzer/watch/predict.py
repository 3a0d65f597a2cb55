"""Findings the recipe decides before the curves show them: what ``watch`` reports at the first epoch.

The rules judge what a run did; some outcomes are fixed by the configuration and the first optimizer
updates already (the update count per epoch comes from the first ``Train:`` line). Each predictor here
computes the same quantity its rule reads, over the *scheduled* run instead of the epochs done so far,
and names the epoch at which the rule's symptom becomes visible. Thresholds are the rules' own:

- EMA: the EMA timm evaluates still holds more than half of the initial weights at the scheduled end
  (``ema-lag-latent``'s 0.5: the evaluated model is then mostly the initial one). The symptom, a flat
  EMA eval, shows from the first evaluation and lasts until the share falls below one half.
- LR: the LR is at least 10x the typical LR for the optimizer and global batch (``lr-too-high-chance``'s
  10x). The symptom shows when the schedule first reaches that LR: after the warmup.

Recipe-only rules (warmup longer than the run, ``--pretrained-path`` without ``--pretrained``, the
input-size mismatch) need no predictor: they already fire on a run with no epoch done, and the watcher
marks a finding that fires before any evaluation as predicted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mnv4_postmortem.analyzer.engine import RulePack
from mnv4_postmortem.analyzer.features.derived import Derived
from mnv4_postmortem.analyzer.findings import Evidence, Finding, Severity
from mnv4_postmortem.analyzer.model import Run

EMA_SHARE_LIMIT = 0.5       # ema-lag-latent's threshold
LR_RATIO_LIMIT = 10.0       # lr-too-high-chance's threshold

# Recipe-only rules: the epoch their symptom shows at (None: from the start), from the config.
_SYMPTOM_EPOCH = {"warmup-too-long": lambda run: run.config.count("warmup_epochs")}


@dataclass(frozen=True, slots=True)
class Prediction:
    """A finding the recipe decides, and the epoch from which the curves will show it."""

    finding: Finding
    symptom_epoch: int | None       # the first epoch whose values show the symptom
    basis: str                      # what decided it: "config" or "config + first updates"


def predict(run: Run, derived: Derived, pack: RulePack) -> list[Prediction]:
    """The predictions ``run``'s recipe supports (empty while the facts they need are unknown)."""
    return [p for p in (_ema(run, derived, pack), _lr(run, derived, pack)) if p is not None]


def symptom_epoch_of(run: Run, finding: Finding) -> int | None:
    """For a recipe-only rule that fired before any epoch: the epoch its symptom shows at."""
    rule = _SYMPTOM_EPOCH.get(finding.rule_id)
    return rule(run) if rule is not None else None


def _severity(pack: RulePack, rule_id: str, default: Severity) -> Severity:
    rule = pack.get(rule_id)
    return rule.severity if rule is not None else default


def _ema(run: Run, derived: Derived, pack: RulePack) -> Prediction | None:
    from mnv4_postmortem.analyzer.features.ema import ema_model_from

    upe, scheduled = derived.updates_per_epoch, derived.epochs_scheduled
    ema = ema_model_from(run) if derived.ema_evaluated else None
    if ema is None or not upe or not scheduled:
        return None
    total = upe * scheduled
    share = ema.init_weight_after(total)
    if share <= EMA_SHARE_LIMIT:
        return None
    half = ema.updates_until_share(EMA_SHARE_LIMIT)
    half_epoch = math.ceil(half / upe) - 1 if half is not None else None
    decay = f"{ema.decay:g}"
    warmup = "with" if ema.warmup else "without"
    lines = [
        f"EMA decay {decay} {warmup} --model-ema-warmup: after the {total} optimizer updates of the "
        f"{scheduled} scheduled epochs ({upe} per epoch), {share:.1%} of the initial weights will still be "
        f"inside the EMA that timm evaluates; its horizon 1/(1-decay) is {ema.horizon:.0f} updates",
        "the reported eval top-1 (the EMA's) will stay near the initial model's from the first evaluation (epoch 0)"
        + (f" until about epoch {half_epoch}, when half of the initial weights have left the EMA"
           if half_epoch is not None else ": the EMA never moves"),
    ]
    finding = Finding(
        rule_id="ema-lag", cause="ema-lag", severity=_severity(pack, "ema-lag", Severity.ERROR), confidence=0.9,
        title="the EMA timm evaluates will still be mostly the initial model at the end of the run",
        evidence=tuple(Evidence(line) for line in lines), epochs=(0, scheduled - 1),
        facts={"ema_init_share_at_end": round(share, 4), "ema_half_share_epoch": half_epoch},
    )
    return Prediction(finding, 0, "config + first updates")


def _lr(run: Run, derived: Derived, pack: RulePack) -> Prediction | None:
    from mnv4_postmortem.analyzer.features.namespace import lr_reference

    reference = lr_reference(run.config.or_default("opt"), derived.global_batch)
    if not reference or not derived.lr:
        return None
    ratio = derived.lr / reference
    if ratio < LR_RATIO_LIMIT:
        return None
    warmup = run.config.count("warmup_epochs") or 0
    opt = run.config.text("opt") or "sgd"
    lines = [f"lr {derived.lr:g} is {ratio:.0f}x a typical {opt} LR for global batch {derived.global_batch} "
             f"({reference:.3g}, timm's lr_base scaling) ({derived.lr_source})",
             f"the schedule reaches it after {warmup} warmup epoch(s): the loss will stall at chance or explode from epoch {warmup}"]
    finding = Finding(
        rule_id="lr-too-high", cause="lr-too-high", severity=_severity(pack, "lr-too-high-chance", Severity.ERROR),
        confidence=0.7, title=f"the LR is {ratio:.0f}x the typical LR for this optimizer and batch",
        evidence=tuple(Evidence(line) for line in lines), facts={"lr_ratio": round(ratio, 2)},
    )
    return Prediction(finding, warmup, "config")
