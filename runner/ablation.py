"""The ablation ladder: switch every advanced component off, then add them back one at a time.

Planning only (torch-free); ``ablation_run.py`` trains the rungs with the runner's trainer.

Rung 0, the baseline, is the recipe with every advanced component off: no EMA; drop 0 and drop-path 0;
no mixup, cutmix, label smoothing or random erasing; and the LR capped at a typical value for the
optimizer and global batch (the analyzer's ``lr_reference``) when the run's LR is above it. The input
size, model, optimizer, schedule and data are the run's: they define the task, not an extra.

A component is what one catalog cause names, so a rung answers one question of the diagnosis:

==============  ======================  ===================================================
component       cause                   settings restored when it is added back
==============  ======================  ===================================================
ema             ema-lag                 model_ema, model_ema_decay, model_ema_warmup
lr              lr-too-high             lr (the run's, above the cap)
regularization  over-regularization     drop, drop_path, mixup, cutmix, smoothing, reprob
==============  ======================  ===================================================

A component is suspicious, and gets a rung, when the run has it switched on: then the analyzer's findings
or differential name its cause, or it is a non-default advanced setting (both are listed per rung).

Order (stated, and the same for every run): least suspicious first, the top finding's component last.
Components whose cause no finding names come first, then the differential's causes, then the findings'
from the lowest-ranked to the top one. The ladder then tests whether the top suspect is *needed*: a rung
that brings the stall back before it is added says something else is sufficient. An EMA rung added last
also differs from the rung below only in EMA settings, so the runner trains one trajectory for both.
``--one-at-a-time`` adds each component alone to the baseline instead.

The stall: the reported eval top-1 gains less than ``FLAT_GAIN`` points over the rung (best minus the
first epoch, mean over seeds) - the project's "training progresses" bar (the raw model gains >= 5 points,
as in rules/ema/ema-lag.yaml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from mnv4_postmortem.analyzer.model import as_number
from mnv4_postmortem.runner.spec import ema_decay

__all__ = ["Component", "Rung", "LadderPlan", "plan_ladder", "components_of", "FLAT_GAIN", "first_stall_rung"]

FLAT_GAIN = 5.0

REGULARIZATION_KEYS = ("drop", "drop_path", "mixup", "cutmix", "smoothing", "reprob")
EMA_KEYS = ("model_ema", "model_ema_decay", "model_ema_warmup")
OFF = {"drop": 0.0, "drop_path": 0.0, "mixup": 0.0, "cutmix": 0.0, "smoothing": 0.0, "reprob": 0.0}
CATALOG_ORDER = ("regularization", "lr", "ema")  # ties in suspicion keep this order


@dataclass(frozen=True, slots=True)
class Component:
    key: str                               # "ema", "lr", "regularization"
    cause: str                             # the catalog cause that names it
    label: str                             # "EMA (decay 0.9998, without warmup)"
    restore: Mapping[str, Any]             # the run's settings, put back when the component is added
    off: Mapping[str, Any]                 # the baseline's settings
    why: tuple[str, ...]                   # why it is suspicious: "finding ema-lag", "non-default drop 0.2"
    suspicion: int                         # 0 = named by no finding; higher = ranked higher by the analyzer


@dataclass(frozen=True, slots=True)
class Rung:
    index: int
    added: str                             # "baseline", "+ EMA (...)"
    components: tuple[str, ...]            # component keys switched on
    patch: Mapping[str, Any]               # on the ORIGINAL recipe (the runner scales it like any arm)


@dataclass(frozen=True, slots=True)
class LadderPlan:
    components: tuple[Component, ...]      # in the order they are added
    rungs: tuple[Rung, ...]
    mode: str                              # "cumulative" | "one-at-a-time"
    lr_cap: float | None
    order_rule: str = ("least suspicious first, the top finding's component last (components no finding names, "
                       "then the differential's, then the findings' from lowest- to highest-ranked)")
    dropped: tuple[str, ...] = ()          # components cut by --max-rungs
    notes: tuple[str, ...] = field(default_factory=tuple)


# The recipe components a ladder can switch off and on (the causes each tests are causes.yaml's ``ablation``).
COMPONENT_KEYS = ("ema", "lr", "regularization")


def components_of(
    args: Mapping[str, Any],
    lr_cap: float | None,
    finding_causes: Sequence[str],
    considered_causes: Sequence[str] = (),
    toggles: Mapping[str, Sequence[str]] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> list[Component]:
    """The suspicious components of a recipe (switched on in ``args``), with their suspicion rank.

    ``finding_causes``: the fired findings' causes, most likely first; ``considered_causes``: the
    differential's (considered, ranked lower or not fired). ``toggles``: component -> the causes its rung
    tests; by default the rule pack's causes.yaml (``ablation:``), the one owner of that knowledge.
    ``defaults``: timm's defaults in the run's era, as the run's config carries them (``run.config.defaults``,
    resolved once at ingest); a regularizer at its default is on but not "non-default".
    """
    if toggles is None:
        from mnv4_postmortem.analyzer.session import Analyzer

        analyzer = Analyzer()
        toggles = {key: analyzer.causes_toggled_by(key) for key in COMPONENT_KEYS}
    rank: dict[str, int] = {}
    n = len(finding_causes)
    for i, cause in enumerate(finding_causes):
        rank.setdefault(cause, 2 + n - i)            # the top finding gets the highest
    for cause in considered_causes:
        rank.setdefault(cause, 1)
    out: list[Component] = []
    for component in (_ema(args), _lr(args, lr_cap), _regularization(args, defaults or {})):
        if component is not None:
            out.append(_with_rank(component, rank, tuple(toggles.get(component.key, ()))))
    return out


def _with_rank(c: Component, rank: Mapping[str, int], causes: tuple[str, ...]) -> Component:
    """The component under the most suspicious cause its rung tests."""
    cause = max(causes, key=lambda name: rank.get(name, 0)) if causes else c.key
    suspicion = rank.get(cause, 0)
    why = list(c.why)
    if suspicion >= 2:
        why.insert(0, f"finding {cause}")
    elif suspicion == 1:
        why.insert(0, f"differential {cause}")
    return Component(c.key, cause, c.label, c.restore, c.off, tuple(why), suspicion)


def _ema(args: Mapping[str, Any]) -> Component | None:
    if not args.get("model_ema"):
        return None
    decay = ema_decay(args)
    warmup = bool(args.get("model_ema_warmup"))
    label = f"EMA (decay {decay:g}, {'with' if warmup else 'without'} warmup)"
    restore = {k: args.get(k) for k in EMA_KEYS}
    return Component("ema", "", label, restore, {"model_ema": False}, ("non-default model_ema",), 0)


def _lr(args: Mapping[str, Any], cap: float | None) -> Component | None:
    lr = as_number(args.get("lr"))
    if lr is None or cap is None or lr <= cap:
        return None
    label = f"lr {lr:g} (cap {cap:.3g}: {lr / cap:.3g}x typical)"
    return Component("lr", "", label, {"lr": lr}, {"lr": cap}, (f"lr {lr:g} above the typical {cap:.3g}",), 0)


def _regularization(args: Mapping[str, Any], defaults: Mapping[str, Any]) -> Component | None:
    on = {k: args.get(k) for k in REGULARIZATION_KEYS if (as_number(args.get(k)) or 0) > 0}
    if not on:
        return None
    non_default = [f"non-default {k} {v:g}" for k, v in on.items() if v != defaults.get(k)]
    label = "regularization (" + ", ".join(f"{k.replace('_', '-')} {v:g}" for k, v in on.items()) + ")"
    off = {k: OFF[k] for k in on}
    return Component("regularization", "", label, on, off, tuple(non_default), 0)


def plan_ladder(
    components: Iterable[Component],
    *,
    one_at_a_time: bool = False,
    max_rungs: int | None = None,
    lr_cap: float | None = None,
) -> LadderPlan:
    """Rung 0 turns every component off; each further rung adds one back (cumulative or alone)."""
    ordered = sorted(components, key=lambda c: (c.suspicion, CATALOG_ORDER.index(c.key)))
    baseline: dict[str, Any] = {"model_ema": False, **OFF}
    for c in ordered:
        baseline.update(c.off)
    dropped: tuple[str, ...] = ()
    if max_rungs is not None and max_rungs >= 1 and len(ordered) > max_rungs - 1:
        # Keep the most suspicious components: the ladder's question is about them.
        keep = ordered[len(ordered) - (max_rungs - 1):] if max_rungs > 1 else []
        dropped = tuple(c.label for c in ordered if c not in keep)
        ordered = keep
    rungs = [Rung(0, "baseline (every advanced component off)", (), dict(baseline))]
    on: list[Component] = []
    for i, c in enumerate(ordered, start=1):
        on = [c] if one_at_a_time else [*on, c]
        patch = dict(baseline)
        for comp in on:
            patch.update(comp.restore)
        rungs.append(Rung(i, f"+ {c.label}", tuple(x.key for x in on), patch))
    notes = ()
    if dropped:
        notes = (f"--max-rungs {max_rungs}: not tested (least suspicious first): " + "; ".join(dropped),)
    return LadderPlan(tuple(ordered), tuple(rungs), "one-at-a-time" if one_at_a_time else "cumulative", lr_cap,
                      dropped=dropped, notes=notes)


def eval_gain(top1: Sequence[float]) -> float | None:
    """Best minus first-epoch reported eval top-1 (points)."""
    values = [float(v) for v in top1 if v is not None and math.isfinite(float(v))]
    if len(values) < 2:
        return None
    return max(values) - values[0]


def is_flat(gains: Sequence[float | None]) -> bool | None:
    """The stall, over a rung's seeds: the mean gain below ``FLAT_GAIN`` points."""
    known = [g for g in gains if g is not None]
    if not known:
        return None
    return sum(known) / len(known) < FLAT_GAIN


def first_stall_rung(flat: Sequence[bool | None], mode: str = "cumulative") -> int | None:
    """The first rung (index > 0) that is flat while the baseline is not; None when none does it."""
    if not flat or flat[0] is not False:
        return None
    for index, value in enumerate(flat[1:], start=1):
        if value:
            return index
    return None
