"""Verdicts: does a finding hold up in a controlled re-run? (torch-free)

Per finding there is a control arm (the recipe as run, scaled) and a treatment arm (the finding's
fix applied, scaled the same way), K seeds each on the same data. The analyzer runs on every arm's
folder with its ordinary parsers. The target metric is the final epoch's eval top-1 *as reported*
(the EMA's when the EMA is evaluated, as in train.py's summary.csv).

Statistics, and why these (the metric: final eval top-1, treatment minus control, in points):

* **Paired t interval over seeds.** Arms of one seed share the data, the init and (for EMA-only fixes)
  the whole trajectory, so the per-seed difference is the unit of evidence; its mean gets a Student t
  95% interval with K-1 degrees of freedom. It covers seed-to-seed variation, but with K=2 it is
  ``t(0.975, 1) = 12.7`` standard errors wide: two seeds that agree within 10% of the effect are needed.
* **Paired bootstrap over eval samples** (stratified by seed: the same resampled image indices for
  both arms of a seed, 2000 resamples, percentile interval of the mean over seeds). It covers the
  finite validation set, i.e. the measurement, given these trained models; not seed variation.

Which one decides: both. "Confirmed" needs the seed-level criterion (the paired t interval over seeds
excludes 0) AND the sample-level one (the bootstrap interval excludes 0) at every K >= 2. The bootstrap
alone ignores seed-to-seed variance, so with it deciding at K = 2 a verdict flipped with the seed count
(confirmed at 2 seeds, inconclusive at 3, confirmed at 4 on one over-regularization run). Requiring both at
K = 2 makes the t interval (one degree of freedom, 12.7 standard errors wide) a wall for any effect whose
two seeds differ by more than ~15% of it (the seed case's lr-too-high, +59 and +38 points, would not pass),
so the CLI default is 3 seeds (``DEFAULT_SEEDS``; t(0.975, 2) = 4.3): 1.5x the training time of 2 seeds.
With K = 1 nothing is confirmed on the effect alone.

The proxy data can be too easy for a strong model: when both arms of every seed reach the ceiling
(``CEILING_TOP1``) the arms cannot be told apart, and the verdict says so (inconclusive) instead of
reading a 0-point difference as "the fix does not help".

Verdicts:

* **confirmed**: the finding fires in the control arm for every seed, fires in no treatment arm, every
  seed improves, and both 95% intervals (seed-level t, sample-level bootstrap) exclude 0;
* **refuted**: the fix does not help (every seed's difference <= 0), or the control does not reproduce
  the finding (no seed fires), or the fix does not remove it (every treatment seed still fires); every
  reason that holds is named, the fix's own effect first;
* **inconclusive**: anything else (mixed seeds, an interval that spans 0, one seed), with what would
  settle it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

SCHEMA = "mnv4-postmortem/verification"
SCHEMA_VERSION = "1.0"
CI_LEVEL = 0.95
BOOTSTRAP_SAMPLES = 2000
T_TEST = "paired Student t interval over seeds (treatment - control, df = K - 1)"
BOOTSTRAP_TEST = "paired bootstrap over eval samples, stratified by seed (2000 resamples; measurement noise)"
MIN_SEEDS_FOR_T = 3
DEFAULT_SEEDS = 3  # see the module docstring: the seed-level interval needs df >= 2 to confirm real effects
# A proxy arm at or above this top-1 has nothing left to gain: two arms both there are not separated by it.
CEILING_TOP1 = 98.0
REPORTED_METRIC = "eval_top1"

__all__ = ["SeedPair", "Effect", "Verdict", "paired_t", "paired_bootstrap", "decide", "SCHEMA", "SCHEMA_VERSION"]


@dataclass(frozen=True, slots=True)
class SeedPair:
    seed: int
    control_fired: bool
    treatment_fired: bool
    control_top1: float
    treatment_top1: float
    control_correct: Sequence[int] = ()
    treatment_correct: Sequence[int] = ()

    @property
    def diff(self) -> float:
        return self.treatment_top1 - self.control_top1


@dataclass(frozen=True, slots=True)
class Effect:
    mean: float
    diffs: tuple[float, ...]
    ci: tuple[float, float] | None      # paired t; None with fewer than 2 seeds
    bootstrap_ci: tuple[float, float] | None
    test: str = T_TEST
    bootstrap: str = BOOTSTRAP_TEST
    level: float = CI_LEVEL
    metric: str = REPORTED_METRIC   # eval_top1 (reported: the EMA's when evaluated) or eval_top1_model (raw)

    @property
    def decided_by(self) -> str:
        """``t+bootstrap`` with K >= 2 seeds (both must exclude 0; without eval samples, ``t``), ``none`` with one."""
        if len(self.diffs) < 2 or self.ci is None:
            return "none"
        return "t+bootstrap" if self.bootstrap_ci is not None else "t"

    @property
    def deciding_ci(self) -> tuple[float, float] | None:
        """Of the intervals that must both exclude 0, the one whose lower bound is nearer 0 (or below it)."""
        if self.decided_by == "none":
            return None
        if self.decided_by == "t":
            return self.ci
        return min(self.ci, self.bootstrap_ci, key=lambda ci: ci[0])

    def metric_text(self) -> str:
        what = "final eval top-1 (reported)" if self.metric == REPORTED_METRIC else "final eval top-1 of the raw model"
        return f"{what}, treatment - control, points"

    def to_json(self) -> dict[str, Any]:
        deciding = self.deciding_ci
        return {"metric": self.metric_text(),
                "mean_diff": _r(self.mean), "diffs": [_r(d) for d in self.diffs],
                "ci": [_r(x) for x in self.ci] if self.ci else None, "ci_level": self.level, "test": self.test,
                "bootstrap_ci": [_r(x) for x in self.bootstrap_ci] if self.bootstrap_ci else None,
                "bootstrap": self.bootstrap, "decided_by": self.decided_by,
                "deciding_ci": [_r(x) for x in deciding] if deciding else None,
                "deciding_test": {"t": self.test, "t+bootstrap": f"both: {self.test}; and {self.bootstrap} "
                                  "(confirming needs each to exclude 0; the interval shown is the one with the lower "
                                  "bound nearer 0)"}.get(self.decided_by, "none (one seed)")}


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: str              # confirmed | refuted | inconclusive
    reason: str
    settle: str = ""          # what would settle an inconclusive verdict
    effect: Effect | None = None
    checks: dict[str, str] = field(default_factory=dict)


def _r(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), 4)


def paired_t(diffs: Sequence[float], level: float = CI_LEVEL) -> tuple[float, float] | None:
    """Student t interval of the mean paired difference (None with fewer than 2 pairs)."""
    from scipy import stats

    values = np.asarray(diffs, dtype=float)
    if values.size < 2:
        return None
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, values.size - 1)) * sd / math.sqrt(values.size)
    return mean - half, mean + half


def paired_bootstrap(pairs: Sequence[SeedPair], level: float = CI_LEVEL, samples: int = BOOTSTRAP_SAMPLES,
                     seed: int = 0) -> tuple[float, float] | None:
    """Percentile interval of the mean (over seeds) accuracy difference, resampling eval images."""
    usable = [p for p in pairs if p.control_correct and len(p.control_correct) == len(p.treatment_correct)]
    if not usable:
        return None
    rng = np.random.default_rng(seed)
    totals = np.zeros(samples)
    for pair in usable:
        delta = (np.asarray(pair.treatment_correct, float) - np.asarray(pair.control_correct, float)) * 100.0
        index = rng.integers(0, delta.size, size=(samples, delta.size))
        totals += delta[index].mean(axis=1)
    totals /= len(usable)
    low, high = np.quantile(totals, [0.5 - level / 2, 0.5 + level / 2])
    return float(low), float(high)


def decide(pairs: Sequence[SeedPair], metric: str = REPORTED_METRIC) -> Verdict:
    """The verdict for one finding from its control/treatment pairs (one per seed)."""
    if not pairs:
        return Verdict("inconclusive", "no seed has both arms finished", "run it to the end (it was interrupted)")
    diffs = tuple(p.diff for p in pairs)
    effect = Effect(float(np.mean(diffs)), diffs, paired_t(diffs), paired_bootstrap(pairs), metric=metric)
    k = len(pairs)
    fired_c = sum(p.control_fired for p in pairs)
    fired_t = sum(p.treatment_fired for p in pairs)
    checks = {
        "reproduced": f"{fired_c}/{k} control seeds show the finding",
        "removed": f"{k - fired_t}/{k} treatment seeds are free of it",
        "improves": _improvement_text(effect),
    }
    saturated = all(min(p.control_top1, p.treatment_top1) >= CEILING_TOP1 for p in pairs)
    if saturated:
        checks["separable"] = f"no: both arms reach >= {CEILING_TOP1:g}% top-1 in every seed"
    # Every reason that refutes is given, the fix's own effect first: it tests the cause's claim directly.
    refuting = []
    if all(d <= 0 for d in diffs) and not saturated:
        refuting.append(f"the fix does not help: the target metric does not improve in any seed ({_diffs_text(diffs)})")
    if fired_c == 0:
        refuting.append("the control arm does not reproduce the finding (it fires in no seed)")
    if fired_t == k:
        refuting.append("the fix does not remove the finding (it still fires in every treatment seed)")
    if refuting:
        return Verdict("refuted", "; and ".join(refuting), "", effect, checks)
    if saturated:
        return Verdict("inconclusive", f"the proxy could not separate the arms: both reach >= {CEILING_TOP1:g}% top-1 in "
                       "every seed", "a harder task (real data with --data-dir, or a smaller --max-samples budget)",
                       effect, checks)
    if fired_c == k and fired_t == 0 and all(d > 0 for d in diffs) and _both_exclude_zero(effect):
        return Verdict("confirmed", "the finding fires in every control seed and in no treatment seed, every seed "
                       f"improves, and the improvement's 95% intervals exclude 0 ({_decided_text(effect)})", "",
                       effect, checks)
    return Verdict("inconclusive", _mixed_reason(fired_c, fired_t, k, effect), _settle(k, effect, fired_c, fired_t),
                   effect, checks)


def _both_exclude_zero(effect: Effect) -> bool:
    """Seed-level (paired t) and, when eval samples were recorded, sample-level (bootstrap) intervals."""
    if effect.decided_by == "none":
        return False
    intervals = [effect.ci] + ([effect.bootstrap_ci] if effect.decided_by == "t+bootstrap" else [])
    return all(ci[0] > 0 for ci in intervals)


def _diffs_text(diffs: Sequence[float]) -> str:
    return "per-seed differences " + ", ".join(f"{d:+.2f}" for d in diffs) + " points"


def _decided_text(effect: Effect) -> str:
    return {"t": "paired t over seeds", "t+bootstrap": "paired t over seeds and paired bootstrap over eval samples"}.get(
        effect.decided_by, "one seed")


def _improvement_text(effect: Effect) -> str:
    deciding = effect.deciding_ci
    if deciding is None:
        return f"{effect.mean:+.2f} points (one seed: no interval)"
    return f"{effect.mean:+.2f} points, 95% CI [{deciding[0]:+.2f}, {deciding[1]:+.2f}] ({_decided_text(effect)})"


def _mixed_reason(fired_c: int, fired_t: int, k: int, effect: Effect) -> str:
    parts = []
    if fired_c < k:
        parts.append(f"the control reproduces the finding in {fired_c}/{k} seeds")
    if fired_t > 0:
        parts.append(f"the treatment still shows it in {fired_t}/{k} seeds")
    if effect.decided_by == "none":
        parts.append("one seed gives no interval")
    else:
        for name, ci in (("seed-level (paired t)", effect.ci), ("sample-level (bootstrap)", effect.bootstrap_ci)):
            if ci is not None and ci[0] <= 0:
                parts.append(f"the {name} 95% interval [{ci[0]:+.2f}, {ci[1]:+.2f}] includes 0")
    if any(d <= 0 for d in effect.diffs) and any(d > 0 for d in effect.diffs):
        parts.append("the seeds disagree in sign")
    return "; ".join(parts) or "mixed results"


def _settle(k: int, effect: Effect, fired_c: int, fired_t: int) -> str:
    if effect.ci is not None and len(effect.diffs) >= 2:
        sd = float(np.std(effect.diffs, ddof=1))
        if effect.mean > 0 and sd > 0:
            from scipy import stats

            for n in range(k + 1, 51):
                if effect.mean - float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n) > 0:
                    return f"about {n} seeds (--seeds {n}) at this effect ({effect.mean:+.2f}) and spread (sd {sd:.2f})"
    if k < 2:
        return "at least 2 seeds (--seeds 2) for an interval"
    if fired_c < k or fired_t > 0:
        return "more seeds, or a budget closer to the original (--epochs, --max-samples), so the pattern settles"
    return "more seeds (--seeds 5) or a larger budget"
