"""Plots for the HTML reports, drawn with matplotlib and embedded as inline SVG.

Why matplotlib: it is already a core dependency, it draws offline into static SVG (no JavaScript runtime,
no CDN, nothing to load when the file is opened from disk or attached to an issue), its SVG backend escapes
every label (a hostile TensorBoard tag in a legend stays text), and with a fixed hash salt and no date the
same run gives the same bytes. Vega-Lite would need its JavaScript runtime inlined (~1 MB) or a separate
renderer (vl-convert) to produce the same static result.

Plots only draw what the report holds: segments, change points, finding epochs, chance levels and the
schedules come from the diagnosis; the only computation here is thinning long step series for drawing.
"""

from __future__ import annotations

import io
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from mnv4_postmortem.analyzer.diagnosis import CurveSegment

SEVERITY_COLORS = {"critical": "#a40e26", "error": "#cf222e", "warning": "#d4a72c", "info": "#0969da"}
MAX_STEP_POINTS = 2000     # step-level curves are thinned to this many points (min and max per bucket)
MARKER_MAX_POINTS = 60     # beyond this, dots would hide the line
# Metrics drawn together on one panel (twins drawn in the panel of their family).
PANEL_OF = {
    "train_loss": "loss", "eval_loss": "loss",
    "eval_top1": "eval top-1 (%)", "eval_top5": "eval top-5 (%)",
    "eval_loss_model": "loss", "eval_loss_ema": "loss",
    "eval_top1_model": "eval top-1 (%)", "eval_top1_ema": "eval top-1 (%)",
    "eval_top5_model": "eval top-5 (%)", "eval_top5_ema": "eval top-5 (%)",
}
SKIP_IN_METRICS = ("lr",)


def metrics_svg(epochs: pd.DataFrame, segments: Mapping[str, Sequence[CurveSegment]], findings: Sequence[Any],
                chance: Mapping[str, float]) -> str | None:
    """One panel per epoch metric (loss families share one): the values, each segment's Theil-Sen line,
    change points (dotted verticals), every finding's epochs shaded (only those epochs) and the chance level."""
    columns = [c for c in epochs.columns if c not in SKIP_IN_METRICS and _drawable(epochs, c) and not _copy_of_reported(epochs, c)]
    if _drawable(epochs, "eval_top1_model") and _drawable(epochs, "eval_top1_ema"):
        # both passes are known: they get their own plot, and the reported eval_* is one of them
        columns = [c for c in columns if not c.endswith(("_model", "_ema"))]
    if not columns:
        return None
    panels: dict[str, list[str]] = {}
    for column in columns:
        panels.setdefault(PANEL_OF.get(column, column), []).append(column)
    plt = _pyplot()
    ncols = 2 if len(panels) > 1 else 1
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 2.7 * nrows), squeeze=False)
    for ax, (title, cols) in zip(axes.flat, panels.items()):
        for i, column in enumerate(cols):
            series = pd.to_numeric(epochs[column], errors="coerce")
            line = _draw_series(ax, series, column)
            _draw_segments(ax, segments.get(column, ()), line.get_color(), change_points=(i == 0))
            if column in chance and (i == 0 or chance[column] != chance.get(cols[0])):
                _chance(ax, chance[column])
        _shade_findings(ax, findings)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        _legend(ax)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    return _svg(fig)


def model_vs_ema_svg(epochs: pd.DataFrame, chance: Mapping[str, float], findings: Sequence[Any]) -> str | None:
    """The model's and the EMA's own eval top-1 on one axis (timm reports only one of them)."""
    pair = [c for c in ("eval_top1_model", "eval_top1_ema") if _drawable(epochs, c)]
    if len(pair) < 2:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    for column, label in zip(pair, ("model (Test:)", "EMA (Test (EMA):)")):
        _draw_series(ax, pd.to_numeric(epochs[column], errors="coerce"), label)
    if "eval_top1_model" in chance:
        _chance(ax, chance["eval_top1_model"])
    _shade_findings(ax, findings)
    return _finish(fig, ax, "epoch", "eval top-1 (%)")


def lr_svg(logged: tuple | None, configured: Sequence[float] | None, steps: pd.DataFrame | None) -> str | None:
    """The LR as logged (per step when the log has Train: lines, else per epoch) against the config's schedule."""
    if logged is None and configured is None:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 2.6))
    step_x, step_y = _step_lr(steps)
    if step_x is not None:
        ax.plot(step_x, step_y, lw=1.0, color="tab:blue", label="logged (Train: lines)")
    elif logged is not None:
        ax.plot(logged[0], logged[1], lw=1.2, marker="." if len(logged[0]) <= MARKER_MAX_POINTS else None,
                color="tab:blue", label=f"logged ({logged[2]})")
    if configured is not None:
        # timm steps the scheduler once per epoch: the configured LR holds for the whole epoch
        ax.plot(np.arange(len(configured) + 1), [*configured, configured[-1]], lw=1.2, ls="--", color="tab:orange",
                drawstyle="steps-post", label="configured (sched, warmup, lr)")
    # linear, as TensorBoard and W&B draw schedules: warm-up and decay shapes read directly
    return _finish(fig, ax, "epoch", "learning rate")


