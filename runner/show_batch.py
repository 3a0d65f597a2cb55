"""``reproduce --show-batch``: one augmented training batch as the network sees it, beside the same
images at the pretrained input size.

With ``--data-dir``, each image goes through timm's own train transform
(``timm.data.create_transform(is_training=True)``, the trainer's interpolation, ``random`` by default as
in train.py) twice: at the run's input size and at the input size the pretrained weights were trained at
(the model's ``pretrained_cfg``). The Python and torch RNGs are seeded identically before both calls, so
both get the same random crop (in source pixels), flip, colour jitter and erasing: the only difference is
the size. With ``--proxy`` the trainer applies no timm augmentation, so the grid shows the proxy samples
exactly as trained, beside the same samples rendered at the pretrained size (same class prototype, phase
and brightness; fresh pixel noise). Mixup/CutMix, when the recipe has it, is applied to both batches with
the same draws. Tiles are shown at one display size; the
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

__all__ = ["BatchGrid", "DataConfigs", "data_configs", "train_transform", "render_pairs", "show_batch_for_spec"]

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


def _caption_labels(targets, class_names: Sequence[str]) -> list[str]:
    """A hard label's class name; for a mixed (soft) target the two largest classes with their weights."""
    labels = []
    for t in targets:
        if getattr(t, "ndim", 0) == 0:
            labels.append(class_names[int(t)])
            continue
        top = t.topk(min(2, t.numel()))
        parts = [(class_names[int(i)], float(v)) for v, i in zip(top.values, top.indices)]
        if parts[0][1] >= 0.95 or len(parts) == 1:
            labels.append(parts[0][0])
        else:
            labels.append(" / ".join(f"{name} {w:.2f}" for name, w in parts))
    return labels


def _proxy_to_pil(tensor):
    """Proxy samples are already standardized (about N(0, 1)); show +-2.5 sigma as 0-255."""
    from PIL import Image

    array = ((tensor / 5.0 + 0.5).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array)


def show_batch_for_spec(spec: Any, args: Mapping[str, Any], out: Path, *, n: int = 8, seed: int = 0) -> BatchGrid:
    """The grid for a reproduction's spec: the trainer's own data (proxy or ImageFolder) and mixup."""
    import torch

    from mnv4_postmortem.runner.trainer import build_mixup, input_px

    run_px = input_px(args)
    classes = int(args["num_classes"])
    configs = data_configs(str(args["model"]), args, run_px, classes)
    pre_px = int(configs.pretrained["input_size"][-1])
    interpolation = str(args.get("train_interpolation") or "random")
    if spec.data == "proxy":
        from mnv4_postmortem.runner.proxy import ProxyDataset

        small, large = ProxyDataset(classes, run_px, n, "train"), ProxyDataset(classes, pre_px, n, "train")
        run_batch = torch.stack([small[i][0] for i in range(n)])
        pre_batch = torch.stack([large[i][0] for i in range(n)])
        targets = torch.tensor([small[i][1] for i in range(n)])
        names = [f"class {c}" for c in range(classes)]
        to_pil = lambda t, cfg: _proxy_to_pil(t)  # noqa: E731
        how = "proxy images rendered at each size (the proxy has no timm augmentation)"
    else:
        from timm.data import ImageDataset

        dataset = ImageDataset(str(_train_dir(Path(spec.data), args)))
        names = _class_names(dataset, classes)
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n].tolist()
        run_tf = train_transform({**configs.run, "interpolation": interpolation}, args)
        pre_tf = train_transform({**configs.pretrained, "interpolation": interpolation}, args)
        run_list, pre_list, labels = [], [], []
        for k, index in enumerate(order):
            image, label = dataset[index]
            for tf, bucket in ((run_tf, run_list), (pre_tf, pre_list)):
                random.seed(seed + k)
                torch.manual_seed(seed + k)
                bucket.append(tf(image.convert("RGB")))
            labels.append(int(label))
        run_batch, pre_batch, targets = torch.stack(run_list), torch.stack(pre_list), torch.tensor(labels)
        to_pil = lambda t, cfg: _to_pil(t, cfg["mean"], cfg["std"])  # noqa: E731
        how = f"timm's train transform (interpolation {interpolation}) with the same random draws at each size"
    mixup = build_mixup(args)
    shown_targets = targets
    if mixup is not None and n % 2 == 0:  # timm's Mixup needs an even batch
        import numpy as np

        mixed = []
        for batch in (run_batch, pre_batch):
            np.random.seed(seed)
            random.seed(seed)
            torch.manual_seed(seed)
            mixed.append(mixup(batch.clone(), targets.clone()))
        (run_batch, shown_targets), (pre_batch, _) = mixed
        how += "; mixup/cutmix applied as in training"
    labels = _caption_labels(shown_targets, names)
    pairs = [(to_pil(r, configs.run), to_pil(p, configs.pretrained)) for r, p in zip(run_batch, pre_batch)]
    return render_pairs(pairs, labels, (run_px, pre_px), out,
                        header=f"left: {run_px}px (the run)   right: {pre_px}px (pretrained input size)   {how}",
                        interpolations=(interpolation, interpolation))


