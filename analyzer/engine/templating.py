"""Evidence and ``ruled_out`` templates: sandboxed Jinja2, compiled at load, rendered per run.

Templates see the same namespace as expressions (``config``, ``derived``, ``series``, ``events``)
with the same member rule: a mapping is read by key before attribute, so ``config.items`` is the
``items`` argument. ``StrictUndefined`` is off on purpose (a template may test for a missing value),
but a sentence that would print a missing value is not produced at all: :meth:`Template.render`
returns None when any ``{{ }}`` output, or a ``pct`` / ``num`` filter, met a missing value, so no
"the LR was n/a (n/ax ...)" reaches a report. A template guards optional parts with ``{% if %}`` or
says "unknown" itself with ``| default('unknown')``.

Helpers: ``cite(obj, ...)`` returns a short ``file:line`` range for objects carrying ``refs`` /
``ref`` / ``source`` (SourceRef or strings) and records the full refs on the evidence line, as
structured :class:`EvidenceRef` (file, line or record, and the epochs of the cited object);
filters ``pct`` (0.123 -> ``12.3%``) and ``num`` (significant digits, default 3).
"""

from __future__ import annotations

import ast
import contextvars
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import jinja2
import simpleeval
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mnv4_postmortem.analyzer.citations import label as citation_label
from mnv4_postmortem.analyzer.findings import EvidenceRef
from mnv4_postmortem.analyzer.model import SourceRef
from mnv4_postmortem.analyzer.engine.expr import BLOCKED_METHODS, OPERATORS, ROOT_NAMES, NameUse, get_member, is_absent, is_missing

MAX_TEMPLATE_LENGTH = 10_000
MAX_REFS_PER_EVIDENCE = 100
MISSING_TEXT = "n/a"
TEMPLATE_GLOBALS = ("cite",)


def _is_missing(value: Any) -> bool:
    return isinstance(value, jinja2.Undefined) or is_missing(value)


# Set while a template renders: flipped when a missing value is printed (see the module docstring).
_MET_MISSING: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("met_missing", default=None)


def _note_missing() -> str:
    flag = _MET_MISSING.get()
    if flag is not None:
        flag[0] = True
    return MISSING_TEXT


def _plain(value: Any) -> Any:
    # numpy scalars print as np.float64(...) in some contexts; show the bare number.
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _finalize(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined) or is_absent(value):
        return _note_missing()
    return _plain(value)


def pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.123 | pct`` -> ``12.3%``."""
    if _is_missing(value):
        return _note_missing()
    return f"{float(_plain(value)) * 100:.{int(digits)}f}%"


def num(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits: ``0.000123456 | num`` -> ``0.000123``."""
    if _is_missing(value):
        return _note_missing()
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{int(digits)}g}"


class RuleTemplateEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with mappings read by key first (as in expressions) and the
    operators that can build huge values from small literals (``*``, ``**``, ``+``) bounded."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and not attribute.startswith("_"):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            return simpleeval.safe_mult(left, right)
        if operator == "+":
            return simpleeval.safe_add(left, right)
        return OPERATORS[ast.Pow](left, right)


# ChainableUndefined: ``derived.missing.deeper`` renders n/a instead of raising, as in expressions.
ENV = RuleTemplateEnvironment(
    autoescape=False, finalize=_finalize, keep_trailing_newline=False, undefined=jinja2.ChainableUndefined
)
# Only what evidence needs. No range/lipsum/cycler globals, and no filters that pad or repeat
# (center, indent, format, wordwrap, slice, batch): a template must not be able to stall a report.
ENV.globals.clear()
ALLOWED_FILTERS = (
    "abs", "d", "default", "dictsort", "first", "float", "int", "items", "join", "last", "length",
    "count", "list", "lower", "map", "max", "min", "reject", "rejectattr", "round", "select",
    "selectattr", "sort", "string", "sum", "title", "trim", "truncate", "unique", "upper",
)
ENV.filters = {name: ENV.filters[name] for name in ALLOWED_FILTERS}
ENV.filters["pct"] = pct
ENV.filters["num"] = num

# Template syntax a rule may use: output, if, for, set, and expressions. No macros, blocks,
# includes or imports (recursion and exponential fan-out are how a sandbox still hangs).
_ALLOWED_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.For, nodes.If, nodes.Assign,
    nodes.Name, nodes.Const, nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.Filter, nodes.Test,
    nodes.CondExpr, nodes.And, nodes.Or, nodes.Not, nodes.Compare, nodes.Operand, nodes.Concat,
    nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow, nodes.Neg,
    nodes.Pos, nodes.List, nodes.Tuple, nodes.Dict, nodes.Pair, nodes.Call, nodes.Keyword,
)


