"""The speed paths of issue 15 give the answers of the slow paths they replace.

- rule files composed by libyaml give the node tree the pure-Python loader gives (values, tags, marks), and
  a broken file gets the pure-Python loader's own message and position;
- the timeline replays each prefix through ``pipeline.ranked_findings`` (the findings without the rest of
  the Diagnosis): the same rule ids as ``diagnose`` on real runs, and the same "visible from" as a replay
  of every prefix through ``diagnose``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mnv4_postmortem.analyzer.engine import yamlnodes as yn
from mnv4_postmortem.analyzer.engine.loader import load_pack
from mnv4_postmortem.analyzer.ingest import load_run
from mnv4_postmortem.analyzer.pipeline import diagnose, ranked_findings
from mnv4_postmortem.analyzer.watch.timeline import Visibility, _sampled, before_training, finding_timeline, prefix

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "fixtures" / "runs"
RULE_FILES = sorted([*(REPO / "rules").rglob("*.yaml"), *(REPO / "tests" / "data").rglob("*.yaml")])
# Real runs whose findings become visible at different epochs (and one that fires nothing early).
TIMELINE_RUNS = ("seed_mnv4", "r18_grat_ema_v09", "mnv4_warmup_long", "effb0_grat_sgd_lr500_v1",
                 "r18_grat_valdropmid_v09", "mnv3_grat_randlabels_killed_v09")


# ------------------------------------------------------------------------------------------------ YAML


def _flat(node: Node | None, out: list) -> list:
    if node is None:
        return out
    value = node.value if isinstance(node, ScalarNode) else None
    quoted = node.style if isinstance(node, ScalarNode) and node.style in ("'", '"', "|", ">") else None
    out.append((type(node).__name__, node.tag, value, quoted, node.start_mark.line, node.start_mark.column,
                node.end_mark.line, node.end_mark.column))
    if isinstance(node, MappingNode):
        for key, item in node.value:
            _flat(key, out)
            _flat(item, out)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _flat(item, out)
    return out


@pytest.mark.skipif(getattr(yaml, "CSafeLoader", None) is None, reason="PyYAML built without libyaml")
def test_rule_files_compose_to_the_pure_python_tree():
    checked = 0
    for path in RULE_FILES:
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            reference = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            continue
        assert _flat(yn.compose(text), []) == _flat(reference, []), path
        checked += 1
    assert checked > 50


def _pure_python_error(text: str) -> tuple[str, yn.Loc | None]:
    fast, yn._FAST_LOADER = yn._FAST_LOADER, None
    try:
        yn.compose(text)
    except yn.YamlError as exc:
        return exc.message, exc.loc
    finally:
        yn._FAST_LOADER = fast
    raise AssertionError(f"pure-Python loader accepted {text!r}")


@pytest.mark.parametrize("text", [
    "id: a\n  when: b\n",                       # bad indentation
    "id: [a, b\nwhen: c\n",                     # unclosed flow sequence
    "id: 'open\n",                              # unclosed quote
    "id: a\nid\n",                              # a key without a value at the end
    "evidence:\n\t- a\n",                       # a tab
    "id: !!python/object:os.system ls\n",       # an unsafe tag (composes, fails to construct)
    "x: \x07\n",                                # a control character
    "[" * 5000 + "]" * 5000,                    # deeper than libyaml allows
])
def test_broken_yaml_keeps_the_pure_python_message(text):
    with pytest.raises(yn.YamlError) as caught:
        yn.compose(text)
    assert (caught.value.message, caught.value.loc) == _pure_python_error(text)


# ------------------------------------------------------------------------------------------------ timeline


@pytest.fixture(scope="module")
def pack():
    return load_pack()


def _full_replay(run, pack, findings) -> dict[str, Visibility]:
    """The timeline as issue 18 first built it: every sampled prefix through the whole ``diagnose``."""
    from mnv4_postmortem.analyzer.features.derived import derive
    from mnv4_postmortem.analyzer.watch.predict import predict

    wanted = {f.rule_id: f.cause for f in findings}
    before = before_training(run)
    early = {f.rule_id for f in diagnose(before, pack).findings}
    predicted = {p.finding.cause for p in predict(before, derive(before), pack)}
    epochs = [int(e) for e in run.epochs.index]
    first: dict[str, int] = {}
    for epoch in _sampled(epochs):
        for finding in diagnose(prefix(run, epoch), pack).findings:
            first.setdefault(finding.rule_id, epoch)
    exact = len(_sampled(epochs)) == len(epochs)
    return {rule: Visibility(first.get(rule), rule in early or cause in predicted, exact)
            for rule, cause in wanted.items()}


@pytest.mark.parametrize("name", TIMELINE_RUNS)
def test_timeline_equals_the_full_replay(name, pack):
    diagnosis = diagnose(load_run(RUNS / name), pack)
    assert finding_timeline(diagnosis.run, pack, diagnosis.findings) == _full_replay(diagnosis.run, pack,
                                                                                      diagnosis.findings)


@pytest.mark.parametrize("name", TIMELINE_RUNS)
def test_ranked_findings_are_the_diagnosis_findings(name, pack):
    run = load_run(RUNS / name)
    for cut in (run, prefix(run, int(run.epochs.index[len(run.epochs) // 2])), before_training(run)):
        assert [f.rule_id for f in ranked_findings(cut, pack)] == [f.rule_id for f in diagnose(cut, pack).findings]


def test_the_timeline_runs_have_findings_at_different_epochs(pack):
    """The cases above mean something only if the runs' findings show at several epochs."""
    epochs = set()
    for name in TIMELINE_RUNS:
        diagnosis = diagnose(load_run(RUNS / name), pack)
        epochs |= {v.visible_from_epoch for v in finding_timeline(diagnosis.run, pack, diagnosis.findings).values()}
    assert len(epochs - {None}) >= 3


