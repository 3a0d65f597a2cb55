"""Self-contained HTML report: one file, inline CSS and SVG, no network access needed to view it."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from mnv4_postmortem.analyzer.diagnosis import Diagnosis
from mnv4_postmortem.analyzer.render.json_render import report_dict
from mnv4_postmortem.analyzer.render.plots import curves_svg


def render(report: Diagnosis, *, verbose: bool = False) -> str:
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
    )


def _epochs_table(report: Diagnosis) -> dict:
    frame = report.run.epochs
    cols = list(frame.columns)
    rows = [[int(epoch)] + [_fmt(v) for v in values] for epoch, values in zip(frame.index, frame.to_numpy())]
    return {"columns": ["epoch", *cols], "rows": rows}


def _fmt(value) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)