class TemplateCompileError(ValueError):
    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """A checked rule template. The Jinja code is compiled on first render: a pack has about 65 templates
    and a run renders the few of the rules that fire, while compiling all of them cost about a third of
    ``report``'s time after imports. Everything that can fail was checked at load (``compile_template``:
    syntax, names (``undeclared_names``), calls, filters and tests)."""

    source: str
    tree: nodes.Template
    names: tuple[NameUse, ...]
    _compiled: jinja2.Template | None = field(default=None, init=False, repr=False)

    @property
    def template(self) -> jinja2.Template:
        if self._compiled is None:
            object.__setattr__(self, "_compiled", ENV.from_string(self.tree))
        return self._compiled  # type: ignore[return-value]

    def render(self, context: Mapping[str, Any]) -> tuple[str, tuple[EvidenceRef, ...]] | None:
        """The rendered text (whitespace collapsed) and the refs that ``cite`` recorded; None when the
        sentence would print a missing value (it is then not produced)."""
        collected: list[EvidenceRef] = []
        # Every root exists, even when the namespace lacks it, so a missing root reads as missing data.
        roots = {name: None for name in ROOT_NAMES}
        met_missing = [False]
        token = _MET_MISSING.set(met_missing)
        try:
            text = self.template.render({**roots, **context, "cite": _make_cite(collected)})
        finally:
            _MET_MISSING.reset(token)
        if met_missing[0]:
            return None
        return " ".join(text.split()), tuple(collected)


# ----------------------------------------------------------------------------------------------
# cite()


def _refs_of(obj: Any) -> list[SourceRef | str]:
    if _is_missing(obj):
        return []
    if isinstance(obj, (SourceRef, str)):
        return [obj]
    for name in ("refs", "ref", "source", "sources"):
        value = get_member(obj, name)
        if value is None or callable(value):
            continue
        if isinstance(value, (SourceRef, str)):
            return [value]
        if isinstance(value, Iterable):
            return [v for v in value if isinstance(v, (SourceRef, str))]
    return []


def _short(refs: list[SourceRef | str]) -> str:
    # One label format for the engine's text and the report's links (analyzer/citations.py).
    return citation_label(refs)


def _epochs_of(obj: Any) -> tuple[int, int] | None:
    """The epoch span of a cited series or window (``first_epoch``..``last_epoch``), when it has one."""
    if isinstance(obj, (SourceRef, str)):
        return None
    first, last = get_member(obj, "first_epoch"), get_member(obj, "last_epoch")
    try:
        return (int(first), int(last)) if not (_is_missing(first) or _is_missing(last)) else None
    except (TypeError, ValueError):
        return None


def _structured(ref: SourceRef | str, epochs: tuple[int, int] | None) -> EvidenceRef:
    if isinstance(ref, SourceRef):
        return EvidenceRef(file=ref.path, line=ref.line, record=ref.record if ref.line is None else None, epochs=epochs)
    return EvidenceRef(file=ref, epochs=epochs)


def _make_cite(collected: list[EvidenceRef]) -> Callable[..., str]:
    def cite(*objs: Any) -> str:
        refs: list[SourceRef | str] = []
        for obj in objs:
            own = _refs_of(obj)
            refs.extend(own)
            epochs = _epochs_of(obj)
            for ref in own:
                structured = _structured(ref, epochs)
                if structured not in collected and len(collected) < MAX_REFS_PER_EVIDENCE:
                    collected.append(structured)
        return _short(refs) or MISSING_TEXT

    return cite


# ----------------------------------------------------------------------------------------------
# Compilation


def _dotted(node: nodes.Node) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, nodes.Getattr):
        parts.append(node.attr)
        node = node.node
    if isinstance(node, nodes.Name):
        parts.append(node.name)
        return parts[::-1]
    return None


def _offset_of(source: str, lineno: int, needle: str | None = None) -> int:
    lines = source.split("\n")
    lineno = min(max(lineno, 1), len(lines))
    start = sum(len(line) + 1 for line in lines[: lineno - 1])
    if needle:
        found = lines[lineno - 1].find(needle)
        if found < 0:
            found = re.sub(r"\s+", " ", lines[lineno - 1]).find(needle)
        if found >= 0:
            return start + found
    return start


