"""Safe rule expressions: parsed and checked once when a rule loads, evaluated many times.

Evaluation goes through ``simpleeval`` (never Python's ``eval``/``exec``), on an AST that
:func:`compile_expr` has already checked against a whitelist of node types, functions and names.

Missing values (the choice every rule author needs to know)
-----------------------------------------------------------
A run often lacks something a rule reads (no EMA pass, no eval loss, a metric never logged).
At evaluation time a missing value is ``None`` (or the namespace builder's own "missing"
sentinel: any falsy object that reads as NaN as a number, see :func:`is_absent`) and never an
exception:

* ``a.b`` on ``None``, a missing mapping key or a missing attribute gives ``None``; mappings are
  read by key first, so ``config.items`` is the ``items`` argument, not ``dict.items``.
* ``x[k]`` on ``None`` or with a missing key gives ``None``.
* A comprehension over ``None`` is empty (``any(e.kind == "oom" for e in events)`` is False).
* Arithmetic with ``None`` gives ``None`` (``None * 2`` is ``None``).
* Any comparison with ``None`` other than ``==``, ``!=``, ``is`` and ``is not`` is ``False``
  (``<``, ``<=``, ``>``, ``>=``, ``in`` and ``not in``). NaN compares ``False`` as usual.
* ``abs round float int len log exp sqrt any all`` return ``None`` for a ``None`` argument;
  ``min``/``max`` skip ``None`` and NaN (``None`` when nothing is left); ``isnan(None)`` is True
  and ``isfinite(None)`` False.
* ``log``/``sqrt``/``exp`` are total: ``log(0)`` is ``-inf``, ``log(-1)`` and ``sqrt(-1)`` NaN,
  ``exp(1000)`` ``inf``.

So ``when: derived.ema_init_share > 0.5`` is simply false on a run without EMA. *Unknown* names
are a different matter: they are load-time errors when the loader is given the known names.
"""

from __future__ import annotations

import ast
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import simpleeval

# ``symptoms``: the symptom rules that fired on this run (evaluated before the causes; see engine/evaluate.py).
ROOT_NAMES: tuple[str, ...] = ("config", "derived", "series", "events", "symptoms")

# Methods of builtin types a rule may not call: those that build arbitrarily large values from a
# small literal (padding, joining, replacing) and those that would change the shared namespace.
BLOCKED_METHODS = frozenset(
    {
        "ljust", "rjust", "center", "zfill", "expandtabs", "replace", "join", "format", "format_map",
        "translate", "maketrans", "encode", "decode", "mro",
        "append", "extend", "insert", "remove", "pop", "popitem", "clear", "update", "setdefault",
        "sort", "reverse", "add", "discard", "difference_update", "intersection_update",
        "symmetric_difference_update", "copy",
    }
)
MAX_EXPRESSION_LENGTH = 2000
MAX_INT_BITS = 10_000  # an int power may not produce more bits than this
MAX_EXPONENT = 1000


class ExprError(ValueError):
    """An expression rejected at load time. ``offset`` indexes the expression text (0-based)."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.message = message
        self.offset = offset


class EvalError(ValueError):
    """An expression that failed at evaluation time (bad types, too large, ...)."""


# ----------------------------------------------------------------------------------------------
# Missing values

_PLAIN_TYPES = (bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset, Mapping)


def is_absent(value: Any) -> bool:
    """``None``, or a "missing" sentinel of the namespace builder: an object that is falsy and
    reads as NaN when taken as a number (duck-typed, so the engine needs no import of it)."""
    if value is None:
        return True
    if isinstance(value, _PLAIN_TYPES) or isinstance(value, numbers.Number):
        return False
    try:
        return not value and math.isnan(float(value))
    except Exception:  # noqa: BLE001 - arrays, objects without __float__: present
        return False


def is_missing(value: Any) -> bool:
    """Absent, or a NaN number."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return math.isnan(float(value))
    return is_absent(value)


# ----------------------------------------------------------------------------------------------
# Functions available to expressions


def _null_safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if any(is_absent(a) for a in args):
            return None
        return fn(*args, **kwargs)

    wrapper.__name__ = getattr(fn, "__name__", "fn")
    return wrapper


def _log(x: float) -> float:
    x = float(x)
    if x == 0:
        return -math.inf
    return math.log(x) if x > 0 else math.nan


