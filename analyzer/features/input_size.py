"""The input resolution a model was designed (and pretrained) for, and how a run compares to it.

timm's ``train.py`` trains and validates at the model's default ``input_size`` unless ``--img-size`` /
``--input-size`` says otherwise (timm-formats.md §0.9, §12). Training far below that size (e.g. 56 px for a
224 px MobileNetV4) caps the accuracy a recipe can reach, and fine-tuning pretrained weights at a very
different size loses much of what they learned.

:func:`pretrained_config` answers from ``timm_pretrained.json``, a table of every pretrained config in
timm's registry (architecture default, every tag, timm's deprecated names), generated from timm itself by
``tools/make_timm_table.py`` and stamped with the timm version it came from (:func:`timm_table_version`).
timm is never imported here: ``import timm.models`` imports torch and torchvision, seconds and hundreds
of MB for one integer. A name the table does not know falls back to :func:`table_input_size`, an
estimate from the name (a tag's ``r256``, a size suffix, the model family), and says so: its source is
``"estimate"``, and the rule that uses it lowers its confidence.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from mnv4_postmortem.analyzer.timm.version import TimmVersion

InputSizeSource = Literal["timm", "estimate", "unknown"]
_TABLE_FILE = "timm_pretrained.json"


@dataclass(frozen=True, slots=True)
class PretrainedConfig:
    """One entry of timm's registry, as the shipped table holds it."""

    name: str                     # the table's key (for a deprecated name: the tagged name timm maps it to)
    input_size: tuple[int, ...]   # (C, H, W)
    interpolation: str | None
    crop_pct: float | None
    crop_mode: str | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    has_weights: bool             # timm lists it as pretrained (an untrained architecture default does not)

# Every MobileNetV4 entry point with the input size of its default tag (timm-formats.md §12): the first
# tag with weights, e.g. conv_medium -> .e500_r256_in1k. The *_untrained ones have no weights; their size
# is the architecture's design size.
_MOBILENETV4: dict[str, int] = {
    "mobilenetv4_conv_aa_large": 448, "mobilenetv4_conv_aa_medium": 256, "mobilenetv4_conv_blur_medium": 224,
    "mobilenetv4_conv_large": 384, "mobilenetv4_conv_medium": 256, "mobilenetv4_conv_small": 224,
    "mobilenetv4_conv_small_035": 224, "mobilenetv4_conv_small_050": 224, "mobilenetv4_hybrid_large": 384,
    "mobilenetv4_hybrid_large_075": 256, "mobilenetv4_hybrid_medium": 256, "mobilenetv4_hybrid_medium_075": 224,
}