def _check_syntax(source: str, every: list[nodes.Node]) -> None:
    """``every``: the template's nodes (``tree.find_all(nodes.Node)``, walked once for all the checks)."""
    for node in every:
        if not isinstance(node, _ALLOWED_NODES):
            offset = _offset_of(source, getattr(node, "lineno", 1) or 1)
            raise TemplateCompileError(f"{type(node).__name__} is not allowed in rule templates", offset)
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            raise TemplateCompileError(f"access to '{node.attr}' is not allowed", _offset_of(source, node.lineno, node.attr))
        if isinstance(node, nodes.Call):
            callee = node.node
            if isinstance(callee, nodes.Name) and callee.name in TEMPLATE_GLOBALS:
                continue
            if isinstance(callee, nodes.Getattr) and callee.attr not in BLOCKED_METHODS:
                continue
            name = callee.attr if isinstance(callee, nodes.Getattr) else getattr(callee, "name", "?")
            offset = _offset_of(source, getattr(node, "lineno", 1) or 1)
            raise TemplateCompileError(f"calling '{name}' is not allowed in rule templates", offset)


def undeclared_names(tree: nodes.Template, every: list[nodes.Node] | None = None) -> set[str]:
    """The names ``tree`` reads from its context: ``jinja2.meta.find_undeclared_variables``, which runs
    Jinja's whole code generator to track scopes, done directly where nothing can be in scope. In a
    template without ``for`` and ``set`` (every shipped template) no name is ever stored, so every name it
    loads comes from the context. The code generator also fails on an unknown filter or test: those
    templates, and any with ``for`` or ``set``, go through Jinja. This was two thirds of checking a pack's
    templates at load. ``tests/test_fast_paths.py`` holds the two to the same answer. ``every``: the
    tree's nodes, when the caller has them."""
    every = list(tree.find_all(nodes.Node)) if every is None else every
    if any(isinstance(n, (nodes.For, nodes.Assign)) for n in every) or not _filters_and_tests_known(every):
        return meta.find_undeclared_variables(tree)
    return {n.name for n in every if isinstance(n, nodes.Name) and n.ctx == "load"}


def _filters_and_tests_known(every: list[nodes.Node]) -> bool:
    return all(n.name in (ENV.filters if isinstance(n, nodes.Filter) else ENV.tests)
               for n in every if isinstance(n, (nodes.Filter, nodes.Test)))


def _name_uses(source: str, tree: nodes.Template, roots: Iterable[str]) -> tuple[NameUse, ...]:
    every = list(tree.find_all(nodes.Node))  # pre-order, as find_all(type) walks: one walk for every check
    _check_syntax(source, every)
    roots = set(roots)
    unknown = undeclared_names(tree, every) - roots - set(TEMPLATE_GLOBALS)
    for name in sorted(unknown):
        hit = next((n for n in every if isinstance(n, nodes.Name) and n.name == name), None)
        offset = _offset_of(source, hit.lineno if hit else 1, name)
        allowed = ", ".join(sorted(roots))
        raise TemplateCompileError(f"unknown name '{name}' (templates start from: {allowed})", offset)
    uses: list[NameUse] = []
    inner: set[int] = set()
    for getattr_node in (n for n in every if isinstance(n, nodes.Getattr)):
        if id(getattr_node) in inner:
            continue
        parts = _dotted(getattr_node)
        # Mark the inner links of this chain so only the longest path is checked.
        node = getattr_node.node
        while isinstance(node, nodes.Getattr):
            inner.add(id(node))
            node = node.node
        if parts and parts[0] in roots:
            path = ".".join(parts)
            uses.append(NameUse(path, _offset_of(source, getattr_node.lineno, path)))
    return tuple(uses)


def compile_template(source: str, *, roots: Iterable[str]) -> Template:
    """Compile ``source``; :class:`TemplateCompileError` with an offset into ``source`` on failure."""
    if not isinstance(source, str):
        raise TemplateCompileError(f"expected a template string, got {type(source).__name__}")
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise TemplateCompileError(f"template is {len(source)} characters long (limit {MAX_TEMPLATE_LENGTH})")
    try:
        tree = ENV.parse(source)
        uses = _name_uses(source, tree, roots)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateCompileError(f"template error: {exc.message}", _offset_of(source, exc.lineno or 1)) from None
    except TemplateCompileError:
        raise
    except Exception as exc:  # noqa: BLE001 - Jinja folds constants while compiling: any error is the template's
        raise TemplateCompileError(f"template error: {type(exc).__name__}: {exc}") from None
    return Template(source=source, tree=tree, names=uses)


__all__ = [
    "ENV",
    "MISSING_TEXT",
    "Template",
    "TemplateCompileError",
    "compile_template",
    "num",
    "pct",
]
