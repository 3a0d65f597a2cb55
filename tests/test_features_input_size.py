"""Native input sizes: the built-in table (timm absent) and the timm path (a stand-in timm module)."""

from __future__ import annotations

import sys
import types

import pytest
from mnv4_postmortem.analyzer.features import input_size as mod
from mnv4_postmortem.analyzer.features.input_size import (
    NATIVE_INPUT_SIZES,
    input_size_px,
    pretrained_input_size,
    resolution_from_tag,
    table_input_size,
)


@pytest.fixture
def no_timm(monkeypatch: pytest.MonkeyPatch):
    """Make `import timm.models` fail, as in the core environment, whatever is installed."""
    monkeypatch.setitem(sys.modules, "timm", None)
    monkeypatch.setitem(sys.modules, "timm.models", None)
    mod._timm_input_size.cache_clear()
    yield
    mod._timm_input_size.cache_clear()


@pytest.fixture
def fake_timm(monkeypatch: pytest.MonkeyPatch):
    """A stand-in `timm.models` whose get_pretrained_cfg knows two names and raises for one."""

    class Cfg:
        def __init__(self, size: tuple[int, int, int]):
            self.input_size = size

    def get_pretrained_cfg(name: str):
        if name == "broken_model":
            raise RuntimeError("Invalid pretrained tag")
        return {"resnet50": Cfg((3, 288, 288)), "my_model": Cfg((3, 160, 160))}.get(name)

    timm = types.ModuleType("timm")
    models = types.ModuleType("timm.models")
    models.get_pretrained_cfg = get_pretrained_cfg  # type: ignore[attr-defined]
    timm.models = models  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "timm", timm)
    monkeypatch.setitem(sys.modules, "timm.models", models)
    mod._timm_input_size.cache_clear()
    yield
    mod._timm_input_size.cache_clear()


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
def test_mobilenetv4_default_tag_sizes(no_timm, model: str, size: int) -> None:
    assert pretrained_input_size(model) == (size, "table")


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
def test_tags_and_hub_names(no_timm, model: str, size: int) -> None:
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
def test_common_models(no_timm, model: str, size: int) -> None:
    assert table_input_size(model) == size


def test_family_match_prefers_the_most_specific_pattern() -> None:
    assert mod._family_size("resnetrs9000") == 256  # resnetrs* (256), not resnet* (224)
    assert mod._family_size("resnet9000") == 224


def test_unknown_and_hostile_names(no_timm) -> None:
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


def test_installed_timm_wins_over_the_table(fake_timm) -> None:
    assert pretrained_input_size("resnet50") == (288, "timm")
    assert pretrained_input_size("my_model") == (160, "timm")


def test_timm_errors_fall_back_to_the_table(fake_timm) -> None:
    assert pretrained_input_size("broken_model") == (None, "unknown")
    assert pretrained_input_size("mobilenetv4_conv_medium") == (256, "table")  # timm returned None