# ------------------------------------------------------------------------------------------------ batch


def test_batch_chunks_give_every_run_its_own_row_once():
    """The pool hands out chunks of runs (11 runs: two whole chunks and a short one, on two workers):
    each run comes back once, with the row it gets in this process."""
    from mnv4_postmortem.analyzer.batch.execute import CHUNK, run_local
    from mnv4_postmortem.analyzer.batch.rows import RunTask, analyze_path

    paths = [str(p) for p in sorted(RUNS.iterdir()) if p.is_dir()][:2 * CHUNK + 3]
    pooled = {row.path: (row.top_cause, row.outcome, row.error) for row in run_local(paths, RunTask(), 2)}
    alone = {p: (row.top_cause, row.outcome, row.error) for p in paths for row in [analyze_path(p, RunTask())]}
    assert pooled == alone and len(pooled) == len(paths)


def test_a_chunk_whose_worker_died_is_an_error_row_for_each_of_its_runs():
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from mnv4_postmortem.analyzer.batch.execute import _chunked, _failed_row, _windowed
    from mnv4_postmortem.analyzer.batch.rows import RunRow, RunTask

    def submit(chunk):
        future: Future = Future()
        if "b" in chunk:
            future.set_exception(BrokenProcessPool("a worker was killed"))
        else:
            future.set_result([RunRow(path=p, name=p) for p in chunk])
        return future

    rows = [row for rows in _windowed(submit, _chunked("abcde", 2), 2,
                                      lambda chunk, exc: [_failed_row(p, RunTask(), exc) for p in chunk])
            for row in rows]
    # rows come as their chunks finish (in any order): compare by path
    rows.sort(key=lambda r: r.path)
    assert [(r.path, r.error is not None) for r in rows] == [("a", True), ("b", True), ("c", False), ("d", False),
                                                             ("e", False)]
    assert "a worker was killed" in rows[0].error


# ------------------------------------------------------------------------------------------------ templates

HAND_TEMPLATES = (
    "{{ series.eval_top1.last | pct }} at epoch {{ series.eval_top1.last_epoch }} {{ cite(series.eval_top1) }}",
    "{% if derived.ema_share > 0.5 %}{{ derived.ema_share | round(2) }}{% elif config.lr %}{{ config.lr }}{% else %}"
    "{{ missing_name }}{% endif %}",
    "{{ a if b is defined else c | default(d) }} {{ [e, f] | join(', ') }} {{ {'k': g}['k'] }} {{ h[1:i] }}",
    "{% for x in series.values %}{{ x }}{{ loop.index }}{% endfor %}{{ x }}",
    "{% set y = config.lr %}{{ y }}{{ z }}",
    "{% if q %}{% set w = 1 %}{% endif %}{{ w }}",
    "{{ value | no_such_filter }}",
    "{{ value is no_such_test }}",
    "{% if value is no_such_test %}{{ other }}{% endif %}",
    "{{ cite(run.config, series.train_loss) }} {{ -k ** 2 }} {{ not m and n or o }}",
)


def _shipped_and_test_templates() -> list[str]:
    from mnv4_postmortem.analyzer.engine import schema, templating

    seen: list[str] = []
    original = templating.compile_template

    def record(source, **kwargs):
        seen.append(source)
        return original(source, **kwargs)

    schema.compile_template = record
    try:
        load_pack()
        load_pack([REPO / "tests" / "data" / "rules_good"], builtin=False)
        load_pack([REPO / "tests" / "data" / "rules_bad"], builtin=False)
    finally:
        schema.compile_template = original
    return seen


