"""Curves for the HTML report, drawn with matplotlib and embedded as inline SVG (no external files)."""

from __future__ import annotations

import io

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


def grad_norm_svg(report: Report) -> str | None:
    """Gradient norms per optimizer update (global and per layer group, log scale), when the run logged them."""
    scalars = getattr(report.run, "step_scalars", None)
    if not isinstance(scalars, pd.DataFrame) or scalars.empty:
        return None
    cols = [c for c in scalars.columns if c == "grad_norm" or str(c).startswith("grad_norm/")]
    if not cols:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.8))
    for col in cols:
        series = pd.to_numeric(scalars[col], errors="coerce").dropna()
        series = series[series > 0]
        ax.plot(series.index, series.to_numpy(), linewidth=2 if col == "grad_norm" else 1, label=col)
    ax.set_yscale("log")
    ax.set_xlabel("optimizer update")
    ax.set_ylabel("gradient L2 norm")
    ax.legend(fontsize=7, loc="best", ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
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
