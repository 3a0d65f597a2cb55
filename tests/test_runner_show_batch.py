"""reproduce --show-batch: the grid's size, its captions and labels, for the proxy and for an ImageFolder."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from PIL import Image, ImageDraw  # noqa: E402

from _runner_helpers import tiny_spec  # noqa: E402
from mnv4_postmortem.runner import show_batch as sb  # noqa: E402


def expected_size(n: int) -> tuple[int, int]:
    cols = min(n, sb.PAIRS_PER_ROW) * 2
    rows = -(-n // sb.PAIRS_PER_ROW)
    return cols * (sb.TILE + sb.PAD) + sb.PAD, rows * (sb.TILE + sb.LABEL_H + sb.PAD) + sb.PAD + sb.LABEL_H


def test_proxy_grid_has_one_labelled_pair_per_image_at_both_sizes(tmp_path):
    spec = tiny_spec("seed_mnv4", img_size=32)
    grid = sb.show_batch_for_spec(spec, spec.args, tmp_path / "grid.png", n=6)
    png = Image.open(grid.path)
    assert png.size == grid.size == expected_size(6)
    assert json.loads(png.text["labels"]) == [f"class {i}" for i in range(6)]  # proxy labels are index mod C
    assert (png.text["run_px"], png.text["pretrained_px"]) == ("32", "160")    # test_efficientnet's cfg: 160
    # the run-size tile is 32 px blown up 5x with nearest-neighbour: blocks of equal pixels
    top, left = sb.LABEL_H + sb.PAD, sb.PAD
    row = [png.getpixel((left + x, top + 2)) for x in range(sb.TILE)]
    assert len(set(row)) <= 32
    big = [png.getpixel((left + sb.TILE + sb.PAD + x, top + 2)) for x in range(sb.TILE)]
    assert len(set(big)) > len(set(row))


def test_image_folder_grid_uses_timms_train_transform_and_the_class_folder_names(tmp_path):
    root = tmp_path / "data"
    for name, colour in (("circle", (250, 200, 0)), ("square", (0, 90, 250))):
        folder = root / "train" / name
        folder.mkdir(parents=True)
        for i in range(3):
            image = Image.new("RGB", (96, 96), (30 + 40 * i, 30, 30))
            ImageDraw.Draw(image).ellipse((10, 10, 80, 80), fill=colour)
            image.save(folder / f"{i}.png")
    spec = tiny_spec("seed_mnv4", img_size=32)
    from dataclasses import replace

    spec = replace(spec, data=str(root))
    grid = sb.show_batch_for_spec(spec, spec.args, tmp_path / "grid.png", n=4)
    png = Image.open(grid.path)
    labels = json.loads(png.text["labels"])
    assert png.size == expected_size(4)
    assert len(labels) == 4 and set(labels) <= {"circle", "square"}
