"""How much of the starting weights an EMA copy of the model still holds.

timm validates the EMA copy instead of the model when ``--model-ema`` is on (and ``--model-ema-force-cpu``
is off), and reports *those* numbers in summary.csv. A slow EMA over a short run therefore looks like a
model that never learned: its weights are still mostly the initial ones. This module turns timm's EMA
settings into that one number, the **initial share**, for any number of optimizer updates.

timm's update rules (reference: timm-formats.md §10):

* ``ModelEma`` / ``ModelEmaV2`` (timm <= 0.9.12, version ``"v1v2-constant"``): every optimizer update
  does ``ema = decay * ema + (1 - decay) * model`` with a constant decay. The EMA starts as a copy of
  the initial model, so after ``k`` updates the initial weights' share is ``decay ** k``.
* ``ModelEmaV3`` (timm >= 0.9.16, version ``"v3"``): called with ``step = num_updates`` (1-based). The
  first update uses decay 0, i.e. the EMA becomes a copy of the model after one optimizer step (still
  essentially the initial weights). Later updates use ``decay`` or, with ``--model-ema-warmup``,
  ``d(s) = max(min(1 - (1 + s) ** (-2/3), decay), 0)`` with ``s = step - 1``.

"Initial share" is the weight the EMA gives the starting weights (random or pretrained); the rest is
spread over the weights the model passed through during training. It is the product of the decays
applied since the EMA last *was* the starting weights. The numbers are exact (log-sums in float64),
except that the warmup product beyond 65,536 updates uses a closed-form integral (error < 1e-9).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from mnv4_postmortem.analyzer.model import Run, as_number
from mnv4_postmortem.analyzer.timm.trainers import reports_ema_eval
from mnv4_postmortem.analyzer.timm.version import TimmVersion

EmaVersion = Literal["v1v2-constant", "v3"]

# timm's ModelEmaV3 warmup: decay(s) = 1 - (1 + s/gamma) ** -power, with gamma = 1 and power = 2/3
# as train.py constructs it (timm-formats.md §10).
_WARMUP_POWER = 2.0 / 3.0

# Below this many warmup terms the product is summed term by term; above it the remaining terms are
# smooth enough (f'(s) < 1e-7) that the midpoint rule on the closed-form antiderivative is exact to ~1e-9.
_EXACT_WARMUP_TERMS = 1 << 16

# ModelEmaV3 (and --model-ema-warmup) arrived in timm 0.9.16 (commits dd84ef2c / bee0471f).
_V3_SINCE = (0, 9, 16)

# args.yaml keys that timm >= 0.9.16 always writes and older versions never did (timm-formats.md §9).
_V3_ARGS_MARKERS = ("model_ema_warmup", "pretrained_path")


@dataclass(frozen=True, slots=True)
class EmaModel:
    """timm's EMA settings for one run, and what they imply.

    Attributes:
        decay: ``--model-ema-decay`` (timm's default 0.9998). With warmup, the cap the decay grows to.
        warmup: ``--model-ema-warmup`` (timm >= 0.9.16 only): the decay ramps up as ``1 - (1+s)^(-2/3)``.
        version: ``"v1v2-constant"`` (ModelEma/ModelEmaV2, timm <= 0.9.12: constant decay from the first
            update) or ``"v3"`` (ModelEmaV3, timm >= 0.9.16: the EMA copies the model on the first update).
        version_source: how ``version`` was decided (``"given"``, ``"timm version"``, ``"args.yaml keys"``,
            ``"warmup flag"``, ``"assumed current timm"``).
        horizon: ``1 / (1 - decay)`` updates: the EMA's averaging window at full decay (``inf`` at decay 1).
        half_life: updates for the initial weights' share to halve at constant ``decay``:
            ``ln 2 / -ln(decay)`` (0.9998 -> 3,465.4; 0.9999 -> 6,931.1, so the share first drops below one
            half after 3,466 / 6,932 constant-decay updates: see :meth:`updates_until_share`).
    """

    decay: float
    warmup: bool = False
    version: EmaVersion = "v3"
    version_source: str = "given"
    horizon: float = field(init=False)
    half_life: float = field(init=False)

    def __post_init__(self) -> None:
        if not (0.0 <= self.decay <= 1.0):  # also rejects NaN
            raise ValueError(f"EMA decay must be in [0, 1], got {self.decay!r}")
        if self.version not in ("v1v2-constant", "v3"):
            raise ValueError(f"unknown EMA version {self.version!r}")
        if self.warmup and self.version != "v3":
            # --model-ema-warmup exists only with ModelEmaV3; a warmup flag means timm >= 0.9.16.
            raise ValueError("EMA warmup exists only in ModelEmaV3 (timm >= 0.9.16)")
        object.__setattr__(self, "horizon", math.inf if self.decay >= 1.0 else 1.0 / (1.0 - self.decay))
        object.__setattr__(self, "half_life", _half_life(self.decay))

    # ---------------------------------------------------------------- per-update decay

    def decay_at_update(self, step: int) -> float:
        """The decay timm applies at optimizer update ``step`` (1-based, timm's ``num_updates``).

        v1/v2: ``decay`` for every step. v3: 0 at step 1 (copy), then ``decay``, or with warmup
        ``max(min(1 - (1 + s)^(-2/3), decay), 0)`` with ``s = step - 1`` (s=1 -> 0.370, s=1000 -> 0.990).
        """
        step = _check_count(step, "step")
        if step < 1:
            raise ValueError("EMA updates are numbered from 1")
        if self.version == "v1v2-constant":
            return self.decay
        s = step - 1
        if s <= 0:
            return 0.0
        if not self.warmup:
            return self.decay
        return max(min(1.0 - (1.0 + s) ** -_WARMUP_POWER, self.decay), 0.0)

    # ---------------------------------------------------------------- initial share

    def init_weight_after(self, updates: int) -> float:
        """Share of the initial weights still inside the EMA after ``updates`` optimizer updates.

        * v1/v2 (constant decay): ``decay ** k``.
        * v3 without warmup: 1 for k = 0, else ``decay ** (k - 1)``: the first update *replaces* the EMA
          by the model after one optimizer step, which counts as the initial weights (one small step
          away from them), and every later update keeps ``decay`` of it.
        * v3 with warmup: ``prod_{s=1}^{k-1} d(s)``, ``d(s) = max(min(1 - (1+s)^(-2/3), decay), 0)``:
          the product of the decays applied since that first-update copy (an empty product is 1).

        Monotone non-increasing in ``updates``; 1.0 at 0 updates.
        """
        return float(self.init_weight_after_many([updates])[0])

    def init_weight_after_many(self, updates: Sequence[int] | np.ndarray) -> np.ndarray:
        """Vectorised :meth:`init_weight_after` (one pass, however many counts are asked for)."""
        return np.exp(self._log_share(_as_counts(updates)))

    def updates_until_share(self, share: float) -> int | None:
        """Fewest updates after which the initial share is *below* ``share``; None if it never gets there.

        The exact inverse of :meth:`init_weight_after`: for the result ``k``,
        ``init_weight_after(k) < share <= init_weight_after(k - 1)``. ``share > 1`` gives 0; ``share <= 0``
        gives None (a share is never negative), as does a decay of 1 without warmup (the EMA never moves).
        """
        if math.isnan(share):
            raise ValueError("share must be a number")
        if share > 1.0:
            return 0
        if share <= 0.0:
            return None
        target = math.log(share)
        if self._log_share_one(1) < target:
            return 1
        # Exponential search for an upper bound, then bisection: the log-share is non-increasing.
        lo, hi = 1, 2
        while self._log_share_one(hi) >= target:
            lo, hi = hi, hi * 2
            if hi > 1 << 62:
                return None
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._log_share_one(mid) < target:
                hi = mid
            else:
                lo = mid
        return hi

    # ---------------------------------------------------------------- internals

    def _log_share_one(self, k: int) -> float:
        return float(self._log_share(np.asarray([k], dtype=np.int64))[0])

    def _log_share(self, k: np.ndarray) -> np.ndarray:
        """Natural log of the initial share after ``k`` updates (``-inf`` once a decay of 0 applied)."""
        log_decay = _safe_log(self.decay)
        if self.version == "v1v2-constant":
            return _times(k.astype(np.float64), log_decay)
        # v3: the first update copies the model, so only updates 2..k decay the initial weights.
        decayed_updates = np.maximum(k - 1, 0)
        if not self.warmup:
            return _times(decayed_updates.astype(np.float64), log_decay)
        return _warmup_log_sum(decayed_updates, self.decay)  # sum_{s=1}^{k-1} log d(s)


def _half_life(decay: float) -> float:
    if decay >= 1.0:
        return math.inf
    if decay <= 0.0:
        return 0.0
    return math.log(2.0) / -math.log(decay)


def _safe_log(x: float) -> float:
    return -math.inf if x <= 0.0 else math.log(x)


def _times(n: np.ndarray, log_value: float) -> np.ndarray:
    """``n * log_value`` with 0 * -inf = 0 (no update applied yet means nothing decayed)."""
    with np.errstate(invalid="ignore"):
        out = n * log_value
    return np.where(n == 0, 0.0, out)


def _as_counts(updates: Sequence[int] | np.ndarray) -> np.ndarray:
    """Update counts as int64, rejecting negatives, fractions, NaN and booleans."""
    counts = np.asarray(updates)
    if counts.size == 0:
        return counts.astype(np.int64)
    numeric = np.issubdtype(counts.dtype, np.integer) or np.issubdtype(counts.dtype, np.floating)
    if counts.dtype == np.bool_ or not numeric:
        raise ValueError("update counts must be whole numbers >= 0")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts != np.floor(counts)):
        raise ValueError("update counts must be whole numbers >= 0")
    return counts.astype(np.int64)


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


# ------------------------------------------------------------------ warmup product


def _warmup_last_capped_term(decay: float) -> float:
    """Largest ``s`` whose warmup decay ``1 - (1+s)^(-2/3)`` is still below ``decay`` (inf if never).

    From there on every term equals ``decay``: 0.9998 -> s ~ 353,552, 0.9999 -> s ~ 999,999.
    """
    if decay >= 1.0:
        return math.inf
    if decay <= 1.0 - 2.0 ** -_WARMUP_POWER:  # d(1) = 0.370 already reaches the cap
        return 0.0
    s = math.ceil((1.0 - decay) ** (-1.0 / _WARMUP_POWER) - 1.0) + 1
    # Fix the floating-point guess against the exact inequality.
    while s >= 1 and 1.0 - (1.0 + s) ** -_WARMUP_POWER >= decay:
        s -= 1
    while 1.0 - (2.0 + s) ** -_WARMUP_POWER < decay:
        s += 1
    return float(s)


def _warmup_antiderivative(x: np.ndarray) -> np.ndarray:
    """An antiderivative of ``f(x) = log(1 - (1+x)^(-2/3))``.

    With ``t = (1+x)^(1/3)`` the integral of ``3 t^2 log(1 - t^-2) dt`` is elementary:
    ``t^3 log(1 - t^-2) + log((t+1)/(t-1)) - 2t`` (differentiate to check).
    """
    t = np.cbrt(1.0 + x)
    return t**3 * np.log1p(-1.0 / t**2) + np.log1p(2.0 / (t - 1.0)) - 2.0 * t


def _warmup_log_sum(n: np.ndarray, decay: float) -> np.ndarray:
    """``sum_{s=1}^{n} log d(s)`` for each ``n`` (an array of counts >= 0)."""
    n = np.asarray(n, dtype=np.int64)
    out = np.zeros(n.shape, dtype=np.float64)
    if n.size == 0 or n.max() == 0:
        return out
    s_cap = _warmup_last_capped_term(decay)  # terms 1..s_cap follow the ramp, later ones equal decay
    ramp_n = np.minimum(n, s_cap).astype(np.int64) if math.isfinite(s_cap) else n

    exact_terms = int(min(ramp_n.max(), _EXACT_WARMUP_TERMS))
    if exact_terms > 0:
        s = np.arange(1, exact_terms + 1, dtype=np.float64)
        prefix = np.concatenate(([0.0], np.cumsum(np.log1p(-((1.0 + s) ** -_WARMUP_POWER)))))
        out += prefix[np.minimum(ramp_n, exact_terms)]

    beyond = ramp_n > _EXACT_WARMUP_TERMS
    if np.any(beyond):
        # Midpoint rule: sum_{s=a}^{b} f(s) ~ F(b + 1/2) - F(a - 1/2), error ~ (f'(b) - f'(a))/24 < 1e-9.
        a = _EXACT_WARMUP_TERMS + 1
        b = ramp_n[beyond].astype(np.float64)
        out[beyond] += _warmup_antiderivative(b + 0.5) - _warmup_antiderivative(np.array([a - 0.5]))

    if math.isfinite(s_cap):
        out += _times(np.maximum(n - s_cap, 0).astype(np.float64), _safe_log(decay))
    return out


# ------------------------------------------------------------------ from a run


def ema_model_from(run: Run) -> EmaModel | None:
    """The EMA whose numbers the run reports, or None.

    None when ``model_ema`` is off, or when ``model_ema_force_cpu`` is on (timm then skips EMA
    validation and reports the raw model), or when the decay is unusable (not a number in [0, 1]).
    A missing decay is timm's default for the run's version; the EMA class comes from :func:`ema_version_for`.
    """
    cfg = run.config
    if not cfg.flag("model_ema") or cfg.flag("model_ema_force_cpu"):
        return None
    if not reports_ema_eval(getattr(run, "trainer", None)):
        # DeiT's main.py keeps an EMA but evaluates the raw model; ConvNeXt's evaluates both apart:
        # the reported eval is not the EMA's, so no EMA fact may be read as the eval's.
        return None
    # Only a missing decay takes timm's default; a junk value means the EMA cannot be described.
    decay = as_number(cfg.or_default("model_ema_decay"))
    if decay is None or not (0.0 <= decay <= 1.0):
        return None
    warmup = cfg.flag("model_ema_warmup")
    version, source = ema_version_for(run, warmup)
    return EmaModel(decay=decay, warmup=warmup, version=version, version_source=source)


def ema_version_for(run: Run, warmup: bool = False) -> tuple[EmaVersion, str]:
    """Which EMA class the run's timm used, and why we think so.

    In order: a warmup flag (only ModelEmaV3 has one) -> v3; a timm version guess entirely on one
    side of 0.9.16; args.yaml keys only timm >= 0.9.16 writes (``model_ema_warmup``, ``pretrained_path``),
    present -> v3, absent from a non-empty args.yaml -> v1/v2; otherwise assume current timm (v3).
    The two rules differ by one update, so a wrong guess barely moves the initial share.
    """
    if warmup:
        return "v3", "warmup flag"
    version = TimmVersion.parse(run.timm_version)
    if version is not None:
        if version.at_least(_V3_SINCE):
            return "v3", "timm version"
        if version.below(_V3_SINCE):
            return "v1v2-constant", "timm version"
    args = run.config.args
    if args:
        if any(key in args for key in _V3_ARGS_MARKERS):
            return "v3", "args.yaml keys"
        return "v1v2-constant", "args.yaml keys"
    return "v3", "assumed current timm"
