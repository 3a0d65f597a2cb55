"""The runner's outputs are the registry's renderers (issue 16): spec, plan, verdicts, ladder, lr-find.

Torch-free: the subjects are a real verification.json written by `reproduce` (tests/data/verification/) and
the plans `reproduce --dry-run` builds on the seed run. The point tested is that text, JSON and HTML
come from one set of records and say the same thing, and that the runner formats none of them itself.
"""

from __future__ import annotations

import functools
import json
import re

import pytest

from conftest import REPO
from mnv4_postmortem.analyzer.render import RENDERERS, renderer
from mnv4_postmortem.analyzer.verification import ArmsPlan, SpecRecord, Verification, load_verification, read_record

REAL = REPO / "tests" / "data" / "verification"
SEED = REPO / "fixtures" / "runs" / "seed_mnv4"
RUNNER_KINDS = {"reproduce-spec": ("text", "json"), "reproduce-plan": ("text", "json"),
                "verdicts": ("text", "json", "html"), "ladder-plan": ("text", "json"),
                "ladder": ("text", "json", "svg", "png"), "lr-find": ("text", "json", "svg", "png")}


def test_every_runner_output_is_registered():
    for kind, names in RUNNER_KINDS.items():
        assert tuple(RENDERERS[kind]) == names, kind


def _verification() -> Verification:
    return load_verification(REAL)


def test_the_verdict_table_text_and_json_say_the_same_numbers():
    v = _verification()
    text = renderer("verdicts", "text")(v, width=200)
    as_json = json.loads(renderer("verdicts", "json")(v))
    (finding,) = as_json["findings"]
    effect = finding["effect"]
    assert finding["verdict"] in text and finding["finding"] in text
    assert f"{effect['mean_diff']:+.2f}" in text
    low, high = effect["deciding_ci"]
    assert f"[{low:+.2f}, {high:+.2f}]" in text
    # per seed, as the file has them, in the text's detail lines
    controls = finding["arms"][0]["final_top1"]
    assert f"control per seed {controls}" in text


def test_the_verdicts_html_is_the_report_sections_html_and_escapes_data(tmp_path):
    from mnv4_postmortem.analyzer.render.verification import render_verification_html

    v = _verification()
    def same(html: str) -> str:  # matplotlib names each SVG clip path at random
        return re.sub(r"\b[pm][0-9a-f]{10}\b", "id", html)

    assert same(renderer("verdicts", "html")(v)) == same(render_verification_html(v))
    doc = json.loads((REAL / "verification.json").read_text(encoding="utf-8"))
    doc["findings"][0]["reason"] = "<script>alert(1)</script>"
    (tmp_path / "verification.json").write_text(json.dumps(doc), encoding="utf-8")
    html = renderer("verdicts", "html")(load_verification(tmp_path))
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_the_spec_table_lists_every_setting_of_the_record_and_its_json_is_the_files_spec():
    doc = json.loads((REAL / "verification.json").read_text(encoding="utf-8"))
    spec = read_record(SpecRecord, doc["spec"])
    text = renderer("reproduce-spec", "text")(spec, width=200)
    assert text.startswith(f"Training spec for {doc['spec']['run']}")
    for entry in doc["spec"]["entries"]:
        assert re.search(rf"^{re.escape(entry['name'])}\s", text, re.M), entry["name"]
    assert json.loads(renderer("reproduce-spec", "json")(spec)) == doc["spec"]


def test_markup_in_a_setting_is_shown_as_written():
    spec = read_record(SpecRecord, {"run": ":fire: [b]r", "entries": [{"name": "model", "original": "[bold]x[/bold]",
                                                                       "value": "[red]y", "status": "kept", "why": "[/]"}]})
    text = renderer("reproduce-spec", "text")(spec, width=120)
    assert "[bold]x[/bold]" in text and "[red]y" in text and "[/]" in text
    # the header names the run as written too (no emoji code or markup read into a run's name)
    assert text.startswith("Training spec for :fire: [b]r (")


@functools.lru_cache(maxsize=1)
def _dry_run_plan():
    """The records `reproduce --all --dry-run` shows for the seed run, built by the runner's planning steps
    (runner/reproduce.py's order; torch-free)."""
    from mnv4_postmortem.analyzer.session import Analyzer
    from mnv4_postmortem.runner.reproduce import _hub_cached, arms_plan, plan_arms, skipped_targets, spec_record
    from mnv4_postmortem.runner.spec import build_spec
    from mnv4_postmortem.runner.targets import hold_to_direction, select_targets

    analyzer = Analyzer()
    run = analyzer.load(SEED)
    targets = select_targets(run, analyzer.diagnose(run), analyzer, (), True)
    spec = build_spec(run, data="proxy", hub_available=_hub_cached(run))
    targets = [hold_to_direction(t, spec.original_args, analyzer.pack.treatments) for t in targets]
    skipped = skipped_targets(targets, spec)
    targets = [t for t in targets if t.id not in skipped]
    plans, per_target = plan_arms(spec, targets)
    return spec_record(spec), arms_plan(spec, targets, plans, per_target, 3), targets