# Models whose default size differs from what their family pattern or a resolution suffix in the name
# would give, and old (pre-0.9) names that timm now maps to a tagged model (tf_efficientnet_b7_ns ->
# tf_efficientnet_b7.ns_jft_in1k, 600 px).
_EXACT: dict[str, int] = {
    "convnext_base_384_in22ft1k": 384, "convnext_large_384_in22ft1k": 384, "convnext_large_mlp": 320,
    "convnext_small_384_in22ft1k": 384, "convnext_tiny_384_in22ft1k": 384, "convnext_xlarge_384_in22ft1k": 384,
    "convnext_xxlarge": 256, "convnextv2_huge": 384, "deit3_base_patch16_384_in21ft1k": 384,
    "deit3_large_patch16_384_in21ft1k": 384, "deit3_small_patch16_384_in21ft1k": 384, "dm_nfnet_f1": 224,
    "dm_nfnet_f2": 256, "dm_nfnet_f3": 320, "dm_nfnet_f4": 384, "dm_nfnet_f5": 416, "dm_nfnet_f6": 448,
    "eca_nfnet_l1": 256, "eca_nfnet_l2": 320, "eca_nfnet_l3": 352, "ecaresnet200d": 256, "ecaresnet269d": 320,
    "ecaresnet26t": 256, "ecaresnet50t": 256, "efficientnet_b1": 240, "efficientnet_b1_pruned": 240,
    "efficientnet_b2": 256, "efficientnet_b2_pruned": 260, "efficientnet_b2a": 256, "efficientnet_b3": 288,
    "efficientnet_b3_g8_gn": 288, "efficientnet_b3_gn": 288, "efficientnet_b3_pruned": 300, "efficientnet_b3a": 288,
    "efficientnet_b4": 320, "efficientnet_b5": 448, "efficientnet_b6": 528, "efficientnet_b7": 600,
    "efficientnet_b8": 672, "efficientnet_cc_b1_8e": 240, "efficientnet_el": 300, "efficientnet_el_pruned": 300,
    "efficientnet_em": 240, "efficientnet_h_b5": 448, "efficientnet_l2": 800, "efficientnet_lite1": 240,
    "efficientnet_lite2": 260, "efficientnet_lite3": 300, "efficientnet_lite4": 380, "efficientnet_x_b3": 288,
    "efficientnet_x_b5": 448, "efficientnetv2_m": 320, "efficientnetv2_rw_m": 320, "efficientnetv2_rw_s": 288,
    "efficientnetv2_rw_t": 224, "efficientnetv2_s": 288, "inception_resnet_v2": 299, "inception_v3": 299,
    "inception_v4": 299, "levit_256": 224, "levit_384": 224, "levit_512": 224, "levit_conv_256": 224,
    "levit_conv_384": 224, "levit_conv_512": 224, "mobilenetv3_large_150d": 256, "mobilevitv2_150_384_in22ft1k": 384,
    "mobilevitv2_175_384_in22ft1k": 384, "mobilevitv2_200_384_in22ft1k": 384, "nfnet_f0": 192, "nfnet_f2": 256,
    "nfnet_f3": 320, "nfnet_f4": 384, "nfnet_f5": 416, "nfnet_f6": 448, "nfnet_f7": 480, "regnety_1280": 384,
    "regnety_2560": 384, "regnety_640": 384, "regnetz_005": 224, "regnetz_b16": 224, "regnetz_b16_evos": 224,
    "repvgg_d2se": 320, "resnet101d": 256, "resnet10t": 176, "resnet14t": 176, "resnet152d": 256, "resnet200d": 256,
    "resnet26t": 256, "resnet32ts": 256, "resnet33ts": 256, "resnet50_mlp": 256, "resnet50x16_clip": 384,
    "resnet50x16_clip_gap": 384, "resnet50x4_clip": 288, "resnet50x4_clip_gap": 288, "resnet50x64_clip": 448,
    "resnet50x64_clip_gap": 448, "resnet51q": 256, "resnet61q": 256, "resnetrs101": 192, "resnetrs350": 288,
    "resnetrs420": 320, "resnetrs50": 160, "resnetv2_101x1_bit": 448, "resnetv2_101x1_bitm": 448,
    "resnetv2_101x3_bit": 448, "resnetv2_101x3_bitm": 448, "resnetv2_152x2_bitm": 448, "resnetv2_152x4_bit": 480,
    "resnetv2_152x4_bitm": 480, "resnetv2_50x1_bitm": 448, "resnetv2_50x3_bit": 448, "resnetv2_50x3_bitm": 448,
    "resnext26ts": 256, "seresnet152d": 256, "seresnet200d": 256, "seresnet269d": 256, "seresnet33ts": 256,
    "seresnext26ts": 256, "seresnextaa101d_32x8d": 288, "seresnextaa201d_32x8d": 384,
    "swin_base_patch4_window12_384_in22k": 384, "swin_large_patch4_window12_384_in22k": 384,
    "swinv2_base_window12_192": 192, "swinv2_base_window12_192_22k": 192, "swinv2_base_window12to24_192to384": 384,
    "swinv2_base_window12to24_192to384_22kft1k": 384, "swinv2_large_window12_192": 192,
    "swinv2_large_window12_192_22k": 192, "swinv2_large_window12to24_192to384": 384,
    "swinv2_large_window12to24_192to384_22kft1k": 384, "tf_efficientnet_b1": 240, "tf_efficientnet_b1_ap": 240,
    "tf_efficientnet_b1_ns": 240, "tf_efficientnet_b2": 260, "tf_efficientnet_b2_ap": 260,
    "tf_efficientnet_b2_ns": 260, "tf_efficientnet_b3": 300, "tf_efficientnet_b3_ap": 300,
    "tf_efficientnet_b3_ns": 300, "tf_efficientnet_b4": 380, "tf_efficientnet_b4_ap": 380,
    "tf_efficientnet_b4_ns": 380, "tf_efficientnet_b5": 456, "tf_efficientnet_b5_ap": 456,
    "tf_efficientnet_b5_ns": 456, "tf_efficientnet_b6": 528, "tf_efficientnet_b6_ap": 528,
    "tf_efficientnet_b6_ns": 528, "tf_efficientnet_b7": 600, "tf_efficientnet_b7_ap": 600,
    "tf_efficientnet_b7_ns": 600, "tf_efficientnet_b8": 672, "tf_efficientnet_b8_ap": 672,
    "tf_efficientnet_cc_b1_8e": 240, "tf_efficientnet_el": 300, "tf_efficientnet_em": 240, "tf_efficientnet_l2": 475,
    "tf_efficientnet_l2_ns": 800, "tf_efficientnet_l2_ns_475": 475, "tf_efficientnet_lite1": 240,
    "tf_efficientnet_lite2": 260, "tf_efficientnet_lite3": 300, "tf_efficientnet_lite4": 380,
    "tf_efficientnetv2_b0": 192, "tf_efficientnetv2_b1": 192, "tf_efficientnetv2_b2": 208,
    "tf_efficientnetv2_b3": 240, "tf_efficientnetv2_s": 300, "tf_efficientnetv2_s_in21ft1k": 300,
    "tf_efficientnetv2_s_in21k": 300, "tinynet_b": 188, "tinynet_c": 184, "tinynet_d": 152, "tinynet_e": 106,
    "vit_7b_patch16_dinov3": 256, "vit_base_patch16_dinov3": 256, "vit_base_patch16_dinov3_qkvb": 256,
    "vit_huge_plus_patch16_dinov3": 256, "vit_huge_plus_patch16_dinov3_qkvb": 256, "vit_large_patch16_dinov3": 256,
    "vit_large_patch16_dinov3_qkvb": 256, "vit_small_patch16_dinov3": 256, "vit_small_patch16_dinov3_qkvb": 256,
    "vit_small_plus_patch16_dinov3": 256, "vit_small_plus_patch16_dinov3_qkvb": 256,
    "vit_tiny_patch16_dinov3_qkvb": 256, "xcit_large_24_p16_384_dist": 384, "xcit_large_24_p8_384_dist": 384,
    "xcit_medium_24_p16_384_dist": 384, "xcit_medium_24_p8_384_dist": 384, "xcit_nano_12_p16_384_dist": 384,
    "xcit_nano_12_p8_384_dist": 384, "xcit_small_12_p16_384_dist": 384, "xcit_small_12_p8_384_dist": 384,
    "xcit_small_24_p16_384_dist": 384, "xcit_small_24_p8_384_dist": 384, "xcit_tiny_12_p16_384_dist": 384,
    "xcit_tiny_12_p8_384_dist": 384, "xcit_tiny_24_p16_384_dist": 384, "xcit_tiny_24_p8_384_dist": 384,
}

