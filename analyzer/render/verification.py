"""The Verification section of ``report`` (text, JSON, HTML), from a reproduction's verification.json.

Self-contained on purpose: the main renderers are not touched beyond one call each, so the section
survives a rewrite of the report templates. Nothing is computed here: verdicts, effects and curves
all come from the file the runner wrote.
"""

from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

from jinja2 import Environment, select_autoescape
from rich.console import Console
from rich.markup import escape as markup_escape

from mnv4_postmortem.analyzer.verification import Verification
from mnv4_postmortem.analyzer.render.terminal import terminal_safe

__all__ = ["render_verification_text", "verification_json", "render_verification_html"]

VERDICT_STYLE = {"confirmed": "bold green", "refuted": "bold red", "inconclusive": "bold yellow"}


def escape(text: str) -> str:
    """Data shown through rich: control characters made visible first (render/terminal.py; rich would
    drop some silently and pass ESC through), then rich markup escaped."""
    return markup_escape(terminal_safe(str(text)))


def _seeds(arm: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(arm.get("seeds") or [])


def _fmt_ci(effect: Mapping[str, Any] | None) -> str:
    if not effect or effect.get("mean_diff") is None:
        return "no effect measured"
    ci = effect.get("deciding_ci", effect.get("ci"))
    text = f"{effect['mean_diff']:+.2f} points"
    return text + (f", 95% CI [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else " (no CI: one seed)")


def _top1s(arm: Mapping[str, Any], metric: str = "eval_top1") -> str:
    key = "final_top1" if metric == "eval_top1" else "final_top1_model"
    values = [s.get(key) for s in _seeds(arm)]
    return " / ".join("n/a" if v is None else f"{v:.1f}" for v in values) or "-"


def render_verification_text(v: Verification, console: Console) -> None:
    data = v.data
    state = "complete" if v.complete else ("partial: interrupted" if data.get("interrupted") else "partial")
    console.print(f"\n[bold]Verification[/bold] ({escape(str(v.path))}; {state}; {len(data.get('seeds') or [])} seed(s), "
                  f"{escape(str(data.get('trainer')))} trainer)")
    for f in v.findings:
        style = VERDICT_STYLE.get(f.get("verdict"), "")
        console.print(f"  [{style}]{escape(str(f.get('finding')))}: {escape(str(f.get('verdict')))}[/{style}] - "
                      f"{escape(str(f.get('reason', '')))}")
        arms = f.get("arms") or []
        if len(arms) == 2:
            metric = str(f.get("metric", "eval_top1"))
            console.print(f"    final {escape(metric)}: control {_top1s(arms[0], metric)}, treatment "
                          f"{_top1s(arms[1], metric)}; difference {_fmt_ci(f.get('effect'))}")
        effect = f.get("effect") or {}
        if effect.get("deciding_test") or effect.get("test"):
            console.print(f"    test: {escape(str(effect.get('deciding_test') or effect['test']))}")
        for arm in arms:
            ema = arm.get("ema")
            if ema and ema.get("share_predicted_end") is not None:
                observed = ema.get("share_observed_end")
                console.print(f"    {escape(str(arm.get('name')))}: initial-weight share at the end predicted "
                              f"{ema['share_predicted_end']:.3g}, observed {'n/a' if observed is None else format(observed, '.3g')}")
        if f.get("settle"):
            console.print(f"    to settle it: {escape(f['settle'])}")
        if f.get("init_changes"):
            console.print(f"    [dim]init: {escape(f['init_changes'])}[/dim]")
    for item in data.get("skipped") or []:
        console.print(f"  [dim]{escape(str(item.get('finding')))}: not tested ({escape(str(item.get('reason')))})[/dim]")


def verification_json(v: Verification) -> dict[str, Any]:
    """What ``report --format json`` adds under ``verification``: the file's findings, trimmed of curves."""
    findings = []
    for f in v.findings:
        arms = [{"name": a.get("name"), "role": a.get("role"), "ema": a.get("ema"),
                 "final_top1": [s.get("final_top1") for s in _seeds(a)],
                 "final_top1_model": [s.get("final_top1_model") for s in _seeds(a)],
                 "fired": [s.get("fired") for s in _seeds(a)]}
                for a in f.get("arms") or []]
        findings.append({k: f.get(k) for k in ("finding", "cause", "metric", "verdict", "reason", "settle", "effect", "patch",
                                                "fired_on_run", "init_changes")} | {"arms": arms})
    return {"path": str(v.path), "schema_version": v.data.get("schema_version"), "complete": v.complete,
            "seeds": v.data.get("seeds"), "trainer": v.data.get("trainer"), "findings": findings}


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
        arms = f.get("arms") or []
        findings.append({
            "finding": str(f.get("finding")), "verdict": str(f.get("verdict")), "reason": str(f.get("reason", "")),
            "settle": f.get("settle") or "", "ci": _fmt_ci(f.get("effect")),
            "test": (f.get("effect") or {}).get("deciding_test") or (f.get("effect") or {}).get("test", ""),
            "control": _top1s(arms[0], str(f.get("metric", "eval_top1"))) if arms else "-",
            "treatment": _top1s(arms[1], str(f.get("metric", "eval_top1"))) if len(arms) > 1 else "-",
            "metric": str(f.get("metric", "eval_top1")),
            "svg": overlay_svg(arms, str(f.get("finding")), str(f.get("metric", "eval_top1"))), "init": f.get("init_changes") or "",
        })
    state = "complete" if v.complete else "partial"
    return env.from_string(_HTML).render(path=str(v.path), state=state, seeds=len(v.data.get("seeds") or []),
                                         trainer=str(v.data.get("trainer")), findings=findings)


def overlay_svg(arms: Sequence[Mapping[str, Any]], title: str, metric: str = "eval_top1") -> str | None:
    """Control and treatment ``metric`` per epoch, every seed, overlaid (control solid, treatment dashed)."""
    curves = [(a, s) for a in arms for s in _seeds(a) if (s.get("curve") or {}).get(metric)]
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.8))
    colors = {"control": "tab:red", "treatment": "tab:green"}
    for arm, seed in curves:
        ys = [y if y is not None else float("nan") for y in seed["curve"][metric]]
        role = str(arm.get("role"))
        ax.plot(range(len(ys)), ys, color=colors.get(role, "tab:blue"), linestyle="-" if role == "control" else "--",
                marker=".", label=f"{arm.get('name')} seed {seed.get('seed')}")
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