def test_the_plan_renders_each_findings_arms_and_the_cost():
    spec, plan, targets = _dry_run_plan()
    assert isinstance(spec, SpecRecord) and isinstance(plan, ArmsPlan)
    text = renderer("reproduce-plan", "text")(plan, width=200)
    for f in plan.findings:
        assert f"{f.finding} (" in text and f"control [{f.control}] vs treatment [{f.treatment}]" in text
    assert f"{plan.arms} arm(s) in {plan.trajectories} trajector" in text and "x 3 seed(s)" in text
    as_json = json.loads(renderer("reproduce-plan", "json")(plan))
    assert [f["finding"] for f in as_json["findings"]] == [t.id for t in targets]


def test_dry_run_output_comes_from_the_renderers(tmp_path, monkeypatch):
    """The CLI's dry run prints exactly what the registry's renderers return for the runner's records."""
    from click.testing import CliRunner

    from mnv4_postmortem.cli import cli

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["reproduce", str(SEED), "--proxy", "--dry-run", "--all"])
    assert result.exit_code == 0, result.output
    spec, plan, _ = _dry_run_plan()
    for kind, subject in (("reproduce-spec", spec), ("reproduce-plan", plan)):
        rendered = renderer(kind, "text")(subject, width=160)
        for line in rendered.splitlines():
            if line.strip():
                assert line.rstrip() in result.output, line


def _ladder_doc() -> dict:
    """An ablation.json shaped like the runner's (two rungs, one seed each), from the real verification's curves."""
    v = json.loads((REAL / "verification.json").read_text(encoding="utf-8"))
    seeds = v["findings"][0]["arms"][0]["seeds"]
    rung = {"rung": 0, "added": "baseline (every advanced component off)", "components": [], "patch": {}, "lr": 1e-4,
            "ema": False, "final_top1": seeds[0]["final_top1"], "final_top1_model": seeds[0]["final_top1_model"],
            "train_loss": 3.2, "eval_gain": 0.0, "flat": True, "fired": ["ema-lag-symptoms"], "seeds": [seeds[0]]}
    second = rung | {"rung": 1, "added": "+ EMA", "flat": False, "eval_gain": 6.25, "fired": [], "seeds": [seeds[1]]}
    return {"schema": "mnv4-postmortem/ablation", "schema_version": "1.0", "run_name": "seed_mnv4", "mode": "cumulative",
            "rungs": [rung, second], "stall_line": "the baseline itself is flat", "spec": v["spec"]}


def test_the_ladder_table_json_and_plot_come_from_one_document():
    doc = _ladder_doc()
    text = renderer("ladder", "text")(doc, width=200)
    assert "Ablation ladder (cumulative)" in text and "0.00 flat" in text and "6.25" in text
    assert text.rstrip().endswith("the baseline itself is flat")
    assert json.loads(renderer("ladder", "json")(doc)) == doc
    svg = renderer("ladder", "svg")(doc)
    assert "<svg" in svg and "+ EMA" in svg
    assert renderer("ladder", "png")(doc).startswith(b"\x89PNG")


def _lr_find_doc() -> dict:
    lrs = [1e-6 * 10 ** (i / 4) for i in range(25)]
    loss = [2.3 - 0.05 * i if i < 18 else 2.3 + (i - 18) for i in range(25)]
    return {"schema": "mnv4-postmortem/lr-find", "schema_version": "1.0", "run": "seed_mnv4", "opt": "adamw", "batch": 32,
            "data": "proxy", "init": "random", "run_lr": 1e-3, "original_lr": 1e-3,
            "suggestion": {"lr": 3e-3, "rule": "steepest descent", "low": 1e-4, "high": 1e-2, "range_rule": "range",
                           "min_loss": 1.45, "min_loss_lr": 3e-2, "steepest_lr": 3e-3},
            "ratio_run_to_suggestion": 1e-3 / 3e-3, "run_lr_in_range": True,
            "sweep": {"start_lr": 1e-6, "end_lr": 1.0, "steps_planned": 30, "steps_run": 25, "stopped_early": True,
                      "restored": True, "seconds": 4.0},
            "lrs": lrs, "loss": loss, "raw_loss": loss, "notes": ["a note"], "plots": ["lr_find.png"]}


def test_the_lr_find_summary_json_and_plot_come_from_one_document():
    doc = _lr_find_doc()
    text = renderer("lr-find", "text")(doc)
    assert "suggested lr 0.003: steepest descent" in text and "inside the range" in text and "stopped" in text
    assert "  note: a note" in text and "plot: lr_find.png" in text and "*" in text and "|" in text
    assert json.loads(renderer("lr-find", "json")(doc)) == doc
    assert "the run's lr 0.001" in renderer("lr-find", "svg")(doc)
    assert renderer("lr-find", "png")(doc).startswith(b"\x89PNG")


@pytest.mark.parametrize("name", ["reproduce.py", "ablation_run.py", "lr_find.py", "output.py"])
def test_the_runner_formats_no_output_itself(name):
    """No tables, no plots in the runner: rich tables and matplotlib belong to the renderers."""
    source = (REPO / "runner" / name).read_text(encoding="utf-8")
    assert "rich.table" not in source and "matplotlib" not in source and "savefig" not in source, name
