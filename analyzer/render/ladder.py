"""``reproduce --ablate``: the ladder's plan, its rung table, the document and the eval top-1 plot.

Subjects are the documents the runner writes: the plan it prints before training (``plan_text``) and
``ablation.json`` (``table_text``, ``as_json``, ``plot_svg``, ``plot_png``). Nothing is computed here:
gains, flat rungs and the stall line come from the document.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from rich.table import Table
from rich.text import Text

from mnv4_postmortem.analyzer.render.plots import figure_renderers
from mnv4_postmortem.analyzer.render.terminal import terminal_safe, text_console

__all__ = ["plan_text", "table_text", "as_json", "plot_svg", "plot_png"]

def _fmt(value: Any, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(float(value), spec)


def plan_text(plan: Mapping[str, Any], *, verbose: bool = False, width: int | None = None) -> str:
    """The ladder's order, the components and why each is suspicious, every rung's scaled settings, the cost."""
    console = text_console(width)
    console.print(f"Ablation ladder ({plan['mode']}); order: {plan['order_rule']}")
    if plan.get("lr_cap") is not None:
        console.print(f"  LR cap for the baseline: {plan['lr_cap']:.3g} (a typical {plan.get('opt')} LR for "
                      f"global batch {plan.get('original_batch')}; the analyzer's lr_reference)")
    for c in plan["components"]:
        console.print(f"  component {c['key']}: {c['label']} - suspicious because {', '.join(c['why']) or 'it is on'}")
    for r in plan["rungs"]:
        ema = "on, decay " + format(float(r["ema_decay"]), ".6g") if r["ema"] else "off"
        console.print(f"  rung {r['rung']}: {r['added']}  (scaled: lr {r['lr']:.3g}, ema {ema}, drop {r['drop']}, "
                      f"drop-path {r['drop_path']}, smoothing {r['smoothing']})")
    for note in plan.get("notes") or ():
        console.print(f"  {note}")
    c = plan["cost"]
    console.print(f"Cost: {c['rungs']} rungs x {c['seeds']} seed(s) = {c['rungs'] * c['seeds']} arms in "
                  f"{c['trainings']} training run(s) (rungs that differ only in EMA share one), {c['updates']} optimizer "
                  f"updates of batch {c['batch']} in all, plus {c['rungs'] * c['seeds'] * c['epochs']} evaluations "
                  f"of {c['val_samples']} images.")
    return console.file.getvalue()


def table_text(doc: Mapping[str, Any], *, verbose: bool = False, width: int | None = None) -> str:
    """One row per rung (eval top-1 reported and raw, train loss, gain, findings that fire), then the stall line."""
    console = text_console(width)
    table = Table(title=f"Ablation ladder ({doc['mode']})", show_edge=False, pad_edge=False)
    for col in ("rung", "added", "eval top-1 (reported)", "raw-model top-1", "train loss", "gain", "findings that fire"):
        table.add_column(col, overflow="fold")
    for r in doc["rungs"]:
        cells = (str(r["rung"]), r["added"], _fmt(r["final_top1"]), _fmt(r["final_top1_model"]),
                 _fmt(r["train_loss"], ".3f"), _fmt(r["eval_gain"]) + (" flat" if r["flat"] else ""),
                 ", ".join(r["fired"]) or "-")
        table.add_row(*(Text(terminal_safe(str(c))) for c in cells))
    console.print(table)
    console.print(doc["stall_line"])
    return console.file.getvalue()


def as_json(doc: Mapping[str, Any], *, verbose: bool = False) -> str:
    return json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n"


def _figure(doc: Mapping[str, Any]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), dpi=110)
    ax = fig.subplots()
    for r in doc["rungs"]:
        curves = [s["curve"]["eval_top1"] for s in r["seeds"] if s["curve"]["eval_top1"]]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        mean = [sum(c[i] for c in curves) / len(curves) for i in range(n)]
        ax.plot(range(n), mean, "--" if r["flat"] else "-", marker="o", markersize=3, label=f"{r['rung']}: {r['added']}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("eval top-1 (reported)")
    ax.set_title(f"Ablation ladder: {doc['run_name']}")
    ax.legend(fontsize=7, loc="best")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


# Eval top-1 per epoch for every rung (mean over seeds), overlaid; flat rungs dashed.
plot_svg, plot_png = figure_renderers(_figure)
