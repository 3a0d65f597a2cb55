"""Renderers, found by name in one registry and loaded only when used.

Every renderer is a module with one function::

    def render(subject, *, verbose: bool = False) -> str

``subject`` is what its kind renders:

- ``report``: a :class:`~mnv4_postmortem.analyzer.diagnosis.Diagnosis` -> the whole report
  (``report --format NAME`` offers exactly the names registered here);
- ``batch``: one Diagnosis -> its line of ``batch`` output (such a module also has
  ``render_error(path, message) -> str`` for a run that could not be read);
- ``batch-summary``: a :class:`~mnv4_postmortem.analyzer.batch.outputs.BatchSummary` (every run's row and
  the "what differs" table) -> ``index.html`` or the Markdown summary;
- ``rules``: a rule pack -> the ``rules list`` listing;
- ``rule``: a :class:`RulePage` (a rule and its cause's description) -> ``rules show``.

Renderers only read what they are given; they never compute a diagnosis. Adding a renderer is one
module plus one line in :data:`RENDERERS` (the module path, under its kind and name): the CLI's
``--format`` choices come from this table. Importing this package imports no renderer, so the
light commands stay light.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

_PACKAGE = "mnv4_postmortem.analyzer.render"

RENDERERS: Mapping[str, Mapping[str, str]] = {
    "report": {
        "text": f"{_PACKAGE}.text",
        "json": f"{_PACKAGE}.json_render",
        "html": f"{_PACKAGE}.html",
        "md": f"{_PACKAGE}.markdown",
    },
    "batch": {
        "text": f"{_PACKAGE}.batch_text",
        "json": f"{_PACKAGE}.batch_json",
    },
    "batch-summary": {
        "html": f"{_PACKAGE}.batch_index",
        "md": f"{_PACKAGE}.batch_summary_md",
    },
    "rules": {
        "text": f"{_PACKAGE}.rules_table",
        "json": f"{_PACKAGE}.rules_json",
    },
    "rule": {
        "text": f"{_PACKAGE}.rule_page",
    },
}

Render = Callable[..., str]


@dataclass(frozen=True, slots=True)
class RulePage:
    """What ``rules show`` renders: one rule and the description of its cause."""

    rule: Any  # an engine Rule (read by attribute only: renderers do not import the engine)
    cause_description: str = ""


def formats(kind: str) -> tuple[str, ...]:
    """The names registered for ``kind`` (``--format`` choices), in registry order."""
    return tuple(RENDERERS[kind])


def renderer_module(kind: str, name: str) -> Any:
    try:
        path = RENDERERS[kind][name]
    except KeyError:
        raise ValueError(f"no {kind} renderer {name!r} (choose one of: {', '.join(RENDERERS.get(kind, {}))})") from None
    return importlib.import_module(path)


def renderer(kind: str, name: str) -> Render:
    """The ``render`` function registered as ``name`` for ``kind``, imported now."""
    return renderer_module(kind, name).render


__all__ = ["RENDERERS", "Render", "RulePage", "formats", "renderer", "renderer_module"]