def test_undeclared_names_equal_jinjas_answer():
    import jinja2
    from jinja2 import meta

    from mnv4_postmortem.analyzer.engine.templating import ENV, undeclared_names

    sources = [s for s in _shipped_and_test_templates() if isinstance(s, str)] + list(HAND_TEMPLATES)
    compared = 0
    for source in sources:
        try:
            tree = ENV.parse(source)
        except jinja2.TemplateSyntaxError:
            continue
        try:
            expected: object = meta.find_undeclared_variables(tree)
        except jinja2.TemplateSyntaxError as exc:
            expected = ("fails", exc.message)
        try:
            got: object = undeclared_names(tree)
        except jinja2.TemplateSyntaxError as exc:
            got = ("fails", exc.message)
        assert got == expected, source
        compared += 1
    assert compared > 70


# ------------------------------------------------------------------------------------------------ detect


def _all_runs() -> list[Path]:
    shared = REPO.parent / "shared"
    roots = [RUNS, shared / "timm-runs", shared / "real-runs", REPO / "fixtures" / "public"]
    return [p for root in roots if root.is_dir() for p in sorted(root.iterdir()) if p.is_dir()]


def _same_written(run) -> int:
    from mnv4_postmortem.analyzer.detect.series import _written, _WrittenCells, epoch_frame

    frame = epoch_frame(run)
    cells = _WrittenCells(run, frame.index)
    for name in frame.columns:
        assert (cells.column(name) == _written(run, frame.index, name)).all(), name
    return len(frame.columns)


def test_written_cells_equal_the_per_column_lookup_on_real_runs():
    checked = 0
    for path in _all_runs():
        try:
            run = load_run(path)
        except Exception:  # noqa: BLE001 - an unusable run has no cells to compare
            continue
        checked += _same_written(run)
        if len(run.epochs) > 2:
            checked += _same_written(prefix(run, int(run.epochs.index[len(run.epochs) // 2])))
    assert checked > 200


@pytest.mark.parametrize("labels", [
    [0, 1, 1, 2],             # a repeated epoch: the last row counts
    ["0", "1", "x", 3],       # text labels, one not a number
    [0.0, 1.0, float("nan"), 2.0],
    [2, 0, 1],                # out of order
    [0, "0", 1],              # two labels that parse to one epoch: _written cannot reindex them
])
def test_written_cells_equal_the_per_column_lookup_on_odd_labels(labels):
    import dataclasses

    import pandas as pd

    from mnv4_postmortem.analyzer.detect.series import _written, _WrittenCells, epoch_frame

    run = load_run(RUNS / "seed_mnv4")
    refs = pd.DataFrame({"train_loss": ["a.csv:1", None, "a.csv:3", "a.csv:4"][: len(labels)],
                         "eval_top1": [None] * len(labels)}, index=pd.Index(labels, dtype="object"))
    odd = dataclasses.replace(run, epoch_refs=refs)
    frame = epoch_frame(odd)

    def outcome(lookup):
        try:
            return [lookup(name).tolist() for name in frame.columns]
        except Exception as exc:  # noqa: BLE001 - the same refusal is the same answer
            return type(exc)

    cells = _WrittenCells(odd, frame.index)
    assert outcome(cells.column) == outcome(lambda name: _written(odd, frame.index, name))


def test_reported_nan_equals_the_sibling_evidence_formula_on_real_runs():
    """``_reported_nan`` answers without looking at siblings when the column has no NaN; elsewhere (and
    on runs that print ``nan``) it is the module docstring's rule, written out here."""
    import numpy as np

    from mnv4_postmortem.analyzer.detect.series import _nonfinite_event_epochs, _reported_nan, _siblings, epoch_frame

    nan_cells = 0
    for path in [*_all_runs(), REPO / "fixtures" / "runs" / "effb0_grat_sgd_lr500_v1"]:
        try:
            run = load_run(path)
        except Exception:  # noqa: BLE001 - an unusable run has no frame to compare
            continue
        frame, flagged = epoch_frame(run), _nonfinite_event_epochs(run)
        for name in frame.columns:
            timm_rows = getattr(run, "trainer", None) is None
            siblings = [c for c in _siblings(name, frame.columns) if c != name and (timm_rows or name != "train_loss")]
            evidence = np.zeros(len(frame), dtype=bool)
            if siblings:
                evidence |= np.isfinite(frame[siblings].to_numpy(dtype=float)).any(axis=1)
            for row, epoch in enumerate(frame.index):
                names = flagged.get(int(epoch))
                evidence[row] |= names is not None and (None in names or name in names)
            nan = np.isnan(frame[name].to_numpy(dtype=float))
            nan_cells += int(nan.sum())
            assert (_reported_nan(frame, name, flagged, timm_rows) == (evidence & nan)).all(), (path, name)
    assert nan_cells > 0
