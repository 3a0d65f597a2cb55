"""The rule format: what a rule file may say, checked field by field with ``file:line:col``.

One rule per file, the file name equals the id. Required: ``id title cause severity when
evidence``. Optional: ``epochs for confidence specificity explains explanation fix ruled_out
considered references aliases status since``. Unknown fields are errors. Every problem becomes
a :class:`RuleError` that reads ``file:line:col: rule 'id': field 'name': message``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Union

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mnv4_postmortem.analyzer.findings import Severity
from mnv4_postmortem.analyzer.engine import yamlnodes as yn
from mnv4_postmortem.analyzer.engine.expr import ROOT_NAMES, Expr, ExprError, NameUse, compile_expr
from mnv4_postmortem.analyzer.engine.templating import Template, TemplateCompileError, compile_template

# The stable cause ids. A pack may declare more in a ``causes.yaml``.
CAUSES: Mapping[str, str] = MappingProxyType(
    {
        "ema-lag": "The evaluated EMA weights still hold mostly the initial model",
        "lr-too-high": "The learning rate is too high for the model, batch size or optimizer",
        "lr-too-low": "The learning rate is too low to make progress in the epochs given",
        "warmup-too-long": "Warmup takes a large share of a short run",
        "divergence": "Loss or weights blew up to non-finite or exploding values",
        "over-regularization": "Augmentation, dropout, label smoothing or weight decay hold the model back",
        "input-size-mismatch": "Training and evaluation see a different input size than the model expects",
        "overfitting": "Train loss keeps falling while eval gets worse",
        "eval-broken": "Evaluation numbers cannot be right (constant, chance-level or inconsistent)",
        "no-learning": "Train loss never moves from its starting value",
        "incomplete-run": "The run stopped before its scheduled epochs",
        "wasted-epochs": "Epochs after the best result brought nothing",
        "pretrained-not-loaded": "Pretrained weights were named but never loaded: the model started from random init",
    }
)

SEVERITIES = tuple(s.label for s in Severity)
SAFETIES = ("safe", "recipe-change")
STATUSES = ("stable", "preview", "deprecated")
# What a finding is in the causal chain (findings.rank orders by it): a cause of the symptoms seen; a latent
# cause, whose symptom another cause masks in this run but which the config guarantees once that one is fixed;
# or a consequence of whatever went wrong (stopped early, epochs wasted), never a root cause by itself.
ROLES = ("cause", "latent", "consequence")
KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ARG_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

REQUIRED_FIELDS = ("id", "title", "cause", "severity", "when", "evidence")
OPTIONAL_FIELDS = (
    "epochs", "for", "confidence", "specificity", "explains", "explanation", "fix", "ruled_out",
    "considered", "references", "aliases", "status", "since", "role", "facts",
    # the symptoms-first layer (issue 13): see the README's "Writing rules"
    "kind", "strength", "candidates", "tell_apart", "symptoms", "absent", "signals", "bar",
)
# A symptom rule reads the curves alone and names no cause; a cause rule names the symptoms it explains.
KINDS = ("cause", "symptom")
SIGNAL_FIELDS = ("when", "weight", "why", "text")
# A scored cause fires when its explained symptoms' strengths plus its signals' weights reach ``bar``;
# the default bar is one symptom at its margin (strength 1) or one decisive signal.
DEFAULT_BAR = 1.0
RULE_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
FIX_FIELDS = ("args", "note", "safety")
DEFAULT_CONFIDENCE = 0.5


@dataclass(frozen=True, slots=True)
class RuleError:
    """A problem with a rule file (load time) or a rule's evaluation (``level="warning"``)."""

    file: str
    line: int | None
    col: int | None
    field: str | None
    message: str
    rule_id: str | None = None
    level: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}" + (f":{self.col}" if self.col is not None else "")
        parts = [where]
        if self.rule_id:
            parts.append(f"rule '{self.rule_id}'")
        if self.field:
            parts.append(f"field '{self.field}'")
        parts.append(self.message)
        return ": ".join(parts)


# ----------------------------------------------------------------------------------------------
# Known names


