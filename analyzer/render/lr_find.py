"""``lr-find``: the LR range test's summary (with a character plot), its document and its plot.

The subject is ``lr_find.json`` as the runner builds it (schema ``mnv4-postmortem/lr-find``): the sweep,
the smoothed and raw losses per LR, the suggestion and the run's own LR. Nothing is computed here beyond
laying the curve out on a character grid or a figure.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Sequence

import numpy as np

from mnv4_postmortem.analyzer.render.plots import figure_renderers

__all__ = ["summary_text", "as_json", "plot_svg", "plot_png", "text_plot"]


def summary_text(doc: Mapping[str, Any], *, verbose: bool = False, width: int | None = None) -> str:
    s, sweep, run_lr = doc.get("suggestion"), doc["sweep"], doc.get("run_lr")
    lrs = doc.get("lrs") or []
    lines = [f"LR range test: {doc['run']} ({doc['opt']}, batch {doc['batch']}, data {doc['data']}, init {doc['init']})",
             f"  sweep: {sweep['steps_run']}/{sweep['steps_planned']} batches, lr {sweep['start_lr']:g} -> {lrs[-1]:.3g}"
             + (" (stopped: the loss diverged)" if sweep["stopped_early"] else "")
             + f", {sweep['seconds']:.0f} s; model and optimizer restored"]
    if s is None:
        lines.append("  no suggestion: too few points survived the trim (run more --steps)")
    else:
        lines += [
            f"  suggested lr {s['lr']:.3g}: {s['rule']}",
            f"  suggested range {s['low']:.3g} - {s['high']:.3g}: {s['range_rule']} (loss minimum {s['min_loss']:.3f} at "
            f"lr {s['min_loss_lr']:.3g})",
        ]
    if run_lr and s is not None:
        where = ("inside the range" if doc.get("run_lr_in_range") else
                 ("above the range" if run_lr > s["high"] else "below the range"))
        lines.append(f"  the run's lr {run_lr:.3g} is {doc['ratio_run_to_suggestion']:.3g}x the suggestion, {where}")
    lines += [f"  note: {n}" for n in doc.get("notes") or ()]
    chart = text_plot(lrs, doc.get("loss") or [], s, run_lr)
    if chart:
        lines += ["", "  smoothed loss vs lr (log): * loss, : suggested range, | the run's lr", chart]
    lines += [f"plot: {p}" for p in doc.get("plots") or ()]
    return "\n".join(lines)


def as_json(doc: Mapping[str, Any], *, verbose: bool = False) -> str:
    return json.dumps(doc, indent=2, default=str)


def text_plot(lrs: Sequence[float], losses: Sequence[float], suggestion: Mapping[str, Any] | None,
              run_lr: float | None, *, width: int = 60, height: int = 10) -> str:
    """The smoothed curve as characters, for the terminal: ``*`` loss, ``|`` the run's LR, ``:`` the range."""
    lrs_a = np.asarray(lrs, float)
    losses_a = np.asarray([math.nan if v is None else v for v in losses], float)[: len(lrs_a)]
    lrs_a = lrs_a[: len(losses_a)]
    keep = np.isfinite(losses_a) & (lrs_a > 0)
    if keep.sum() < 2:
        return ""
    lrs_a, losses_a = lrs_a[keep], losses_a[keep]
    lo_x, hi_x = math.log10(lrs_a[0]), math.log10(lrs_a[-1])
    top = float(min(losses_a.max(), losses_a[0] * 1.6 + 0.1))
    bottom = float(losses_a.min())
    grid = [[" "] * width for _ in range(height)]

    def col(lr: float) -> int | None:
        if lr <= 0 or not lo_x <= math.log10(lr) <= hi_x:
            return None
        return min(width - 1, int((math.log10(lr) - lo_x) / max(hi_x - lo_x, 1e-12) * (width - 1)))

    if suggestion is not None:
        a, b = col(suggestion["low"]), col(suggestion["high"])
        for c in range(a if a is not None else 0, (b if b is not None else width - 1) + 1):
            for r in range(height):
                grid[r][c] = ":"
    for lr, loss in zip(lrs_a, losses_a):
        c = col(float(lr))
        r = int(round((min(loss, top) - bottom) / max(top - bottom, 1e-12) * (height - 1)))
        grid[height - 1 - r][c] = "*"
    c = col(run_lr) if run_lr else None
    if c is not None:
        for r in range(height):
            grid[r][c] = "|"
    lines = [f"{top:8.3g} " + "".join(grid[0])]
    lines += ["         " + "".join(row) for row in grid[1:-1]]
    lines.append(f"{bottom:8.3g} " + "".join(grid[-1]))
    lines.append(f"         lr {lrs_a[0]:.0e}" + " " * max(1, width - 18) + f"{lrs_a[-1]:.0e}")
    return "\n".join(lines)


def _figure(doc: Mapping[str, Any]):
    from matplotlib.figure import Figure

    lrs, losses = doc["lrs"], [math.nan if v is None else v for v in doc["loss"]]
    raw = [math.nan if v is None else v for v in doc.get("raw_loss") or []]
    s, run_lr = doc.get("suggestion"), doc.get("run_lr")
    fig = Figure(figsize=(7, 4.2), dpi=110)
    ax = fig.subplots()
    ax.plot(lrs, raw[: len(lrs)], ".", color="0.75", markersize=3, label="loss per batch")
    ax.plot(lrs, losses, color="C0", linewidth=2, label="smoothed loss")
    if s is not None:
        ax.axvspan(s["low"], s["high"], color="C2", alpha=0.18, label="suggested range")
        ax.axvline(s["lr"], color="C2", linestyle="--", label=f"suggested lr {s['lr']:.3g}")
    if run_lr:
        ax.axvline(run_lr, color="C3", linewidth=2, label=f"the run's lr {run_lr:.3g}")
    ax.set_xscale("log")
    finite = [x for x in losses if math.isfinite(x)]
    if finite:
        low, high = min(finite), max(finite[: max(1, len(finite) // 2)] + [finite[0]])
        ax.set_ylim(low - 0.1 * abs(low), max(high, low) * 1.6 + 0.1)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("train loss")
    ax.set_title(f"LR range test: {doc['run']} ({doc['opt']}, batch {doc['batch']}, {doc['data']})")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    return fig


# Loss vs LR (log x): raw losses faint, the smoothed line, the suggested range shaded, the run's LR marked.
plot_svg, plot_png = figure_renderers(_figure)
