"""num_classes read off a run stuck at chance level, when the config does not say.

Temporary home: this is recipe arithmetic and moves to ``analyzer/timm/recipe.py`` (issue 6 §1);
``pipeline.py`` is its only caller.
"""

from __future__ import annotations

from dataclasses import replace

from mnv4_postmortem.analyzer.model import Run


def with_inferred_classes(run: Run) -> Run:
    """When num_classes is unknown, read it off a run stuck at chance level.

    A model that predicts one class scores exactly 100/C top-1 and 500/C top-5 on a balanced
    validation set, so top-1 stuck at v with top-5 stuck at 5v for many epochs reveals C = 100/v.
    """
    if run.config.get("num_classes") or not {"eval_top1", "eval_top5"} <= set(run.epochs.columns):
        return run
    top1 = run.epochs["eval_top1"].dropna()
    top5 = run.epochs["eval_top5"].dropna()
    if len(top1) < 5 or len(top5) < 5:
        return run
    value1, value5 = float(top1.median()), float(top5.median())
    # "Stuck" = nearly every epoch within 2% of the median (distributed padding moves the last digit).
    stuck = lambda s, v: bool((abs(s - v) <= 0.02 * max(v, 1e-9)).mean() >= 0.8)  # noqa: E731
    if value1 <= 0 or not (stuck(top1, value1) and stuck(top5, value5)):
        return run
    if abs(value5 - min(100.0, 5 * value1)) > 0.01 * value5:
        return run
    classes = round(100.0 / value1)
    if classes < 2 or abs(100.0 / classes - value1) > 0.01 * value1:
        return run
    effective = {**run.config.effective, "num_classes": classes}
    sources = {**run.config.effective_sources,
               "num_classes": f"inferred: eval_top1 stays at {value1:g} and eval_top5 at {value5:g} (= 100/C and 500/C)"}
    return replace(run, config=replace(run.config, effective=effective, effective_sources=sources))
