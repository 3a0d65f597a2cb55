"""What a run's files let the analyzer judge: the coverage statement every report carries.

Computed once, from the normalized Run, before the Diagnosis is assembled (``pipeline.diagnose``);
renderers only show it. It says

- which series were read, with their epoch (or step) spans and the files they came from: train loss,
  eval loss, top-1, top-5, LR, step-level train loss, and the model's and the EMA's eval side by side;
- which config facts were known and where from (args.yaml, a console-log line, timm's default), and
  which settings files were kept as "other config" (another trainer's keys, not timm's arguments);
- which checks (one per catalog cause) could run on that, and for those that could not, what was
  missing ("EMA lag: cannot be judged, no eval curve");
- whether the run can be judged at all (:attr:`Coverage.judgeable`) and, when not, what would be needed.

The principle of "judgeable" (:data:`JUDGEABLE_PRINCIPLE`): the main symptom checks (no learning, LR
too high or too low, overfitting, EMA lag, broken eval) all ask how a curve moves over the run, so a
run is judged only when it has a train or eval curve over at least ``MIN_POINTS`` epochs, the least
a trend can be judged on (``detect.segments.MIN_SIZE``: a line through two points has no residual).
Without that, "no rule fired" means nothing, and the outcome is "nothing to judge" (``outcome.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from mnv4_postmortem.analyzer.detect.segments import MIN_SIZE
from mnv4_postmortem.analyzer.model import Run

MIN_POINTS = MIN_SIZE

JUDGEABLE_PRINCIPLE = (
    f"a run is judged when it has a train or eval curve over at least {MIN_POINTS} epochs: the main symptom "
    "checks ask how a curve moves, and fewer points show no trend"
)

# The series the coverage reports, in display order: (name, label, epoch-frame columns, any of which counts).
EPOCH_SERIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("train_loss", "train loss", ("train_loss",)),
    ("eval_loss", "eval loss", ("eval_loss",)),
    ("eval_top1", "eval top-1", ("eval_top1",)),
    ("eval_top5", "eval top-5", ("eval_top5",)),
    ("lr", "LR", ("lr",)),
)
STEP_SERIES = ("step_loss", "step loss")
MODEL_VS_EMA = ("model_vs_ema", "model vs EMA eval", ("eval_top1_model", "eval_top1_ema"))
EVAL_COLUMNS = ("eval_top1", "eval_loss", "eval_top5", "eval_top1_model", "eval_top1_ema", "eval_loss_model",
                "eval_loss_ema")

# Config facts the checks read, in display order: (label, keys looked up through TrainConfig.get, any counts).
CONFIG_FACTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("model", ("model",)),
    ("num_classes", ("num_classes",)),
    ("input size", ("input_size", "img_size")),
    ("batch size", ("batch_size",)),
    ("optimizer", ("opt",)),
    ("lr", ("lr",)),
    ("schedule", ("sched",)),
    ("epochs", ("epochs",)),
    ("warmup epochs", ("warmup_epochs",)),
    ("model_ema", ("model_ema",)),
    ("model_ema_decay", ("model_ema_decay",)),
    ("model_ema_warmup", ("model_ema_warmup",)),
    ("drop_path", ("drop_path",)),
    ("mixup", ("mixup",)),
    ("smoothing", ("smoothing",)),
    ("pretrained", ("pretrained", "pretrained_path")),
)


@dataclass(frozen=True, slots=True)
class SeriesSpan:
    name: str                    # train_loss, eval_loss, eval_top1, eval_top5, lr, step_loss, model_vs_ema
    label: str
    axis: str                    # "epoch" or "step"
    points: int                  # finite values (steps: logged steps)
    first: int | None = None     # first and last epoch with a value (steps: the epochs they fall in, if known)
    last: int | None = None
    sources: tuple[str, ...] = ()

    @property
    def present(self) -> bool:
        return self.points > 0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "axis": self.axis, "present": self.present,
                "points": self.points, "first": self.first, "last": self.last, "sources": list(self.sources)}


@dataclass(frozen=True, slots=True)
class ConfigFact:
    label: str
    key: str | None              # the key that answered (None: unknown)
    source: str | None           # where it came from (TrainConfig.origin); None: unknown

    @property
    def known(self) -> bool:
        return self.key is not None

    def as_dict(self) -> dict[str, Any]:
        return {"fact": self.label, "key": self.key, "known": self.known, "source": self.source}


@dataclass(frozen=True, slots=True)
class OtherConfig:
    path: str
    keys: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "keys": list(self.keys)}


@dataclass(frozen=True, slots=True)
class CheckCoverage:
    check: str                   # the catalog cause the check is about
    label: str
    missing: tuple[str, ...]     # what it lacked; empty: it could run

    @property
    def can_run(self) -> bool:
        return not self.missing

    def sentence(self) -> str:
        return f"{self.label}: " + ("could run" if self.can_run else "cannot be judged, " + "; ".join(self.missing))

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "label": self.label, "can_run": self.can_run, "missing": list(self.missing)}


@dataclass(frozen=True, slots=True)
class Coverage:
    series: tuple[SeriesSpan, ...]
    config: tuple[ConfigFact, ...]
    config_files: tuple[str, ...]        # the files timm's settings were read from (args.yaml, a log)
    other_config: tuple[OtherConfig, ...]
    checks: tuple[CheckCoverage, ...]
    judgeable: bool
    needed: str | None                   # what would let the run be judged (None when it can be)
    principle: str = JUDGEABLE_PRINCIPLE

    def series_named(self, name: str) -> SeriesSpan | None:
        return next((s for s in self.series if s.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "judgeable": self.judgeable,
            "principle": self.principle,
            "needed": self.needed,
            "series": [s.as_dict() for s in self.series],
            "config": [c.as_dict() for c in self.config],
            "config_files": list(self.config_files),
            "other_config": [o.as_dict() for o in self.other_config],
            "checks": [c.as_dict() for c in self.checks],
        }


def coverage_of(run: Run) -> Coverage:
    """The coverage statement of ``run``: what was read, and what the checks could do with it."""
    finite = _FiniteEpochs(run)
    series = (*(_epoch_series(run, finite, *spec) for spec in EPOCH_SERIES), _step_series(run),
              _model_vs_ema(run, finite))
    config = tuple(_config_fact(run, label, keys) for label, keys in CONFIG_FACTS)
    evidence = _Evidence.of(run, finite, {s.name: s for s in series}, {c.label: c for c in config})
    checks = tuple(CheckCoverage(cause, label, tuple(why for test, why in needs if not test(evidence)))
                   for cause, label, needs in CHECKS)
    judgeable = evidence.train_curve or evidence.eval_curve
    other = tuple(OtherConfig(s.path, s.config_keys) for s in run.sources if s.config_keys)
    return Coverage(
        series=series,
        config=config,
        config_files=_config_files(run, config),
        other_config=other,
        checks=checks,
        judgeable=judgeable,
        needed=None if judgeable else _needed(run, series, other),
    )


# ------------------------------------------------------------------------------------------------ series


class _FiniteEpochs:
    """Epoch column -> the epochs with a finite value, each column converted once (the series, the
    model-vs-EMA pair and the checks' evidence all ask; batch computes it for many runs)."""

    def __init__(self, run: Run):
        self._epochs = run.epochs
        self._index: dict[str, list[int]] = {}

    def __contains__(self, column: str) -> bool:
        return column in self._epochs.columns

    def __getitem__(self, column: str) -> list[int]:
        if column not in self._index:
            values = self._epochs[column]
            self._index[column] = [int(epoch) for epoch in values.index[_finite_mask(values)]]
        return self._index[column]


def _epoch_series(run: Run, finite: _FiniteEpochs, name: str, label: str, columns: tuple[str, ...]) -> SeriesSpan:
    column = next((c for c in columns if c in finite and finite[c]), None)
    if column is None:
        return SeriesSpan(name, label, "epoch", 0)
    index = finite[column]
    return SeriesSpan(name, label, "epoch", len(index), min(index), max(index), _epoch_sources(run, column, index))


def _finite_mask(values: Any) -> np.ndarray:
    import pandas as pd

    return np.isfinite(pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64"))


def _epoch_sources(run: Run, column: str, index: list[int]) -> tuple[str, ...]:
    if column not in run.epoch_refs.columns:
        return ()
    refs = run.epoch_refs[column]
    # the refs of the listed epochs, looked up at once (a long run has thousands of epochs)
    files = {str(getattr(ref, "path", "")) for ref in refs[refs.index.isin(index)].tolist()}
    return tuple(sorted(f for f in files if f))


def _step_series(run: Run) -> SeriesSpan:
    name, label = STEP_SERIES
    steps = run.steps
    if steps is None or steps.empty or "train_loss" not in steps.columns:
        return SeriesSpan(name, label, "step", 0)
    logged = steps[_finite_mask(steps["train_loss"])]
    if logged.empty:
        return SeriesSpan(name, label, "step", 0)
    epochs = logged["epoch"][_finite_mask(logged["epoch"])] if "epoch" in logged.columns else logged.iloc[0:0, 0]
    files = tuple(sorted(str(f) for f in logged["src_file"].dropna().unique())) if "src_file" in logged.columns else ()
    return SeriesSpan(name, label, "step", len(logged), int(epochs.min()) if len(epochs) else None,
                      int(epochs.max()) if len(epochs) else None, files)


def _model_vs_ema(run: Run, finite: _FiniteEpochs) -> SeriesSpan:
    name, label, columns = MODEL_VS_EMA
    spans = [_epoch_series(run, finite, c, c, (c,)) for c in columns]
    if not all(s.present for s in spans):
        return SeriesSpan(name, label, "epoch", 0)
    both = sorted(set(finite[columns[0]]) & set(finite[columns[1]]))
    if not both:
        return SeriesSpan(name, label, "epoch", 0)
    return SeriesSpan(name, label, "epoch", len(both), both[0], both[-1],
                      tuple(sorted({f for s in spans for f in s.sources})))


# ------------------------------------------------------------------------------------------------ config


NOT_SET = " (not set)"


def _config_fact(run: Run, label: str, keys: tuple[str, ...]) -> ConfigFact:
    """Known with its origin; a key the config holds without a value (``drop_path: null``) is known too:
    the setting was off."""
    config = run.config
    for key in keys:
        source = config.origin(key)
        if source is not None:
            return ConfigFact(label, key, source)
    for key in keys:
        if key in config.values:
            where = "timm default (not in args.yaml)" if key in config.defaulted else (
                config.source.path if config.source else "args.yaml")
            return ConfigFact(label, key, where + NOT_SET)
    return ConfigFact(label, None, None)


def _config_files(run: Run, config: tuple[ConfigFact, ...]) -> tuple[str, ...]:
    """The run's files the known facts came from (``train.log:6`` -> train.log); timm's defaults and values
    derived from other facts ("args.yaml lr") name no file of their own."""
    read = {s.path for s in run.sources}
    files = {run.config.source.path} if run.config.source is not None and run.config.args else set()
    for fact in config:
        where = str(fact.source or "").removesuffix(NOT_SET)
        cited = _CITED_LINE.match(where)
        if cited and cited.group(1) in read:
            files.add(cited.group(1))
        elif where in read:
            files.add(where)
    return tuple(sorted(files))


_CITED_LINE = re.compile(r"^(.+):(\d+)$")


# ------------------------------------------------------------------------------------------------ checks


@dataclass(frozen=True, slots=True)
class _Evidence:
    """What the checks' requirements are stated in (one flag per kind of evidence)."""

    train_curve: bool          # train loss over >= MIN_POINTS epochs (epoch values, or logged steps spanning them)
    eval_curve: bool           # an eval metric over >= MIN_POINTS epochs
    any_values: bool           # any loss or accuracy value at all (a NaN shows in one point)
    lr_known: bool             # configured or logged LR
    ema_known: bool            # whether an EMA was evaluated, and its decay
    recipe_known: bool         # timm's arguments were read (args.yaml, wandb config, an excerpt's command line)
    schedule_known: bool       # the scheduled number of epochs
    input_known: bool          # model and input size
    pretrained_known: bool
    startup_log: bool          # a console log (its start-up lines say what was loaded)

    @classmethod
    def of(cls, run: Run, finite: _FiniteEpochs, series: Mapping[str, SeriesSpan],
           config: Mapping[str, ConfigFact]) -> _Evidence:
        step = series["step_loss"]
        step_epochs = (step.last - step.first + 1) if step.first is not None and step.last is not None else None
        step_curve = step.points >= MIN_POINTS and (step_epochs is None or step_epochs >= MIN_POINTS)
        evals = [len(finite[c]) for c in EVAL_COLUMNS if c in finite]
        return cls(
            train_curve=series["train_loss"].points >= MIN_POINTS or step_curve,
            eval_curve=max(evals, default=0) >= MIN_POINTS,
            any_values=any(s.present for s in series.values() if s.name != "lr"),
            lr_known=config["lr"].known or series["lr"].present,
            ema_known=config["model_ema"].known,
            recipe_known=bool(run.config.args),
            schedule_known=run.epochs_scheduled is not None or config["epochs"].known,
            input_known=config["model"].known and config["input size"].known,
            pretrained_known=config["pretrained"].known,
            startup_log=any(s.kind == "console_log" for s in run.sources),
        )


_Need = tuple[Callable[[_Evidence], bool], str]
_TRAIN: _Need = (lambda e: e.train_curve, f"no train-loss curve over {MIN_POINTS}+ epochs")
_EVAL: _Need = (lambda e: e.eval_curve, f"no eval curve over {MIN_POINTS}+ epochs")
_CURVE: _Need = (lambda e: e.train_curve or e.eval_curve, f"no train or eval curve over {MIN_POINTS}+ epochs")
_RECIPE: _Need = (lambda e: e.recipe_known, "timm's arguments unknown (no args.yaml)")

# One check per catalog cause (engine.schema.CAUSES; a test keeps them in step) and the evidence it needs.
# What a rule then makes of that evidence is the rule's business; this only says whether it had any.
CHECKS: tuple[tuple[str, str, tuple[_Need, ...]], ...] = (
    ("ema-lag", "EMA lag", (_EVAL, (lambda e: e.ema_known, "EMA settings unknown"))),
    ("lr-too-high", "LR too high", (_CURVE,)),
    ("lr-too-low", "LR too low", (_TRAIN, (lambda e: e.lr_known, "LR unknown"))),
    ("warmup-too-long", "warmup too long", (_CURVE, _RECIPE)),
    ("divergence", "divergence", ((lambda e: e.any_values, "no loss or accuracy values"),)),
    ("over-regularization", "over-regularization", (_TRAIN, _RECIPE)),
    ("input-size-mismatch", "input-size mismatch", ((lambda e: e.input_known, "model or input size unknown"),)),
    ("overfitting", "overfitting", (_TRAIN, _EVAL)),
    ("eval-broken", "broken eval", (_EVAL,)),
    ("no-learning", "no learning", (_CURVE,)),
    ("incomplete-run", "incomplete run", ((lambda e: e.any_values, "no epochs logged"),
                                          (lambda e: e.schedule_known, "scheduled epochs unknown"))),
    ("wasted-epochs", "wasted epochs", (_EVAL,)),
    ("pretrained-not-loaded", "pretrained weights not loaded",
     ((lambda e: e.pretrained_known, "pretrained setting unknown"),
      (lambda e: e.startup_log, "no console log (its start-up lines say what was loaded)"))),
)


# ------------------------------------------------------------------------------------------------ needed


def _needed(run: Run, series: tuple[SeriesSpan, ...], other: tuple[OtherConfig, ...]) -> str:
    """What would let the run be judged, in the user's terms (the files timm writes)."""
    longer = f"a summary.csv or console log that covers at least {MIN_POINTS} epochs"
    epochs = [s for s in series if s.axis == "epoch" and s.present and s.name != "lr"]
    step = next(s for s in series if s.name == "step_loss")
    if epochs:
        longest = max(epochs, key=lambda s: s.points)
        have, want = f"only {longest.points} epoch(s) of {longest.label} were logged", longer
    elif step.present:
        where = f" within epoch {step.first}" if step.first is not None and step.first == step.last else ""
        have, want = f"only {step.points} logged step(s){where}; the run ended before an epoch's values", longer
    elif any(s.kind == "console_log" for s in run.sources):
        have, want = "the console log ends before any epoch's values (start-up lines only)", longer
    else:
        have = "no training curve was found"
        want = (f"a train or eval curve over at least {MIN_POINTS} epochs: summary.csv or the console log of the "
                "run (or TensorBoard event files with scalars)")
    if other:
        names = ", ".join(o.path for o in other)
        have += f"; {names} holds settings only, not timm's train.py arguments"
    return f"{have}. Needed: {want}."


__all__ = [
    "CHECKS",
    "CONFIG_FACTS",
    "JUDGEABLE_PRINCIPLE",
    "MIN_POINTS",
    "CheckCoverage",
    "ConfigFact",
    "Coverage",
    "OtherConfig",
    "SeriesSpan",
    "coverage_of",
]