class NameSchema:
    """Known namespace paths as a nested mapping; ``"*"`` matches any one component.

    A non-mapping value is a leaf: what lies below it (a method of a string, a field of an
    object the schema does not describe) is not checked.

    >>> known = NameSchema({"series": {"*": {"last": None}}})
    >>> known("series.eval_top1.last"), known("series.eval_top1.lats")
    (True, False)
    """

    def __init__(self, tree: Mapping[str, Any]):
        self.tree = tree

    def _walk(self, parts: list[str]) -> tuple[bool, Any]:
        node: Any = self.tree
        for part in parts:
            if not isinstance(node, Mapping):
                return True, None
            if part in node:
                node = node[part]
            elif "*" in node:
                node = node["*"]
            else:
                return False, None
        return True, node

    def __call__(self, path: str) -> bool:
        return self._walk(path.split("."))[0]

    def suggest(self, path: str) -> list[str]:
        parts = path.split(".")
        found, parent = self._walk(parts[:-1])
        if not found or not isinstance(parent, Mapping):
            return []
        names = [str(k) for k in parent if k != "*"]
        prefix = ".".join(parts[:-1])
        return [f"{prefix}.{m}" if prefix else m for m in difflib.get_close_matches(parts[-1], names, n=1)]


KnownNames = Union[Callable[[str], bool], Mapping[str, Any], None]


def as_name_check(known: KnownNames) -> Callable[[str], bool] | None:
    if known is None or callable(known):
        return known
    if isinstance(known, Mapping):
        return NameSchema(known)
    raise TypeError(f"known_names must be a callable or a mapping, not {type(known).__name__}")


def unknown_name_message(path: str, known: Callable[[str], bool]) -> str | None:
    """None when ``path`` is known; otherwise a message naming its first unknown component."""
    if known(path):
        return None
    parts = path.split(".")
    bad = path
    for k in range(2, len(parts)):
        prefix = ".".join(parts[:k])
        if not known(prefix):
            bad = prefix
            break
    message = f"unknown name '{bad}'"
    suggest = getattr(known, "suggest", None)
    hints = suggest(bad) if callable(suggest) else []
    if hints:
        message += f" (did you mean '{hints[0]}'?)"
    return message


# ----------------------------------------------------------------------------------------------
# The rule


@dataclass(frozen=True, slots=True, eq=False)
class FixSpec:
    args: Mapping[str, Any]  # literal values, or Expr for "=..." strings
    note: str = ""
    safety: str = "safe"


@dataclass(frozen=True, slots=True, eq=False)
class Signal:
    """One piece of config or log evidence for (weight > 0) or against (weight < 0) a cause. A signal whose
    ``when`` is missing data counts neither way; ``why`` states the principle its weight comes from."""

    when: Expr
    weight: float
    why: str
    text: Template | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    id: str
    title: str
    cause: str
    severity: Severity
    when: Expr
    evidence: tuple[Template, ...]
    epochs: Expr | None = None
    for_epochs: int | None = None
    confidence: Expr | float = DEFAULT_CONFIDENCE
    specificity: int = 1
    explains: tuple[str, ...] = ()
    explanation: str = ""
    fix: FixSpec | None = None
    ruled_out: Template | None = None
    considered: Expr | None = None
    references: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    status: str = "stable"
    since: str | None = None
    role: str = "cause"
    # Structured values the finding carries for renderers (e.g. the epoch an EMA catches up): name -> expression.
    facts: Mapping[str, Expr] = field(default_factory=dict)
    kind: str = "cause"                      # "cause" | "symptom"
    strength: Expr | float = 1.0             # a symptom's graded strength (1 = at its margin)
    candidates: tuple[str, ...] = ()         # a symptom's possible causes (for an unexplained symptom)
    tell_apart: str = ""                     # a symptom's "what would tell its candidates apart"
    symptoms: tuple[str, ...] = ()           # a cause's explained symptoms (symptom rule ids)
    absent: tuple[str, ...] = ()             # symptoms the cause predicts absent: each one seen counts against
    signals: tuple[Signal, ...] = ()         # config and log evidence, for and against
    bar: float | None = None                 # set: a scored cause (fires on symptoms + signals >= bar)
    path: str = ""
    # "field" -> (line, col) of its value, so evaluation warnings can point into the file too.
    locations: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def location(self, name: str) -> tuple[int | None, int | None]:
        return self.locations.get(name, (None, None))

    @property
    def is_symptom(self) -> bool:
        return self.kind == "symptom"

    @property
    def scored(self) -> bool:
        """A cause whose firing and confidence come from its symptoms and signals (not from ``when`` alone)."""
        return self.kind == "cause" and self.bar is not None


