"""What a diagnosis says: findings, their order, and why the alternatives rank lower.

Data and ranking only. The rule engine builds :class:`Finding` objects; :func:`make_ranking` orders
them and writes the differential; the pipeline puts the result into the one result type,
:class:`mnv4_postmortem.analyzer.diagnosis.Diagnosis`, that every renderer reads. Nothing here imports the engine, so a renderer that imports this module never
pulls in rule evaluation.

Ranking (``rank``) follows the causal chain, in three tiers by the rule's ``role``:

1. **Causes** of the symptoms seen. Among them severity first (critical first), then specificity
   (more conditions), then confidence, then rule id so the order never depends on evaluation order;
   except that a cause whose symptoms another fired cause ``explains`` comes right after it, whatever
   its severity: the explainer is the root, the explained one its symptom (``lr-too-high`` that
   ``explains: [divergence]`` ranks above a critical ``divergence``), and the differential says so.
   Explanation cycles (A explains B, B explains A) are broken by the plain order.
2. **Latent** causes: guaranteed by the config but masked in this run by a cause above (the seed's EMA
   cannot show its lag while the LR keeps the model at chance). They rank below every cause, are
   marked latent, and their fixes join the top cause's in :attr:`Diagnosis.combined_fix`, because
   fixing only the visible cause gives a second failed run.
3. **Consequences** (stopped early, epochs wasted): what a failure leads to, never its root. They rank
   below every cause, so a run that never learns and was killed early reads ``no-learning`` first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Sequence

class Severity(IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2
    CRITICAL = 3

    @classmethod
    def parse(cls, text: str | Severity) -> Severity:
        """``"warning"`` (any case) -> ``Severity.WARNING``; ValueError naming the choices otherwise."""
        if isinstance(text, Severity):
            return text
        try:
            return cls[str(text).strip().upper()]
        except KeyError:
            choices = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (choose one of: {choices})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class EvidenceRef:
    """One place an evidence line cites: a file and a 1-based line or a record index, and the epoch
    span of the cited series or window it belongs to (``None`` when the citation is not about
    epochs, e.g. args.yaml)."""

    file: str
    line: int | None = None
    record: int | None = None
    epochs: tuple[int, int] | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.file}:{self.line}"
        if self.record is not None:
            return f"{self.file}#record {self.record}"
        return self.file


@dataclass(frozen=True, slots=True)
class Evidence:
    """One rendered evidence line and the sources it cites."""

    text: str
    refs: tuple[EvidenceRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Fix:
    """A change to the run's arguments (args.yaml keys) and the train.py line that applies it."""

    args: Mapping[str, Any]
    command: str | None
    note: str = ""
    safety: str = "safe"  # "safe" | "recipe-change"

    def __post_init__(self) -> None:
        # Frozen means frozen: a caller must not be able to edit a finding's fix through its dict.
        object.__setattr__(self, "args", MappingProxyType(dict(self.args)))


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    cause: str
    severity: Severity
    confidence: float
    title: str
    evidence: tuple[Evidence, ...] = ()
    epochs: tuple[int, int] | None = None
    fix: Fix | None = None
    specificity: int = 1
    explains: tuple[str, ...] = ()
    ruled_out: str | None = None  # rendered: why this cause is not the answer when another ranks first
    role: str = "cause"  # "cause" | "latent" | "consequence" (the rule's role; see module docstring)
    # Structured values for renderers, evaluated from the rule's ``facts`` (e.g. ``ema_catch_up_epoch``).
    facts: Mapping[str, Any] = field(default_factory=dict)
    # The symptoms-first layer (issue 13). ``symptoms``: ids of the fired symptoms this finding explains;
    # ``strength``: the summed strength of those at warning or above; ``score``: a scored cause's total
    # (symptoms + signals), None for a rule that fires on its ``when`` alone; ``own_symptom``: whether it
    # stands on a symptom of its own (a config smell does not; a ``when``-only rule reads the curves itself).
    symptoms: tuple[str, ...] = ()
    strength: float = 0.0
    score: float | None = None
    own_symptom: bool = True
    against: tuple[str, ...] = ()  # the signals that counted against it (for the differential)
    # Every rule that named this cause, ``rule_id`` first: one finding per cause (``merge_by_cause``); empty
    # for a finding straight from one rule.
    rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "facts", MappingProxyType(dict(self.facts)))

    @property
    def latent(self) -> bool:
        return self.role == "latent"


