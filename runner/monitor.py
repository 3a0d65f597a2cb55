"""Gradient monitoring for the built-in trainer, through its ``on_step`` hook.

Per optimizer update it writes to TensorBoard (``<arm>/tensorboard/``, its own event file beside the
trainer's epoch scalars):

* ``grad_norm``: the global L2 norm of all gradients (what ``clip_grad_norm_`` computes; with
  ``--clip-grad`` the hook sees the gradients after clipping, so the norm is the clipped one);
* ``grad_norm/<group>``: the L2 norm over each layer group;
* at ``HISTOGRAM_POINTS`` evenly spaced updates (first and last included), a histogram of each group's
  gradient values, ``grad_hist/<group>``.

Layer groups are timm's own: ``model.group_matcher(coarse=True)`` (the grouping timm uses for layer-wise
LR decay) through ``timm.models.group_parameters``. The first group is the stem when the matcher names
one, the last group holds what no pattern matched (the head: conv_head, norm_head, classifier), and the
rest are ``stage0``, ``stage1``, ... in network order. A model without a matcher is grouped by its
top-level children.

The analyzer reads these tags like any TensorBoard run (``detect/gradients.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

__all__ = ["GradMonitor", "chain_steps", "layer_groups", "HISTOGRAM_POINTS"]

HISTOGRAM_POINTS = 5


def layer_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Group name -> parameters, in network order (see the module docstring)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    matcher = None
    if hasattr(model, "group_matcher"):
        try:
            matcher = model.group_matcher(coarse=True)
        except Exception:  # a model whose matcher needs arguments we do not know
            matcher = None
    if matcher:
        from timm.models import group_parameters

        by_id = group_parameters(model, matcher)
        ids = sorted(by_id)
        by_name = dict(named)
        head_names = {n for n, _ in model.named_parameters() if not _matched(n, matcher)}
        groups: dict[str, list[nn.Parameter]] = {}
        stage = 0
        for position, gid in enumerate(ids):
            names = [n for n in by_id[gid] if n in by_name]
            if not names:
                continue
            if position == 0 and isinstance(matcher, dict) and "stem" in matcher:
                label = "stem"
            elif position == len(ids) - 1 and set(names) <= head_names:
                label = "head"
            else:
                label, stage = f"stage{stage}", stage + 1
            groups.setdefault(label, []).extend(by_name[n] for n in names)
        return groups
    groups = {}
    for name, param in named:
        groups.setdefault(name.split(".", 1)[0], []).append(param)
    return groups


def _matched(name: str, matcher) -> bool:
    import re

    patterns = matcher.values() if isinstance(matcher, dict) else [matcher]
    for pattern in patterns:
        entries = pattern if isinstance(pattern, (list, tuple)) else [pattern]
        for entry in entries:
            regex = entry[0] if isinstance(entry, (list, tuple)) else entry
            if isinstance(regex, str) and re.match(regex, name):
                return True
    return False


class GradMonitor:
    """An ``on_step(step, model, loss, optimizer)`` hook that logs gradient norms to each arm's folder."""

    def __init__(self, model: nn.Module, out_dirs: Sequence[Path], total_updates: int,
                 histogram_points: int = HISTOGRAM_POINTS) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.groups = layer_groups(model)
        self.writers = [SummaryWriter(log_dir=str(Path(d) / "tensorboard"), filename_suffix=".grad") for d in out_dirs]
        total = max(int(total_updates), 1)
        n = max(2, histogram_points)
        self.histogram_at = {1 + round(i * (total - 1) / (n - 1)) for i in range(n)}

    def __call__(self, step: int, model: nn.Module, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        norms = {}
        for name, params in self.groups.items():
            grads = [p.grad for p in params if p.grad is not None]
            norms[name] = _l2(grads)
        total = torch.linalg.vector_norm(torch.stack(list(norms.values()))) if norms else torch.tensor(0.0)
        for writer in self.writers:
            writer.add_scalar("grad_norm", float(total), step)
            for name, value in norms.items():
                writer.add_scalar(f"grad_norm/{name}", float(value), step)
        if step in self.histogram_at:
            for name, params in self.groups.items():
                grads = [p.grad.detach().flatten() for p in params if p.grad is not None]
                if grads:
                    values = torch.cat(grads)
                    for writer in self.writers:
                        writer.add_histogram(f"grad_hist/{name}", values, step, bins=64)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


def chain_steps(*hooks):
    """One ``on_step`` hook that calls each given one (None entries skipped) in order."""
    active = [h for h in hooks if h is not None]

    def on_step(step, model, loss, optimizer):
        for hook in active:
            hook(step, model, loss, optimizer)

    return on_step


def _l2(grads: list[torch.Tensor]) -> torch.Tensor:
    if not grads:
        return torch.tensor(0.0)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach()) for g in grads]))