# ----------------------------------------------------------------------------------------------
# Parsing


class _Invalid(Exception):
    """One field is wrong; already recorded."""


class RuleParser:
    """Turns one composed YAML document into a :class:`Rule` or a list of errors."""

    def __init__(
        self,
        file: str,
        source: str,
        *,
        stem: str,
        causes: Mapping[str, str],
        known: Callable[[str], bool] | None,
        roots: tuple[str, ...] = ROOT_NAMES,
    ):
        self.file, self.source, self.stem = file, source, stem
        self.causes, self.known, self.roots = causes, known, roots
        self.errors: list[RuleError] = []
        self.rule_id: str | None = None

    # -- errors ----------------------------------------------------------------------------------
    def error(self, node: Node | yn.Loc | None, field_name: str | None, message: str) -> None:
        where = node if isinstance(node, yn.Loc) else (yn.loc(node) if node is not None else None)
        self.errors.append(
            RuleError(
                self.file, where.line if where else None, where.col if where else None,
                field_name, message, self.rule_id,
            )
        )

    def invalid(self, node: Node | yn.Loc, field_name: str, message: str) -> _Invalid:
        self.error(node, field_name, message)
        return _Invalid()

    # -- scalars ---------------------------------------------------------------------------------
    def string(self, node: Node, name: str, *, allow_empty: bool = False) -> str:
        if not yn.is_str(node):
            raise self.invalid(node, name, f"expected a string, got {yn.kind(node)}")
        value = yn.construct(node)
        if not allow_empty and not value.strip():
            raise self.invalid(node, name, "must not be empty")
        return value

    def integer(self, node: Node, name: str, minimum: int) -> int:
        value = yn.construct(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.invalid(node, name, f"expected an integer, got {yn.kind(node)}")
        if value < minimum:
            raise self.invalid(node, name, f"must be >= {minimum}, got {value}")
        return value

    def choice(self, node: Node, name: str, choices: tuple[str, ...]) -> str:
        value = self.string(node, name)
        if value not in choices:
            raise self.invalid(node, name, f"'{value}' is not one of: {', '.join(choices)}")
        return value

    def string_list(self, node: Node, name: str) -> list[tuple[str, Node]]:
        if not isinstance(node, SequenceNode):
            raise self.invalid(node, name, f"expected a list, got {yn.kind(node)}")
        return [(self.string(item, f"{name}[{i}]"), item) for i, item in enumerate(node.value)]

    # -- expressions and templates ---------------------------------------------------------------
    def check_names(self, uses: tuple[NameUse, ...] | list[NameUse], node: Node, name: str, shift: int = 0) -> None:
        if self.known is None:
            return
        for use in uses:
            message = unknown_name_message(use.path, self.known)
            if message:
                raise self.invalid(yn.position_in_scalar(node, self.source, use.offset + shift), name, message)

    def expression(self, node: Node, name: str, *, text: str | None = None, shift: int = 0) -> Expr:
        if text is None:
            text = self.string(node, name)
        try:
            expr = compile_expr(text, roots=self.roots)
        except ExprError as exc:
            raise self.invalid(yn.position_in_scalar(node, self.source, exc.offset + shift), name, exc.message)
        self.check_names(list(expr.iter_names()), node, name, shift)
        return expr

    def template(self, node: Node, name: str) -> Template:
        text = self.string(node, name)
        try:
            template = compile_template(text, roots=self.roots)
        except TemplateCompileError as exc:
            raise self.invalid(yn.position_in_scalar(node, self.source, exc.offset), name, exc.message)
        self.check_names(template.names, node, name)
        return template

    # -- fields ----------------------------------------------------------------------------------
    def parse_id(self, node: Node) -> str:
        value = self.string(node, "id")
        self.rule_id = value
        if not KEBAB.match(value):
            raise self.invalid(node, "id", f"'{value}' is not kebab-case (lowercase words joined by '-')")
        if value != self.stem:
            raise self.invalid(node, "id", f"must equal the file name '{self.stem}'")
        return value

    def parse_cause(self, node: Node, name: str) -> str:
        value = self.string(node, name)
        if value not in self.causes:
            hint = difflib.get_close_matches(value, list(self.causes), n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else " (declare it in the pack's causes.yaml)"
            raise self.invalid(node, name, f"unknown cause '{value}'{extra}")
        return value

    def parse_severity(self, node: Node) -> Severity:
        return Severity.parse(self.choice(node, "severity", SEVERITIES))

    def parse_confidence(self, node: Node) -> Expr | float:
        value = yn.construct(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not (0.0 <= float(value) <= 1.0) or math.isnan(float(value)):
                raise self.invalid(node, "confidence", f"must be between 0 and 1, got {value}")
            return float(value)
        if isinstance(value, str):
            return self.expression(node, "confidence")
        raise self.invalid(node, "confidence", f"expected a number or an expression string, got {yn.kind(node)}")

    def parse_evidence(self, node: Node) -> tuple[Template, ...]:
        if not isinstance(node, SequenceNode) or not node.value:
            raise self.invalid(node, "evidence", "expected a non-empty list of template strings")
        templates = []
        for i, item in enumerate(node.value):
            try:
                templates.append(self.template(item, f"evidence[{i}]"))
            except _Invalid:
                pass
        if len(templates) != len(node.value):
            raise _Invalid()
        return tuple(templates)

    def parse_fix(self, node: Node) -> FixSpec:
        if not isinstance(node, MappingNode):
            raise self.invalid(node, "fix", f"expected a mapping with {', '.join(FIX_FIELDS)}")
        fields = self.fields(node, FIX_FIELDS, prefix="fix.")
        if "args" not in fields:
            raise self.invalid(node, "fix.args", "missing required field")
        args_node = fields["args"][1]
        if not isinstance(args_node, MappingNode):
            raise self.invalid(args_node, "fix.args", f"expected a mapping of train.py arguments, got {yn.kind(args_node)}")
        args: dict[str, Any] = {}
        for key, key_node, value_node, duplicate in yn.pairs(args_node):
            name = f"fix.args.{key}"
            if duplicate:
                raise self.invalid(key_node, name, "duplicate key")
            if not ARG_NAME.match(key):
                raise self.invalid(key_node, name, "argument names are args.yaml keys (lowercase, underscores)")
            value = yn.construct(value_node)
            if isinstance(value, str) and value.startswith("="):
                args[key] = self.expression(value_node, name, text=value[1:], shift=1)
            else:
                args[key] = value
        note = self.string(fields["note"][1], "fix.note") if "note" in fields else ""
        safety = self.choice(fields["safety"][1], "fix.safety", SAFETIES) if "safety" in fields else "safe"
        return FixSpec(args=MappingProxyType(args), note=note, safety=safety)

    def fields(self, node: MappingNode, allowed: tuple[str, ...], prefix: str = "") -> dict[str, tuple[Node, Node]]:
        found: dict[str, tuple[Node, Node]] = {}
        for key, key_node, value_node, duplicate in yn.pairs(node):
            if duplicate:
                self.error(key_node, prefix + key, "duplicate key")
                continue
            if key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                extra = f" (did you mean '{prefix}{hint[0]}'?)" if hint else f" (allowed: {', '.join(allowed)})"
                self.error(key_node, prefix + key, f"unknown field{extra}")
                continue
            found[key] = (key_node, value_node)
        return found

    # -- the rule --------------------------------------------------------------------------------
    def parse(self, root: Node | None) -> Rule | None:
        if root is None:
            self.error(yn.Loc(1, 1), None, "empty rule file")
            return None
        if not isinstance(root, MappingNode):
            self.error(root, None, f"a rule file holds one mapping, got {yn.kind(root)}")
            return None
        # Name the rule in every message, even those about fields read before the id.
        id_node = next((v for k, _, v, _ in yn.pairs(root) if k == "id"), None)
        if id_node is not None and yn.is_str(id_node):
            self.rule_id = yn.construct(id_node)
        fields = self.fields(root, RULE_FIELDS)
        rule_id = self._try(lambda: self.parse_id(fields["id"][1])) if "id" in fields else None
        is_symptom = "kind" in fields and yn.is_str(fields["kind"][1]) and yn.construct(fields["kind"][1]) == "symptom"
        for name in REQUIRED_FIELDS:
            optional = (is_symptom and name == "cause") or (name == "when" and "signals" in fields)
            if name not in fields and not optional:
                self.error(root, name, "missing required field")
        values: dict[str, Any] = {}
        parsers: dict[str, Callable[[Node], Any]] = {
            "title": lambda n: self.string(n, "title"),
            "cause": lambda n: self.parse_cause(n, "cause"),
            "severity": self.parse_severity,
            "when": lambda n: self.expression(n, "when"),
            "evidence": self.parse_evidence,
            "epochs": lambda n: self.expression(n, "epochs"),
            "for": lambda n: self.integer(n, "for", 1),
            "confidence": self.parse_confidence,
            "specificity": lambda n: self.integer(n, "specificity", 0),
            "explains": self.parse_explains,
            "explanation": lambda n: self.string(n, "explanation", allow_empty=True),
            "fix": self.parse_fix,
            "ruled_out": lambda n: self.template(n, "ruled_out"),
            "considered": lambda n: self.expression(n, "considered"),
            "references": lambda n: tuple(v for v, _ in self.string_list(n, "references")),
            "aliases": self.parse_aliases,
            "status": lambda n: self.choice(n, "status", STATUSES),
            "since": lambda n: self._since(n),
            "role": lambda n: self.choice(n, "role", ROLES),
            "facts": self.parse_facts,
            "kind": lambda n: self.choice(n, "kind", KINDS),
            "strength": lambda n: self.parse_number_or_expr(n, "strength"),
            "candidates": self.parse_candidates,
            "tell_apart": lambda n: self.string(n, "tell_apart"),
            "symptoms": lambda n: self.parse_ids(n, "symptoms"),
            "absent": lambda n: self.parse_ids(n, "absent"),
            "signals": self.parse_signals,
            "bar": lambda n: float(self.parse_number(n, "bar")),
        }
        ok = True
        for name, parse in parsers.items():
            if name in fields:
                result = self._try(lambda: parse(fields[name][1]))
                ok = ok and result is not _FAILED
                values[name] = result
        if "for" in fields and "epochs" not in fields:
            self.error(fields["for"][1], "for", "needs an 'epochs' expression to count epochs over")
        if self.errors or rule_id in (None, _FAILED) or not ok:
            return None
        # A scored cause without ``when`` is gated by nothing but its evidence total.
        when: Expr = values["when"] if "when" in values else compile_expr("True", roots=self.roots)
        return Rule(
            id=rule_id,
            title=values["title"],
            cause=values.get("cause", "symptom"),
            severity=values["severity"],
            when=when,
            evidence=values["evidence"],
            epochs=values.get("epochs"),
            for_epochs=values.get("for"),
            confidence=values.get("confidence", DEFAULT_CONFIDENCE),
            specificity=values.get("specificity", when.and_clauses),
            explains=values.get("explains", ()),
            explanation=values.get("explanation", ""),
            fix=values.get("fix"),
            ruled_out=values.get("ruled_out"),
            considered=values.get("considered"),
            references=values.get("references", ()),
            aliases=values.get("aliases", ()),
            status=values.get("status", "stable"),
            since=values.get("since"),
            role=values.get("role", "cause"),
            facts=MappingProxyType(values.get("facts", {})),
            kind=values.get("kind", "cause"),
            strength=values.get("strength", 1.0),
            candidates=values.get("candidates", ()),
            tell_apart=values.get("tell_apart", ""),
            symptoms=values.get("symptoms", ()),
            absent=values.get("absent", ()),
            signals=values.get("signals", ()),
            bar=values.get("bar", DEFAULT_BAR if "signals" in fields else None),
            path=self.file,
            locations=MappingProxyType(
                {name: (yn.loc(v).line, yn.loc(v).col) for name, (_, v) in fields.items()}
            ),
        )

    def parse_explains(self, node: Node) -> tuple[str, ...]:
        if not isinstance(node, SequenceNode):
            raise self.invalid(node, "explains", f"expected a list of causes, got {yn.kind(node)}")
        return tuple(self.parse_cause(item, f"explains[{i}]") for i, item in enumerate(node.value))

    def parse_number(self, node: Node, name: str) -> float:
        value = yn.construct(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise self.invalid(node, name, f"expected a finite number, got {yn.kind(node)}")
        return float(value)

    def parse_number_or_expr(self, node: Node, name: str) -> Expr | float:
        value = yn.construct(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, str):
            return self.expression(node, name)
        return self.parse_number(node, name)

    def parse_candidates(self, node: Node) -> tuple[str, ...]:
        if not isinstance(node, SequenceNode):
            raise self.invalid(node, "candidates", f"expected a list of causes, got {yn.kind(node)}")
        return tuple(self.parse_cause(item, f"candidates[{i}]") for i, item in enumerate(node.value))

    def parse_ids(self, node: Node, name: str) -> tuple[str, ...]:
        ids = []
        for value, item in self.string_list(node, name):
            if not KEBAB.match(value):
                raise self.invalid(item, name, f"'{value}' is not a kebab-case symptom id")
            ids.append(value)
        return tuple(ids)

    def parse_signals(self, node: Node) -> tuple[Signal, ...]:
        if not isinstance(node, SequenceNode):
            raise self.invalid(node, "signals", f"expected a list of {{when, weight, why}} mappings, got {yn.kind(node)}")
        signals = []
        for i, item in enumerate(node.value):
            name = f"signals[{i}]"
            if not isinstance(item, MappingNode):
                raise self.invalid(item, name, "expected a mapping with when, weight, why (and optional text)")
            fields = self.fields(item, SIGNAL_FIELDS, prefix=f"{name}.")
            for required in ("when", "weight", "why"):
                if required not in fields:
                    raise self.invalid(item, f"{name}.{required}", "missing required field (every weight states its principle)")
            signals.append(Signal(
                when=self.expression(fields["when"][1], f"{name}.when"),
                weight=self.parse_number(fields["weight"][1], f"{name}.weight"),
                why=self.string(fields["why"][1], f"{name}.why"),
                text=self.template(fields["text"][1], f"{name}.text") if "text" in fields else None,
            ))
        return tuple(signals)

    def parse_facts(self, node: Node) -> dict[str, Expr]:
        if not isinstance(node, MappingNode):
            raise self.invalid(node, "facts", f"expected a mapping of name: expression, got {yn.kind(node)}")
        facts: dict[str, Expr] = {}
        for key_node, value_node in node.value:
            name = str(key_node.value)
            if not ARG_NAME.match(name):
                raise self.invalid(key_node, "facts", f"'{name}' is not a snake_case name")
            facts[name] = self.expression(value_node, f"facts.{name}")
        return facts

    def parse_aliases(self, node: Node) -> tuple[str, ...]:
        aliases = []
        for value, item in self.string_list(node, "aliases"):
            if not KEBAB.match(value):
                raise self.invalid(item, "aliases", f"'{value}' is not kebab-case")
            aliases.append(value)
        return tuple(aliases)

    def _since(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise self.invalid(node, "since", f"expected a version string, got {yn.kind(node)}")
        return str(node.value)  # the text as written: 0.10 stays "0.10"

    def _try(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except _Invalid:
            return _FAILED


_FAILED = object()


__all__ = [
    "CAUSES",
    "DEFAULT_CONFIDENCE",
    "FixSpec",
    "KnownNames",
    "NameSchema",
    "ROLES",
    "RULE_FIELDS",
    "Rule",
    "RuleError",
    "RuleParser",
    "Signal",
    "DEFAULT_BAR",
    "as_name_check",
    "unknown_name_message",
]
