"""promtool-style expanding notation for inline test series."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnv4_postmortem.analyzer.engine.notation import MAX_VALUES, NotationError, parse_series


def test_examples_from_the_rule_format():
    loss = parse_series("6.9-0.25x19")
    assert len(loss) == 20 and loss[0] == 6.9 and loss[-1] == pytest.approx(6.9 - 0.25 * 19)
    top1 = parse_series("0.1x9 4+4x9")
    assert top1.tolist()[:10] == [0.1] * 10
    assert top1.tolist()[10:] == [4.0 * k for k in range(1, 11)]


def test_promtool_examples():
    assert parse_series("-2+4x3").tolist() == [-2, 2, 6, 10]
    assert parse_series("1-2x4").tolist() == [1, -1, -3, -5, -7]
    assert parse_series("1x4").tolist() == [1, 1, 1, 1, 1]
    values = parse_series("1 _x3 2")
    assert values[0] == 1 and values[-1] == 2 and len(values) == 5 and np.isnan(values[1:4]).all()


def test_special_values_and_separators():
    values = parse_series("nan, inf -inf _ 1e-3-2e-4x2 +5 .5")
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf and math.isnan(values[3])
    assert values[4:7].tolist() == pytest.approx([1e-3, 8e-4, 6e-4])
    assert values[7:].tolist() == [5.0, 0.5]
    assert np.isnan(parse_series("nanx2")).sum() == 3
    assert parse_series("").dtype == np.float64 and len(parse_series("  ")) == 0


@pytest.mark.parametrize(("text", "position"), [("1 stale", 2), ("1+x3", 0), ("x3", 0), ("1x", 0), ("1 2 abc", 4), ("1++2x3", 0)])
def test_bad_tokens_name_their_position(text, position):
    with pytest.raises(NotationError) as info:
        parse_series(text)
    assert info.value.position == position


@pytest.mark.parametrize("text", [f"1x{MAX_VALUES}", f"_x{MAX_VALUES + 1}", f"1x{MAX_VALUES // 2} 1x{MAX_VALUES // 2}"])
def test_runaway_expansion_is_refused(text):
    with pytest.raises(NotationError, match="more than"):
        parse_series(text)


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(-1000, 1000),
    step=st.integers(0, 100),
    sign=st.sampled_from("+-"),
    count=st.integers(0, 200),
)
def test_expansion_matches_its_definition(start, step, sign, count):
    values = parse_series(f"{start}{sign}{step}x{count}")
    delta = step if sign == "+" else -step
    assert values.tolist() == [start + delta * k for k in range(count + 1)]