def _sqrt(x: float) -> float:
    x = float(x)
    return math.sqrt(x) if x >= 0 else math.nan


def _exp(x: float) -> float:
    try:
        return math.exp(float(x))
    except OverflowError:
        return math.inf


def _isnan(x: Any) -> bool:
    if is_absent(x):
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def _isfinite(x: Any) -> bool:
    if is_absent(x):
        return False
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _present(values: Iterable[Any]) -> list[Any]:
    return [v for v in values if not is_missing(v)]


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    def extreme(*args: Any) -> Any:
        values = args[0] if len(args) == 1 else args
        if is_absent(values):
            return None
        kept = _present(values)
        return pick(kept) if kept else None

    extreme.__name__ = pick.__name__
    return extreme


def _round(x: Any, ndigits: int | None = None) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return x  # round(inf) raises; a rule should just see inf back
    return round(x, ndigits) if ndigits is not None else round(x)


FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "abs": _null_safe(abs),
    "min": _extreme(min),
    "max": _extreme(max),
    "round": _null_safe(_round),
    "len": _null_safe(len),
    "any": _null_safe(any),
    "all": _null_safe(all),
    "log": _null_safe(_log),
    "exp": _null_safe(_exp),
    "sqrt": _null_safe(_sqrt),
    "isnan": _isnan,
    "isfinite": _isfinite,
    "float": _null_safe(float),
    "int": _null_safe(int),
    "str": str,
}


# ----------------------------------------------------------------------------------------------
# Member access shared by expressions and templates


def get_member(obj: Any, name: str) -> Any:
    """``obj.name`` the way rules see it: mapping key first, then attribute, else None."""
    if is_absent(obj) or name.startswith("_"):
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    try:
        return getattr(obj, name)
    except AttributeError:
        return None


# ----------------------------------------------------------------------------------------------
# Operators


def _safe_pow(a: Any, b: Any) -> Any:
    if isinstance(a, numbers.Integral) and isinstance(b, numbers.Integral):
        if abs(b) > MAX_EXPONENT or int(a).bit_length() * abs(int(b)) > MAX_INT_BITS:
            raise EvalError(f"{a} ** {b} is too large")
        return a**b
    try:
        return float(a) ** float(b) if not isinstance(a, complex) else a**b
    except OverflowError:
        return math.inf
    except ZeroDivisionError:
        return math.inf


_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)

OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: simpleeval.safe_add,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: simpleeval.safe_mult,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: _safe_pow,
    ast.USub: lambda a: -a,
    ast.UAdd: lambda a: +a,
    ast.Not: lambda a: not a,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}


class RuleEvaluator(simpleeval.EvalWithCompoundTypes):
    """simpleeval with the missing-value semantics above; one instance per namespace."""

    def __init__(self, namespace: Mapping[str, Any]):
        super().__init__(operators=dict(OPERATORS), functions=dict(FUNCTIONS), names={})
        for extra in ("list", "tuple", "dict", "set"):  # compound-type constructors: not in our vocabulary
            self.functions.pop(extra, None)
        self.namespace = namespace
        self.ATTR_INDEX_FALLBACK = False

    def _eval_name(self, node: ast.Name) -> Any:
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        if node.id in self.namespace:
            return self.namespace[node.id]
        if node.id in ROOT_NAMES:
            return None
        raise simpleeval.NameNotDefined(node.id, self.expr)

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("_") or node.attr in simpleeval.DISALLOW_METHODS:
            raise simpleeval.FeatureNotAvailable(f"access to '{node.attr}' is not allowed")
        return get_member(self._eval(node.value), node.attr)

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        container = self._eval(node.value)
        key = self._eval(node.slice)
        if is_absent(container) or is_absent(key):
            return None
        try:
            return container[key]
        except (KeyError, IndexError):
            return None

    def _eval_binop(self, node: ast.BinOp) -> Any:
        left, right = self._eval(node.left), self._eval(node.right)
        if is_absent(left) or is_absent(right):
            return None
        return self.operators[type(node.op)](left, right)

    def _eval_unaryop(self, node: ast.UnaryOp) -> Any:
        operand = self._eval(node.operand)
        if is_absent(operand) and not isinstance(node.op, ast.Not):
            return None
        return self.operators[type(node.op)](operand)

    def _eval_comprehension(self, node: ast.AST) -> Any:
        # Iterating a missing collection yields nothing (``any(... for e in events)`` on a run
        # without events is simply False).
        if is_absent(self._eval(node.generators[0].iter)):
            return []
        return super()._eval_comprehension(node)

    def _eval_compare(self, node: ast.Compare) -> Any:
        right = self._eval(node.left)
        for operation, comparator in zip(node.ops, node.comparators):
            left, right = right, self._eval(comparator)
            if (is_absent(left) or is_absent(right)) and isinstance(operation, _ORDERING):
                return False
            if not self.operators[type(operation)](left, right):
                return False
        return True


