"""``--proxy``: a procedural image-classification dataset, generated on the fly, no downloads.

What it is: each of the C classes has a fixed *prototype*, a mean colour (a point drawn once from a
normal distribution in RGB) and a sinusoidal grating (orientation ``pi * c / C``, 2-4 cycles across
the image). A sample of class ``c`` is its prototype with a random grating phase, a random
brightness offset and per-pixel Gaussian noise, at the run's input size, already normalized (mean 0,
unit-ish variance, so no mean/std transform applies). Classes are balanced (label = index mod C).

Why it is like this: the reproduction must show whether the *recipe* learns, in a few hundred CPU
updates from random init. Colour alone separates most classes after a few dozen updates (a healthy
arm clearly learns); close colours need the grating (a conv feature), so accuracy keeps rising
rather than saturating at once. Nothing in it favours one arm: both arms and all seeds see the same
samples (the data seed is fixed; the arm's seed changes init, order and dropout only).

Every sample is a pure function of (split, index): deterministic, and cheap to regenerate.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

DATA_SEED = 20240607  # fixed: the same images for every arm and seed

__all__ = ["ProxyDataset", "DATA_SEED"]


class ProxyDataset(Dataset):
    def __init__(self, num_classes: int, img_size: int, length: int, split: str = "train",
                 noise: float = 0.5, in_chans: int = 3) -> None:
        if num_classes < 2 or img_size < 8 or length < 1:
            raise ValueError("proxy dataset needs >= 2 classes, >= 8 px and >= 1 sample")
        self.num_classes, self.img_size, self.length = int(num_classes), int(img_size), int(length)
        self.noise, self.in_chans = float(noise), int(in_chans)
        self._split_offset = {"train": 0, "validation": 1 << 30}.get(split, 1 << 29)
        g = torch.Generator().manual_seed(DATA_SEED)
        self.colors = torch.randn(self.num_classes, in_chans, generator=g) * 1.2
        self.angles = torch.tensor([math.pi * c / self.num_classes for c in range(self.num_classes)])
        self.freqs = torch.tensor([2.0 + (c % 3) for c in range(self.num_classes)])
        ys, xs = torch.meshgrid(torch.linspace(0, 1, self.img_size), torch.linspace(0, 1, self.img_size), indexing="ij")
        self._xs, self._ys = xs, ys
        self.targets = [i % self.num_classes for i in range(self.length)]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = index % self.num_classes
        g = torch.Generator().manual_seed(DATA_SEED + self._split_offset + int(index))
        phase = float(torch.rand(1, generator=g)) * 2 * math.pi
        angle, freq = self.angles[label], self.freqs[label]
        wave = torch.sin(2 * math.pi * freq * (self._xs * torch.cos(angle) + self._ys * torch.sin(angle)) + phase)
        brightness = torch.randn(1, generator=g) * 0.3
        image = self.colors[label].view(-1, 1, 1) + 0.7 * wave + brightness
        image = image + self.noise * torch.randn(self.in_chans, self.img_size, self.img_size, generator=g)
        return image.float(), label