# Family patterns (fnmatch syntax). When several match, the one with the most literal characters wins,
# so "resnetrs*" beats "resnet*".
_FAMILIES: dict[str, int] = {
    "beit*": 224, "beitv2_*": 224, "caformer_*": 224, "cait_*": 384, "coatnet_*": 224, "convformer_*": 224,
    "convnext_*": 224, "convnextv2_*": 224, "deit3_*": 224, "deit_*": 224, "densenet*": 224, "dla*": 224,
    "dm_nfnet_*": 192, "eca_nfnet_*": 224, "ecaresnet*": 224, "edgenext_*": 256, "efficientformer*": 224,
    "efficientnet_*": 224, "efficientnetv2_*": 384, "efficientvit_*": 224, "eva02_*": 224, "fastvit_*": 256,
    "ghostnet*": 224, "ghostnetv2*": 224, "hgnet*": 224, "hgnetv2_*": 224, "hrnet_*": 224, "inception_*": 224,
    "lcnet_*": 224, "levit_*": 224, "maxvit_*": 224, "mixnet_*": 224, "mnasnet_*": 224, "mobilenetv1_*": 224,
    "mobilenetv2_*": 224, "mobilenetv3_*": 224, "mobilenetv4_*": 224, "mobileone_*": 224, "mobilevit_*": 256,
    "mobilevitv2_*": 256, "nfnet_*": 224, "poolformer*": 224, "poolformerv2_*": 224, "regnetx_*": 224,
    "regnety_*": 224, "regnetz_*": 256, "repghostnet_*": 224, "repvgg_*": 224, "repvit_*": 224, "resnet*": 224,
    "resnetaa*": 224, "resnetrs*": 256, "resnetv2_*": 224, "resnext*": 224, "rexnet_*": 224, "semnasnet_*": 224,
    "seresnet*": 224, "seresnext*": 224, "swin_*": 224, "swinv2_*": 256, "tf_efficientnet_*": 224,
    "tf_efficientnetv2_*": 384, "tf_mixnet_*": 224, "tf_mobilenetv3_*": 224, "tinynet_*": 192, "vgg*": 224,
    "vit_*": 224, "wide_resnet*": 224, "xception*": 299, "xcit_*": 224,
}

