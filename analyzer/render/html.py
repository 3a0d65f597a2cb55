"""Self-contained HTML report: one file, inline CSS and SVG, no network access needed to view it."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from mnv4_postmortem.analyzer.render.json_render import report_dict
import base64

from mnv4_postmortem.analyzer.render.plots import curves_svg, grad_norm_svg
from mnv4_postmortem.analyzer.report import Report


def render_html(report: Report, batch_grid: bytes | None = None) -> str:
    """``batch_grid``: the PNG ``reproduce --show-batch`` wrote, embedded as a data URI."""
    env = Environment(
        loader=PackageLoader("mnv4_postmortem.analyzer.render", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    template = env.get_template("report.html.j2")
    return template.render(
        report=report,
        data=report_dict(report),
        curves=curves_svg(report),
        epochs_table=_epochs_table(report),
        grad_curves=grad_norm_svg(report),
        batch_grid=base64.b64encode(batch_grid).decode("ascii") if batch_grid else None,
    )


def _epochs_table(report: Report) -> dict:
    frame = report.run.epochs
    cols = list(frame.columns)
    rows = [[int(epoch)] + [_fmt(v) for v in values] for epoch, values in zip(frame.index, frame.to_numpy())]
    return {"columns": ["epoch", *cols], "rows": rows}


def _fmt(value) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)
