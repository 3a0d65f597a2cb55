"""The rule engine: YAML rules -> safe expressions and templates -> findings.

Public API::

    pack = load_pack([Path("my-rules")], known_names=schema)    # shipped + user rules (user ids override)
    pack = load_rules([Path("rules")], known_names=schema)      # or load_builtin_rules()
    result = evaluate(pack, namespace, pipeline_meta={"args": ..., "defaults": ...})
    findings = evaluate_rules(pack, namespace)                  # just the findings
    results = run_rule_tests(pack, files, diagnose=..., load_run=..., make_run=...)
"""

from mnv4_postmortem.analyzer.timm.command_line import render_train_command
from mnv4_postmortem.analyzer.engine.evaluate import Evaluation, evaluate, evaluate_rule, evaluate_rules
from mnv4_postmortem.analyzer.engine.expr import ROOT_NAMES, EvalError, Expr, ExprError, compile_expr
from mnv4_postmortem.analyzer.engine.loader import RulePack, builtin_rules_root, find_test_files, load_builtin_rules, load_pack, load_rules
from mnv4_postmortem.analyzer.engine.notation import NotationError, parse_series
from mnv4_postmortem.analyzer.engine.schema import CAUSES, NameSchema, Rule, RuleError
from mnv4_postmortem.analyzer.engine.testing import CaseResult, load_test_suite, run_rule_tests

__all__ = [
    "CAUSES",
    "CaseResult",
    "EvalError",
    "Evaluation",
    "Expr",
    "ExprError",
    "NameSchema",
    "NotationError",
    "ROOT_NAMES",
    "Rule",
    "RuleError",
    "RulePack",
    "builtin_rules_root",
    "compile_expr",
    "evaluate",
    "evaluate_rule",
    "evaluate_rules",
    "find_test_files",
    "load_builtin_rules",
    "load_pack",
    "load_rules",
    "load_test_suite",
    "parse_series",
    "render_train_command",
    "run_rule_tests",
]