NATIVE_INPUT_SIZES: Mapping[str, int] = MappingProxyType({**_FAMILIES, **_EXACT, **_MOBILENETV4})
"""Built-in table: model name, tagged name or fnmatch family pattern -> default square input size (px).

Lookup order in :func:`table_input_size`: exact name (tags included) -> resolution in the tag
(``r256`` in ``e500_r256_in1k``, or a trailing ``_384``) -> the untagged architecture name -> a resolution
suffix of the architecture name (``vit_base_patch16_384``; only 224/240/256/336/384/408/448/512/560, since
other suffixes such as ``_100`` or ``_320`` are widths) -> the most specific matching family pattern.
"""

# Default tags that changed between timm versions: (last version with the old default, old size).
# mobilenetv4_hybrid_medium defaulted to .e500_r224_in1k in v1.0.7, to a 256 px tag from v1.0.8 on.
_OLD_DEFAULTS: dict[str, tuple[tuple[int, ...], int]] = {
    "mobilenetv4_hybrid_medium": ((1, 0, 7), 224),
}

_SUFFIX_RESOLUTIONS = frozenset({224, 240, 256, 336, 384, 408, 448, 512, 560})
_TAG_RESOLUTION = re.compile(r"(?:^|_)r(\d{2,4})(?:_|$)")
_TRAILING_RESOLUTION = re.compile(r"_(\d{3})$")
_HUB_PREFIX = re.compile(r"^(?:hf[-_]hub:|timm:)", re.IGNORECASE)


def normalize_model_name(model: Any) -> str | None:
    """A timm model name as the table keys it: lower case, hub prefix and organisation dropped.

    ``"hf-hub:timm/mobilenetv4_conv_small.e2400_r224_in1k"`` -> ``"mobilenetv4_conv_small.e2400_r224_in1k"``.
    None for anything that is not a non-empty string.
    """
    if not isinstance(model, str):
        return None
    name = _HUB_PREFIX.sub("", model.strip()).rsplit("/", 1)[-1].strip().lower()
    return name or None


def split_tag(name: str) -> tuple[str, str]:
    """``"arch.tag"`` -> ``("arch", "tag")``; an untagged name gives an empty tag."""
    arch, _, tag = name.partition(".")
    return arch, tag


def resolution_from_tag(tag: str) -> int | None:
    """The training resolution a pretrained tag names: ``e2400_r224_in1k`` -> 224,
    ``fb_in22k_ft_in1k_384`` -> 384; None when the tag names none."""
    match = _TAG_RESOLUTION.search(tag) or _TRAILING_RESOLUTION.search(tag)
    return int(match.group(1)) if match else None


def table_input_size(model: Any, timm_version: TimmVersion | str | None = None) -> int | None:
    """An estimate from the name, for models timm's table does not hold: the built-in table's answer (see :data:`NATIVE_INPUT_SIZES` for the lookup order), or None.

    ``timm_version`` (a guess like ``"0.9.0-1.0.7"``) selects the older default tag where one changed.
    """
    name = normalize_model_name(model)
    if name is None:
        return None
    arch, tag = split_tag(name)
    old = _old_default(arch, timm_version) if not tag else None
    if old is not None:
        return old
    if name in NATIVE_INPUT_SIZES:
        return NATIVE_INPUT_SIZES[name]
    from_tag = resolution_from_tag(tag) if tag else None
    if from_tag is not None:
        return from_tag
    if arch in NATIVE_INPUT_SIZES:
        return NATIVE_INPUT_SIZES[arch]
    suffix = _TRAILING_RESOLUTION.search(arch)
    if suffix and int(suffix.group(1)) in _SUFFIX_RESOLUTIONS:
        return int(suffix.group(1))
    return _family_size(arch)


