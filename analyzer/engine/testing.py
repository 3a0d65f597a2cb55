"""Rule tests: ``<id>.test.yaml`` beside each rule, with inputs and expected results as data.

```yaml
rule: ema-lag
defaults:                      # optional, merged under every inline case
  config: {model_ema: true}
  steps_per_epoch: 40
cases:
  - name: real-run-fires
    run: ../../fixtures/runs/v1_ema_lag          # relative to this file
    expect: {fires: true, epochs: [0, 5], margin: 1, evidence_contains: ["0.9998"],
             fix_args: {model_ema_warmup: true}, rank: top}
  - name: inline-silent
    config: {model_ema: false}
    series: {train_loss: "6.9-0.25x19", eval_top1: "0.1x9 4+4x9"}   # expanding notation
    expect: {fires: false}
  - name: known-miss
    series: {train_loss: "6.9x19"}
    expect: {fires: true}
    todo: "why this is missed today"              # strict xfail: a pass is reported as xpass
```

The pipeline is injected, so the engine never imports ingestion or features:
``load_run(path) -> Run`` for ``run:`` cases, ``make_run(config, series, **extra) -> Run`` for
inline cases (``extra`` holds keys such as ``steps_per_epoch``, only when given), and
``diagnose(run) -> namespace`` or ``(namespace, pipeline_meta, ...)``.

Every rule needs at least one ``fires: true`` and one ``fires: false`` case.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from yaml.nodes import MappingNode, Node, SequenceNode

from mnv4_postmortem.analyzer.findings import Finding, rank
from mnv4_postmortem.analyzer.engine import yamlnodes as yn
from mnv4_postmortem.analyzer.engine.evaluate import MAX_STRENGTH, evaluate
from mnv4_postmortem.analyzer.engine.loader import TEST_SUFFIX, RulePack
from mnv4_postmortem.analyzer.engine.notation import NotationError, parse_series
from mnv4_postmortem.analyzer.engine.schema import RuleError

Outcome = Literal["pass", "fail", "xfail", "xpass", "error"]

SUITE_FIELDS = ("rule", "defaults", "cases")
DEFAULT_FIELDS = ("config", "series", "steps_per_epoch")
CASE_FIELDS = ("name", "run", "config", "series", "steps_per_epoch", "expect", "todo")
EXPECT_FIELDS = ("fires", "epochs", "margin", "evidence_contains", "fix_args", "rank")
INLINE_EXTRAS = ("steps_per_epoch",)


@dataclass(frozen=True, slots=True)
class Expect:
    fires: bool
    epochs: tuple[int, int] | None = None
    margin: int = 0
    evidence_contains: tuple[str, ...] = ()
    fix_args: Mapping[str, Any] | None = None
    rank: int | None = None  # 1-based; "top" is 1


@dataclass(frozen=True, slots=True, eq=False)
class TestCase:
    name: str
    line: int
    expect: Expect
    run: Path | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    series: Mapping[str, np.ndarray] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    todo: str | None = None

    __test__ = False  # not a pytest class


@dataclass(frozen=True, slots=True)
class TestSuite:
    path: Path
    rule_id: str
    line: int
    cases: tuple[TestCase, ...]

    __test__ = False


@dataclass(frozen=True, slots=True)
class CaseResult:
    rule_id: str
    case: str
    file: str
    line: int | None
    outcome: Outcome
    message: str = ""
    todo: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("pass", "xfail")

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.rule_id} / {self.case}: {self.outcome.upper()}"
        return f"{text}: {self.message}" if self.message else text


# ----------------------------------------------------------------------------------------------
# Loading test files


class _Bad(Exception):
    pass


class _SuiteParser:
    def __init__(self, path: Path, source: str):
        self.path, self.source = path, source
        self.errors: list[RuleError] = []
        self.rule_id: str | None = None

    def fail(self, node: Node, name: str | None, message: str) -> _Bad:
        where = yn.loc(node)
        self.errors.append(RuleError(str(self.path), where.line, where.col, name, message, self.rule_id))
        return _Bad()

    def mapping(self, node: Node, name: str, allowed: tuple[str, ...]) -> dict[str, Node]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, name, f"expected a mapping, got {yn.kind(node)}")
        found: dict[str, Node] = {}
        for key, key_node, value_node, duplicate in yn.pairs(node):
            label = f"{name}.{key}" if name else key
            if duplicate:
                raise self.fail(key_node, label, "duplicate key")
            if key not in allowed:
                raise self.fail(key_node, label, f"unknown field (allowed: {', '.join(allowed)})")
            found[key] = value_node
        return found

    def plain_mapping(self, node: Node, name: str) -> dict[str, Any]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, name, f"expected a mapping, got {yn.kind(node)}")
        value = yn.construct(node)
        return {str(k): v for k, v in value.items()}

    def series(self, node: Node, name: str) -> dict[str, np.ndarray]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, name, f"expected a mapping of metric: notation, got {yn.kind(node)}")
        result: dict[str, np.ndarray] = {}
        for key, _, value_node, _ in yn.pairs(node):
            label = f"{name}.{key}"
            value = yn.construct(value_node)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            if isinstance(value, str):
                try:
                    result[key] = parse_series(value)
                except NotationError as exc:
                    where = yn.position_in_scalar(value_node, self.source, exc.position)
                    self.errors.append(RuleError(str(self.path), where.line, where.col, label, str(exc), self.rule_id))
                    raise _Bad() from None
            elif isinstance(value, list) and all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in value
            ):
                result[key] = np.array([math.nan if v is None else float(v) for v in value], dtype=np.float64)
            else:
                raise self.fail(value_node, label, "expected expanding notation (e.g. '6.9-0.25x19') or a list of numbers")
        return result

    def expect(self, node: Node, name: str) -> Expect:
        fields = self.mapping(node, name, EXPECT_FIELDS)
        if "fires" not in fields:
            raise self.fail(node, f"{name}.fires", "missing required field")
        fires = yn.construct(fields["fires"])
        if not isinstance(fires, bool):
            raise self.fail(fields["fires"], f"{name}.fires", "expected true or false")
        if not fires:
            extra = [k for k in fields if k != "fires"]
            if extra:
                raise self.fail(fields[extra[0]], f"{name}.{extra[0]}", "only meaningful with fires: true")
        epochs = None
        if "epochs" in fields:
            value = yn.construct(fields["epochs"])
            if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value)) or value[0] > value[1]:
                raise self.fail(fields["epochs"], f"{name}.epochs", "expected [first, last] epochs (integers, first <= last)")
            epochs = (value[0], value[1])
        margin = 0
        if "margin" in fields:
            margin = yn.construct(fields["margin"])
            if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
                raise self.fail(fields["margin"], f"{name}.margin", "expected an integer >= 0")
        contains: tuple[str, ...] = ()
        if "evidence_contains" in fields:
            value = yn.construct(fields["evidence_contains"])
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.fail(fields["evidence_contains"], f"{name}.evidence_contains", "expected a list of strings")
            contains = tuple(value)
        fix_args = self.plain_mapping(fields["fix_args"], f"{name}.fix_args") if "fix_args" in fields else None
        position = None
        if "rank" in fields:
            value = yn.construct(fields["rank"])
            if value == "top":
                value = 1
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise self.fail(fields["rank"], f"{name}.rank", "expected 'top' or a position >= 1")
            position = value
        return Expect(fires, epochs, margin, contains, MappingProxyType(fix_args) if fix_args is not None else None, position)

    def case(self, node: Node, index: int, defaults: Mapping[str, Any]) -> TestCase:
        label = f"cases[{index}]"
        fields = self.mapping(node, label, CASE_FIELDS)
        for required in ("name", "expect"):
            if required not in fields:
                raise self.fail(node, f"{label}.{required}", "missing required field")
        name = yn.construct(fields["name"])
        if not isinstance(name, str) or not name.strip():
            raise self.fail(fields["name"], f"{label}.name", "expected a non-empty string")
        expect = self.expect(fields["expect"], f"{label}.expect")
        todo = None
        if "todo" in fields:
            todo = yn.construct(fields["todo"])
            if not isinstance(todo, str) or not todo.strip():
                raise self.fail(fields["todo"], f"{label}.todo", "say why the case is a known miss")
        line = yn.loc(node).line
        if "run" in fields:
            inline = [k for k in ("config", "series", "steps_per_epoch") if k in fields]
            if inline:
                raise self.fail(fields[inline[0]], f"{label}.{inline[0]}", "a run case reads everything from its run directory")
            run = yn.construct(fields["run"])
            if not isinstance(run, str) or not run.strip():
                raise self.fail(fields["run"], f"{label}.run", "expected a path relative to this file")
            return TestCase(name, line, expect, run=(self.path.parent / run), todo=todo)
        config = {**defaults.get("config", {})}
        if "config" in fields:
            config.update(self.plain_mapping(fields["config"], f"{label}.config"))
        series = {**defaults.get("series", {})}
        if "series" in fields:
            series.update(self.series(fields["series"], f"{label}.series"))
        extra = {k: defaults[k] for k in INLINE_EXTRAS if k in defaults}
        for key in INLINE_EXTRAS:
            if key in fields:
                value = yn.construct(fields[key])
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise self.fail(fields[key], f"{label}.{key}", "expected an integer >= 1")
                extra[key] = value
        return TestCase(name, line, expect, config=config, series=series, extra=extra, todo=todo)

    def parse(self, root: Node | None) -> TestSuite | None:
        if root is None:
            self.errors.append(RuleError(str(self.path), 1, 1, None, "empty test file"))
            return None
        try:
            fields = self.mapping(root, "", SUITE_FIELDS)
            if "rule" not in fields:
                raise self.fail(root, "rule", "missing required field")
            rule_id = yn.construct(fields["rule"])
            if not isinstance(rule_id, str):
                raise self.fail(fields["rule"], "rule", "expected a rule id")
            self.rule_id = rule_id
            expected_name = f"{rule_id}{TEST_SUFFIX}"
            if self.path.name != expected_name:
                raise self.fail(fields["rule"], "rule", f"a test file is named after its rule: '{expected_name}'")
            defaults: dict[str, Any] = {}
            if "defaults" in fields:
                parts = self.mapping(fields["defaults"], "defaults", DEFAULT_FIELDS)
                if "config" in parts:
                    defaults["config"] = self.plain_mapping(parts["config"], "defaults.config")
                if "series" in parts:
                    defaults["series"] = self.series(parts["series"], "defaults.series")
                if "steps_per_epoch" in parts:
                    value = yn.construct(parts["steps_per_epoch"])
                    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                        raise self.fail(parts["steps_per_epoch"], "defaults.steps_per_epoch", "expected an integer >= 1")
                    defaults["steps_per_epoch"] = value
            cases_node = fields.get("cases")
            if not isinstance(cases_node, SequenceNode) or not cases_node.value:
                raise self.fail(cases_node or root, "cases", "expected a non-empty list of cases")
        except _Bad:
            return None
        cases = []
        for i, node in enumerate(cases_node.value):
            try:
                cases.append(self.case(node, i, defaults))
            except _Bad:
                continue
        names = [c.name for c in cases]
        for case in cases:
            if names.count(case.name) > 1:
                self.errors.append(RuleError(str(self.path), case.line, None, "name", f"duplicate case name '{case.name}'", rule_id))
                break
        if self.errors:
            return None
        return TestSuite(self.path, rule_id, yn.loc(root).line, tuple(cases))


def load_test_suite(path: Path | str) -> tuple[TestSuite | None, list[RuleError]]:
    """Parse one ``*.test.yaml``; the suite, or None and the errors (``file:line:col``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if len(data) > yn.MAX_FILE_BYTES:
            return None, [RuleError(str(path), None, None, None, f"file is larger than {yn.MAX_FILE_BYTES} bytes")]
        source = data.decode("utf-8")
    except OSError as exc:
        return None, [RuleError(str(path), None, None, None, f"cannot read: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return None, [RuleError(str(path), None, None, None, f"not UTF-8 text (byte offset {exc.start})")]
    try:
        root = yn.compose(source)
    except yn.YamlError as exc:
        return None, [RuleError(str(path), exc.loc and exc.loc.line, exc.loc and exc.loc.col, None, exc.message)]
    parser = _SuiteParser(path, source)
    suite = parser.parse(root)
    return suite, parser.errors


def check_coverage(
    pack: RulePack, suites: Sequence[TestSuite], *, require_all_rules: bool = True
) -> list[RuleError]:
    """Each tested rule exists and has a firing and a silent case; optionally every rule is tested."""
    errors: list[RuleError] = []
    tested: dict[str, list[TestSuite]] = {}
    for suite in suites:
        rule = pack.get(suite.rule_id)
        if rule is None:
            errors.append(RuleError(str(suite.path), suite.line, None, "rule", f"no rule '{suite.rule_id}' in the pack", suite.rule_id))
            continue
        tested.setdefault(rule.id, []).append(suite)
    for rule in pack.rules:
        suites_for_rule = tested.get(rule.id, [])
        if not suites_for_rule and not require_all_rules:
            continue
        cases = [c for s in suites_for_rule for c in s.cases]
        missing = [label for label, want in (("fires: true", True), ("fires: false", False))
                   if not any(c.expect.fires is want for c in cases)]
        if missing:
            line, col = rule.location("id")
            wanted = " and one ".join(f"'{label}'" for label in missing)
            errors.append(RuleError(rule.path, line, col, None, f"needs at least one {wanted} test case", rule.id))
    return errors


# ----------------------------------------------------------------------------------------------
# Running cases


def _close(actual: Any, expected: Any) -> bool:
    if hasattr(actual, "item") and getattr(actual, "ndim", None) == 0:
        actual = actual.item()
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(expected, list) and isinstance(actual, (list, tuple)):
        return len(actual) == len(expected) and all(_close(a, e) for a, e in zip(actual, expected))
    return actual == expected


def _check(finding: Finding | None, expect: Expect, ranked: list[Finding] | None) -> list[str]:
    if finding is None:
        return ["expected the rule to fire, but it stayed silent"] if expect.fires else []
    if not expect.fires:
        return [f"expected silence, but it fired (epochs {finding.epochs}): {finding.evidence[0].text if finding.evidence else finding.title}"]
    problems = []
    if expect.epochs is not None:
        if finding.epochs is None:
            problems.append(f"expected epochs {list(expect.epochs)}, got none")
        elif any(abs(a - e) > expect.margin for a, e in zip(finding.epochs, expect.epochs)):
            problems.append(f"expected epochs {list(expect.epochs)} (margin {expect.margin}), got {list(finding.epochs)}")
    text = "\n".join(e.text for e in finding.evidence)
    for needle in expect.evidence_contains:
        if needle not in text:
            problems.append(f"evidence lacks {needle!r}; it reads: {text!r}")
    if expect.fix_args is not None:
        if finding.fix is None:
            problems.append("expected a fix, got none")
        else:
            for key, want in expect.fix_args.items():
                got = finding.fix.args.get(key, "<absent>")
                if not _close(got, want):
                    problems.append(f"fix arg {key}: expected {want!r}, got {got!r}")
    if expect.rank is not None and ranked is not None:
        position = next(i for i, f in enumerate(ranked, start=1) if f is finding)
        if position != expect.rank:
            order = ", ".join(f.rule_id for f in ranked)
            problems.append(f"expected rank {expect.rank}, got {position} (order: {order})")
    return problems


def _split_diagnosis(result: Any) -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
    if isinstance(result, tuple):
        meta = result[1] if len(result) > 1 and isinstance(result[1], Mapping) else None
        return result[0], meta
    return result, None


def run_case(
    pack: RulePack,
    suite: TestSuite,
    case: TestCase,
    *,
    diagnose: Callable[[Any], Any],
    load_run: Callable[[Path], Any],
    make_run: Callable[..., Any],
) -> CaseResult:
    """Build the case's run, diagnose it, evaluate the rule (the whole pack when ``rank`` is asked)."""

    def result(outcome: Outcome, message: str = "") -> CaseResult:
        return CaseResult(suite.rule_id, case.name, str(suite.path), case.line, outcome, message, case.todo)

    rule = pack.get(suite.rule_id)
    if rule is None:
        return result("error", f"no rule '{suite.rule_id}' in the pack")
    try:
        if case.run is not None:
            if not case.run.exists():
                return result("error", f"run directory not found: {case.run}")
            run = load_run(case.run)
        else:
            run = make_run(dict(case.config), dict(case.series), **dict(case.extra))
        namespace, meta = _split_diagnosis(diagnose(run))
    except Exception as exc:  # noqa: BLE001 - the injected pipeline's failure is this case's error
        return result("error", f"building the run failed: {type(exc).__name__}: {exc}")
    # The symptom rules always run: causes read them (issue 13's two layers).
    symptom_rules = [r for r in pack.rules if r.is_symptom and r is not rule]
    rules = pack if case.expect.rank is not None else symptom_rules + [rule]
    evaluation = evaluate(rules, namespace, pipeline_meta=meta)
    warnings = [str(w) for w in evaluation.warnings if w.rule_id == rule.id]
    finding = next((f for f in evaluation.findings if f.rule_id == rule.id), None)
    if rule.is_symptom:
        finding = next((_as_finding(s) for s in evaluation.symptoms if s.id == rule.id), None)
    ranked = rank(evaluation.findings) if case.expect.rank is not None else None
    problems = warnings + _check(finding, case.expect, ranked)
    if case.todo is not None:
        if problems:
            return result("xfail", "; ".join(problems))
        return result("xpass", "the todo case passes now: remove its 'todo'")
    return result("fail", "; ".join(problems)) if problems else result("pass")


def _as_finding(symptom: Any) -> Finding:
    """A fired symptom in the shape the case checks read (epochs, evidence); a symptom has no confidence of its
    own, so its strength stands in, as a share of the cap (MAX_STRENGTH)."""
    return Finding(rule_id=symptom.id, cause="symptom", severity=symptom.severity, confidence=min(1.0, symptom.strength / MAX_STRENGTH),
                   title=symptom.title, evidence=symptom.evidence, epochs=symptom.epochs)


def run_rule_tests(
    pack: RulePack,
    test_files: Iterable[Path | str],
    *,
    diagnose: Callable[[Any], Any],
    load_run: Callable[[Path], Any],
    make_run: Callable[..., Any],
    require_all_rules: bool = True,
) -> list[CaseResult]:
    """Load and run every case; broken test files and coverage gaps come back as ``error`` results."""
    results: list[CaseResult] = []
    suites: list[TestSuite] = []
    for path in test_files:
        suite, errors = load_test_suite(path)
        results.extend(_error_result(e) for e in errors)
        if suite is not None:
            suites.append(suite)
    results.extend(_error_result(e) for e in check_coverage(pack, suites, require_all_rules=require_all_rules))
    for suite in suites:
        if pack.get(suite.rule_id) is None:
            continue  # already reported by check_coverage
        for case in suite.cases:
            results.append(run_case(pack, suite, case, diagnose=diagnose, load_run=load_run, make_run=make_run))
    return results


def _error_result(error: RuleError) -> CaseResult:
    prefix = f"field '{error.field}': " if error.field else ""
    return CaseResult(error.rule_id or "?", "<test file>", error.file, error.line, "error", prefix + error.message)


__all__ = [
    "CaseResult",
    "Expect",
    "TestCase",
    "TestSuite",
    "check_coverage",
    "load_test_suite",
    "run_case",
    "run_rule_tests",
]
