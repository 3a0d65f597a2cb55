"""The feature namespace rules are written against: ``config.*``, ``derived.*``, ``series.<metric>.*``, ``events.*``.

Built once per run from the normalized Run, the detection result and the derived quantities.
The names (README "Writing rules" lists them for users):

- ``config.<arg>``: the value timm used for any train.py argument (effective value from the log
  first, then args.yaml, then timm's default); ``config.source``; ``config.source_of('<arg>')``.
- ``derived.<field>``: every field of ``features.derived.Derived`` (documented there) plus
  ``lr_reference``, ``lr_ratio``, ``ln_classes``, ``run_dir``, ``first_epoch``, ``log_present`` (a console
  log was read), ``config_present`` (an args.yaml or wandb config was read), ``num_classes_confidence`` (1.0 when stated, lower when inferred from the curves),
  ``ema_half_share_updates`` (updates until half of the initial weights left the EMA), ``train_loss_floor``
  (the lowest train loss label smoothing allows) and the functions
  ``ema_share_at(epoch)``, ``updates_at(epoch)`` and ``timm_at_least('0.9.16')`` (True / False / n/a).
- ``series.<metric>.<attr>``: :data:`SERIES_ATTRIBUTES` of any epoch column (``train_loss``,
  ``eval_top1``, ``eval_top1_model``, ``eval_top1_ema``, ``lr``, TensorBoard tags ...).
- ``events.<attr>``: :data:`EVENT_ATTRIBUTES`: counts of resume/crash/oom/... events and the
  run-level patterns ``incomplete``, ``generalization_gap``, ``ema_gap``, ``schedule``.

:func:`is_known_name` lets the rule loader reject typos before a rule ever runs.

A value that does not exist for this run (no EMA, no eval column, no stall) is :data:`MISSING`:
it is falsy, compares False with everything, and renders as ``n/a``. So a rule such as
``series.eval_top1.stall.length >= 3`` is simply false on a run without a stall, instead of an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.detect import Detection
from mnv4_postmortem.analyzer.detect.metrics import chance_value, diff_noise
from mnv4_postmortem.analyzer.detect.series import STEP_PREFIX
from mnv4_postmortem.analyzer.features.derived import Derived
from mnv4_postmortem.analyzer.features.names import (  # the names rules may use: declared in names.py, light
    EVENT_ATTRIBUTES,
    ROOTS,
    SERIES_ATTRIBUTES,
    is_known_name,
)
from mnv4_postmortem.analyzer.timm.version import TimmVersion
from mnv4_postmortem.analyzer.model import Run


class _Missing:
    """A value that is not there. Falsy, never equal, never ordered, absorbs arithmetic."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return other is self

    def __ne__(self, other: object) -> bool:
        return other is not self

    def __hash__(self) -> int:
        return 0

    def _false(self, other: object) -> bool:
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _false

    def _absorb(self, *args: object) -> "_Missing":
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _absorb
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = __neg__ = __abs__ = __round__ = _absorb

    def __getattr__(self, name: str) -> "_Missing":
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __call__(self, *args: object, **kwargs: object) -> "_Missing":
        return self

    def __float__(self) -> float:
        return math.nan

    def __len__(self) -> int:
        return 0

    def __iter__(self):
        return iter(())

    def __str__(self) -> str:
        return "n/a"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return "n/a"


MISSING = _Missing()


def _value(x: Any) -> Any:
    """numpy scalars to Python, NaN kept, None to MISSING."""
    if x is None:
        return MISSING
    if isinstance(x, np.generic):
        return x.item()
    return x


