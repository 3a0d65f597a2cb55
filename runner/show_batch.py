"""``reproduce --show-batch``: one augmented training batch as the network sees it, beside the same
images at the pretrained input size.

Each image goes through timm's own train transform (``timm.data.create_transform(is_training=True)``)
twice: once at the run's input size and interpolation, once at the input size and interpolation the
pretrained weights were trained at (the model's ``pretrained_cfg``). The Python and torch RNGs are
seeded identically before both calls, so both get the same random crop (in source pixels), flip,
colour jitter and erasing: the only difference is the size. Tiles are shown at one display size; the
run-size tile is enlarged with nearest-neighbour so its pixels stay visible (a 56 px image in a 224 px
tile shows 4x4 blocks: what a 224-px model is given).

The PNG carries its layout in text chunks (``labels``: the class of each pair; ``run_px``,
``pretrained_px``, ``tile``), so a test or a report can read back what it shows.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["BatchGrid", "DataConfigs", "data_configs", "train_transform", "render_batch_grid"]

TILE = 160            # display size of every tile (px)
LABEL_H = 18          # caption band under each tile
PAD = 6
PAIRS_PER_ROW = 4


@dataclass(frozen=True, slots=True)
class DataConfigs:
    run: Mapping[str, Any]          # timm data config at the run's input size and interpolation
    pretrained: Mapping[str, Any]   # at the pretrained weights' input size and interpolation


@dataclass(frozen=True, slots=True)
class BatchGrid:
    path: Path
    labels: tuple[str, ...]         # class name of each image pair, in grid order
    size: tuple[int, int]           # PNG width, height
    run_px: int
    pretrained_px: int
    run_interpolation: str
    pretrained_interpolation: str


def data_configs(model_name: str, args: Mapping[str, Any], run_px: int, num_classes: int) -> DataConfigs:
    """timm's resolved data configs for the run's size and for the pretrained one (no weights loaded)."""
    import timm
    from timm.data import resolve_data_config

    model = timm.create_model(model_name, pretrained=False, num_classes=num_classes)
    pretrained = resolve_data_config({}, model=model)
    overrides = {"input_size": (3, int(run_px), int(run_px))}
    if args.get("interpolation"):
        overrides["interpolation"] = args["interpolation"]
    for key in ("mean", "std", "crop_pct"):
        if args.get(key):
            overrides[key] = args[key]
    run = resolve_data_config(overrides, model=model)
    return DataConfigs(run=dict(run), pretrained=dict(pretrained))


def train_transform(config: Mapping[str, Any], args: Mapping[str, Any]):
    """train.py's training transform for ``config`` with the run's augmentation arguments."""
    from timm.data import create_transform

    return create_transform(
        config["input_size"], is_training=True, interpolation=config["interpolation"],
        mean=config["mean"], std=config["std"], crop_pct=config.get("crop_pct"),
        scale=tuple(args.get("scale") or (0.08, 1.0)), ratio=tuple(args.get("ratio") or (3 / 4, 4 / 3)),
        hflip=float(args.get("hflip", 0.5) or 0.0), vflip=float(args.get("vflip", 0.0) or 0.0),
        color_jitter=args.get("color_jitter", 0.4) or 0.0, auto_augment=args.get("aa") or None,
        re_prob=float(args.get("reprob", 0.0) or 0.0), re_mode=args.get("remode", "pixel") or "pixel",
        re_count=int(args.get("recount", 1) or 1),
    )


def _to_pil(tensor, mean: Sequence[float], std: Sequence[float]):
    """A normalized CHW tensor back to an RGB image."""
    import torch
    from PIL import Image

    m = torch.tensor(mean).view(-1, 1, 1)
    s = torch.tensor(std).view(-1, 1, 1)
    array = ((tensor * s + m).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array)


def render_batch_grid(
    images: Sequence[Any],
    labels: Sequence[str],
    configs: DataConfigs,
    args: Mapping[str, Any],
    out: Path,
    *,
    seed: int = 0,
    tile: int = TILE,
) -> BatchGrid:
    """Write the grid PNG: per image, the run-size tile then the pretrained-size tile, captioned."""
    import torch
    from PIL import Image, ImageDraw, PngImagePlugin

    run_tf = train_transform(configs.run, args)
    pre_tf = train_transform(configs.pretrained, args)
    run_px, pre_px = int(configs.run["input_size"][-1]), int(configs.pretrained["input_size"][-1])
    n = len(images)
    cols = min(n, PAIRS_PER_ROW) * 2
    rows = math.ceil(n / PAIRS_PER_ROW)
    width = cols * (tile + PAD) + PAD
    height = rows * (tile + LABEL_H + PAD) + PAD + LABEL_H
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, 2), f"left: {run_px}px {configs.run['interpolation']} (the run)   right: {pre_px}px "
                        f"{configs.pretrained['interpolation']} (pretrained)", fill="black")
    for i, (image, label) in enumerate(zip(images, labels)):
        pair = []
        for transform, cfg in ((run_tf, configs.run), (pre_tf, configs.pretrained)):
            random.seed(seed + i)
            torch.manual_seed(seed + i)
            pair.append(_to_pil(transform(image.convert("RGB")), cfg["mean"], cfg["std"]))
        row, slot = divmod(i, PAIRS_PER_ROW)
        top = LABEL_H + PAD + row * (tile + LABEL_H + PAD)
        for j, (shown, px) in enumerate(zip(pair, (run_px, pre_px))):
            left = PAD + (slot * 2 + j) * (tile + PAD)
            resample = Image.NEAREST if shown.width < tile else Image.BILINEAR
            canvas.paste(shown.resize((tile, tile), resample), (left, top))
            draw.text((left + 2, top + tile + 2), f"{label}  {px}px", fill="black")
    info = PngImagePlugin.PngInfo()
    info.add_text("labels", json.dumps(list(labels)))
    info.add_text("run_px", str(run_px))
    info.add_text("pretrained_px", str(pre_px))
    info.add_text("tile", str(tile))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, pnginfo=info)
    return BatchGrid(out, tuple(labels), (width, height), run_px, pre_px,
                     str(configs.run["interpolation"]), str(configs.pretrained["interpolation"]))
