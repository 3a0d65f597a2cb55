"""Native input sizes: timm's registry as the shipped table holds it, and the estimate from the name for the rest."""

from __future__ import annotations

import re

import pytest
from mnv4_postmortem.analyzer.features import input_size as mod
from mnv4_postmortem.analyzer.features.input_size import (
    NATIVE_INPUT_SIZES,
    input_size_px,
    pretrained_config,
    pretrained_input_size,
    resolution_from_tag,
    table_input_size,
    timm_table_version,
)


@pytest.mark.parametrize(
    ("model", "size"),
    [
        ("mobilenetv4_conv_small", 224),
        ("mobilenetv4_conv_medium", 256),
        ("mobilenetv4_conv_large", 384),
        ("mobilenetv4_hybrid_medium", 256),
        ("mobilenetv4_hybrid_large", 384),
        ("mobilenetv4_conv_aa_large", 448),
    ],
)
def test_mobilenetv4_default_tag_sizes(model: str, size: int) -> None:
    assert pretrained_input_size(model) == (size, "timm")
    assert table_input_size(model) == size  # the estimate agrees where it has an entry


def test_every_mobilenetv4_entry_point_is_in_the_table() -> None:
    entry_points = [
        "conv_small_035", "conv_small_050", "conv_small", "conv_medium", "conv_large", "hybrid_medium",
        "hybrid_large", "conv_aa_medium", "conv_blur_medium", "conv_aa_large", "hybrid_medium_075",
        "hybrid_large_075",
    ]
    assert all(f"mobilenetv4_{name}" in NATIVE_INPUT_SIZES for name in entry_points)


@pytest.mark.parametrize(
    ("model", "size"),
    [
        ("mobilenetv4_conv_small.e2400_r224_in1k", 224),
        ("mobilenetv4_conv_small.e3600_r256_in1k", 256),  # the tag's r256 beats the arch default 224
        ("mobilenetv4_conv_medium.e500_r224_in1k", 224),
        ("hf-hub:timm/mobilenetv4_hybrid_large.ix_e600_r384_in1k", 384),
        ("timm/mobilenetv4_conv_large.e500_r256_in1k", 256),
        ("convnext_base.fb_in22k_ft_in1k_384", 384),
        ("efficientnet_b3.ra2_in1k", 288),  # no resolution in the tag: the arch's default
    ],
)
def test_tags_and_hub_names(model: str, size: int) -> None:
    assert table_input_size(model) == size


@pytest.mark.parametrize(
    ("model", "size"),
    [
        ("resnet50", 224), ("resnet18", 224), ("resnetrs50", 160), ("resnet101d", 256),
        ("efficientnet_b0", 224), ("efficientnet_b3", 288), ("efficientnet_b7", 600),
        ("tf_efficientnet_b7_ns", 600), ("tf_efficientnet_b0_ns", 224), ("tf_efficientnet_b4", 380),
        ("mobilenetv3_large_100", 224), ("mobilenetv3_small_100", 224), ("convnext_tiny", 224),
        ("vit_base_patch16_224", 224), ("vit_base_patch16_384", 384), ("deit_small_patch16_224", 224),
        ("swin_tiny_patch4_window7_224", 224), ("regnety_040", 224), ("regnety_320", 224),
        ("levit_256", 224), ("inception_v3", 299), ("mobilevit_s", 256),
    ],
)
def test_common_models(model: str, size: int) -> None:
    assert table_input_size(model) == size


def test_family_match_prefers_the_most_specific_pattern() -> None:
    assert mod._family_size("resnetrs9000") == 256  # resnetrs* (256), not resnet* (224)
    assert mod._family_size("resnet9000") == 224


def test_unknown_and_hostile_names() -> None:
    assert pretrained_input_size("totally_custom_net") == (None, "unknown")
    for bad in (None, 42, ["resnet50"], "", "   "):
        assert pretrained_input_size(bad) == (None, "unknown")


def test_hybrid_medium_default_was_224_in_timm_1_0_7() -> None:
    assert table_input_size("mobilenetv4_hybrid_medium", "0.9.0-1.0.7") == 224
    assert table_input_size("mobilenetv4_hybrid_medium", ">=1.0.23") == 256


def test_resolution_from_tag() -> None:
    assert resolution_from_tag("e2400_r224_in1k") == 224
    assert resolution_from_tag("ix_e600_r384_in1k") == 384
    assert resolution_from_tag("ra2_in1k") is None
    assert resolution_from_tag("in22k_ft_in1k_384") == 384


@pytest.mark.parametrize(
    ("value", "px"),
    [(56, 56), ((3, 56, 56), 56), ([3, 224, 224], 224), ("(3, 256, 256)", 256), (224.0, 224),
     (None, None), (True, None), ("abc", None), (0, None), (-3, None), (2.5, None), ([], None)],
)
def test_input_size_px(value, px) -> None:
    assert input_size_px(value) == px


def test_timm_table_answers_tags_hub_names_and_deprecated_names() -> None:
    cfg = pretrained_config("hf-hub:timm/mobilenetv4_conv_medium.e500_r224_in1k")
    assert cfg is not None and cfg.input_size == (3, 224, 224) and cfg.has_weights
    assert pretrained_config("mobilenetv4_conv_medium").name == "mobilenetv4_conv_medium"  # its default tag
    old = pretrained_config("tf_efficientnet_b7_ns")  # a pre-0.9 name timm maps to a tagged model
    assert old is not None and old.name == "tf_efficientnet_b7.ns_jft_in1k" and old.input_size[-1] == 600


def test_a_model_missing_from_the_table_is_an_estimate() -> None:
    # a wrong tag of a known architecture: timm's get_pretrained_cfg refuses it, the name still says 224 px
    assert pretrained_config("resnet50.no_such_tag") is None
    assert pretrained_input_size("resnet50.no_such_tag") == (224, "estimate")
    assert pretrained_input_size("my_resnet_384") == (384, "estimate")  # a size suffix in a custom name
    assert pretrained_input_size("totally_custom_net") == (None, "unknown")


def test_the_table_records_its_timm_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", timm_table_version())