@dataclass(frozen=True, slots=True)
class Symptom:
    """What the curves show, whatever the cause: a symptom rule that fired (issue 13).

    ``strength`` is how far past its margin (1 = at the margin, scaled by the series' own noise);
    ``candidates`` are the causes that could explain it and ``tell_apart`` what would tell them apart.
    """

    id: str
    title: str
    severity: Severity
    strength: float
    epochs: tuple[int, int] | None = None
    evidence: tuple[Evidence, ...] = ()
    candidates: tuple[str, ...] = ()
    tell_apart: str = ""

    @property
    def weighs(self) -> bool:
        """Whether its strength counts as evidence: only what the report calls a problem (warning or above)
        weighs; an info-level symptom makes a cause eligible but adds nothing."""
        return self.severity >= Severity.WARNING


def weighing_strength(symptoms: Iterable[Symptom]) -> float:
    """The summed strength of the symptoms that weigh (:attr:`Symptom.weighs`), in their order."""
    return sum(s.strength for s in symptoms if s.weighs)


@dataclass(frozen=True, slots=True)
class UnexplainedSymptom:
    """A symptom at warning or above that no reported cause explains: shown with its candidates."""

    symptom: Symptom
    candidates: tuple[str, ...]  # the candidate causes, minus those whose rule fired and does not claim it


@dataclass(frozen=True, slots=True)
class Considered:
    """A rule that did not fire but whose ``considered`` condition held: the user would suspect it."""

    rule_id: str
    cause: str
    title: str
    reason: str | None = None  # the rendered ``ruled_out`` text
    outweighed: bool = False  # it fired, but a rival claiming the same symptom outweighs it (engine/evaluate.py)


@dataclass(frozen=True, slots=True)
class Ranking:
    """Findings in order and why the alternatives rank lower (a part of the Diagnosis)."""

    findings: tuple[Finding, ...]            # most likely first
    differential: tuple[str, ...] = ()       # one sentence per alternative cause
    considered: tuple[Considered, ...] = ()  # rules suspected but not fired (and not fired by another id)
    combined_fix: Fix | None = None          # the top cause's fix merged with every latent cause's fix
    unexplained: tuple[UnexplainedSymptom, ...] = ()  # symptoms at warning+ that no reported cause explains


# ----------------------------------------------------------------------------------------------
# Ranking


ROLE_ORDER = ("cause", "latent", "consequence")


def _base_key(finding: Finding) -> tuple:
    # Severity, then how much of the observed symptom set it explains (summed strength), then the strength of
    # its evidence (a scored cause's total; a when-only rule has none), then specificity.
    return (-int(finding.severity), -round(finding.strength, 6), -round(finding.score or 0.0, 6), -finding.specificity,
            -finding.confidence, finding.rule_id)


def _tier(finding: Finding) -> int:
    return ROLE_ORDER.index(finding.role) if finding.role in ROLE_ORDER else 0


def _explained_by(candidate: Finding, others: Iterable[Finding]) -> bool:
    # Between two scored causes, an explainer whose evidence totals no more does not demote the one it names:
    # ranking goes by the strength of the evidence, not by which rule claims the other.
    return any(
        other is not candidate and other.cause != candidate.cause and candidate.cause in other.explains
        and not (other.score is not None and candidate.score is not None and other.score <= candidate.score)
        for other in others
    )


def _rank_causes(findings: Sequence[Finding]) -> list[Finding]:
    """Severity order, with every explained finding placed after the finding that explains it."""
    remaining = sorted(findings, key=_base_key)
    ranked: list[Finding] = []
    while remaining:
        # The best finding that nothing still waiting explains; on a cycle, simply the best one.
        pick = next((f for f in remaining if not _explained_by(f, remaining)), remaining[0])
        ranked.append(pick)
        remaining.remove(pick)
    return ranked


def rank(findings: Iterable[Finding]) -> list[Finding]:
    """Most likely first: causes, then latent causes, then consequences (module docstring); info findings
    after every finding at warning or above. An info finding is a note (a config suspicion no curve backs,
    a lag that resolved by itself): the report leads with what it calls a problem, so a note never stands
    first above a warning, whatever its tier."""
    findings = list(findings)
    notes = [f for f in findings if f.severity < Severity.WARNING]
    if notes and len(notes) < len(findings):
        return _rank_tiers([f for f in findings if f.severity >= Severity.WARNING]) + _rank_tiers(notes)
    return _rank_tiers(findings)


