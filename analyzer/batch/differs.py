"""What differs: for each cause, the config values that separate the runs flagged with it from the others.

The question W&B's parameter importance and TensorBoard's HParams answer for accuracy, asked of causes.
Candidates are simple conditions on one setting (``model_ema=True``, ``lr>=0.4``) and conjunctions of two
(``model_ema=True and model_ema_warmup=False``). Each is scored by the simplest effect measure that reads as
counts: the share of flagged runs that meet it minus the share of the runs without that cause that do (a
risk difference in [-1, 1]; 1 means every flagged run and no other run). The reference group is every run
without the cause, not only the healthy ones, because near misses (EMA *with* warmup, flagged for something
else) are exactly the contrast that tells a cause's setting apart; the healthy runs' count is shown too.
A conjunction is kept only when it separates strictly better than each of its parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Callable, Iterable, Sequence

from mnv4_postmortem.analyzer.batch.rows import RunRow

MAX_ROWS_PER_CAUSE = 3
PAIR_POOL = 10           # single conditions combined pairwise: the best of those most flagged runs meet
PAIR_MIN_COVERAGE = 0.8  # a part of a conjunction must hold for most flagged runs, or the pair covers few
MIN_EFFECT = 0.25        # weaker separations are not worth a line
MAX_DISTINCT = 8         # a setting with more distinct values is only compared by thresholds


@dataclass(frozen=True, slots=True)
class Condition:
    text: str                                 # "model_ema=True"
    test: Callable[[dict[str, Any]], bool]
    keys: frozenset[str] = frozenset()        # the settings it reads
    parts: tuple["Condition", ...] = ()       # for a conjunction, its two conditions


@dataclass(frozen=True, slots=True)
class Difference:
    cause: str
    condition: str
    flagged_hits: int
    flagged: int
    other_hits: int           # runs without this cause that meet the condition
    other: int
    healthy_hits: int         # of those, the healthy runs (no finding at warning or above)
    healthy: int
    part_effect: float = 0.0  # mean effect of a conjunction's parts alone (tie-break: strong parts first)
    rule: Condition | None = field(default=None, compare=False)

    @property
    def effect(self) -> float:
        return self.flagged_hits / self.flagged - (self.other_hits / self.other if self.other else 0.0)

    def sentence(self) -> str:
        return (f"{self.cause}: {self.flagged_hits}/{self.flagged} flagged runs have {self.condition}; "
                f"{self.other_hits}/{self.other} runs without {self.cause} do "
                f"({self.healthy_hits}/{self.healthy} healthy ones); difference {self.effect:+.2f}")


def what_differs(rows: Iterable[RunRow]) -> list[Difference]:
    """The best few separating conditions per cause, strongest first within each cause."""
    # A run with nothing to judge says nothing about any cause (missing evidence counts neither for nor against).
    rows = [r for r in rows if r.error is None and not r.nothing_to_judge]
    causes = sorted({c for r in rows for c in r.causes()})
    out: list[Difference] = []
    for cause in causes:
        groups = _Groups(
            flagged=[r.config for r in rows if cause in r.causes()],
            other=[r.config for r in rows if cause not in r.causes()],
            healthy=[r.config for r in rows if r.healthy],
        )
        out.extend(_for_cause(cause, groups))
    return out


@dataclass(frozen=True, slots=True)
class _Groups:
    flagged: list[dict]
    other: list[dict]
    healthy: list[dict]


def _for_cause(cause: str, groups: _Groups) -> list[Difference]:
    singles = sorted((_score(cause, c, groups) for c in _conditions(groups.flagged + groups.other)), key=_rank)
    pool = [d for d in singles if d.flagged_hits >= PAIR_MIN_COVERAGE * d.flagged][:PAIR_POOL]
    pairs = []
    for a, b in combinations(pool, 2):
        if a.rule.keys & b.rule.keys:
            continue  # two conditions on one setting say one thing
        both = _score(cause, _and(a.rule, b.rule), groups, part_effect=(a.effect + b.effect) / 2)
        if both.effect > max(a.effect, b.effect) + 1e-9:
            pairs.append(both)
    chosen: list[Difference] = []
    seen: set[tuple] = set()
    for diff in _prefer_named_values(sorted(pairs + singles, key=_rank)):
        if diff.effect < MIN_EFFECT or len(chosen) >= MAX_ROWS_PER_CAUSE:
            break
        # Thresholds at 0.008 and at 0.0125 that split the runs identically are one finding, not two.
        signature = (diff.rule.keys, _hits(diff.rule, groups))
        if signature in seen:
            continue
        seen.add(signature)
        chosen.append(diff)
    return chosen


def _prefer_named_values(ranked: list[Difference]) -> list[Difference]:
    """A cut-off (``lr<=0.001``) is picked as the best of many candidate thresholds, so it wins ties by
    chance; a condition on named values (``model_ema_warmup=False``) is one candidate. When the best
    condition uses a cut-off and a condition without one separates within one run of the reference group
    (``1/other``), the latter leads."""
    if not ranked or not _has_cutoff(ranked[0]):
        return ranked
    tolerance = 1.0 / ranked[0].other + 1e-9 if ranked[0].other else 0.0
    named = next((d for d in ranked if not _has_cutoff(d) and ranked[0].effect - d.effect <= tolerance), None)
    return ranked if named is None else [named] + [d for d in ranked if d is not named]


def _has_cutoff(diff: Difference) -> bool:
    return ">=" in diff.condition or "<=" in diff.condition


def _rank(diff: Difference) -> tuple:
    # Strongest separation; then fewer terms; then strong parts; then equality before thresholds; then text.
    return (-round(diff.effect, 9), len(diff.rule.parts), -round(diff.part_effect, 9),
            diff.condition.count("=") - diff.condition.count(">=") - diff.condition.count("<=") < 1, diff.condition)


def _hits(cond: Condition, groups: _Groups) -> tuple:
    return tuple(map(cond.test, groups.flagged)) + tuple(map(cond.test, groups.other))


def _score(cause: str, cond: Condition, groups: _Groups, part_effect: float = 0.0) -> Difference:
    return Difference(
        cause, cond.text,
        sum(map(cond.test, groups.flagged)), len(groups.flagged),
        sum(map(cond.test, groups.other)), len(groups.other),
        sum(map(cond.test, groups.healthy)), len(groups.healthy),
        part_effect, cond,
    )


def _and(a: Condition, b: Condition) -> Condition:
    return Condition(f"{a.text} and {b.text}", lambda cfg: a.test(cfg) and b.test(cfg), a.keys | b.keys, (a, b))


def _conditions(configs: Sequence[dict]) -> list[Condition]:
    keys = sorted({k for cfg in configs for k in cfg})
    out: list[Condition] = []
    for key in keys:
        distinct = sorted({cfg[key] for cfg in configs if key in cfg}, key=repr)
        numeric = sorted(v for v in distinct if isinstance(v, (int, float)) and not isinstance(v, bool))
        if len(distinct) <= MAX_DISTINCT or len(numeric) < len(distinct):
            out.extend(_equals(key, v) for v in distinct)
        if len(numeric) > 2:
            out.extend(_at_least(key, v) for v in numeric[1:])
            out.extend(_at_most(key, v) for v in numeric[:-1])
    return out


def _equals(key: str, value: Any) -> Condition:
    # type-exact: True must not match 1, nor False match 0
    return Condition(f"{key}={value}", lambda cfg: key in cfg and type(cfg[key]) is type(value) and cfg[key] == value,
                     frozenset({key}))


def _at_least(key: str, value: float) -> Condition:
    return Condition(f"{key}>={value:g}", lambda cfg: _compare(cfg.get(key), value, 1), frozenset({key}))


def _at_most(key: str, value: float) -> Condition:
    return Condition(f"{key}<={value:g}", lambda cfg: _compare(cfg.get(key), value, -1), frozenset({key}))


def _compare(value: Any, bound: float, sign: int) -> bool:
    number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return number is not None and sign * (number - bound) >= 0
