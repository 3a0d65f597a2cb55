"""A reproduction's ``verification.json``, read back into typed records for ``report`` (stdlib only; no torch).

The runner (``mnv4-postmortem reproduce``) writes it; ``report RUN_DIR --verification DIR`` (or a
verification sitting in the default out folder, ``./mnv4-postmortem-repro/<run-name>/``) adds a
Verification section to the text, JSON and HTML outputs. The format (schema
``mnv4-postmortem/verification``, version 1.x) is specified by the JSON Schema shipped beside this module,
``analyzer/schema/verification-1.schema.json``; the records below are that schema as frozen dataclasses,
one class per object of the schema (``tests/test_verification_schema.py`` keeps the two in step):

* :class:`Verification`: ``run``, ``run_name``, ``created``, ``complete`` (every job finished),
  ``interrupted`` (Ctrl-C), ``seconds``, ``device``, ``launcher``, ``trainer`` (``built-in`` |
  ``train-script``), ``seeds``, ``metric`` (what the effect is measured on), ``spec``, ``findings``, ``skipped``;
* :class:`SpecRecord`: the scaled training spec: ``budget`` (original vs reproduction updates, epochs, batch,
  samples), ``init`` (kind, note, what the change of init means), ``entries`` (each setting with
  ``original``, ``value``, ``status`` kept | scaled | replaced, ``why``);
* :class:`VerifiedFinding`: ``finding``, ``cause``, ``rule_id``, ``fired_on_run``, ``patch`` (the fix),
  ``fix_command``, ``verdict`` (confirmed | refuted | inconclusive), ``reason``, ``settle`` (what would
  settle an inconclusive one), ``checks``, ``effect`` (:class:`Effect`: ``mean_diff``, per-seed ``diffs``,
  ``ci`` with ``ci_level`` and ``test``, ``bootstrap_ci`` with ``bootstrap``), ``arms`` (:class:`Arm`: control,
  treatment: each with ``args_changed_from_control``, ``ema`` (:class:`EmaRecord`: decay original/scaled,
  initial-weight share original / predicted / observed at the end) and ``seeds`` (:class:`ArmSeed`: folder,
  causes that fired, final top-1, curves));
* :class:`Skipped`: findings that could not be tested here, each with its ``reason``.

The reader checks every value against its record's type without a schema library (jsonschema is a
test dependency, not a run-time one). A file that is not a verification, or whose top-level fields are
unusable, raises :class:`VerificationError` naming the file and the field; a finding (or skipped entry)
with a bad value is left out with a warning naming its record (``findings[1].arms[0].seeds[0].final_top1``),
and the findings before and after it are kept. Only when no finding is left is the file unusable.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

SCHEMA = "mnv4-postmortem/verification"
SUPPORTED_MAJOR = "1"
FILE_NAME = "verification.json"
DEFAULT_OUT_ROOT = Path("mnv4-postmortem-repro")
# The JSON Schema of the format (package data); the records below mirror it.
SCHEMA_FILE = Path(__file__).with_name("schema") / "verification-1.schema.json"

__all__ = ["Verification", "VerificationError", "VerifiedFinding", "Arm", "ArmSeed", "ArmFinding", "Effect", "EmaRecord",
           "SpecRecord", "SpecEntryRecord", "BudgetRecord", "InitRecord", "Skipped", "load_verification",
           "parse_verification", "read_record", "record_json", "ArmsPlan", "PlannedFinding", "FILE_NAME", "DEFAULT_OUT_ROOT", "SCHEMA", "SCHEMA_FILE"]

Verdict = Literal["confirmed", "refuted", "inconclusive"]

# Marks a record field the reader fills itself (where the file is, which keys it had, what was left out):
# not a key of the file, so not in the schema.
NOT_IN_FILE = {"in_file": False}


class VerificationError(ValueError):
    """A verification.json that cannot be used; the message names the file."""


# ----------------------------------------------------------------------------------------- records
# Every field has a default except the ones the format requires, so a 1.x file written by an older or
# newer runner reads as far as its fields go. Numbers keep the int/float the file wrote (the report's JSON
# passes them on unchanged).

@dataclass(frozen=True, slots=True)
class BudgetRecord:
    """The original run's size and the reproduction's, in optimizer updates."""

    original_updates: int | None = None
    original_updates_per_epoch: int | None = None
    original_epochs: int | None = None
    original_batch: int | None = None
    original_train_samples: int | None = None
    updates: int | None = None
    updates_per_epoch: int | None = None
    epochs: int | None = None
    batch: int | None = None
    train_samples: int | None = None
    val_samples: int | None = None


@dataclass(frozen=True, slots=True)
class InitRecord:
    """Where the reproduction's weights start (pretrained-file, pretrained-hub, checkpoint or random)."""

    kind: str | None = None
    path: str | None = None
    note: str | None = None
    changes: str | None = None