def _rank_tiers(findings: list[Finding]) -> list[Finding]:
    ranked: list[Finding] = []
    for tier in range(len(ROLE_ORDER)):
        members = [f for f in findings if _tier(f) == tier]
        if tier == 0:
            # A cause with no symptom of its own (a config smell) never outranks one that explains a strong
            # symptom, whatever its severity: the symptom is what the user sees, the smell only a suspicion.
            ranked.extend(_rank_causes([f for f in members if f.own_symptom]))
            ranked.extend(_rank_causes([f for f in members if not f.own_symptom]))
        else:
            # Only a visible cause explains symptoms; latent ones and consequences are ordered plainly.
            ranked.extend(sorted(members, key=_base_key))
    return ranked


def _describe(finding: Finding) -> str:
    return f"{finding.cause} ({finding.severity.label}, confidence {finding.confidence:.2f})"


def _why_lower(alt: Finding, ranked_above: Sequence[Finding], top: Finding) -> str:
    if alt.latent:
        return (f"latent: {top.cause} masks its symptom in this run, but the config guarantees it once "
                f"{top.cause} is fixed, so the combined fix changes both")
    if alt.role == "consequence" and top.role != "consequence":
        return f"a consequence, not a cause: it follows from {top.cause} and ranks below every cause"
    if not alt.own_symptom and top.own_symptom:
        shown = ", ".join(top.symptoms) or "the symptoms seen"
        return (f"no symptom of its own (a config suspicion), so it ranks below {top.cause}, which explains "
                f"{shown}")
    missed = [s for s in top.symptoms if s not in alt.symptoms]
    if alt.against:
        return f"counts against it: {'; '.join(alt.against)}"
    if missed and alt.score is not None:
        return f"does not explain {', '.join(missed)}, which {top.cause} explains"
    explainer = next((f for f in ranked_above if alt.cause in f.explains and f.role == "cause"), None)
    if explainer is not None:
        alone = " alone" if explainer is top else ""
        despite = f", so it ranks below it although {alt.severity.label}" if alt.severity > explainer.severity else ""
        return f"{explainer.cause}{alone} explains the same symptoms{despite}"
    if alt.severity < top.severity:
        return f"less severe than {top.cause} ({top.severity.label})"
    if alt.specificity < top.specificity:
        return f"less specific than {top.cause} ({alt.specificity} vs {top.specificity} conditions)"
    if alt.confidence < top.confidence:
        return f"less confident than {top.cause} ({alt.confidence:.2f} vs {top.confidence:.2f})"
    return f"ties with {top.cause} and ranks second by rule id"


def _sentence(head: str, reason: str | None, why: str) -> str:
    reason = (reason or "").strip().rstrip(".")
    return f"{head}: {reason}; {why}." if reason else f"{head}: {why}."


def differential(ranked: Sequence[Finding], considered_not_fired: Sequence[Considered] = ()) -> tuple[str, ...]:
    """One sentence per alternative cause: why it ranks below the top finding.

    ``ranked`` must come from :func:`rank`. Each cause appears once (its best finding); causes that
    also fired are not repeated from ``considered_not_fired``.
    """
    sentences: list[str] = []
    top = ranked[0] if ranked else None
    seen = {top.cause} if top else set()
    for position, alt in enumerate(ranked[1:], start=1):
        if alt.cause in seen:
            continue
        seen.add(alt.cause)
        sentences.append(_sentence(_describe(alt), alt.ruled_out, _why_lower(alt, ranked[:position], top)))
    for item in considered_not_fired:
        if item.cause in seen:
            continue
        seen.add(item.cause)
        why = "its rule's conditions did not hold"
        if top is not None and item.cause in top.explains:
            why = f"{top.cause} explains these symptoms"
        head = f"{item.cause} (fired, outweighed)" if item.outweighed else f"{item.cause} (considered, did not fire)"
        sentences.append(_sentence(head, item.reason, why))
    return tuple(sentences)


