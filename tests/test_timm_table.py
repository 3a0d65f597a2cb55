"""The shipped pretrained-config table (analyzer/features/timm_pretrained.json) against the installed timm.

The table is generated from timm's registry by tools/make_timm_table.py. When the installed timm is the
version the table records, every entry must be what timm itself says; a different timm is a reason to
regenerate the table, not a failure of this checkout (CI installs whatever timm satisfies the extra).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "analyzer" / "features" / "timm_pretrained.json"


def _tool():
    spec = importlib.util.spec_from_file_location("make_timm_table", REPO / "tools" / "make_timm_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_table_is_well_formed() -> None:
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    assert table["columns"] == ["input_size", "interpolation", "crop_pct", "crop_mode", "norm", "has_weights"]
    assert len(table["models"]) > 1000
    for name, row in table["models"].items():
        assert name == name.lower() and len(row) == len(table["columns"]), name
        assert len(row[0]) == 3 and all(isinstance(v, int) and v > 0 for v in row[0]), name
        assert row[4] is None or 0 <= row[4] < len(table["norms"]), name
    assert all(new in table["models"] for new in table["deprecated"].values())


def test_the_table_matches_the_installed_timm() -> None:
    timm = pytest.importorskip("timm")
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    if timm.__version__ != table["timm_version"]:
        pytest.skip(f"table from timm {table['timm_version']}, installed {timm.__version__}: "
                    "regenerate with `python tools/make_timm_table.py`")
    fresh = _tool().build_table()
    assert fresh["norms"] == table["norms"]
    assert fresh["deprecated"] == table["deprecated"]
    differ = [n for n in fresh["models"].keys() | table["models"].keys() if fresh["models"].get(n) != table["models"].get(n)]
    assert not differ, f"{len(differ)} entries differ from timm's registry, e.g. {sorted(differ)[:5]}"


def test_lookups_agree_with_timms_get_pretrained_cfg() -> None:
    """The analyzer's reading of the table gives what timm's own lookup gives, for tags, defaults and misses."""
    timm = pytest.importorskip("timm")
    from timm.models import get_pretrained_cfg

    from mnv4_postmortem.analyzer.features.input_size import pretrained_config, timm_table_version

    if timm.__version__ != timm_table_version():
        pytest.skip("the table is from another timm version")
    names = ["mobilenetv4_conv_small", "mobilenetv4_hybrid_medium.ix_e550_r384_in1k", "resnet50", "vit_base_patch16_224",
             "convnext_base.fb_in22k_ft_in1k_384", "efficientnet_b3", "totally_custom_net"]
    for name in names:
        theirs, ours = get_pretrained_cfg(name), pretrained_config(name)
        assert (theirs is None) == (ours is None), name
        if theirs is not None:
            assert (ours.input_size, ours.interpolation, ours.crop_pct, ours.crop_mode) == (
                tuple(theirs.input_size), theirs.interpolation, theirs.crop_pct, theirs.crop_mode), name
            assert ours.mean == tuple(theirs.mean) and ours.std == tuple(theirs.std), name
