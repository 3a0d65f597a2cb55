"""num_classes inferred from the curves alone: loss plateaus at ln C, top-1/top-5 at 100/C and 500/C."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnv4_postmortem.analyzer.features.num_classes import (
    COMMON_CLASS_COUNTS,
    LOSS_TOLERANCE,
    from_accuracy,
    from_loss_plateau,
    infer_num_classes,
)


@pytest.mark.parametrize("classes", COMMON_CLASS_COUNTS)
def test_an_eval_loss_plateau_at_ln_c_gives_c(classes):
    rng = np.random.default_rng(classes)
    loss = math.log(classes) * (1 + rng.uniform(-0.5, 0.5, 8) * LOSS_TOLERANCE)
    c, source, confidence = infer_num_classes(eval_loss=loss)
    assert c == classes and "eval_loss" in source and f"ln {classes}" in source
    assert confidence < 0.9  # lower than a stated class count


def test_common_class_counts_are_far_enough_apart_for_the_tolerance():
    logs = sorted(math.log(c) for c in COMMON_CLASS_COUNTS)
    assert all(b / a - 1 > 2 * LOSS_TOLERANCE for a, b in zip(logs, logs[1:]))


def test_a_learning_curve_passing_through_ln_c_is_not_a_plateau():
    loss = np.linspace(2.6, 0.5, 20)  # crosses ln 10 = 2.303 within one epoch
    assert from_loss_plateau(loss) is None


def test_an_uncommon_class_count_is_not_guessed_from_the_loss():
    assert from_loss_plateau([math.log(37)] * 6) is None


def test_accuracy_route_and_agreeing_top1():
    assert from_accuracy([0.5] * 6, [2.5] * 6)[0] == 200
    assert from_accuracy([10, 30, 50, 60, 61], [50, 80, 90, 95, 95]) is None
    with_top1 = from_loss_plateau([2.30] * 5, top1=[10.0] * 5)
    without = from_loss_plateau([2.30] * 5)
    assert with_top1[2] > without[2]


def test_train_loss_is_the_last_resort_and_says_so():
    c, source, confidence = infer_num_classes(train_loss=[6.95, 6.91, 6.90, 6.92, 5.0])
    assert c == 1000 and "train_loss" in source and confidence == 0.6
    assert infer_num_classes() is None