def combined_fix(
    ranked: Sequence[Finding], render_command: Callable[[Mapping[str, Any]], str | None] | None = None,
) -> Fix | None:
    """The top cause's fix merged with every latent cause's fix; None without a latent fix.

    Applying only the top fix would give a second failed run, so the merged change is what to run. On a
    key both set, the higher-ranked finding wins. ``render_command`` turns the merged args into the
    train.py line (the caller owns the run's command line; this module stays free of the engine).
    """
    if not ranked:
        return None
    latent = [f for f in ranked if f.latent and f.fix is not None]
    if not latent:
        return None
    parts = ([ranked[0]] if ranked[0].fix is not None and not ranked[0].latent else []) + latent
    args: dict[str, Any] = {}
    for finding in parts:
        for key, value in finding.fix.args.items():
            args.setdefault(key, value)
    causes = " + ".join(dict.fromkeys(f.cause for f in parts))
    command = render_command(args) if render_command is not None else None
    safety = "recipe-change" if any(f.fix.safety == "recipe-change" for f in parts) else "safe"
    return Fix(args=args, command=command, note=f"fixes {causes} together", safety=safety)


def unexplained(ranked: Sequence[Finding], symptoms: Sequence[Symptom]) -> tuple[UnexplainedSymptom, ...]:
    """Every symptom at warning or above that no reported finding explains, with its candidate causes
    (those whose rule did not fire: a fired cause that does not claim the symptom is no candidate for it)."""
    explained = {s for f in ranked for s in f.symptoms}
    fired_causes = {f.cause for f in ranked}
    out = []
    for symptom in symptoms:
        if not symptom.weighs or symptom.id in explained:
            continue
        candidates = tuple(c for c in symptom.candidates if c not in fired_causes) or symptom.candidates
        out.append(UnexplainedSymptom(symptom, candidates))
    return tuple(out)


def _merged_strength(symptom_ids: Sequence[str], group: Sequence[Finding], symptoms: Sequence[Symptom]) -> float:
    # The summed strength of the union of the symptoms the group explains, each counted once; without the
    # symptom records (a caller that passes none), the best single finding's.
    by_id = {s.id: s for s in symptoms}
    if symptom_ids and all(s in by_id for s in symptom_ids):
        return weighing_strength(by_id[s] for s in symptom_ids)
    return max(f.strength for f in group)


def _merge(group: Sequence[Finding], symptoms: Sequence[Symptom]) -> Finding:
    """One finding for one cause from every rule that named it (``group`` best first: see ``merge_by_cause``).

    - Evidence: the union, the best-ranked rule's lines first, each line once.
    - Confidence and score: the best rule's (the maximum), not a combination as if independent: the rules of
      one cause read the same curves and config, so a second rule restates the evidence rather than adding to it.
    - Severity: the highest any of them states on its own evidence.
    - Fix: one fix, the leading rule's (the next one's when it has none): two fixes for one cause would
      ask the user to choose between readings of the same evidence.
    - Symptoms, explained causes and epochs: the union.
    """
    if len(group) == 1:
        return group[0]
    best = group[0]
    lines = list(dict.fromkeys(e for f in group for e in f.evidence))
    symptom_ids = tuple(dict.fromkeys(s for f in group for s in f.symptoms))
    spans = [f.epochs for f in group if f.epochs is not None]
    facts = {k: v for f in reversed(group) for k, v in f.facts.items()}
    scores = [f.score for f in group if f.score is not None]
    return replace(
        best,
        severity=max(f.severity for f in group),
        confidence=max(f.confidence for f in group),
        evidence=tuple(lines),
        epochs=(min(e[0] for e in spans), max(e[1] for e in spans)) if spans else None,
        fix=next((f.fix for f in group if f.fix is not None), None),
        specificity=max(f.specificity for f in group),
        explains=tuple(dict.fromkeys(c for f in group for c in f.explains)),
        ruled_out=next((f.ruled_out for f in group if f.ruled_out), None),
        facts=facts,
        symptoms=symptom_ids,
        strength=_merged_strength(symptom_ids, group, symptoms),
        score=max(scores) if scores else None,
        own_symptom=any(f.own_symptom for f in group),
        against=tuple(dict.fromkeys(a for f in group for a in f.against)),
        rules=tuple(f.rule_id for f in group),
    )


