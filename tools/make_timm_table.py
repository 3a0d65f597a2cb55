"""Regenerate ``analyzer/features/timm_pretrained.json`` from the installed timm's own model registry.

The analyzer needs a model's pretrained input size (and, for reports, its interpolation, crop and
normalization), but importing ``timm.models`` imports torch and torchvision: seconds of start-up and
hundreds of MB for a handful of numbers. So the numbers ship as a table, generated here from timm's
registry (nothing is downloaded, no model is built) and stamped with the timm version it came from.
``tests/test_timm_table.py`` checks the shipped table against the installed timm when there is one.

Which names: every name ``timm.models.get_pretrained_cfg`` answers for, i.e. every architecture
(``list_models()``: its default tag's config), every tag of it (``list_models(include_tags=True)``,
with or without weights), and timm's deprecated names (``get_deprecated_models()``: old name -> the
tagged name timm now builds, e.g. ``tf_efficientnet_b7_ns`` -> ``tf_efficientnet_b7.ns_jft_in1k``).

    python tools/make_timm_table.py            # rewrite the table
    python tools/make_timm_table.py --check    # exit 1 when the table differs from the installed timm
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TABLE = Path(__file__).resolve().parents[1] / "analyzer" / "features" / "timm_pretrained.json"
COLUMNS = ("input_size", "interpolation", "crop_pct", "crop_mode", "norm", "has_weights")


def build_table() -> dict[str, Any]:
    """The table as JSON data, from the installed timm (imports torch: run it as a tool, never in the analyzer)."""
    import timm
    from timm.models import get_deprecated_models, get_pretrained_cfg

    names = sorted(set(timm.list_models()) | set(timm.list_models(include_tags=True)))
    with_weights = set(timm.list_models(pretrained=True, include_tags=True)) | set(timm.list_models(pretrained=True, include_tags=False))
    norms: list[list[list[float]]] = []
    models: dict[str, list[Any]] = {}
    for name in names:
        cfg = get_pretrained_cfg(name)
        if cfg is not None:
            models[name] = _row(cfg, name in with_weights, norms)
    deprecated = {old: new for old, new in sorted(get_deprecated_models().items()) if new in models and old not in models}
    return {
        "timm_version": timm.__version__,
        "generated_by": "tools/make_timm_table.py",
        "columns": list(COLUMNS),
        "norms": norms,
        "models": models,
        "deprecated": deprecated,
    }


def _row(cfg: Any, has_weights: bool, norms: list[list[list[float]]]) -> list[Any]:
    norm = [list(cfg.mean), list(cfg.std)] if cfg.mean is not None and cfg.std is not None else None
    if norm is not None and norm not in norms:
        norms.append(norm)
    return [list(cfg.input_size), cfg.interpolation, cfg.crop_pct, cfg.crop_mode,
            None if norm is None else norms.index(norm), has_weights]


def dump(table: dict[str, Any]) -> str:
    """One model per line: a reviewable diff when timm adds or changes models."""
    head = {k: v for k, v in table.items() if k not in ("models", "deprecated")}
    lines = ["{"] + [f"{json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    for key in ("models", "deprecated"):
        items = [f"  {json.dumps(name)}: {json.dumps(value)}" for name, value in table[key].items()]
        lines.append(f"{json.dumps(key)}: {{\n" + ",\n".join(items) + "\n}" + ("," if key == "models" else ""))
    return "\n".join(lines) + "\n}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    args = parser.parse_args()
    text = dump(build_table())
    if args.check:
        same = TABLE.exists() and TABLE.read_text(encoding="utf-8") == text
        print("table matches the installed timm" if same else f"{TABLE} differs from the installed timm")
        return 0 if same else 1
    TABLE.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
