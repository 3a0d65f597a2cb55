"""The one Jinja2 environment every HTML renderer uses: packaged templates, autoescape always on.

Autoescape is what makes hostile strings (run folder names, TensorBoard tags, args.yaml values, quoted log
lines) show as text; the browser tests check it, and they fail when it is turned off.
"""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, select_autoescape


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("mnv4_postmortem.analyzer.render", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = format_number
    return env


def format_number(value, digits: int = 4) -> str:
    """Numbers as a person reads them (4 significant digits); anything else as text; None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError):
        return str(value)