def merge_by_cause(findings: Iterable[Finding], symptoms: Sequence[Symptom] = ()) -> list[Finding]:
    """One finding per cause and role (issue 13): several rules may name one cause from different evidence
    (``ema-lag`` from the update count, ``ema-lag-symptoms`` from the curves; three readings of an LR too
    high). The user gets one finding with the union of their evidence and one fix (see ``_merge``). A latent
    and a visible finding of one cause stay apart (``make_ranking`` drops the latent one)."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for finding in findings:
        groups.setdefault((finding.cause, finding.role), []).append(finding)
    # The most specific rule (most conditions) leads: its title, fix and id are tailored to more of this run's
    # facts than a generic reading of the curves; between equally specific rules, the rank order decides.
    return [_merge(sorted(group, key=lambda f: (-f.specificity, _base_key(f))), symptoms) for group in groups.values()]


def make_ranking(findings: Iterable[Finding], considered: Sequence[Considered] = (),
                 symptoms: Sequence[Symptom] = ()) -> Ranking:
    """Rank findings and explain the alternatives.

    A latent finding whose cause also fired visibly is dropped: the cause is then plain to see, not latent.
    The combined fix carries args only; the pipeline renders its command line with the run's own.
    Symptoms at warning or above that no finding explains are listed as unexplained (issue 13: no strong
    symptom goes unreported). Findings that name the same cause are merged first (``merge_by_cause``).
    """
    findings = merge_by_cause(findings, symptoms)
    visible = {f.cause for f in findings if not f.latent}
    ranked = rank(f for f in findings if not (f.latent and f.cause in visible))
    fired = {f.rule_id for f in ranked}
    not_fired = [c for c in considered if c.rule_id not in fired]
    return Ranking(findings=tuple(ranked), differential=differential(ranked, not_fired), considered=tuple(not_fired),
                   combined_fix=combined_fix(ranked), unexplained=unexplained(ranked, symptoms))


# ----------------------------------------------------------------------------------------------
# JSON


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, tuples as lists, non-finite floats as null."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else list(value)
        return [_jsonable(v) for v in items]
    return str(value)


def ref_json(ref: EvidenceRef) -> dict[str, Any]:
    """``{"file", "line" | "record", "epochs"}``: the structured form of one citation."""
    out: dict[str, Any] = {"file": ref.file}
    if ref.line is not None:
        out["line"] = int(ref.line)
    elif ref.record is not None:
        out["record"] = int(ref.record)
    out["epochs"] = [int(ref.epochs[0]), int(ref.epochs[1])] if ref.epochs else None
    return out


def evidence_json(evidence: Evidence) -> dict[str, Any]:
    return {"text": evidence.text, "refs": [ref_json(r) for r in evidence.refs]}


def symptom_json(item: UnexplainedSymptom) -> dict[str, Any]:
    """The JSON shape of an unexplained symptom (schema 1.2)."""
    symptom = item.symptom
    return {
        "symptom_id": symptom.id,
        "title": symptom.title,
        "severity": symptom.severity.label,
        "strength": round(float(symptom.strength), 3),
        "epochs": [int(symptom.epochs[0]), int(symptom.epochs[1])] if symptom.epochs else None,
        "evidence": [evidence_json(e) for e in symptom.evidence],
        "candidates": list(item.candidates),
        "tell_apart": symptom.tell_apart or None,
    }


def to_json_dict(finding: Finding) -> dict[str, Any]:
    """The stable JSON shape of one finding (keys and types are part of the output contract)."""
    return {
        "rule_id": finding.rule_id,
        "cause": finding.cause,
        "severity": finding.severity.label,
        "confidence": round(float(finding.confidence), 3),
        "title": finding.title,
        "evidence": [evidence_json(e) for e in finding.evidence],
        "epochs": [int(finding.epochs[0]), int(finding.epochs[1])] if finding.epochs else None,
        "role": finding.role,
        "latent": finding.latent,
        "facts": _jsonable(dict(finding.facts)),
        "symptoms": list(finding.symptoms),
        "score": None if finding.score is None else round(float(finding.score), 3),
        "rules": list(finding.rules or (finding.rule_id,)),
        "fix": (
            {"args": _jsonable(dict(finding.fix.args)), "command": finding.fix.command,
             "note": finding.fix.note or None, "safety": finding.fix.safety}
            if finding.fix is not None
            else None
        ),
    }


__all__ = [
    "Considered",
    "Evidence",
    "EvidenceRef",
    "Finding",
    "Fix",
    "ROLE_ORDER",
    "Ranking",
    "Severity",
    "Symptom",
    "UnexplainedSymptom",
    "combined_fix",
    "differential",
    "evidence_json",
    "make_ranking",
    "merge_by_cause",
    "rank",
    "ref_json",
    "to_json_dict",
    "unexplained",
    "symptom_json",
    "weighing_strength",
]
