"""verification.json: the shipped JSON Schema, the typed records that mirror it, and the reader's messages.

The reader is stdlib-only (jsonschema is a dev dependency, not a run-time one), so these tests hold the
two to each other: the records list exactly the schema's properties, and a document the schema rejects
is rejected (or the bad record left out, by name) by the reader. Torch-free.
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import json
import types
import typing

import pytest
from click.testing import CliRunner

from conftest import REPO
from mnv4_postmortem.analyzer import verification as v

jsonschema = pytest.importorskip("jsonschema")

# A real verification.json, written by `reproduce` on the seed run (tests/data/verification/README.md).
REAL = REPO / "tests" / "data" / "verification"
SEED = REPO / "fixtures" / "runs" / "seed_mnv4"

RECORDS = {  # record class -> the schema object it mirrors
    v.Verification: "#", v.SpecRecord: "spec", v.BudgetRecord: "budget", v.InitRecord: "init",
    v.SpecEntryRecord: "spec_entry", v.VerifiedFinding: "finding", v.Effect: "effect", v.EmaRecord: "ema",
    v.Arm: "arm", v.ArmSeed: "arm_seed", v.ArmFinding: "arm_finding", v.Skipped: "skipped",
}


def _schema() -> dict:
    return json.loads(v.SCHEMA_FILE.read_text(encoding="utf-8"))


def _real() -> dict:
    return json.loads((REAL / "verification.json").read_text(encoding="utf-8"))


def _schema_errors(doc) -> list[str]:
    validator = jsonschema.Draft202012Validator(_schema())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_the_schema_is_a_valid_draft_2020_12_schema_shipped_with_the_package():
    jsonschema.Draft202012Validator.check_schema(_schema())
    assert v.SCHEMA_FILE.parent.name == "schema" and v.SCHEMA_FILE.is_file()
    tomllib = pytest.importorskip("tomllib")
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "schema/*.json" in package_data["mnv4_postmortem.analyzer"]


@pytest.mark.parametrize("record", list(RECORDS), ids=lambda c: c.__name__)
def test_each_record_lists_exactly_its_schema_objects_properties(record):
    schema = _schema()
    node = schema if RECORDS[record] == "#" else schema["$defs"][RECORDS[record]]
    in_file = [f for f in dataclasses.fields(record) if f.metadata.get("in_file", True)]
    required = {f.name for f in in_file if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    # the top level's "schema" names the format; the reader checks it and keeps no field for it
    marker = {"schema"} if record is v.Verification else set()
    assert set(node["properties"]) == {f.name for f in in_file} | marker
    # "findings" is required by the schema and checked by the reader; the record defaults it to ()
    assert set(node.get("required", ())) - marker - {"findings"} == required


# JSON Schema's name for each scalar annotation the records use
_SCALAR = {str: "string", int: "integer", float: "number", bool: "boolean"}
_DEF_OF = {cls: name for cls, name in RECORDS.items() if name != "#"}
_ANNOTATION_ONLY = ("pattern", "description")  # what an annotation cannot say (schema_version's 1.x: the reader's own check)


def _schema_for(tp) -> dict:
    """The schema fragment a record field's annotation stands for (what the reader's _value accepts)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is typing.Any:
        return {}
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        fragment = _schema_for(inner)
        if "type" in fragment:
            return fragment | {"type": [fragment["type"], "null"]}
        return {"oneOf": [fragment, {"type": "null"}]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if dataclasses.is_dataclass(tp):
        return {"$ref": f"#/$defs/{_DEF_OF[tp]}"}
    if origin is tuple:
        return {"type": "array", "items": _schema_for(args[0])}
    if origin in (collections.abc.Mapping, dict):
        item = _schema_for(args[1])
        return {"type": "object"} | ({"additionalProperties": item} if item else {})
    return {"type": _SCALAR[tp]}


@pytest.mark.parametrize("record", list(RECORDS), ids=lambda c: c.__name__)
def test_each_records_field_types_are_its_schema_propertys_types(record):
    """Names alone could keep in step while a type drifts (an int field the schema calls a number): each
    field's annotation, as a schema fragment, is its property's (less the pattern an annotation cannot say)."""
    schema = _schema()
    node = schema if RECORDS[record] == "#" else schema["$defs"][RECORDS[record]]
    hints = typing.get_type_hints(record, vars(v))
    for f in dataclasses.fields(record):
        if f.metadata.get("in_file", True):
            prop = {k: w for k, w in node["properties"][f.name].items() if k not in _ANNOTATION_ONLY}
            assert _schema_for(hints[f.name]) == prop, f"{record.__name__}.{f.name}"


def test_a_real_reproduction_validates_and_reads_into_typed_records():
    doc = _real()
    assert _schema_errors(doc) == []
    loaded = v.load_verification(REAL)
    assert loaded.warnings == ()
    (finding,) = loaded.findings
    assert isinstance(finding, v.VerifiedFinding) and finding.verdict == doc["findings"][0]["verdict"]
    control, treatment = finding.arms
    assert isinstance(control.ema, v.EmaRecord) and control.ema.share_predicted_end == \
        doc["findings"][0]["arms"][0]["ema"]["share_predicted_end"]
    assert [s.final_top1 for s in treatment.seeds] == [s["final_top1"] for s in doc["findings"][0]["arms"][1]["seeds"]]
    assert isinstance(loaded.spec.budget, v.BudgetRecord) and loaded.spec.budget.updates == doc["spec"]["budget"]["updates"]
    assert loaded.spec.entries[0].name == doc["spec"]["entries"][0]["name"]
    # what the report's JSON passes on is the file's own effect, key for key
    assert finding.effect.as_json() == doc["findings"][0]["effect"]


def _set(doc: dict, path: tuple, value) -> dict:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()

# (where in the document, the bad value, the record path the reader must name). Written from the schema,
# before the reader: each breaks one rule of one object.
BAD_RECORDS = [
    (("findings", 0, "verdict"), "maybe", "findings[0].verdict"),
    (("findings", 0, "verdict"), _DELETE, "findings[0].verdict"),
    (("findings", 0, "effect", "mean_diff"), "big", "findings[0].effect.mean_diff"),
    (("findings", 0, "effect", "diffs"), 0.5, "findings[0].effect.diffs"),
    (("findings", 0, "arms", 1, "seeds", 0, "final_top1"), "12%", "findings[0].arms[1].seeds[0].final_top1"),
    (("findings", 0, "arms", 0, "seeds", 1, "seed"), 1.5, "findings[0].arms[0].seeds[1].seed"),
    (("findings", 0, "arms", 0, "ema", "warmup"), "yes", "findings[0].arms[0].ema.warmup"),
    (("findings", 0, "arms", 0, "seeds", 0, "curve", "eval_top1"), "flat", "findings[0].arms[0].seeds[0].curve.eval_top1"),
    (("findings", 0, "arms"), {"control": {}}, "findings[0].arms"),
    (("findings", 0, "checks", "removed"), 3, "findings[0].checks.removed"),
    (("findings", 0, "patch"), ["model_ema_decay", 0.99], "findings[0].patch"),
    (("findings", 0), "ema-lag: confirmed", "findings[0]"),
]


@pytest.mark.parametrize("where,value,named", BAD_RECORDS, ids=[b[2] for b in BAD_RECORDS])
def test_a_bad_finding_is_rejected_by_the_schema_and_left_out_by_name_the_rest_kept(tmp_path, where, value, named):
    good = _real()["findings"][0]
    doc = _set(_real(), where, value)
    doc["findings"].append(copy.deepcopy(good) | {"finding": "kept-after-the-bad-one"})
    assert _schema_errors(doc), "the schema must reject it"
    (tmp_path / "verification.json").write_text(json.dumps(doc), encoding="utf-8")
    loaded = v.load_verification(tmp_path)
    assert [f.finding for f in loaded.findings] == ["kept-after-the-bad-one"]
    (warning,) = loaded.warnings
    assert "verification.json" in warning and named in warning and "left out" in warning


BAD_FILES = [
    ({"schema": "mnv4-postmortem/report", "findings": []}, "not a verification file"),
    (["findings"], "not a verification file"),
    ({"schema": v.SCHEMA, "schema_version": 1.0, "findings": []}, "schema_version"),
    ({"schema": v.SCHEMA, "schema_version": "2.0", "findings": []}, "not supported"),
    ({"schema": v.SCHEMA, "schema_version": "1.0", "findings": {"a": 1}}, "'findings' must be a list"),
    ({"schema": v.SCHEMA, "schema_version": "1.0", "findings": [], "seeds": "0,1"}, "seeds: expected a list"),
    ({"schema": v.SCHEMA, "schema_version": "1.0", "findings": [], "complete": "yes"}, "complete: expected true or false"),
    ({"schema": v.SCHEMA, "schema_version": "1.0", "findings": [{"finding": "x"}]}, "findings[0].verdict: missing"),
]


@pytest.mark.parametrize("doc,message", BAD_FILES, ids=[b[1] for b in BAD_FILES])
def test_an_unusable_file_is_rejected_by_both_with_a_message_naming_it(tmp_path, doc, message):
    assert _schema_errors(doc)
    (tmp_path / "verification.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(v.VerificationError) as caught:
        v.load_verification(tmp_path)
    assert str(tmp_path / "verification.json") in str(caught.value) and message in str(caught.value)


def test_a_newer_1x_writers_extra_keys_are_valid_and_ignored(tmp_path):
    doc = _real()
    doc["schema_version"] = "1.3"
    doc["findings"][0]["effect"]["new_statistic"] = 0.5
    doc["host"] = "node-7"
    assert _schema_errors(doc) == []
    (tmp_path / "verification.json").write_text(json.dumps(doc), encoding="utf-8")
    loaded = v.load_verification(tmp_path)
    assert loaded.schema_version == "1.3" and loaded.warnings == ()
    assert "new_statistic" not in loaded.findings[0].effect.as_json()


def test_report_keeps_the_good_findings_and_names_the_bad_one(tmp_path):
    from mnv4_postmortem.cli import cli

    doc = _real()
    bad = _set(doc, ("findings", 0, "arms", 0, "seeds", 0, "final_top1"), "n/a")["findings"][0]
    doc["findings"] = [bad | {"finding": "broken"}, doc["findings"][0]]
    (tmp_path / "verification.json").write_text(json.dumps(doc), encoding="utf-8")
    result = CliRunner().invoke(cli, ["report", str(SEED), "--verification", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    out = json.loads(result.stdout)
    assert [f["finding"] for f in out["verification"]["findings"]] == [doc["findings"][1]["finding"]]
    assert any("findings[0].arms[0].seeds[0].final_top1" in w for w in out["warnings"]) or \
        "findings[0].arms[0].seeds[0].final_top1" in result.output


def test_a_foreign_json_named_as_verification_is_a_clear_error_not_a_traceback(tmp_path):
    from mnv4_postmortem.cli import cli

    report = CliRunner().invoke(cli, ["report", str(SEED), "--format", "json"])
    (tmp_path / "verification.json").write_text(report.stdout, encoding="utf-8")
    result = CliRunner().invoke(cli, ["report", str(SEED), "--verification", str(tmp_path)])
    assert result.exit_code == 2 and "not a verification file" in result.output and "Traceback" not in result.output