def step_loss_svg(steps: pd.DataFrame | None) -> str | None:
    """Per-step train loss against the optimizer update, thinned to MAX_STEP_POINTS (spikes kept)."""
    if steps is None or "train_loss" not in steps or "update" not in steps:
        return None
    frame = steps[["update", "train_loss"]].apply(pd.to_numeric, errors="coerce").dropna()
    if len(frame) < 2:
        return None
    x, y = thin_min_max(frame["update"].to_numpy(float), frame["train_loss"].to_numpy(float), MAX_STEP_POINTS)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 2.6))
    ax.plot(x, y, lw=0.8, color="tab:purple", label=f"train loss ({len(frame)} logged steps" + (f", {len(x)} drawn)" if len(x) < len(frame) else ")"))
    finite = y[np.isfinite(y) & (y > 0)]
    if len(finite) and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
    return _finish(fig, ax, "optimizer update", "loss")


def grad_norm_svg(step_scalars: pd.DataFrame | None) -> str | None:
    """Gradient norms per optimizer update (global and per layer group, log scale), when the run logged them."""
    if not isinstance(step_scalars, pd.DataFrame) or step_scalars.empty:
        return None
    columns = [c for c in step_scalars.columns if c == "grad_norm" or str(c).startswith("grad_norm/")]
    if not columns:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 2.6))
    for column in columns:
        series = pd.to_numeric(step_scalars[column], errors="coerce").dropna()
        series = series[series > 0]
        ax.plot(series.index, series.to_numpy(), lw=1.6 if column == "grad_norm" else 0.8, label=str(column))
    ax.set_yscale("log")
    return _finish(fig, ax, "optimizer update", "gradient L2 norm")


