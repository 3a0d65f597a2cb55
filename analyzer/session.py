"""The front door: one ``Analyzer`` session that every command and the runner go through.

An ``Analyzer`` is built from picklable :class:`AnalyzerOptions` (rule paths, the shipped pack on or
off, TensorBoard tag aliases), so a batch worker or a Dask task rebuilds the same session from the
options alone. It owns, once per session:

* the rule pack, loaded with the known-names check (``pack``; its ``notices`` and ``errors``);
* ``load(path | "-") -> Run`` with the session's TensorBoard aliases;
* ``diagnose(run) -> Diagnosis`` under the session's rules;
* ``analyze(path) -> Diagnosis`` with the reproduction's attachments (verification, batch grid) found
  by their one owner, :mod:`analyzer.reproduction`;
* ``namespace(run)`` for the rule tests, and ``fix_as_if_fired(run, cause)`` for the runner's hypotheses.

Nothing here computes: it wires ingest, the pipeline, the engine and the reproduction folder together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Mapping, Sequence

from mnv4_postmortem.analyzer.reproduction import Attachments, find_attachments

if TYPE_CHECKING:  # the session module stays light: a batch task names its options before any stage loads
    from mnv4_postmortem.analyzer.diagnosis import Diagnosis
    from mnv4_postmortem.analyzer.features.derived import Derived
    from mnv4_postmortem.analyzer.model import Run

__all__ = ["Analyzer", "AnalyzerOptions", "Hypothesis", "UnknownHypothesis", "load_run", "diagnose", "recipe_quantities",
           "ema_version", "ema_initial_share", "lr_reference"]


@dataclass(frozen=True, slots=True)
class AnalyzerOptions:
    """Everything a session is built from: plain, hashable, picklable values."""

    rule_paths: tuple[str, ...] = ()                 # --rules files or folders, added to (or replacing) the shipped pack
    builtin: bool = True                             # load the shipped rules
    tb_aliases: tuple[tuple[str, str], ...] = ()     # --tb-alias TAG=NAME pairs (and --tb-aliases FILE's)

    @classmethod
    def of(cls, rule_paths: Sequence[Path | str] = (), *, builtin: bool = True,
           tb_aliases: Mapping[str, str] | None = None) -> AnalyzerOptions:
        return cls(tuple(str(p) for p in rule_paths), builtin, tuple(sorted((tb_aliases or {}).items())))


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """A cause tested as if it had fired: the rule that speaks for it and the fix it proposes on this run."""

    rule_id: str
    cause: str
    title: str
    severity: str
    patch: Mapping[str, Any] | None


class UnknownHypothesis(ValueError):
    """A name that is neither a rule id nor a cause of the session's pack."""

    def __init__(self, name: str, causes: Sequence[str]):
        super().__init__(f"no such cause or rule: {name!r} (causes: {', '.join(causes)})")
        self.name = name
        self.causes = tuple(causes)


