"""Curves for the HTML report, drawn with matplotlib and embedded as inline SVG (no external files)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.report import Report

PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("train_loss", "eval_loss", "eval_loss_model", "eval_loss_ema")),
    ("top-1 accuracy (%)", ("eval_top1", "eval_top1_model", "eval_top1_ema")),
    ("learning rate", ("lr",)),
)


def curves_svg(report: Report) -> str | None:
    """One figure with a panel per family of metrics; the top finding's epochs are shaded."""
    epochs = report.run.epochs
    panels = [(title, [c for c in cols if _worth_drawing(epochs, c)]) for title, cols in PANELS]
    panels = [(title, cols) for title, cols in panels if cols]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")  # headless: the report is a file, never a window
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.4 * len(panels)), sharex=True, squeeze=False)
    window = report.findings[0].epochs if report.findings else None
    for ax, (title, cols) in zip(axes[:, 0], panels):
        for col in cols:
            series = pd.to_numeric(epochs[col], errors="coerce")
            ax.plot(series.index, series.to_numpy(), marker=".", label=col)
        if window:
            ax.axvspan(window[0] - 0.5, window[1] + 0.5, color="tab:red", alpha=0.12)
        if title == "learning rate" or (title == "loss" and _spans_decades(epochs, cols)):
            ax.set_yscale("log")
        ax.set_ylabel(title)
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("epoch")
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})  # no timestamp: same input, same file
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.find("<svg"):]


def _worth_drawing(epochs: pd.DataFrame, column: str) -> bool:
    """Present, and not a copy: timm's reported eval_* equals the EMA (or model) pass, drawn once."""
    if column not in epochs.columns or not epochs[column].notna().any():
        return False
    for suffix in ("_ema", "_model"):
        twin = column + suffix
        if column.startswith("eval_") and twin in epochs.columns and epochs[column].equals(epochs[twin]):
            return False
    return True


def _spans_decades(epochs: pd.DataFrame, cols: list[str]) -> bool:
    values = pd.concat([pd.to_numeric(epochs[c], errors="coerce") for c in cols]).dropna()
    values = values[values > 0]
    return bool(len(values) and values.max() / values.min() > 100)


# ----------------------------------------------------------------------------------------------- batch

MAX_OVERLAY_CURVES = 200  # per panel: more lines add ink, not information (and megabytes of SVG)


def overlays_svg(rows) -> str | None:
    """Eval top-1 of every run, one panel per top cause (healthy runs in their own panel)."""
    groups: dict[str, list] = {}
    for row in rows:
        if row.curve_top1 is None or not len(row.curve_top1):
            continue
        groups.setdefault(row.top_cause or "no finding", []).append(row)
    if not groups:
        return None
    plt = _pyplot()
    from matplotlib.collections import LineCollection

    names = sorted(groups, key=lambda n: (n == "no finding", n))
    cols = min(3, len(names))
    nrows = -(-len(names) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 2.5 * nrows), squeeze=False, sharey=True)
    for ax, name in zip(axes.flat, names):
        members = groups[name]
        shown = members if len(members) <= MAX_OVERLAY_CURVES else [
            members[int(i)] for i in np.linspace(0, len(members) - 1, MAX_OVERLAY_CURVES)]
        lines = [np.column_stack([r.curve_epochs, r.curve_top1]) for r in shown]
        ax.add_collection(LineCollection(lines, linewidths=0.8, alpha=max(0.15, min(0.9, 8 / len(lines))),
                                         color="tab:green" if name == "no finding" else "tab:red"))
        ax.autoscale()
        subtitle = f"{len(members)} run(s)" + (f", {len(shown)} drawn" if len(shown) < len(members) else "")
        ax.set_title(f"{name} ({subtitle})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_xlabel("epoch", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("eval top-1 (%)", fontsize=8)
    return _svg(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: the report is a file, never a window
    matplotlib.rcParams["svg.fonttype"] = "none"  # text as text: smaller files, selectable labels
    matplotlib.rcParams["svg.hashsalt"] = "mnv4-postmortem"  # stable ids: same input, same file
    matplotlib.rcParams["text.parse_math"] = False  # a "$" in a tag or run name is text, not TeX
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> str:
    plt = _pyplot()
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.find("<svg"):]