def pretrained_input_size(model: Any, timm_version: TimmVersion | str | None = None) -> tuple[int | None, InputSizeSource]:
    """The model's native (default pretrained) square input size in px, and where it came from.

    ``"timm"``: timm's registered pretrained config, from the shipped table (:func:`pretrained_config`).
    ``"estimate"``: the name is not in the table; :func:`table_input_size` estimated it from the name.
    ``"unknown"``: neither knows the name. For a non-square size the last dimension (width) is returned,
    as timm names its output folder.
    """
    name = normalize_model_name(model)
    if name is None:
        return None, "unknown"
    cfg = pretrained_config(name)
    if cfg is not None and input_size_px(cfg.input_size) is not None:
        return input_size_px(cfg.input_size), "timm"
    estimate = table_input_size(name, timm_version)
    if estimate is not None:
        return estimate, "estimate"
    return None, "unknown"


def pretrained_config(model: Any) -> PretrainedConfig | None:
    """timm's registered pretrained config for a model name, tagged or not, as timm's
    ``get_pretrained_cfg`` gives it (an untagged name: its default tag), from the shipped table.
    None for a name timm's registry does not hold (a custom model, a newer timm's model, a wrong tag)."""
    name = normalize_model_name(model)
    if name is None:
        return None
    table = _timm_table()
    key = name if name in table["models"] else table["deprecated"].get(name)
    if key is None:
        return None
    row = dict(zip(table["columns"], table["models"][key]))
    norm = table["norms"][row["norm"]] if row["norm"] is not None else (None, None)
    return PretrainedConfig(
        name=key, input_size=tuple(row["input_size"]), interpolation=row["interpolation"], crop_pct=row["crop_pct"],
        crop_mode=row["crop_mode"], mean=None if norm[0] is None else tuple(norm[0]),
        std=None if norm[1] is None else tuple(norm[1]), has_weights=bool(row["has_weights"]),
    )


def timm_table_version() -> str:
    """The timm version the shipped table was generated from (``tools/make_timm_table.py``)."""
    return str(_timm_table()["timm_version"])


def input_size_px(value: Any) -> int | None:
    """A size as args.yaml or the log gives it -> pixels: ``224``, ``[3, 224, 224]``, ``"(3, 56, 56)"``.

    The last element is used for a (C, H, W) size. None for anything else, or a size outside 1..100000.
    """
    if isinstance(value, str):
        numbers = re.findall(r"\d+", value)
        value = [int(n) for n in numbers] if numbers else None
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
        if number != value and not (isinstance(value, float) and value.is_integer()):
            return None
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 1 <= number <= 100_000 else None


def _old_default(arch: str, timm_version: TimmVersion | str | None) -> int | None:
    version = TimmVersion.parse(timm_version)
    if arch not in _OLD_DEFAULTS or version is None:
        return None
    last_old, size = _OLD_DEFAULTS[arch]
    high = version.bounds()[1]
    if high is None:
        return None
    return size if high <= last_old else None


def _family_size(arch: str) -> int | None:
    best: tuple[int, int] | None = None
    for pattern, size in _FAMILIES.items():
        if fnmatch.fnmatchcase(arch, pattern):
            literal = len(pattern.replace("*", "").replace("?", ""))
            if best is None or literal > best[0]:
                best = (literal, size)
    return best[1] if best else None


@functools.lru_cache(maxsize=1)
def _timm_table() -> Mapping[str, Any]:
    """The shipped table, read once per process (about 0.3 MB of JSON, a few ms)."""
    text = resources.files("mnv4_postmortem.analyzer.features").joinpath(_TABLE_FILE).read_text(encoding="utf-8")
    return json.loads(text)
