"""num_classes inferred from the curves alone (timm/recipe.py): loss plateaus at ln C, top-1/top-5 at 100/C and 500/C."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mnv4_postmortem.analyzer.model import TrainConfig
from mnv4_postmortem.analyzer.timm.recipe import (
    COMMON_CLASS_COUNTS,
    CONFIDENCE_PRIOR_SIGNATURE,
    LOSS_TOLERANCE,
    RecipeFacts,
    from_loss_plateau,
    from_first_eval,
    from_prior_signature,
    num_classes_from_curves,
    resolve_recipe,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("classes", COMMON_CLASS_COUNTS)
def test_an_eval_loss_plateau_at_ln_c_gives_c(classes):
    rng = np.random.default_rng(classes)
    loss = math.log(classes) * (1 + rng.uniform(-0.5, 0.5, 8) * LOSS_TOLERANCE)
    c, source, confidence = num_classes_from_curves(RecipeFacts(eval_loss=loss))
    assert c == classes and "eval_loss" in source and f"ln {classes}" in source
    assert confidence < 0.9  # lower than a stated class count


def test_common_class_counts_are_far_enough_apart_for_the_tolerance():
    logs = sorted(math.log(c) for c in COMMON_CLASS_COUNTS)
    assert all(b / a - 1 > 2 * LOSS_TOLERANCE for a, b in zip(logs, logs[1:]))


def test_a_learning_curve_passing_through_ln_c_is_not_a_plateau():
    assert from_loss_plateau(np.linspace(2.6, 0.5, 20)) is None  # crosses ln 10 = 2.303 within one epoch


def test_an_uncommon_class_count_is_not_guessed_from_the_loss():
    assert from_loss_plateau([math.log(37)] * 6) is None


def test_accuracy_route_first_and_agreeing_top1_raises_the_loss_route():
    c, source, confidence = num_classes_from_curves(RecipeFacts(eval_top1=np.full(6, 0.5), eval_top5=np.full(6, 2.5),
                                                                eval_loss=np.full(6, math.log(10))))
    assert (c, confidence) == (200, 0.9) and "eval_top1" in source
    assert from_loss_plateau([2.30] * 5, top1=[10.0] * 5)[2] > from_loss_plateau([2.30] * 5)[2]


def test_train_loss_is_the_last_resort_and_resolve_recipe_stores_the_confidence():
    facts = RecipeFacts(train_loss=np.array([6.95, 6.91, 6.90, 6.92, 5.0]))
    c, source, confidence = num_classes_from_curves(facts)
    assert c == 1000 and "train_loss" in source and confidence == 0.6
    config = resolve_recipe(TrainConfig(values={}), facts)
    assert config.effective["num_classes"] == 1000
    assert config.recipe.num_classes.value == 1000 and config.recipe.num_classes.kind == "inferred"
    assert config.recipe.num_classes.confidence == 0.6
    assert "confidence 0.60" in config.effective_sources["num_classes"]
    assert num_classes_from_curves(RecipeFacts()) is None


def test_prior_signature_reads_c_off_noisy_accuracies_at_chance():
    # r18_grat_randlabels_v1's summary rows (no num_classes): top-1 and top-5 bounce around 100/C and 500/C
    summary = pd.read_csv(REPO / "fixtures/runs/r18_grat_randlabels_v1/summary.csv")
    facts = RecipeFacts(eval_top1=summary["eval_top1"].to_numpy(), eval_top5=summary["eval_top5"].to_numpy(),
                        epochs=summary["epoch"].to_numpy())
    c, source, confidence = num_classes_from_curves(facts)
    assert c == 10 and "500/10" in source and confidence == CONFIDENCE_PRIOR_SIGNATURE


def test_prior_signature_not_read_off_a_learning_run():
    summary = pd.read_csv(REPO / "fixtures/runs/v1_healthy/summary.csv")
    assert from_prior_signature(summary["eval_top1"].to_numpy(), summary["eval_top5"].to_numpy()) is None


def test_loss_passing_through_ln_2_is_not_two_classes_when_top5_is_under_100():
    # a fine-tune whose eval loss drifts down through ln 2 = 0.693 while top-1 is 91 % and top-5 98.9 %
    # (ofakd issue 14's ViT-S rows): two classes would give top-5 100 % and top-1 near 50 %
    loss = np.linspace(0.70, 0.686, 8)
    assert from_loss_plateau(loss, top1=np.full(8, 91.0), top5=np.full(8, 98.9)) is None
    assert from_loss_plateau(loss) is not None  # the loss alone would have said 2


def test_first_eval_at_the_prior_gives_c():
    # a ResNet-50 A3 ImageNet run (BCE train loss, no num_classes in args): epoch 0 evaluates a model that knows
    # nothing yet: eval loss 6.969 ~ ln 1000, top-1 0.078 ~ 0.1, top-5 0.474 ~ 0.5
    c, source, confidence = num_classes_from_curves(RecipeFacts(
        eval_loss=np.array([6.969, 5.73]), eval_top1=np.array([0.078, 4.44]), eval_top5=np.array([0.474, 13.26])))
    assert c == 1000 and "epoch 0" in source and confidence < CONFIDENCE_PRIOR_SIGNATURE


def test_first_eval_of_a_model_that_already_learned_gives_nothing():
    assert from_first_eval(np.array([1.9]), np.array([35.0]), np.array([80.0])) is None
