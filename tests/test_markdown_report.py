"""`report --format md`: GitHub-flavoured Markdown, checked by parsing it with markdown-it-py."""

from __future__ import annotations

import warnings

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

from _hostile import PAYLOADS, SCRIPT, hostile_args_run
from conftest import FIXTURE_RUNS
from mnv4_postmortem.cli import cli

ALLOWED_HTML = ("<details>", "<summary>", "</summary>", "</details>", "<sub>", "</sub>")


def gfm() -> MarkdownIt:
    """CommonMark plus GitHub's tables and strikethrough, raw HTML allowed (as GitHub allows some)."""
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def markdown_of(run) -> str:
    result = CliRunner().invoke(cli, ["report", str(run), "--format", "md"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_seed_markdown_has_table_evidence_diff_and_differential():
    text = markdown_of(FIXTURE_RUNS / "seed_mnv4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning from the renderer or the parser fails the test
        tokens = gfm().parse(text)
    kinds = [t.type for t in tokens]
    assert "table_open" in kinds
    header = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "th_open"]
    assert header == ["#", "severity", "cause", "confidence", "epochs", "finding"]
    first_row = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "td_open"][:6]
    assert first_row[:3] == ["1", "error", "ema-lag"]
    fences = [t for t in tokens if t.type == "fence"]
    diffs = [t for t in fences if t.info == "diff"]
    assert diffs, "every fix is a diff block"
    ema_diff = diffs[0].content.splitlines()
    assert "+ --model-ema-warmup" in ema_diff and "+ --model-ema-decay 0.9731" in ema_diff
    assert all(line[:2] in ("  ", "+ ", "- ") for line in ema_diff)
    html_blocks = " ".join(t.content for t in tokens if t.type == "html_block")
    assert "<details><summary>Differential" in html_blocks
    evidence = [t.content for t in tokens if t.type == "inline" and "summary.csv:2-13" in t.content]
    assert evidence, "evidence lines keep their citations"


def test_hostile_strings_render_as_text(tmp_path):
    run = hostile_args_run(tmp_path)
    text = markdown_of(run)
    html = gfm().render(text)
    for payload in (SCRIPT, '<img src=x onerror=alert(1)>'):
        assert payload not in html
    inline_html = [c.content for t in gfm().parse(text) if t.children for c in t.children if c.type == "html_inline"]
    assert all(tag in ALLOWED_HTML for tag in inline_html), inline_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text


@pytest.mark.parametrize("payload", PAYLOADS)
def test_md_text_never_yields_markup(payload):
    from mnv4_postmortem.analyzer.render.markdown import md_cell

    rendered = gfm().render(f"| a |\n|---|\n| {md_cell(payload + ' | x')} |\n")
    assert "<script" not in rendered and "<img" not in rendered and "href" not in rendered
    assert rendered.count("<td>") == 1  # the pipe did not split the cell
