"""The Verification section of ``report`` (text, JSON, HTML), from a reproduction's verification.json.

Self-contained on purpose: the main renderers are not touched beyond one call each, so the section
survives a rewrite of the report templates. Nothing is computed here: verdicts, effects and curves
all come from the file the runner wrote, read into typed records (analyzer/verification.py).
"""

from __future__ import annotations

import io
from typing import Any, Sequence

from jinja2 import Environment, select_autoescape
from rich.console import Console
from rich.markup import escape as markup_escape

from mnv4_postmortem.analyzer.verification import Arm, Effect, Verification
from mnv4_postmortem.analyzer.render.terminal import terminal_safe

__all__ = ["render_verification_text", "verification_json", "render_verification_html"]

VERDICT_STYLE = {"confirmed": "bold green", "refuted": "bold red", "inconclusive": "bold yellow"}


def escape(text: str) -> str:
    """Data shown through rich: control characters made visible first (render/terminal.py; rich would
    drop some silently and pass ESC through), then rich markup escaped."""
    return markup_escape(terminal_safe(str(text)))


def _fmt_ci(effect: Effect | None) -> str:
    if effect is None or effect.mean_diff is None:
        return "no effect measured"
    ci = effect.deciding_ci if "deciding_ci" in effect.present else effect.ci
    text = f"{effect.mean_diff:+.2f} points"
    return text + (f", 95% CI [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else " (no CI: one seed)")


def _top1s(arm: Arm, metric: str = "eval_top1") -> str:
    values = [s.final(metric) for s in arm.seeds]
    return " / ".join("n/a" if v is None else f"{v:.1f}" for v in values) or "-"


def _test(effect: Effect | None) -> str:
    return (effect.deciding_test or effect.test or "") if effect is not None else ""


def render_verification_text(v: Verification, console: Console) -> None:
    state = "complete" if v.complete else ("partial: interrupted" if v.interrupted else "partial")
    console.print(f"\n[bold]Verification[/bold] ({escape(str(v.path))}; {state}; {len(v.seeds or ())} seed(s), "
                  f"{escape(str(v.trainer))} trainer)")
    for f in v.findings:
        style = VERDICT_STYLE.get(f.verdict, "")
        console.print(f"  [{style}]{escape(str(f.finding))}: {escape(str(f.verdict))}[/{style}] - "
                      f"{escape(f.reason or '')}")
        if len(f.arms) == 2:
            metric = f.measured_on
            console.print(f"    final {escape(metric)}: control {_top1s(f.arms[0], metric)}, treatment "
                          f"{_top1s(f.arms[1], metric)}; difference {_fmt_ci(f.effect)}")
        if _test(f.effect):
            console.print(f"    test: {escape(_test(f.effect))}")
        for arm in f.arms:
            ema = arm.ema
            if ema is not None and ema.share_predicted_end is not None:
                observed = ema.share_observed_end
                console.print(f"    {escape(str(arm.name))}: initial-weight share at the end predicted "
                              f"{ema.share_predicted_end:.3g}, observed {'n/a' if observed is None else format(observed, '.3g')}")
        if f.settle:
            console.print(f"    to settle it: {escape(f.settle)}")
        if f.init_changes:
            console.print(f"    [dim]init: {escape(f.init_changes)}[/dim]")
    for item in v.skipped:
        console.print(f"  [dim]{escape(str(item.finding))}: not tested ({escape(str(item.reason))})[/dim]")


def verification_json(v: Verification) -> dict[str, Any]:
    """What ``report --format json`` adds under ``verification``: the file's findings, trimmed of curves."""
    findings = []
    for f in v.findings:
        arms = [{"name": a.name, "role": a.role, "ema": a.ema.as_json() if a.ema is not None else None,
                 "final_top1": [s.final_top1 for s in a.seeds],
                 "final_top1_model": [s.final_top1_model for s in a.seeds],
                 "fired": [list(s.fired) if s.fired is not None else None for s in a.seeds]}
                for a in f.arms]
        findings.append({"finding": f.finding, "cause": f.cause, "metric": f.metric, "verdict": f.verdict,
                         "reason": f.reason, "settle": f.settle,
                         "effect": f.effect.as_json() if f.effect is not None else None,
                         "patch": dict(f.patch) if f.patch is not None else None, "fired_on_run": f.fired_on_run,
                         "init_changes": f.init_changes, "arms": arms})
    return {"path": str(v.path), "schema_version": v.schema_version, "complete": v.complete,
            "seeds": list(v.seeds) if v.seeds is not None else None, "trainer": v.trainer, "findings": findings}


_HTML = """
<section id="verification">
<h2>Verification</h2>
<p>{{ path }} &middot; {{ state }} &middot; {{ seeds }} seed(s) &middot; {{ trainer }} trainer</p>
{% for f in findings %}
<div class="verification-finding">
<h3>{{ f.finding }}: <span class="verdict {{ f.verdict }}">{{ f.verdict }}</span></h3>
<p>{{ f.reason }}{% if f.settle %} To settle it: {{ f.settle }}.{% endif %}</p>
<p>Final {{ f.metric }}: control {{ f.control }}, treatment {{ f.treatment }}; difference {{ f.ci }}{% if f.test %} ({{ f.test }}){% endif %}.</p>
{% if f.svg %}<div class="verification-curves">{{ f.svg | safe }}</div>{% endif %}
{% if f.init %}<p class="note">{{ f.init }}</p>{% endif %}
</div>
{% endfor %}
</section>
<style>
#verification .verdict.confirmed{color:#1a7f37}#verification .verdict.refuted{color:#cf222e}
#verification .verdict.inconclusive{color:#9a6700}#verification .note{color:#666;font-size:90%}
</style>
"""


def render_verification_html(v: Verification) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    findings = []
    for f in v.findings:
        metric = f.measured_on
        findings.append({
            "finding": str(f.finding), "verdict": str(f.verdict), "reason": f.reason or "",
            "settle": f.settle or "", "ci": _fmt_ci(f.effect), "test": _test(f.effect),
            "control": _top1s(f.arms[0], metric) if f.arms else "-",
            "treatment": _top1s(f.arms[1], metric) if len(f.arms) > 1 else "-",
            "metric": metric, "svg": overlay_svg(f.arms, str(f.finding), metric), "init": f.init_changes or "",
        })
    state = "complete" if v.complete else "partial"
    return env.from_string(_HTML).render(path=str(v.path), state=state, seeds=len(v.seeds or ()),
                                         trainer=str(v.trainer), findings=findings)


def overlay_svg(arms: Sequence[Arm], title: str, metric: str = "eval_top1") -> str | None:
    """Control and treatment ``metric`` per epoch, every seed, overlaid (control solid, treatment dashed)."""
    curves = [(a, s) for a in arms for s in a.seeds if s.curve.get(metric)]
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.8))
    colors = {"control": "tab:red", "treatment": "tab:green"}
    for arm, seed in curves:
        ys = [y if y is not None else float("nan") for y in seed.curve[metric]]
        role = str(arm.role)
        ax.plot(range(len(ys)), ys, color=colors.get(role, "tab:blue"), linestyle="-" if role == "control" else "--",
                marker=".", label=f"{arm.name} seed {seed.seed}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(f"{title}: control vs treatment ({metric})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.find("<svg"):]