@dataclass(frozen=True, slots=True)
class SpecEntryRecord:
    """One setting of the spec: its original and reproduction values, kept / scaled / replaced, and why."""

    name: str
    original: Any = None
    value: Any = None
    status: str | None = None
    why: str | None = None


@dataclass(frozen=True, slots=True)
class SpecRecord:
    """The scaled training spec the reproduction trained."""

    run: str | None = None
    timm_version: str | None = None
    era: str | None = None
    ema_version: str | None = None
    budget: BudgetRecord | None = None
    init: InitRecord | None = None
    data: str | None = None
    entries: tuple[SpecEntryRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class Effect:
    """The treatment - control difference in the finding's metric, with its intervals."""

    metric: str | None = None
    mean_diff: float | None = None
    diffs: tuple[float | None, ...] = ()
    ci: tuple[float | None, ...] | None = None
    ci_level: float | None = None
    test: str | None = None
    bootstrap_ci: tuple[float | None, ...] | None = None
    bootstrap: str | None = None
    decided_by: str | None = None
    deciding_ci: tuple[float | None, ...] | None = None
    deciding_test: str | None = None
    # the keys the file wrote, in its order: the report's JSON passes on exactly those
    present: tuple[str, ...] = field(default=(), compare=False, repr=False, metadata=NOT_IN_FILE)

    def as_json(self) -> dict[str, Any]:
        return {k: _plain(getattr(self, k)) for k in self.present}


@dataclass(frozen=True, slots=True)
class EmaRecord:
    """One arm's EMA: the decay before and after scaling and the initial-weight share at the end."""

    decay_original: Any = None          # as the recipe gave it (a number; a string if args.yaml had one)
    decay_scaled: float | None = None
    warmup: bool | None = None
    warmup_gamma: float | None = None
    share_original_end: float | None = None
    share_predicted_end: float | None = None
    share_observed_end: float | None = None
    why: str | None = None
    present: tuple[str, ...] = field(default=(), compare=False, repr=False, metadata=NOT_IN_FILE)

    def as_json(self) -> dict[str, Any]:
        return {k: _plain(getattr(self, k)) for k in self.present}


@dataclass(frozen=True, slots=True)
class ArmFinding:
    """A finding the analyzer reported on one arm's run."""

    rule_id: str | None = None
    cause: str | None = None
    severity: str | None = None
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class ArmSeed:
    """One seed of one arm: its folder, what fired there, the final accuracies and the curves."""

    seed: int | None = None
    dir: str | None = None
    fired: tuple[str, ...] | None = None
    findings: tuple[ArmFinding, ...] = ()
    final_top1: float | None = None
    final_top1_model: float | None = None
    curve: Mapping[str, tuple[float | None, ...]] = field(default_factory=dict)
    ema_share_observed: float | None = None
    seconds: float | None = None
    step_seconds: float | None = None

    def final(self, metric: str) -> float | None:
        """The final value of ``metric`` (eval_top1: the reported one; otherwise the raw model's)."""
        return self.final_top1 if metric == "eval_top1" else self.final_top1_model


@dataclass(frozen=True, slots=True)
class Arm:
    """The control or a treatment: its arguments, its EMA and its seeds."""

    name: str | None = None
    role: str | None = None
    args_changed_from_control: Mapping[str, Any] = field(default_factory=dict)
    ema: EmaRecord | None = None
    seeds: tuple[ArmSeed, ...] = ()
    entries: tuple[SpecEntryRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class VerifiedFinding:
    """One finding put to the test: the fix, the verdict and the numbers behind it."""

    verdict: Verdict
    finding: str | None = None
    cause: str | None = None
    rule_id: str | None = None
    title: str | None = None
    metric: str | None = None            # eval_top1 (reported) or eval_top1_model (the raw model's)
    fired_on_run: bool | None = None
    note: str | None = None
    patch: Mapping[str, Any] | None = None
    direction: str | None = None
    fix_command: str | None = None
    reason: str | None = None
    settle: str | None = None
    checks: Mapping[str, str] = field(default_factory=dict)
    effect: Effect | None = None
    seeds_finished: tuple[int, ...] = ()
    arms: tuple[Arm, ...] = ()
    init_changes: str | None = None

    @property
    def measured_on(self) -> str:
        """The metric the verdict is about (eval_top1 when the file does not say)."""
        return self.metric or "eval_top1"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A finding that could not be tested here, and why."""

    finding: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Verification:
    """A reproduction's verdicts, as its verification.json holds them."""

    path: Path = field(metadata=NOT_IN_FILE)
    schema_version: str
    run: str | None = None
    run_name: str | None = None
    created: str | None = None
    complete: bool = False
    interrupted: bool = False
    seconds: float | None = None
    device: str | None = None
    launcher: str | None = None
    trainer: str | None = None
    train_script: str | None = None
    seeds: tuple[int, ...] | None = None
    metric: str | None = None
    spec: SpecRecord | None = None
    findings: tuple[VerifiedFinding, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    batch_grid: str | None = None
    # records left out of a file that was otherwise usable, each named (the session adds them to the
    # diagnosis's warnings)
    warnings: tuple[str, ...] = field(default=(), compare=False, metadata=NOT_IN_FILE)


# ----------------------------------------------------------------------------------------- the plan
# What ``reproduce`` will train, shown before it trains (render/reproduce.py); not part of the file.

@dataclass(frozen=True, slots=True)
class PlannedFinding:
    """One finding to put to the test: its control and treatment arms, the fix, the treatment's settings."""

    finding: str
    fired_on_run: bool
    control: str                               # the arms' folder names
    treatment: str
    patch: Mapping[str, Any] | None = None
    direction: str | None = None
    entries: tuple[SpecEntryRecord, ...] = ()  # the treatment's spec entries


@dataclass(frozen=True, slots=True)
class ArmsPlan:
    """Every finding's arms, and what training them costs."""

    findings: tuple[PlannedFinding, ...]
    arms: int
    trajectories: int                          # arms that differ only in EMA settings share one
    seeds: int


# ----------------------------------------------------------------------------------------- reading

def load_verification(path: Path) -> Verification:
    """Read ``path`` (a verification.json, or the folder holding one) into typed records."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VerificationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise VerificationError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VerificationError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    return parse_verification(data, path)


def parse_verification(data: Any, path: Path) -> Verification:
    """The typed records of a parsed verification.json (``path`` names it in messages)."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise VerificationError(f"{path}: not a verification file (schema {SCHEMA!r} expected)")
    version = data.get("schema_version")
    if not isinstance(version, str) or version.split(".")[0] != SUPPORTED_MAJOR:
        raise VerificationError(f"{path}: schema_version {version!r} is not supported (1.x expected)")
    findings = data.get("findings")
    if not isinstance(findings, list):
        raise VerificationError(f"{path}: 'findings' must be a list of objects with a 'verdict'")
    warnings: list[str] = []
    kept = _records(VerifiedFinding, findings, "findings", path, warnings)
    if findings and not kept:
        raise VerificationError(f"{path}: no usable finding ({'; '.join(warnings)}); "
                                "'findings' must be a list of objects with a 'verdict'")
    skipped = data.get("skipped")
    kept_skipped = _records(Skipped, skipped, "skipped", path, warnings) if isinstance(skipped, list) else []
    if skipped is not None and not isinstance(skipped, list):
        warnings.append(f"{path}: skipped: expected a list, got {_kind(skipped)}; left out")
    top = {k: v for k, v in data.items() if k not in ("findings", "skipped")}
    try:
        fields = _fields_of(Verification, top, "")
    except _Bad as exc:
        raise VerificationError(f"{path}: {exc}") from None
    return Verification(path=path, **fields, findings=tuple(kept), skipped=tuple(kept_skipped),
                        warnings=tuple(warnings))


def read_record(cls: type, data: Any, where: str = "") -> Any:
    """``data`` (a JSON object) as the record ``cls``; ValueError naming the field when a value does not fit."""
    return _parse(cls, data, where or cls.__name__)


def record_json(record: Any) -> Any:
    """A record as JSON-ready values (the inverse of :func:`read_record` for what the file holds)."""
    return _plain(record)


def _records(cls: type, items: list[Any], name: str, path: Path, warnings: list[str]) -> list[Any]:
    """Each item of ``items`` as a ``cls``; a bad one is left out with a warning that names it."""
    kept = []
    for index, item in enumerate(items):
        try:
            kept.append(_parse(cls, item, f"{name}[{index}]"))
        except _Bad as exc:
            warnings.append(f"{path}: {name}[{index}] left out: {exc}")
    return kept


class _Bad(ValueError):
    """A value that does not fit its record's field: the message starts with where it is."""


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, vars(sys.modules[__name__]))
    return _HINTS[cls]


def _fields_of(cls: type, data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Keyword arguments for ``cls`` from ``data``: each known key checked against its field's type;
    unknown keys are ignored (a newer 1.x writer may add some); a missing required one is an error."""
    hints = _hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.metadata.get("in_file", True):
            continue
        at = f"{where}.{f.name}" if where else f.name
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _Bad(f"{at}: missing")
            continue
        out[f.name] = _value(hints[f.name], data[f.name], at)
    if "present" in {f.name for f in dataclasses.fields(cls)}:
        out["present"] = tuple(k for k in data if k in hints and k != "present")
    return out


def _parse(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise _Bad(f"{where}: expected an object, got {_kind(data)}")
    return cls(**_fields_of(cls, data, where))


def _value(tp: Any, value: Any, where: str) -> Any:
    """``value`` checked against the annotation ``tp`` (the JSON shapes the records use)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _value(option, value, where)
            except _Bad as exc:
                errors.append(exc)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise _Bad(f"{where}: expected one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return _parse(tp, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise _Bad(f"{where}: expected a list, got {_kind(value)}")
        item = args[0]
        return tuple(_value(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (collections.abc.Mapping, dict) or tp in (Mapping, dict):
        if not isinstance(value, dict):
            raise _Bad(f"{where}: expected an object, got {_kind(value)}")
        item = args[1] if args else Any
        return {str(k): _value(item, v, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _Bad(f"{where}: expected true or false, got {_kind(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(f"{where}: expected a whole number, got {_kind(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad(f"{where}: expected a number, got {_kind(value)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _Bad(f"{where}: expected text, got {_kind(value)}")
        return value
    raise TypeError(f"no reader for {tp!r}")  # a record field of a type the reader does not know: a bug here


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _plain(value: Any) -> Any:
    """A record's value as JSON (tuples as lists, nested records as objects)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        return value.as_json() if hasattr(value, "as_json") else {f.name: _plain(getattr(value, f.name))
                                                                  for f in dataclasses.fields(value)}
    return value
