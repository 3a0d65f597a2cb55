"""Evidence templates: sandboxed, bounded, and calm about missing values."""

from __future__ import annotations

import pytest

from mnv4_postmortem.analyzer.engine.templating import TemplateCompileError, compile_template

ROOTS = ("config", "derived", "series", "events")


def render(source: str, context: dict) -> str:
    return compile_template(source, roots=ROOTS).render(context)[0]


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ config.__class__ }}", "'__class__' is not allowed"),
        ("{{ config.model.ljust(100) }}", "calling 'ljust'"),
        ("{{ events.append(1) }}", "calling 'append'"),
        ("{{ range(10) }}", "calling 'range'"),
        ("{{ lipsum(5) }}", "calling 'lipsum'"),
        ("{% macro f() %}{% endmacro %}", "Macro is not allowed"),
        ("{% include 'x' %}", "Include is not allowed"),
        ("{% filter upper %}x{% endfilter %}", "FilterBlock is not allowed"),
        ("{{ '%s' | format(1) }}", "No filter named 'format'"),
        ("{{ 'x' | center(1000000000) }}", "No filter named 'center'"),
        ("{{ nope.x }}", "unknown name 'nope'"),
        ("{{ config.x ", "template error"),
        ("{{ x | nosuchfilter }}", "template error"),
    ],
)
def test_hostile_or_broken_templates_fail_to_compile(source, fragment):
    with pytest.raises(TemplateCompileError) as info:
        compile_template(source, roots=ROOTS)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ config.model * config.n }}", "that long"),
        ("{{ 'x' * 1000000000 }}", "that long"),   # not folded at compile time: the operator is intercepted
        ("{{ 10 ** 100000 }}", "too large"),
        ("{{ config.model + config.model * 60000 }}", "that long"),
    ],
)
def test_growth_is_bounded_at_render_time(source, fragment):
    template = compile_template(source, roots=ROOTS)
    with pytest.raises(Exception, match=fragment):
        template.render({"config": {"model": "abc", "n": 10**8}})


@pytest.mark.parametrize("source", ["{{ derived.a.b.c }}", "{{ config.x | pct }}", "{{ series }}",
                                    "the LR was {{ derived.lr or series.lr }} ({{ derived.ratio | num }}x)"])
def test_a_sentence_that_would_print_a_missing_value_is_not_produced(source):
    # issue 17 item 1: "the LR at that point was n/a (n/ax a typical n/a LR ...)" reached a report
    assert compile_template(source, roots=ROOTS).render({"config": {}, "derived": {"ratio": None}}) is None


def test_missing_values_can_be_guarded_or_said_unknown():
    source = "{% if derived.lr %}lr {{ derived.lr }}; {% endif %}opt {{ config.opt | d('unknown', true) }}"
    assert render(source, {"config": {"opt": None}, "derived": {}}) == "opt unknown"
    assert render(source, {"config": {"opt": "sgd"}, "derived": {"lr": 0.1}}) == "lr 0.1; opt sgd"


def test_loops_filters_and_tests_over_namespace_data():
    events = [{"kind": "resume", "epoch": 3}, {"kind": "nonfinite", "epoch": 7}, {"kind": "nonfinite", "epoch": 9}]
    source = (
        "{% for e in events if e.kind == 'nonfinite' %}{{ loop.index }}:{{ e.epoch }} {% endfor %}"
        "{{ events | selectattr('kind', 'equalto', 'nonfinite') | map(attribute='epoch') | join(', ') }}"
        "{% if config.lr is number %} lr={{ config.lr | num(2) }}{% endif %}"
    )
    assert render(source, {"events": events, "config": {"lr": 0.123456}}) == "1:7 2:9 7, 9 lr=0.12"


def test_whitespace_is_collapsed_for_one_line_evidence():
    assert render("a\n    b   c\n", {}) == "a b c"