def thin_min_max(x: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` points: each bucket keeps its minimum and maximum, in x order, so spikes survive."""
    if len(x) <= limit:
        return x, y
    buckets = np.array_split(np.arange(len(x)), limit // 2)
    keep: list[int] = []
    for idx in buckets:
        ys = y[idx]
        if not np.isfinite(ys).any():
            keep.append(int(idx[0]))
            continue
        lo, hi = int(idx[np.nanargmin(ys)]), int(idx[np.nanargmax(ys)])
        keep.extend(sorted({lo, hi}))
    keep_arr = np.asarray(keep)
    return x[keep_arr], y[keep_arr]


def _finish(fig, ax, xlabel: str, ylabel: str) -> str:
    """One plot's axis labels, legend and grid, as every single-panel plot draws them; the SVG text."""
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    _legend(ax)
    ax.grid(alpha=0.3)
    return _svg(fig)


def _legend(ax) -> None:
    # A fixed corner: loc="best" tests every data point against each legend position, a large share of the
    # rendering time on a 600-epoch run. Accuracies rise (their lower right is free late in training),
    # losses and LRs fall (upper right).
    rising = "top-" in ax.get_title() or "top-1" in ax.get_ylabel()
    ax.legend(fontsize=7, loc="lower right" if rising else "upper right", framealpha=0.85)


def _draw_series(ax, series: pd.Series, label: str):
    marker = "." if series.notna().sum() <= MARKER_MAX_POINTS else None
    (line,) = ax.plot(series.index.to_numpy(), series.to_numpy(), marker=marker, lw=1.2, label=label)
    return line


def _draw_segments(ax, segments, color: str, *, change_points: bool) -> None:
    for i, seg in enumerate(segments):
        x0, x1, level, slope = seg.start, seg.end, seg.level, seg.slope
        if x0 is None or x1 is None or level is None:
            continue
        slope = slope or 0.0
        mid = (x0 + x1) / 2.0
        ax.plot([x0, x1], [level + slope * (x0 - mid), level + slope * (x1 - mid)], color=color, lw=3, alpha=0.35,
                solid_capstyle="butt", label=None)
        if change_points and i > 0:
            ax.axvline(x0 - 0.5, color="0.35", ls=":", lw=1)


def _shade_findings(ax, findings: Sequence[Any]) -> None:
    for finding in findings:
        if finding.epochs:
            color = SEVERITY_COLORS.get(finding.severity.label, "0.5")
            ax.axvspan(finding.epochs[0] - 0.5, finding.epochs[1] + 0.5, color=color, alpha=0.10, lw=0)


def _chance(ax, value: float) -> None:
    ax.axhline(value, color="0.45", ls="--", lw=1, label=f"chance ({value:.3g})")


def _step_lr(steps: pd.DataFrame | None):
    if steps is None or not {"epoch", "idx", "per_epoch", "lr"} <= set(steps.columns):
        return None, None
    frame = steps[["epoch", "idx", "per_epoch", "lr"]].apply(pd.to_numeric, errors="coerce").dropna()
    frame = frame[frame["per_epoch"] > 0]
    if len(frame) < 2:
        return None, None
    x = (frame["epoch"] + frame["idx"] / frame["per_epoch"]).to_numpy(float)
    order = np.argsort(x, kind="stable")
    return thin_min_max(x[order], frame["lr"].to_numpy(float)[order], MAX_STEP_POINTS)


def _copy_of_reported(epochs: pd.DataFrame, column: str) -> bool:
    """``eval_top1_model`` equal to the reported ``eval_top1`` (timm reports the model's pass without EMA): drawn once."""
    for suffix in ("_model", "_ema"):
        if column.endswith(suffix):
            reported = column[: -len(suffix)]
            if reported not in epochs.columns:
                return False
            a = pd.to_numeric(epochs[reported], errors="coerce").to_numpy(float)
            b = pd.to_numeric(epochs[column], errors="coerce").to_numpy(float)
            # summary.csv keeps more digits than the log's Test: line: equal up to the log's rounding
            return bool(np.allclose(a, b, rtol=1e-4, atol=1e-3, equal_nan=True))
    return False


def _drawable(epochs: pd.DataFrame, column: str) -> bool:
    return column in epochs.columns and pd.to_numeric(epochs[column], errors="coerce").notna().any()


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


def _fixed_margins(fig) -> None:
    """Margins in inches (labels fit at the font sizes used here), whatever the figure's size."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.15 / width, bottom=0.5 / height, top=1 - 0.3 / height,
                        hspace=0.55, wspace=0.2)


class _Figures:
    """The two pyplot calls the plots use, on matplotlib's object API: ``matplotlib.pyplot`` costs a
    second import (backend registry, colormaps, the figure manager) for state a file-only renderer never
    uses, and a ``Figure`` not made by pyplot needs no ``close``."""

    @staticmethod
    def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kwargs: Any):
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        return fig, fig.subplots(nrows, ncols, **kwargs)


def _pyplot() -> type[_Figures]:
    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "none"  # text as text: smaller files, selectable labels
    matplotlib.rcParams["svg.hashsalt"] = "mnv4-postmortem"  # stable ids: same input, same file
    matplotlib.rcParams["text.parse_math"] = False  # a "$" in a tag or run name is text, not TeX
    return _Figures


def saved_figure(fig, fmt: str) -> str | bytes:
    """A figure as SVG text (``fmt="svg"``) or PNG bytes: the runner's plots (ladder, lr-find), saved as drawn."""
    buffer: io.StringIO | io.BytesIO = io.StringIO() if fmt == "svg" else io.BytesIO()
    fig.savefig(buffer, format=fmt)
    return buffer.getvalue()


def figure_renderers(draw: Callable[[Mapping[str, Any]], Any]) -> tuple[Callable[..., str], Callable[..., bytes]]:
    """The registry's SVG and PNG renderers (``doc, *, verbose``) of a document's figure drawn by ``draw``."""

    def svg(doc: Mapping[str, Any], *, verbose: bool = False) -> str:
        return saved_figure(draw(doc), "svg")

    def png(doc: Mapping[str, Any], *, verbose: bool = False) -> bytes:
        return saved_figure(draw(doc), "png")

    return svg, png


def _svg(fig) -> str:
    _pyplot()
    from matplotlib.ticker import MaxNLocator

    for ax in fig.axes:  # a handful of ticks per axis: every tick label costs a text layout
        if ax.get_xscale() == "linear":
            ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))  # epochs and updates are whole numbers
        if ax.get_yscale() == "linear":
            ax.yaxis.set_major_locator(MaxNLocator(5))
    # Fixed margins instead of tight_layout: tight_layout draws every figure twice to measure it, and
    # rendering must stay within twice the analysis time (bench/bench_report_html.py).
    _fixed_margins(fig)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.find("<svg"):]
    # matplotlib's RDF <metadata> block only names the tool; it costs bytes in every plot
    start, end = svg.find("<metadata>"), svg.find("</metadata>")
    return svg[:start] + svg[end + len("</metadata>"):] if 0 <= start < end else svg