def _train_dir(root: Path, args: Mapping[str, Any]) -> Path:
    for name in (str(args.get("train_split") or "train"), "train"):
        if (root / name).is_dir():
            return root / name
    return root


def _class_names(dataset: Any, classes: int) -> list[str]:
    mapping = getattr(getattr(dataset, "reader", None), "class_to_idx", None) or {}
    names = [f"class {c}" for c in range(classes)]
    for name, index in mapping.items():
        if 0 <= int(index) < classes:
            names[int(index)] = str(name)
    return names


def render_pairs(
    pairs: Sequence[tuple[Any, Any]],
    labels: Sequence[str],
    sizes: tuple[int, int],
    out: Path,
    *,
    header: str = "",
    interpolations: tuple[str, str] = ("", ""),
    tile: int = TILE,
) -> BatchGrid:
    """Write the grid PNG: per image, the run-size tile then the pretrained-size tile, each captioned."""
    from PIL import Image, ImageDraw, PngImagePlugin

    run_px, pre_px = sizes
    n = len(pairs)
    cols = min(n, PAIRS_PER_ROW) * 2
    rows = math.ceil(n / PAIRS_PER_ROW)
    width = cols * (tile + PAD) + PAD
    height = rows * (tile + LABEL_H + PAD) + PAD + LABEL_H
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, 2), header, fill="black")
    for i, (pair, label) in enumerate(zip(pairs, labels)):
        row, slot = divmod(i, PAIRS_PER_ROW)
        top = LABEL_H + PAD + row * (tile + LABEL_H + PAD)
        for j, (shown, px) in enumerate(zip(pair, sizes)):
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
    return BatchGrid(out, tuple(labels), (width, height), run_px, pre_px, interpolations[0], interpolations[1])


def show_batch_for_run(run_dir: Path, opts: Any) -> BatchGrid:
    """``reproduce --show-batch``: the grid for the run's scaled spec, written to ``<out>/batch_grid.png``."""
    from mnv4_postmortem.analyzer.reproduction import ReproFolder
    from mnv4_postmortem.runner.reproduce import ReproduceError, check_out_dir, default_out_dir
    from mnv4_postmortem.runner.spec import build_spec

    if opts.proxy == (opts.data_dir is not None):
        raise ReproduceError("give exactly one of --proxy or --data-dir DIR")
    folder = ReproFolder(check_out_dir(run_dir, opts.out or default_out_dir(run_dir)))
    run = opts.session().load(Path(run_dir))
    spec = build_spec(run, data="proxy" if opts.proxy else str(opts.data_dir), img_size=opts.img_size,
                      init_checkpoint=opts.init_checkpoint)
    return show_batch_for_spec(spec, spec.args, folder.batch_grid)