# ----------------------------------------------------------------------------------------------
# Load-time checks


_ALLOWED_NODES: tuple[type, ...] = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp,
    ast.Call, ast.keyword, ast.Name, ast.Load, ast.Store, ast.Attribute, ast.Subscript, ast.Slice,
    ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.ListComp, ast.GeneratorExp,
    ast.comprehension,
    *OPERATORS.keys(),
)


@dataclass(frozen=True, slots=True)
class NameUse:
    """A dotted name an expression reads, e.g. ``series.eval_top1.stall.last_epoch``."""

    path: str
    offset: int  # where it starts in the expression text


def _dotted(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


class _Checker(ast.NodeVisitor):
    def __init__(self, text: str, roots: Iterable[str]):
        self.text = text
        self.roots = set(roots)
        self.line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self.line_starts.append(i + 1)
        self.bound: list[set[str]] = []
        self.uses: list[NameUse] = []

    def offset(self, node: ast.AST) -> int:
        line = getattr(node, "lineno", 1)
        col_bytes = getattr(node, "col_offset", 0)
        start = self.line_starts[line - 1]
        line_text = self.text[start:].split("\n", 1)[0]
        col = len(line_text.encode("utf-8")[:col_bytes].decode("utf-8", "ignore"))
        return start + col

    def fail(self, node: ast.AST, message: str) -> None:
        raise ExprError(message, self.offset(node))

    def generic_visit(self, node: ast.AST) -> None:
        if not isinstance(node, _ALLOWED_NODES):
            self.fail(node, f"{type(node).__name__} is not allowed in rule expressions")
        super().generic_visit(node)

    def is_bound(self, name: str) -> bool:
        return any(name in scope for scope in self.bound)

    def check_attr(self, node: ast.AST, attr: str) -> None:
        if attr.startswith("_") or attr in simpleeval.DISALLOW_METHODS:
            self.fail(node, f"access to '{attr}' is not allowed")

    def check_root(self, node: ast.AST, name: str) -> bool:
        """True when ``name`` starts a namespace path (as opposed to a bound or literal name)."""
        self.check_attr(node, name)
        if self.is_bound(name) or name in ("True", "False", "None"):
            return False
        if name in FUNCTIONS:
            self.fail(node, f"function '{name}' must be called")
        if name not in self.roots:
            roots = ", ".join(sorted(self.roots))
            self.fail(node, f"unknown name '{name}' (expressions start from: {roots})")
        return True

    def visit_Attribute(self, node: ast.Attribute) -> None:
        parts = _dotted(node)
        if parts is None:
            self.check_attr(node, node.attr)
            self.generic_visit(node)
            return
        for part in parts[1:]:
            self.check_attr(node, part)
        if self.check_root(node, parts[0]):
            self.uses.append(NameUse(".".join(parts), self.offset(node)))

    def visit_Name(self, node: ast.Name) -> None:
        if self.check_root(node, node.id):
            self.uses.append(NameUse(node.id, self.offset(node)))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            if func.id not in FUNCTIONS:
                allowed = ", ".join(FUNCTIONS)
                self.fail(func, f"unknown function '{func.id}' (allowed: {allowed})")
        elif isinstance(func, ast.Attribute):
            if func.attr in BLOCKED_METHODS:
                self.fail(func, f"calling '.{func.attr}()' is not allowed in rule expressions")
            self.visit(func)  # a method of a namespace object, e.g. derived.ema.weight_at(10)
        else:
            self.fail(func, "only named functions and methods can be called")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.fail(arg, "*args is not allowed in rule expressions")
            self.visit(arg)
        for kw in node.keywords:
            if kw.arg is None:
                self.fail(kw.value, "**kwargs is not allowed in rule expressions")
            self.visit(kw.value)

    def _visit_comprehension(self, node: ast.ListComp | ast.GeneratorExp) -> None:
        scope: set[str] = set()
        self.bound.append(scope)
        try:
            for gen in node.generators:
                if gen.is_async:
                    self.fail(node, "async comprehensions are not allowed")
                self.visit(gen.iter)
                for target in ast.walk(gen.target):
                    if isinstance(target, ast.Name):
                        if target.id.startswith("_"):
                            self.fail(target, f"access to '{target.id}' is not allowed")
                        scope.add(target.id)
                    elif not isinstance(target, (ast.Tuple, ast.Store)):
                        self.fail(target, "comprehension targets must be plain names")
                for cond in gen.ifs:
                    self.visit(cond)
            self.visit(node.elt)
        finally:
            self.bound.pop()

    visit_ListComp = _visit_comprehension
    visit_GeneratorExp = _visit_comprehension

    def visit_BinOp(self, node: ast.BinOp) -> None:
        # Reject a constant power that could never be evaluated now, not on every run later.
        if isinstance(node.op, ast.Pow) and isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant):
            try:
                _safe_pow(node.left.value, node.right.value)
            except (EvalError, TypeError) as exc:
                self.fail(node, str(exc))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, (str, bytes)) and len(node.value) > MAX_EXPRESSION_LENGTH:
            self.fail(node, "string literal is too long")


