"""What ``reproduce`` shows: the training spec, the arms it plans, and the verdicts (text, JSON, HTML).

The runner builds the typed records (``analyzer/verification.py``: :class:`SpecRecord`, :class:`ArmsPlan`,
:class:`Verification`) and prints or saves what these functions return; nothing here computes a verdict or
scales a recipe. Text is plain (no colour codes): the same lines go to a terminal, a pipe or a log.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

from rich.table import Table
from rich.text import Text

from mnv4_postmortem.analyzer.render.terminal import terminal_safe, text_console
from mnv4_postmortem.analyzer.verification import ArmsPlan, SpecRecord, Verification, record_json

__all__ = ["spec_text", "spec_json", "plan_text", "plan_json", "verdicts_text", "verdicts_json", "verdicts_html"]

def _cell(value: Any) -> Text:
    """Table cells are data: shown literally (no markup), control characters made visible."""
    return Text(terminal_safe(str(value)))


def show(value: Any) -> str:
    """A setting's value as the spec shows it: floats to 6 significant digits, missing as ``-``."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


# ----------------------------------------------------------------------------------------- the spec

def spec_text(spec: SpecRecord, *, verbose: bool = False, width: int | None = None) -> str:
    """The header line, one row per setting (original, reproduction, kept/scaled/replaced, why), the init note."""
    console = text_console(width)
    b = spec.budget
    ratio = (b.original_updates or 0) / max(b.updates or 0, 1) if b is not None else float("nan")
    console.print(f"Training spec for {spec.run} (timm {spec.timm_version or 'unknown'}, era {spec.era}, "
                  f"EMA {spec.ema_version}): {b.updates if b else '?'} updates stand for "
                  f"{b.original_updates if b else '?'} (x{ratio:.3g})")
    table = Table(show_edge=False, pad_edge=False)
    for col in ("setting", "original", "reproduction", "", "why"):
        table.add_column(col, overflow="fold")
    for e in spec.entries:
        table.add_row(_cell(e.name), _cell(show(e.original)), _cell(show(e.value)), _cell(e.status), _cell(e.why or ""))
    console.print(table)
    if spec.init is not None and spec.init.note:
        console.print(f"init: {spec.init.note}")
    return console.file.getvalue()


def spec_json(spec: SpecRecord, *, verbose: bool = False) -> str:
    return json.dumps(record_json(spec), indent=2, default=str)


# ----------------------------------------------------------------------------------------- the plan

# Settings a treatment's scaling changes as a matter of course: shown when scaled, even if the fix left them.
_SCALED_WITH_THE_FIX = ("model_ema_decay", "ema warmup_gamma", "lr")


def plan_text(plan: ArmsPlan, *, verbose: bool = False, width: int | None = None) -> str:
    """Per finding: control vs treatment and the fix; the settings the treatment changes; then the cost."""
    console = text_console(width)
    for f in plan.findings:
        patch = ", ".join(f"{k}={show(v)}" for k, v in (f.patch or {}).items())
        fired = "fired on the run" if f.fired_on_run else "did not fire on the run: a hypothesis"
        console.print(f"{f.finding} ({fired}): control [{f.control}] vs treatment [{f.treatment}] with {patch}")
        if f.direction:
            console.print(f"    direction: {f.direction}")
        if f.control == f.treatment:
            console.print("    the fix changes nothing in this recipe: the treatment is the control (difference 0 by construction)")
        for e in f.entries:
            fixed = e.name in (f.patch or {})
            if (fixed or e.name in _SCALED_WITH_THE_FIX) and (e.status != "kept" or fixed):
                console.print(f"    {e.name}: {show(e.original)} -> {show(e.value)} ({e.status}; {e.why})")
    console.print(f"{plan.arms} arm(s) in {plan.trajectories} trajector{'y' if plan.trajectories == 1 else 'ies'} x "
                  f"{plan.seeds} seed(s); arms that differ only in EMA settings share one trajectory.")
    return console.file.getvalue()


def plan_json(plan: ArmsPlan, *, verbose: bool = False) -> str:
    return json.dumps(record_json(plan), indent=2, default=str)


# ----------------------------------------------------------------------------------------- the verdicts

def verdicts_text(v: Verification, *, verbose: bool = False, width: int | None = None) -> str:
    """The verdict table (one row per finding), then per finding the numbers behind it."""
    console = text_console(width)
    table = Table(title="Verification", show_edge=False, pad_edge=False)
    for col in ("finding", "verdict", "metric", "control", "treatment", "diff (95% CI)", "reason"):
        table.add_column(col, overflow="fold")
    for f in v.findings:
        metric = f.measured_on
        control, treatment = (f.arms + (None, None))[:2]
        eff = f.effect
        ci = eff.deciding_ci if eff is not None else None
        diff = "n/a" if eff is None or eff.mean_diff is None else f"{eff.mean_diff:+.2f}" + (
            f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else " (no CI)")
        reason = (f.reason or "") + (f"; to settle: {f.settle}" if f.settle else "")
        table.add_row(_cell(f.finding), _cell(f.verdict), _cell(metric), _cell(_seeds(control, metric)),
                      _cell(_seeds(treatment, metric)), _cell(diff), _cell(reason))
    console.print(table)
    for f in v.findings:
        console.print(f"{f.finding}: {f.verdict}")
        eff = f.effect
        if eff is not None and eff.present:
            metric = f.measured_on
            finals = [[s.final(metric) for s in arm.seeds] for arm in f.arms[:2]]
            console.print(f"  final {metric}: control per seed {finals[0]}, treatment {finals[1]}; per-seed differences "
                          f"{list(eff.diffs)}")
            console.print(f"  decided by: {eff.deciding_test}; 95% CI {_ci(eff.deciding_ci)}")
            console.print(f"  also: {eff.test}: 95% CI {_ci(eff.ci)}; {eff.bootstrap}: 95% CI {_ci(eff.bootstrap_ci)}")
        for arm in f.arms:
            e = arm.ema
            if e is not None and e.present:
                obs = e.share_observed_end
                console.print(f"  {arm.name}: EMA decay {e.decay_original} -> {_g(e.decay_scaled, '.6g')}; initial-weight "
                              f"share at the end: original {_g(e.share_original_end, '.4g')}, predicted "
                              f"{_g(e.share_predicted_end, '.4g')}, observed {'n/a' if obs is None else format(obs, '.4g')}")
        if f.init_changes:
            console.print(f"  init: {f.init_changes}")
    return console.file.getvalue()


def verdicts_json(v: Verification, *, verbose: bool = False) -> str:
    """The verification as ``report --format json`` carries it (render/verification.py: one owner of that shape)."""
    from mnv4_postmortem.analyzer.render.verification import verification_json

    return json.dumps(verification_json(v), indent=2, default=str)


def verdicts_html(v: Verification, *, verbose: bool = False) -> str:
    """The Verification section, as ``report --format html`` shows it."""
    from mnv4_postmortem.analyzer.render.verification import render_verification_html

    return render_verification_html(v)


def _ci(ci: Sequence[float | None] | None) -> str:
    return "n/a" if not ci else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def _g(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _seeds(arm: Any, metric: str) -> str:
    if arm is None:
        return "-"
    values = [s.final(metric) for s in arm.seeds]
    return " / ".join("n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}" for v in values) or "-"