class Record:
    """Attribute access over a mapping (or a dataclass); unknown attributes are MISSING."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]):
        object.__setattr__(self, "_data", dict(data))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _value(self._data.get(name))

    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self._data.items() if not isinstance(v, (list, tuple, Record)))


def record_of(obj: Any) -> Any:
    """Wrap dataclasses (recursively) so rules can use dot access; None becomes MISSING."""
    if obj is None:
        return MISSING
    if is_dataclass(obj) and not isinstance(obj, type):
        data = {f.name: getattr(obj, f.name) for f in fields(obj)}
        data = {k: record_of(v) if is_dataclass(v) else v for k, v in data.items()}
        return _DataclassRecord(data, obj)
    return obj


class _DataclassRecord(Record):
    """A Record that also forwards method calls (e.g. ``derived.ema.init_weight_after(k)``)."""

    __slots__ = ("_obj",)

    def __init__(self, data: Mapping[str, Any], obj: Any):
        super().__init__(data)
        object.__setattr__(self, "_obj", obj)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._data:
            return _value(self._data[name])
        attr = getattr(self._obj, name, None)
        return MISSING if attr is None else attr


# ----------------------------------------------------------------------------- config


class ConfigView:
    """``config.<key>``: the value timm used (effective first, then args.yaml, then timm's default)."""

    __slots__ = ("_config",)

    def __init__(self, config):
        object.__setattr__(self, "_config", config)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "source":
            return str(self._config.source) if self._config.source else "args.yaml (absent)"
        value = self._config.get(name)
        if value is None or value == "":
            return MISSING
        return value

    def source_of(self, name: str) -> str:
        """Where a setting came from: the log line that showed it, args.yaml, or timm's default."""
        config = self._config
        if name in config.effective_sources:
            return str(config.effective_sources[name])
        if name in config.defaulted:
            return "timm default"
        return str(config.source) if config.source else "unknown"


# ----------------------------------------------------------------------------- series


class SeriesView:
    """``series.<metric>``: one epoch-level metric with its detected segments and patterns."""

    def __init__(self, name: str, values: pd.Series, detection: Detection, run: Run):
        self.name = name
        self._values = values
        finite = values[np.isfinite(values.to_numpy(dtype="float64"))]
        self._finite = finite
        self.present = bool(len(finite))
        self.n = int(len(values))
        self.first = _value(float(finite.iloc[0])) if len(finite) else MISSING
        self.last = _value(float(finite.iloc[-1])) if len(finite) else MISSING
        self.min = _value(float(finite.min())) if len(finite) else MISSING
        self.max = _value(float(finite.max())) if len(finite) else MISSING
        self.first_epoch = int(values.index[0]) if len(values) else MISSING
        self.last_epoch = int(values.index[-1]) if len(values) else MISSING
        self.argmin_epoch = int(finite.idxmin()) if len(finite) else MISSING
        self.argmax_epoch = int(finite.idxmax()) if len(finite) else MISSING
        self.segments = tuple(record_of(s) for s in detection.segments.get(name, ()))
        self.first_segment = self.segments[0] if self.segments else MISSING
        self.last_segment = self.segments[-1] if self.segments else MISSING
        stalls = [s for s in detection.stalls if s.metric == name]
        self.stall = record_of(max(stalls, key=lambda s: s.length)) if stalls else MISSING
        leading = [s for s in stalls if len(values) and s.first_epoch == int(values.index[0])]
        self.leading_stall = record_of(leading[0]) if leading else MISSING
        chance = [c for c in detection.chance if c.metric == name]
        self.chance = record_of(chance[0]) if chance else MISSING
        # A run with no epoch-level series of this metric but a step-level one (TensorBoard steps whose
        # epochs are unknown) still shows its divergence and explosions: those of the step series.
        own = {name} if len(values) else {name, STEP_PREFIX + name}
        nonfinite = [x for x in detection.nonfinite if x.metric in own]
        self.nonfinite = record_of(nonfinite[0]) if nonfinite else MISSING
        explosions = [x for x in detection.explosions if x.metric in own]
        self.explosion = record_of(explosions[0]) if explosions else MISSING
        self.spikes = sum(1 for s in detection.spikes if s.metric == name)
        at_chance = [c for c in chance]
        self.chance_epochs = sum(c.length for c in at_chance)
        self.chance_fraction = self.chance_epochs / len(values) if len(values) else MISSING
        end = [c for c in at_chance if len(values) and c.last_epoch == int(values.index[-1])]
        self.chance_at_end = record_of(end[0]) if end else MISSING
        self.rel_drop = self.rel_drop_between(self.first_epoch, self.last_epoch)
        self.gain = self.change_between(self.first_epoch, self.last_epoch)
        self._refs = run.epoch_refs[name] if name in run.epoch_refs.columns else None
        self.leading_flat = self._leading_flat(detection)
        # The series' own point noise (robust, from first differences) over its second half, where the level a
        # symptom judges has settled (the first epochs' transients are trend, not noise); margins scale with it.
        settled = finite.iloc[len(finite) // 2:] if len(finite) >= 6 else finite
        self.noise = _value(diff_noise(settled.to_numpy(dtype="float64"))) if len(settled) >= 3 else MISSING

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return MISSING

    def __bool__(self) -> bool:
        return self.present

    def _leading_flat(self, detection: Detection) -> Any:
        """The window from the first epoch in which the metric does not move: consecutive segments labelled
        plateau or collapsed, an exact stall, or chance level, whichever reaches furthest."""
        if not self.present:
            return MISSING
        start = int(self._values.index[0])
        last = None
        kind = None
        for segment in detection.segments.get(self.name, ()):
            if segment.label not in ("plateau", "collapsed"):
                break
            last, kind = int(segment.x_last), segment.label
        for stall in detection.stalls:
            if stall.metric == self.name and stall.first_epoch <= start + 1 and (last is None or stall.last_epoch > last):
                last, kind = stall.last_epoch, "exact stall"
        for chance in detection.chance:
            if chance.metric == self.name and chance.first_epoch == start and (last is None or chance.last_epoch > last):
                last, kind = chance.last_epoch, "chance level"
        if last is None:
            return MISSING
        window = self._window(start, last)
        return Record({
            "first_epoch": start, "last_epoch": last, "length": last - start + 1, "kind": kind,
            "epochs": (start, last), "mean": float(window.mean()) if len(window) else None,
            "min": float(window.min()) if len(window) else None, "max": float(window.max()) if len(window) else None,
            "reaches_end": last >= int(self._values.index[-1]), "refs": self.refs_between(start, last),
        })

    def refs_between(self, first: Any, last: Any) -> tuple:
        """Where the values of [first, last] were read (for ``cite()``)."""
        refs = getattr(self, "_refs", None)
        if refs is None:
            return ()
        try:
            lo, hi = int(first), int(last)
        except (TypeError, ValueError):
            return ()
        part = refs.loc[(refs.index >= lo) & (refs.index <= hi)]
        return tuple(r for r in part if r is not None and not (isinstance(r, float) and math.isnan(r)))

    @property
    def refs(self) -> tuple:
        return self.refs_between(self.first_epoch, self.last_epoch) if self.present else ()

    def at(self, epoch: Any) -> Any:
        """Value at an epoch (MISSING when absent or non-finite)."""
        try:
            value = float(self._values.loc[int(epoch)])
        except (KeyError, TypeError, ValueError):
            return MISSING
        return value if math.isfinite(value) else MISSING

    def mean_between(self, first: Any, last: Any) -> Any:
        part = self._window(first, last)
        return float(part.mean()) if len(part) else MISSING

    def change_between(self, first: Any, last: Any) -> Any:
        """Value at the end minus value at the start of [first, last] (finite values only)."""
        part = self._window(first, last)
        return float(part.iloc[-1] - part.iloc[0]) if len(part) >= 2 else MISSING

    def rel_drop_between(self, first: Any, last: Any) -> Any:
        """Relative decrease (start - end) / |start| over [first, last]; positive means it fell."""
        part = self._window(first, last)
        if len(part) < 2 or part.iloc[0] == 0:
            return MISSING
        return float((part.iloc[0] - part.iloc[-1]) / abs(part.iloc[0]))

    def fraction_below(self, threshold: Any) -> Any:
        if not self.present or threshold is MISSING:
            return MISSING
        return float((self._finite < float(threshold)).mean())

    def _window(self, first: Any, last: Any) -> pd.Series:
        try:
            lo, hi = int(first), int(last)
        except (TypeError, ValueError):
            return self._finite.iloc[0:0]
        return self._finite.loc[(self._finite.index >= lo) & (self._finite.index <= hi)]


class SeriesNamespace:
    """``series.<metric>``; a metric the run does not have is an empty view (``present`` false)."""

    def __init__(self, run: Run, detection: Detection):
        self._run = run
        self._detection = detection
        self._cache: dict[str, SeriesView] = {}

    def __getattr__(self, name: str) -> SeriesView:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._cache:
            self._cache[name] = SeriesView(name, self._run.series(name).astype("float64"), self._detection, self._run)
        return self._cache[name]


# ----------------------------------------------------------------------------- events


def events_record(run: Run, detection: Detection) -> Record:
    counts = {kind: 0 for kind in ("resume", "truncated", "crash", "oom", "nonfinite", "warning", "skipped_eval")}
    for event in run.events:
        if event.kind in counts:
            counts[event.kind] += 1
    crash = next((e for e in run.events if e.kind in ("crash", "oom")), None)
    data: dict[str, Any] = dict(counts)
    data["last_crash"] = crash.message if crash else None
    data["last_crash_ref"] = str(crash.source) if crash else None
    data["incomplete"] = record_of(detection.incomplete)
    data["generalization_gap"] = record_of(detection.gap)
    data["ema_gap"] = record_of(detection.ema_gap)
    data["schedule"] = record_of(detection.schedule)
    data["issues"] = len(run.issues)
    data["gradients"] = gradients_record(detection.gradients)
    return Record(data)


def gradients_record(facts: Any) -> Any:
    """``events.gradients``: ``explosion``, ``vanishing`` (the global norm's, else the first group's),
    ``weak_group`` (the weakest), ``weak_groups`` (how many), ``groups`` (count) and ``median``."""
    if facts is None:
        return MISSING
    return Record({
        "present": True,
        "points": facts.points,
        "median": facts.global_median,
        "groups": len(facts.groups),
        "explosion": record_of(facts.explosion),
        "vanishing": record_of(facts.vanishing[0]) if facts.vanishing else None,
        "weak_group": record_of(facts.weak_groups[0]) if facts.weak_groups else None,
        "weak_groups": len(facts.weak_groups),
        "weak_group_names": ", ".join(w.group for w in facts.weak_groups),
    })


# ----------------------------------------------------------------------------- namespace


@dataclass(frozen=True, slots=True, eq=False)
class Namespace:
    config: ConfigView
    derived: Any
    series: SeriesNamespace
    events: Record

    def as_names(self) -> dict[str, Any]:
        return {"config": self.config, "derived": self.derived, "series": self.series, "events": self.events}


# Typical base LR per REFERENCE_BATCH samples by optimizer family, and how timm scales it with batch size.
# Used only to express an LR as "N x typical" in evidence and in lr-too-high/-too-low rules.
# The batch the base LRs below are quoted for: the convention of timm's lr_base / lr_base_size pair.
REFERENCE_BATCH = 256
LR_REFERENCE: tuple[tuple[tuple[str, ...], float, str], ...] = (
    (("lamb", "lars"), 2e-3, "sqrt"),
    (("adam", "nadam", "radam", "lion", "adabelief", "adafactor", "adan", "adopt"), 1e-3, "sqrt"),
    (("rmsprop",), 0.016, "linear"),
    (("sgd", "momentum", "nesterov"), 0.1, "linear"),
)


def lr_reference(opt: Any, global_batch: Any) -> float | None:
    """A typical LR for this optimizer at this global batch (timm's own lr_base scaling rules); None for an
    optimizer of no known family (``opt`` as the run used it: ``TrainConfig.or_default("opt")``)."""
    if not isinstance(global_batch, (int, float)) or global_batch <= 0:
        return None
    name = str(opt or "").lower()
    for families, base, scaling in LR_REFERENCE:
        if any(f in name for f in families):
            ratio = global_batch / REFERENCE_BATCH
            return base * (math.sqrt(ratio) if scaling == "sqrt" else ratio)
    return None


def derived_record(run: Run, derived: Derived) -> Any:
    record = record_of(derived)
    reference = lr_reference(run.config.or_default("opt"), derived.global_batch)
    shares = tuple(derived.ema_init_share_by_epoch)
    first_epoch = int(run.epochs.index.min()) if len(run.epochs) else 0

    def ema_share_at(epoch: Any) -> Any:
        """Share of the initial weights inside the EMA at the end of ``epoch``."""
        try:
            index = int(epoch)
        except (TypeError, ValueError):
            return MISSING
        return shares[index] if 0 <= index < len(shares) else MISSING

    def timm_at_least(version: Any) -> Any:
        """True when every timm version the ingest allows is >= ``version``, False when every one is below,
        MISSING when unknown or when the range straddles it (a rule then decides on other evidence)."""
        version_range = TimmVersion.parse(derived.timm_version)
        try:
            wanted = tuple(int(p) for p in str(version).split("."))
        except ValueError:
            return MISSING
        if version_range is None:
            return MISSING
        if version_range.at_least(wanted):
            return True
        if version_range.below(wanted):
            return False
        return MISSING

    def updates_at(epoch: Any) -> Any:
        """Optimizer updates done by the end of ``epoch``."""
        if not derived.updates_per_epoch:
            return MISSING
        try:
            return (int(epoch) + 1) * int(derived.updates_per_epoch)
        except (TypeError, ValueError):
            return MISSING

    ema = derived.ema
    half_updates = ema.updates_until_share(0.5) if ema is not None else None
    extra = {
        "timm_at_least": timm_at_least,
        "log_present": any(info.kind == "console_log" for info in run.sources),
        # how each accuracy series was read (percent or fraction of 1) and why: ingest/units.py
        "accuracy_units": run.config.effective_sources.get("accuracy_units") or MISSING,
        "config_present": run.config.source is not None,
        "num_classes_confidence": _num_classes_confidence(run),
        "ema_half_share_updates": half_updates,
        "train_loss_floor": _train_loss_floor(run.config.get("smoothing"), derived.num_classes),
        "lr_reference": reference,
        "lr_ratio": (derived.lr / reference) if (reference and derived.lr) else None,
        "ema_share_at": ema_share_at,
        "updates_at": updates_at,
        "first_epoch": first_epoch,
        "run_dir": str(run.run_dir),
        "ln_classes": chance_value("train_loss", derived.num_classes),  # the loss of a uniform guesser
    }
    record._data.update(extra)
    return record


def _train_loss_floor(smoothing: Any, num_classes: Any) -> float | None:
    """Lowest train loss label smoothing allows: the entropy of the smoothed target distribution.

    timm's LabelSmoothingCrossEntropy puts 1 - eps + eps/C on the true class and eps/C on every other one, so a
    model that fits the train set perfectly still scores this much (eps 0.1, C 10: 0.50). 0.0 without smoothing.
    Mixup and cutmix raise the floor further by an amount the config cannot tell, so it stays a lower bound.
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        return None
    try:
        eps = float(smoothing or 0.0)
    except (TypeError, ValueError):
        return None
    if not 0.0 < eps < 1.0:
        return 0.0
    true, other = 1.0 - eps + eps / num_classes, eps / num_classes
    return -(true * math.log(true) + (num_classes - 1) * other * math.log(other))


def _num_classes_confidence(run: Run) -> float | None:
    """1.0 when num_classes was stated (log or args.yaml); the inference's own confidence when inferred."""
    if not run.config.get("num_classes"):
        return None
    resolved = run.recipe.num_classes
    return float(resolved.confidence) if resolved is not None else 1.0


def build_namespace(run: Run, detection: Detection, derived: Derived) -> Namespace:
    return Namespace(
        config=ConfigView(run.config),
        derived=derived_record(run, derived),
        series=SeriesNamespace(run, detection),
        events=events_record(run, detection),
    )