def _count_and_clauses(node: ast.AST) -> int:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return sum(_count_and_clauses(v) for v in node.values)
    return 1


@dataclass(frozen=True, slots=True, eq=False)
class Expr:
    """A compiled rule expression. ``text`` is exactly what the rule file holds."""

    text: str
    body: ast.expr
    names: tuple[NameUse, ...]
    shift: int  # characters stripped from the front of ``text`` before parsing

    @property
    def and_clauses(self) -> int:
        return _count_and_clauses(self.body)

    def evaluate(self, evaluator: RuleEvaluator) -> Any:
        try:
            return evaluator.eval(self.text, previously_parsed=self.body)
        except (simpleeval.InvalidExpression, EvalError) as exc:
            raise EvalError(str(exc)) from None
        except (TypeError, ValueError, ArithmeticError, RecursionError, MemoryError) as exc:
            raise EvalError(f"{type(exc).__name__}: {exc}") from None

    def iter_names(self) -> Iterator[NameUse]:
        for use in self.names:
            yield NameUse(use.path, use.offset + self.shift)


def compile_expr(text: str, *, roots: Iterable[str] = ROOT_NAMES) -> Expr:
    """Parse and check ``text``; :class:`ExprError` (with an offset into ``text``) if it is unsafe or invalid."""
    if not isinstance(text, str):
        raise ExprError(f"expected an expression string, got {type(text).__name__}")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExprError(f"expression is {len(text)} characters long (limit {MAX_EXPRESSION_LENGTH})")
    # Block scalars keep their newlines; an expression is one logical line, so fold them (offsets unchanged).
    stripped = text.replace("\r", " ").replace("\n", " ")
    shift = len(stripped) - len(stripped.lstrip())
    source = stripped.strip()
    if not source:
        raise ExprError("empty expression")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        col = (exc.offset or 1) - 1
        raise ExprError(f"syntax error: {exc.msg}", shift + max(col, 0)) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError("expression is nested too deeply", shift) from None
    checker = _Checker(source, roots)
    try:
        checker.visit(tree)
    except ExprError as exc:
        raise ExprError(exc.message, exc.offset + shift) from None
    except RecursionError:
        raise ExprError("expression is nested too deeply", shift) from None
    return Expr(text=text, body=tree.body, names=tuple(checker.uses), shift=shift)


__all__ = [
    "BLOCKED_METHODS",
    "is_absent",
    "is_missing",
    "EvalError",
    "Expr",
    "ExprError",
    "FUNCTIONS",
    "MAX_EXPRESSION_LENGTH",
    "NameUse",
    "ROOT_NAMES",
    "RuleEvaluator",
    "compile_expr",
    "get_member",
]
