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

The runner's outputs (issue 16: text, JSON and pictures from one place, so that they stay in step; the
runner prints and saves what these return and formats nothing itself):

- ``reproduce-spec``: a :class:`~mnv4_postmortem.analyzer.verification.SpecRecord` -> the training spec table;
- ``reproduce-plan``: an :class:`~mnv4_postmortem.analyzer.verification.ArmsPlan` -> the arms ``reproduce`` trains;
- ``verdicts``: a :class:`~mnv4_postmortem.analyzer.verification.Verification` -> the verdict table (text), the
  file's findings (JSON), the Verification section (HTML, as ``report`` shows it);
- ``ladder-plan``: an ablation ladder's plan (the document ``reproduce --ablate`` prints before training);
- ``ladder``: ``ablation.json`` -> the rung table, the document, the eval top-1 plot (``svg``, ``png``);
- ``lr-find``: ``lr_find.json`` -> the summary with a character plot, the document, the plot (``svg``, ``png``).

A text renderer of these takes ``width`` (the terminal's; tables are laid out to it); ``png`` returns bytes.
An entry ``"module:function"`` names a function other than ``render`` (one module per runner output keeps its
text, JSON and picture side by side).

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
    # the runner's outputs (render/reproduce.py, ladder.py, lr_find.py)
    "reproduce-spec": {
        "text": f"{_PACKAGE}.reproduce:spec_text",
        "json": f"{_PACKAGE}.reproduce:spec_json",
    },
    "reproduce-plan": {
        "text": f"{_PACKAGE}.reproduce:plan_text",
        "json": f"{_PACKAGE}.reproduce:plan_json",
    },
    "verdicts": {
        "text": f"{_PACKAGE}.reproduce:verdicts_text",
        "json": f"{_PACKAGE}.reproduce:verdicts_json",
        "html": f"{_PACKAGE}.reproduce:verdicts_html",
    },
    "ladder-plan": {
        "text": f"{_PACKAGE}.ladder:plan_text",
        "json": f"{_PACKAGE}.ladder:as_json",
    },
    "ladder": {
        "text": f"{_PACKAGE}.ladder:table_text",
        "json": f"{_PACKAGE}.ladder:as_json",
        "svg": f"{_PACKAGE}.ladder:plot_svg",
        "png": f"{_PACKAGE}.ladder:plot_png",
    },
    "lr-find": {
        "text": f"{_PACKAGE}.lr_find:summary_text",
        "json": f"{_PACKAGE}.lr_find:as_json",
        "svg": f"{_PACKAGE}.lr_find:plot_svg",
        "png": f"{_PACKAGE}.lr_find:plot_png",
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


def _entry(kind: str, name: str) -> tuple[str, str]:
    try:
        path = RENDERERS[kind][name]
    except KeyError:
        raise ValueError(f"no {kind} renderer {name!r} (choose one of: {', '.join(RENDERERS.get(kind, {}))})") from None
    module, _, function = path.partition(":")
    return module, function or "render"


def renderer_module(kind: str, name: str) -> Any:
    return importlib.import_module(_entry(kind, name)[0])


def renderer(kind: str, name: str) -> Render:
    """The function registered as ``name`` for ``kind`` (``render`` unless the entry names another), imported now."""
    module, function = _entry(kind, name)
    return getattr(importlib.import_module(module), function)


__all__ = ["RENDERERS", "Render", "RulePage", "formats", "renderer", "renderer_module"]
