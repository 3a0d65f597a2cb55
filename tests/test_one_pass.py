"""Issue 16 #4, one pass: the facts a report shows beside the findings are produced by their owners before the
Diagnosis is assembled (report_facts.py only types them), chance levels are computed once, by one function, and
timm's defaults table is read by one stage (the config resolution of ingest, ``timm/defaults.build_config``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO
from test_architecture import imported_modules

from mnv4_postmortem.analyzer.detect import metrics
from mnv4_postmortem.analyzer.engine.loader import load_pack
from mnv4_postmortem.analyzer.features.derived import derive
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.pipeline import diagnose

A = "mnv4_postmortem.analyzer."
DEFAULTS = A + "timm.defaults"
# A run stuck at chance with a stated class count, and one that learns: both have chance levels to compare.
CHANCE_RUNS = ("r18_grat_randlabels_v1", "r18_grat_sgd_cos_v1")

# Who may import what from timm/defaults.py. The config resolution of ingest (merge, and the synthetic runs of
# the rule tests) puts the era's defaults on the TrainConfig; the command line resolves them the same way for a
# plain args mapping (the runner's); argument_names reads the table's key names, never its values.
DEFAULTS_IMPORTS = {
    "analyzer/ingest/merge.py": {"build_config", "with_defaults"},
    "analyzer/ingest/synthetic.py": {"build_config"},
    "analyzer/timm/command_line.py": {"with_defaults"},
    "analyzer/timm/argument_names.py": {"ARGUMENT_NAMES", "DIAGNOSED_NAMES"},
}


def _names_from_defaults(path: Path) -> set[str]:
    """The names ``path`` imports from timm/defaults.py (``"*module*"`` for the module itself)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == DEFAULTS:
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == A + "timm":
            names.update("*module*" for alias in node.names if alias.name == "defaults")
        elif isinstance(node, ast.Import):
            names.update("*module*" for alias in node.names if alias.name == DEFAULTS)
    return names


def test_report_facts_types_only_and_imports_no_stage() -> None:
    project = {m for m in imported_modules(REPO / "analyzer" / "report_facts.py") if m.startswith("mnv4_postmortem")}
    assert project <= {A + "citations"}, project


def test_the_defaults_table_is_read_by_one_stage() -> None:
    readers = {}
    # The runner too: its spec starts from ``run.config.defaults`` and its ablation compares with them.
    for path in sorted([*(REPO / "analyzer").rglob("*.py"), *(REPO / "runner").rglob("*.py")]):
        relative = path.relative_to(REPO).as_posix()
        names = _names_from_defaults(path)
        if names and relative != "analyzer/timm/defaults.py":
            readers[relative] = names
    for relative, names in readers.items():
        assert names <= DEFAULTS_IMPORTS.get(relative, set()), f"{relative} reads timm's defaults table: {sorted(names)}"
    assert readers, "the ingest no longer resolves timm's defaults"


@pytest.fixture(scope="module")
def pack():
    return load_pack()


@pytest.mark.parametrize("name", CHANCE_RUNS)
def test_chance_levels_are_computed_once_and_the_report_shows_detects(name: str, pack, monkeypatch) -> None:
    made = []
    one_way = metrics.chance_levels

    def counted(names, num_classes):
        made.append(one_way(names, num_classes))
        return made[-1]

    monkeypatch.setattr(metrics, "chance_levels", counted)
    run = load_run(REPO / "fixtures" / "runs" / name)
    diagnosis = diagnose(run, pack)
    assert len(made) == 1, "chance levels computed more than once in one diagnosis"
    levels = made[0]
    assert levels and "eval_top1" in levels
    assert diagnosis.report_facts.chance_levels is levels   # the report shows detect's, not its own
    derived = derive(run)
    assert derived.chance_top1 == levels["eval_top1"]   # the rules' chance is the same function's
    for metric, value in levels.items():
        assert value == metrics.chance_value(metric, derived.num_classes)


def test_detect_chance_ranges_use_the_same_levels(pack) -> None:
    from mnv4_postmortem.analyzer.detect import detect

    run = load_run(REPO / "fixtures" / "runs" / CHANCE_RUNS[0])
    detection = detect(run)
    assert detection.chance, "the run stuck at chance shows no chance range"
    for chance in detection.chance:
        assert chance.chance == detection.chance_levels[chance.metric]


def test_every_run_carries_its_eras_defaults_and_only_args_runs_get_them_filled(tmp_path: Path) -> None:
    from mnv4_postmortem.analyzer.timm.defaults import command_defaults, defaults_for

    source = REPO / "fixtures" / "runs" / CHANCE_RUNS[1]
    (tmp_path / "summary.csv").write_bytes((source / "summary.csv").read_bytes())
    with_args, without_args = load_run(source).config, load_run(tmp_path).config
    for config in (with_args, without_args):
        assert config.defaults == defaults_for(config.timm_version)
        assert config.command_defaults == command_defaults(config.timm_version)
    assert without_args.values == {} and not without_args.defaulted   # no recipe invented without args.yaml
    assert set(with_args.defaults) <= set(with_args.values)
    assert all(with_args.values[k] == with_args.defaults[k] for k in with_args.defaulted)
