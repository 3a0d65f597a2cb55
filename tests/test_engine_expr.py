"""Rule expressions: compiled once, safe, and calm about missing values."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from mnv4_postmortem.analyzer.engine.expr import (
    MAX_EXPRESSION_LENGTH,
    EvalError,
    ExprError,
    RuleEvaluator,
    compile_expr,
)

NAMESPACE = {
    "config": {"model_ema": True, "model_ema_decay": 0.9998, "lr": 0.6, "items": 3, "sched": "cosine",
               "model": "mobilenetv4_conv_small"},
    "derived": SimpleNamespace(updates_run=400, ema=SimpleNamespace(weight_at=lambda step: 0.9998**step)),
    "series": {"eval_top1": {"stall": {"epochs": [0, 5], "last_epoch": 5}, "values": [1.0, 2.0, math.nan]}},
    "events": [{"kind": "resume", "epoch": 3}, {"kind": "nonfinite", "epoch": 7}],
}


def run(text: str, namespace=NAMESPACE):
    return compile_expr(text).evaluate(RuleEvaluator(namespace))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("config.model_ema and config.lr > 0.1", True),
        ("series.eval_top1.stall.last_epoch - series.eval_top1.stall.epochs[0] + 1", 6),
        ("derived.updates_run * (1 - config.model_ema_decay)", pytest.approx(0.08)),
        ("round(derived.ema.weight_at(100), 3)", 0.98),
        ("config.items", 3),  # a mapping key wins over dict.items
        ("config.sched in ['cosine', 'step']", True),
        ("config.model.startswith('mobilenetv4')", True),
        ("any(e.kind == 'nonfinite' for e in events)", True),
        ("min(e.epoch for e in events if e.kind == 'nonfinite')", 7),
        ("max(series.eval_top1.values)", 2.0),  # NaN skipped
        ("len([e for e in events if e.epoch > 2])", 2),
        ("sqrt(16) + exp(0) + abs(-1) + float('2') + int(2.7)", 10.0),
        ("isnan(series.eval_top1.values[2]) and isfinite(1.0)", True),
        ("'x' if config.lr > 1 else 'y'", "y"),
        ("2 ** 10", 1024),
    ],
)
def test_expressions_evaluate_over_mappings_and_objects(text, expected):
    assert run(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("series.eval_top2.stall.last_epoch", None),      # missing key, then attribute of None
        ("derived.nothing_here", None),                     # missing attribute on an object
        ("series.eval_top2.stall.last_epoch > 3", False),   # ordering against None is false
        ("series.eval_top2.stall.last_epoch <= 3", False),
        ("series.eval_top2 == None", True),
        ("series.eval_top2 * 2 + 1", None),                 # arithmetic propagates None
        ("-series.eval_top2", None),
        ("not series.eval_top2", True),
        ("abs(series.eval_top2)", None),
        ("round(series.eval_top2, 2)", None),
        ("isnan(series.eval_top2)", True),
        ("isfinite(series.eval_top2)", False),
        ("max(series.eval_top2, 3)", 3),
        ("min([])", None),
        ("series.eval_top1.values[10]", None),
        ("3 in series.eval_top2", False),
        ("log(0)", -math.inf),
        ("exp(10000)", math.inf),
    ],
)
def test_missing_values_never_raise(text, expected):
    assert run(text) == expected


def test_nan_results_stay_nan():
    assert math.isnan(run("log(-1) + sqrt(-1)"))


def test_a_missing_root_is_none():
    assert run("derived.updates_run", {"config": {}}) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("().__class__", "'__class__' is not allowed"),
        ("config.__class__.__mro__", "'__class__' is not allowed"),
        ("config._private", "'_private' is not allowed"),
        ("config.model.format(1)", "'.format()' is not allowed"),
        ("config.model.ljust(10 ** 9)", "'.ljust()' is not allowed"),
        ("events.append(1)", "'.append()' is not allowed"),
        ("config.update(lr=1)", "'.update()' is not allowed"),
        ("__import__('os')", "unknown function '__import__'"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("eval('1')", "unknown function 'eval'"),
        ("getattr(config, 'x')", "unknown function 'getattr'"),
        ("list(config)", "unknown function 'list'"),
        ("os.system('true')", "unknown name 'os'"),
        ("max", "function 'max' must be called"),
        ("(lambda: 1)()", "only named functions"),
        ("lambda: 1", "Lambda is not allowed"),
        ("[x := 1]", "NamedExpr is not allowed"),
        ("f'{config}'", "JoinedStr is not allowed"),
        ("1 << 30", "LShift is not allowed"),
        ("config.lr | 1", "BitOr is not allowed"),
        ("max(*config)", "*args is not allowed"),
        ("round(**config)", "**kwargs is not allowed"),
        ("[c.__class__ for c in events]", "'__class__' is not allowed"),
        ("[_ for _ in events]", "'_' is not allowed"),
        ("10 ** 100000", "too large"),
        ("config.lr >", "syntax error"),
        ("config.lr; 1", "syntax error"),
        ("", "empty expression"),
    ],
)
def test_unsafe_or_invalid_expressions_are_rejected_at_compile_time(text, fragment):
    with pytest.raises(ExprError) as info:
        compile_expr(text)
    assert fragment in info.value.message


def test_length_limit():
    text = " + ".join(["1"] * (MAX_EXPRESSION_LENGTH // 4 + 1))
    assert len(text) > MAX_EXPRESSION_LENGTH
    with pytest.raises(ExprError, match="characters long"):
        compile_expr(text)


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(ExprError):
        compile_expr("(" * 500 + "1" + ")" * 500)


@pytest.mark.parametrize(
    "text",
    [
        "9 ** 9 ** 9",                       # only known at run time to be huge
        "config.model * 10 ** 6",            # a string of 20 MB
        "[1] * (10 ** 6)",
        "config.lr / 0",
        "config.model + 1",
    ],
)
def test_runaway_or_ill_typed_evaluation_raises_eval_error(text):
    with pytest.raises(EvalError):
        run(text)


def test_error_offsets_point_into_the_expression_text():
    with pytest.raises(ExprError) as info:
        compile_expr("  config.lr > 1 and series.x.__dict__")
    assert info.value.offset == len("  config.lr > 1 and ")


def test_compiled_expression_records_names_and_clause_count():
    expr = compile_expr("config.model_ema and not config.model_ema_warmup and (series.a.last > 1 and derived.x)")
    assert [u.path for u in expr.iter_names()] == [
        "config.model_ema", "config.model_ema_warmup", "series.a.last", "derived.x",
    ]
    assert expr.and_clauses == 4
    assert compile_expr("config.a or config.b").and_clauses == 1


def test_comprehension_variables_are_not_namespace_names():
    expr = compile_expr("any(e.kind == 'oom' for e in events)")
    assert [u.path for u in expr.iter_names()] == ["events"]


def test_a_compiled_expression_is_reusable_across_namespaces():
    expr = compile_expr("config.lr > 0.1")
    assert expr.evaluate(RuleEvaluator({"config": {"lr": 0.6}})) is True
    assert expr.evaluate(RuleEvaluator({"config": {"lr": 0.01}})) is False
