"""Loading rule packs: every error names file:line:col and the field; good rules still load."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from _engine_fakes import BAD_RULES, GOOD_RULES, SCHEMA
from mnv4_postmortem.analyzer.engine import loader
from mnv4_postmortem.analyzer.engine.loader import RulePack, find_test_files, load_builtin_rules, load_rules
from mnv4_postmortem.analyzer.engine.schema import NameSchema
from mnv4_postmortem.analyzer.findings import Severity

EXPECT = re.compile(r"^# expect: (?P<expect>.+)$")


def _bad_files() -> list[Path]:
    """Every bad rule file carries its one expected error on its first line (semgrep-style annotation)."""
    return sorted(p for p in BAD_RULES.rglob("*.yaml") if EXPECT.match(p.read_text().splitlines()[0]))


def _expected(path: Path) -> str:
    return EXPECT.match(path.read_text().splitlines()[0])["expect"]


@pytest.mark.parametrize("path", _bad_files(), ids=lambda p: p.stem)
def test_each_bad_file_gives_exactly_its_one_error(path: Path):
    # Duplicate ids need their twin loaded too; every other file is loaded alone.
    target = path.parents[1] if path.parent.parent.name == "duplicate" else path
    pack = load_rules([target], known_names=SCHEMA)
    errors = [e for e in pack.errors if Path(e.file) == path]
    assert len(errors) == 1, [str(e) for e in pack.errors]
    assert str(errors[0]).startswith(f"{path}:{_expected(path)}"), str(errors[0])
    assert all(rule.path != str(path) for rule in pack.rules)


def test_bad_files_cover_every_defect_we_promise():
    stems = {p.stem for p in _bad_files()}
    assert {
        "unknown-field", "bad-severity", "Bad_Id", "id-not-file-name", "duplicate-id", "unknown-cause",
        "expression-syntax", "template-syntax", "unknown-name", "yaml-syntax", "dunder-access",
        "forbidden-function", "huge-power",
    } <= stems


def test_good_rules_still_load_next_to_broken_ones():
    pack = load_rules([GOOD_RULES, BAD_RULES], known_names=SCHEMA)
    assert set(pack.ids) == {
        "example-ema-lag", "example-lr-too-low", "example-lr-too-high", "example-divergence",
        "example-slow-data", "duplicate-id",
    }
    broken = {Path(e.file) for e in pack.errors}
    assert broken == set(_bad_files())


def test_good_pack_loads_clean_with_all_fields():
    pack = load_rules([GOOD_RULES], known_names=SCHEMA)
    assert pack.errors == ()
    rule = pack.get("example-ema-lag")
    assert rule is not None
    assert rule.severity is Severity.ERROR
    assert rule.cause == "ema-lag"
    assert rule.for_epochs == 3
    assert rule.explains == ("lr-too-low", "no-learning")
    assert rule.specificity == 4  # four and-ed clauses in `when`
    assert len(rule.evidence) == 2
    assert rule.fix is not None and rule.fix.safety == "recipe-change"
    assert rule.fix.args["model_ema_warmup"] is True
    assert rule.fix.args["model_ema_decay"].text == "round(1 - 10 / derived.updates_run, 5)"
    assert rule.explanation.startswith("## What it means")
    assert rule.references and rule.references[0].startswith("https://")
    assert rule.location("when") == (6, 7)  # the ">" of the folded block


def test_test_files_and_causes_yaml_are_not_rules():
    pack = load_rules([GOOD_RULES])
    assert all(not r.path.endswith((".test.yaml", "causes.yaml")) for r in pack.rules)
    assert pack.causes["slow-data-loading"].startswith("The input pipeline")
    assert pack.get("example-slow-data").cause == "slow-data-loading"


def test_a_declared_cause_is_needed_for_custom_causes():
    pack = load_rules([GOOD_RULES / "custom"])
    assert pack.ids == ()
    assert "unknown cause 'slow-data-loading'" in str(pack.errors[0])


def test_without_known_names_only_roots_are_checked():
    pack = load_rules([BAD_RULES / "unknown-name.yaml"])
    assert pack.errors == ()
    assert pack.ids == ("unknown-name",)


def test_known_names_may_be_a_plain_callable(tmp_path: Path):
    checked: list[str] = []

    def known(path: str) -> bool:
        checked.append(path)
        return not path.startswith("series.eval_top1.frist")

    pack = load_rules([BAD_RULES / "unknown-name.yaml"], known_names=known)
    assert "unknown name 'series.eval_top1.frist'" in str(pack.errors[0])
    assert "config.model_ema" in checked


def test_a_missing_path_is_an_error_not_a_crash(tmp_path: Path):
    pack = load_rules([tmp_path / "nope"])
    assert "no such file or directory" in str(pack.errors[0])


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xff\xfe\x00garbage", "not UTF-8 text"),
        (b"", "empty rule file"),
        (b"id: a\n---\nid: b\n", "expected a single document"),
        (b"id: [" * 5000, "invalid YAML"),
        (b"id: !!python/object:os.system x\n", "could not determine a constructor"),
    ],
)
def test_hostile_files_are_reported(tmp_path: Path, content: bytes, fragment: str):
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    pack = load_rules([path])
    assert pack.rules == ()
    assert fragment in " ".join(str(e) for e in pack.errors)


def test_huge_file_is_refused(tmp_path: Path):
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# " + b"x" * 1_100_000)
    assert "larger than" in str(load_rules([path]).errors[0])


def test_name_schema_wildcards_leaves_and_suggestions():
    schema = NameSchema(SCHEMA)
    assert schema("series.anything.flat.epochs")
    assert schema("config.whatever")
    assert schema("events")
    assert not schema("derived.ema_init_shrae")
    assert schema.suggest("derived.ema_init_shrae") == ["derived.ema_init_share"]


def test_builtin_pack_loads_through_importlib_resources():
    pack = load_builtin_rules()
    assert isinstance(pack, RulePack)
    # Whatever the shipped pack holds, it must load without errors.
    assert pack.errors == (), [str(e) for e in pack.errors]


def test_pack_loads_from_a_zip_traversable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in GOOD_RULES.rglob("*.yaml"):
            zf.write(path, f"rules/{path.relative_to(GOOD_RULES)}")
        zf.writestr("rules/broken/broken.yaml", "id: broken\n")
    monkeypatch.setattr(loader, "builtin_rules_root", lambda: zipfile.Path(archive, "rules/"))
    pack = load_builtin_rules()
    assert set(pack.ids) == set(load_rules([GOOD_RULES]).ids)
    assert [e.file for e in pack.errors] == ["rules/broken/broken.yaml"] * len(pack.errors)
    assert "missing required field" in str(pack.errors[0])


def test_find_test_files():
    files = find_test_files([GOOD_RULES])
    assert {f.name for f in files} == {
        "example-ema-lag.test.yaml", "example-lr-too-low.test.yaml", "example-lr-too-high.test.yaml",
        "example-divergence.test.yaml", "example-slow-data.test.yaml",
    }


def test_aliases_count_as_ids(tmp_path: Path):
    (tmp_path / "new-name.yaml").write_text(
        "id: new-name\ntitle: t\ncause: ema-lag\nseverity: info\nwhen: 'True'\nevidence: ['x']\naliases: [old-name]\n"
    )
    (tmp_path / "old-name.yaml").write_text(
        "id: old-name\ntitle: t\ncause: ema-lag\nseverity: info\nwhen: 'True'\nevidence: ['x']\n"
    )
    pack = load_rules([tmp_path])
    assert pack.ids == ("new-name",)
    assert pack.get("old-name").id == "new-name"
    assert "duplicate id 'old-name'" in str(pack.errors[0])


def test_engine_imports_only_model_findings_and_itself():
    """Data flows one way: the engine must not reach into ingest, detect, features or render.
    analyzer/timm/ (the ground floor of timm knowledge: the fix command lines) is allowed."""
    import ast

    engine_dir = Path(__file__).resolve().parents[1] / "analyzer" / "engine"
    for source in engine_dir.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                target = "." * node.level + (node.module or "")
                assert target in ("..model", "..findings") or target.startswith("..timm") or node.level == 1, \
                    f"{source.name} imports {target}"
            if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.level == 0):
                module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                allowed = (module or "").startswith("mnv4_postmortem.analyzer.timm.")
                assert allowed or not (module or "").startswith("mnv4_postmortem"), f"{source.name} imports {module}"
    findings = (engine_dir.parent / "findings.py").read_text()
    assert "engine" not in "".join(
        line for line in findings.splitlines() if line.startswith(("import", "from"))
    )
