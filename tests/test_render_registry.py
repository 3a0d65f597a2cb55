"""The renderer registry: every entry loads, has the one signature, and drives the CLI's --format choices."""

from __future__ import annotations

import inspect

import click
import pytest

from conftest import FIXTURE_RUNS, report_json
from mnv4_postmortem.analyzer.render import RENDERERS, formats, renderer, renderer_module
from mnv4_postmortem.cli import cli

ENTRIES = [(kind, name) for kind, names in RENDERERS.items() for name in names]


@pytest.mark.parametrize(("kind", "name"), ENTRIES, ids=[f"{k}-{n}" for k, n in ENTRIES])
def test_every_renderer_has_the_one_signature(kind, name):
    params = inspect.signature(renderer(kind, name)).parameters
    positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) == 1
    assert params["verbose"].kind is inspect.Parameter.KEYWORD_ONLY
    if kind == "batch":
        assert callable(renderer_module(kind, name).render_error)


def _choices(*path: str) -> tuple[str, ...]:
    command = cli
    for name in path:
        command = command.commands[name]
    option = next(p for p in command.params if p.name == "fmt")
    assert isinstance(option.type, click.Choice)
    return tuple(option.type.choices)


def test_format_choices_come_from_the_registry():
    assert _choices("report") == formats("report") == ("text", "json", "html", "md")
    # batch: a line per run from the batch renderers, or the whole batch as one Markdown summary
    assert _choices("batch") == (*formats("batch"), "md") and "md" in formats("batch-summary")
    assert _choices("rules", "list") == formats("rules")


def test_an_unknown_renderer_names_the_choices():
    with pytest.raises(ValueError, match="text, json, html"):
        renderer("report", "pdf")


def test_every_report_renderer_renders_one_diagnosis():
    from mnv4_postmortem.analyzer.engine import load_pack
    from mnv4_postmortem.analyzer.features.names import is_known_name
    from mnv4_postmortem.analyzer.ingest import load_run
    from mnv4_postmortem.analyzer.pipeline import diagnose

    diagnosis = diagnose(load_run(FIXTURE_RUNS / "seed_mnv4"), load_pack(known_names=is_known_name))
    outputs = {name: renderer("report", name)(diagnosis, verbose=True) for name in formats("report")}
    assert report_json(outputs["json"])["considered"][0]["rule_id"] == diagnosis.considered[0].rule_id
    note = diagnosis.findings[0].fix.note
    assert "recipe-change" in outputs["text"] and note in outputs["text"]
    assert "recipe-change" in outputs["html"] and "Considered, did not fire" in outputs["html"]
    batch_line = renderer("batch", "json")(diagnosis, verbose=False)
    assert "\n" not in batch_line and report_json(batch_line)["findings"][0]["cause"] == "ema-lag"
    assert renderer("batch", "text")(diagnosis, verbose=False).split()[1:3] == ["error", "ema-lag"]