class Analyzer:
    """A session: the rule pack loaded once, and every way of turning a run folder into a Diagnosis."""

    def __init__(self, options: AnalyzerOptions | None = None) -> None:
        self.options = options or AnalyzerOptions()
        self._pack = None

    def __reduce__(self):
        # Only the options travel to another process; the pack is loaded there on first use.
        return (Analyzer, (self.options,))

    def __repr__(self) -> str:
        return f"Analyzer({self.options!r})"

    # ---------------------------------------------------------------- rules

    @property
    def pack(self):
        """The rule pack (shipped and/or ``rule_paths``), loaded once with the known-names check."""
        if self._pack is None:
            from mnv4_postmortem.analyzer.engine.loader import load_pack
            from mnv4_postmortem.analyzer.features.names import is_known_name

            self._pack = load_pack([Path(p) for p in self.options.rule_paths], builtin=self.options.builtin,
                                   known_names=is_known_name)
        return self._pack

    # ---------------------------------------------------------------- runs

    @property
    def tb_aliases(self) -> Mapping[str, str] | None:
        return dict(self.options.tb_aliases) or None

    def load(self, path: Path | str, *, stdin: BinaryIO | None = None) -> Run:
        """The normalized run in ``path`` (``"-"``: an excerpt on ``stdin``)."""
        from mnv4_postmortem.analyzer.ingest import load_input

        return load_input(path, stdin=stdin, tb_aliases=self.tb_aliases)

    def diagnose(self, run: Run) -> Diagnosis:
        """Everything a renderer shows about ``run`` under the session's rules (no attachments)."""
        from mnv4_postmortem.analyzer.pipeline import diagnose

        return diagnose(run, self.pack)

    def analyze(self, path: Path | str, *, stdin: BinaryIO | None = None, verification: Path | None = None,
                batch_grid: Path | None = None, warn: Callable[[str], None] | None = None) -> Diagnosis:
        """``diagnose(load(path))`` with what a reproduction of that run left behind attached.

        ``verification`` / ``batch_grid`` name them explicitly (an unusable one raises
        ``AttachmentError``); otherwise the default reproduction folder's are used when present. A broken
        default goes to ``warn`` (the CLI's stderr), or without one into the Diagnosis's warnings.
        """
        found = find_attachments(path, verification, batch_grid)  # a named attachment fails before the work
        diagnosis = attach(self.diagnose(self.load(path, stdin=stdin)), found)
        if found.warnings and warn is not None:
            for message in found.warnings:
                warn(message)
        elif found.warnings:
            diagnosis = replace(diagnosis, warnings=diagnosis.warnings + found.warnings)
        return diagnosis

    # ---------------------------------------------------------------- rule tests and hypotheses

    def namespace(self, run: Run) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        """The rule namespace of ``run`` and the metadata fix command lines need (the rule-test harness)."""
        from mnv4_postmortem.analyzer.pipeline import namespace

        return namespace(run)

    def run_rule_tests(self, roots: Sequence[Path]) -> list:
        """Every ``*.test.yaml`` under ``roots`` against the session's pack, through the production stages."""
        from mnv4_postmortem.analyzer.engine import find_test_files, run_rule_tests
        from mnv4_postmortem.analyzer.ingest import load_run as ingest_run
        from mnv4_postmortem.analyzer.ingest.synthetic import synthetic_run

        return run_rule_tests(self.pack, find_test_files(roots), diagnose=self.namespace,
                              load_run=lambda p: ingest_run(p, tb_aliases=self.tb_aliases), make_run=synthetic_run)

    def target_metric(self, cause: str) -> str:
        """The metric a fix for ``cause`` should move (causes.yaml's ``metric``)."""
        return self.pack.info(cause).metric

    def causes_toggled_by(self, component: str) -> tuple[str, ...]:
        """The causes an ablation rung for ``component`` (ema, lr, regularization) tests (causes.yaml's ``ablation``)."""
        return self.pack.causes_toggled_by(component)

    def fix_as_if_fired(self, run: Run, name: str) -> Hypothesis:
        """The fix the rule for ``name`` (a cause or a rule id) proposes on ``run``, as if it had fired."""
        from mnv4_postmortem.analyzer.engine.hypothesis import forced_fix, rule_for

        rule = rule_for(self.pack, name)
        if rule is None:
            raise UnknownHypothesis(name, sorted(set(self.pack.causes) | {r.cause for r in self.pack.rules}))
        names, meta = self.namespace(run)
        return Hypothesis(rule.id, rule.cause, rule.title, rule.severity.label, forced_fix(rule, names, meta))


def attach(diagnosis: Diagnosis, found: Attachments) -> Diagnosis:
    """The diagnosis with a reproduction's verification, batch grid and warnings on it."""
    if found.verification is not None:
        diagnosis = replace(diagnosis, verification=found.verification)
    if found.batch_grid is not None and diagnosis.report_facts is not None:
        diagnosis = replace(diagnosis, report_facts=replace(diagnosis.report_facts, batch_grid=found.batch_grid))
    return diagnosis


def load_run(path: Path | str, *, tb_aliases: Mapping[str, str] | None = None) -> Run:
    """Public API: the normalized run in ``path``."""
    return Analyzer(AnalyzerOptions.of(tb_aliases=tb_aliases)).load(path)


def diagnose(run: Run, *, rule_paths: Sequence[Path | str] = ()) -> Diagnosis:
    """Public API: the diagnosis of ``run`` under the shipped rules (plus ``rule_paths``)."""
    return Analyzer(AnalyzerOptions.of(rule_paths)).diagnose(run)


# ---------------------------------------------------------------- what the runner asks about a recipe
# The runner is a client (issue 16): it reads the session, the result types and analyzer/timm's public
# names only. The quantities the analyzer derives from a run (features/), which a reproduction scales,
# are asked for here; the session delegates to their one owner and computes nothing itself.

def recipe_quantities(run: Run) -> Derived:
    """The derived recipe quantities of ``run`` (LR, global batch, updates per epoch, scheduled epochs,
    num_classes, input size): the same :class:`~analyzer.features.derived.Derived` the rules read."""
    from mnv4_postmortem.analyzer.features.derived import derive

    return derive(run)


def ema_version(run: Run, warmup: bool = False) -> str:
    """Which EMA class the run's timm used (``"v3"`` or ``"v1v2-constant"``): features/ema.py decides."""
    from mnv4_postmortem.analyzer.features.ema import ema_version_for

    return ema_version_for(run, warmup)[0]


def ema_initial_share(decay: float, updates: int, *, warmup: bool = False, version: str = "v3") -> float:
    """Share of the initial weights still inside a timm EMA after ``updates`` optimizer updates
    (features/ema.py's EmaModel, the one owner of timm's EMA update rules)."""
    from mnv4_postmortem.analyzer.features.ema import EmaModel

    return EmaModel(decay=decay, warmup=warmup, version=version).init_weight_after(updates)  # type: ignore[arg-type]


def lr_reference(opt: Any, global_batch: Any) -> float | None:
    """A typical LR for ``opt`` at ``global_batch`` (the reference the LR rules compare against)."""
    from mnv4_postmortem.analyzer.features.namespace import lr_reference as reference

    return reference(opt, global_batch)
