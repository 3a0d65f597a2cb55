"""Structure checks: one import namespace, and data flowing one way through the stages."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import pytest

from conftest import REPO

# stage -> stages it must never import (directly). Renderers never compute diagnoses; the pipeline
# wires the stages but renders nothing; the CLI reaches analysis only through the pipeline, the
# rule loader and the renderer registry (never a stage's internals).
FORBIDDEN = {
    "analyzer/ingest": ("detect", "features", "engine", "render", "pipeline", "diagnosis", "findings"),
    "analyzer/detect": ("ingest", "features", "engine", "render", "pipeline", "diagnosis", "findings"),
    "analyzer/features": ("ingest", "engine", "render", "pipeline", "diagnosis"),
    "analyzer/engine": ("ingest", "detect", "features", "render", "pipeline", "diagnosis"),
    "analyzer/render": ("ingest", "detect", "features", "engine", "pipeline"),
    "analyzer/pipeline.py": ("render",),
    "analyzer/diagnosis.py": ("ingest", "detect", "features", "engine", "render", "pipeline"),
    "mnv4_postmortem/cli": ("detect", "features.derived", "features.namespace", "engine.evaluate", "render.text",
                            "render.json_render", "render.html", "render.batch_", "render.rule"),
    # The ground floor of timm knowledge: every stage reads it, it reads none of them.
    "analyzer/timm": ("ingest", "detect", "features", "engine", "render", "pipeline", "diagnosis", "findings"),
}

# analyzer/timm/ may import only these: model.py, itself, the standard library and numpy.
TIMM_ALLOWED_PROJECT = ("mnv4_postmortem.analyzer.model", "mnv4_postmortem.analyzer.timm")
TIMM_ALLOWED_THIRD_PARTY = ("numpy",)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative import inside the analyzer package
                package = ".".join(path.relative_to(REPO).with_suffix("").parts[: -node.level])
                module = f"{package}.{module}".strip(".")
                module = module.replace("analyzer", "mnv4_postmortem.analyzer", 1)
            names.add(module)
    return names


def _python_files(where: Path) -> list[Path]:
    return [where] if where.suffix == ".py" else sorted(where.rglob("*.py"))


def test_stages_import_only_to_their_left():
    for folder, banned in FORBIDDEN.items():
        assert (REPO / folder).exists(), folder
        for path in _python_files(REPO / folder):
            for module in imported_modules(path):
                for stage in banned:
                    assert not module.startswith(f"mnv4_postmortem.analyzer.{stage}"), f"{path.relative_to(REPO)} imports {module}"


def test_timm_package_imports_only_model_stdlib_and_numpy():
    import sys

    files = list((REPO / "analyzer" / "timm").rglob("*.py"))
    assert files, "analyzer/timm/ is missing"
    for path in files:
        for module in imported_modules(path):
            top = module.split(".")[0]
            if module.startswith("mnv4_postmortem"):
                ok = any(module == allowed or module.startswith(allowed + ".") for allowed in TIMM_ALLOWED_PROJECT)
            else:
                ok = top in sys.stdlib_module_names or top in TIMM_ALLOWED_THIRD_PARTY or top == "__future__"
            assert ok, f"{path.relative_to(REPO)} imports {module}"


def test_no_generic_top_level_packages_are_installed():
    """Every package the wheel installs lives under mnv4_postmortem (no bare `analyzer` or `runner`)."""
    tomllib = pytest.importorskip("tomllib")
    setuptools_config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    names = list(setuptools_config["packages"]) + list(setuptools_config["package-dir"])
    assert names and all(n == "mnv4_postmortem" or n.startswith("mnv4_postmortem.") for n in names), names
    # and every folder with Python code under analyzer/ is listed, so none is silently left out of the wheel
    listed = set(setuptools_config["packages"])
    for init in (REPO / "analyzer").rglob("__init__.py"):
        dotted = ".".join(("mnv4_postmortem", *init.parent.relative_to(REPO).parts))
        assert dotted in listed, f"{dotted} is not in [tool.setuptools] packages"


def test_core_never_imports_torch_at_import_time():
    """The core needs no torch: timm is only tried lazily (input_size asks timm's pretrained config when present)."""
    for path in (REPO / "analyzer").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("torch", "timm") for n in names), path


def test_rule_names_table_matches_the_derived_fields():
    """features/names.py lists Derived's fields for the light rule loader; they must not drift apart."""
    from dataclasses import fields

    from mnv4_postmortem.analyzer.features.derived import Derived
    from mnv4_postmortem.analyzer.features.names import DERIVED_FIELDS

    assert DERIVED_FIELDS == {f.name for f in fields(Derived)}


# The runner's boundaries: the analyzer never imports the runner; the runner's planning modules and
# the CLI import neither torch nor timm at module level (only the trainer, proxy and artifacts do).
TORCH_FREE_RUNNER = ("spec.py", "scaling.py", "verify.py", "targets.py", "reproduce.py", "launch.py", "script.py",
                     "__init__.py", "ablation.py", "ablation_run.py", "lr_find.py", "show_batch.py")


def _module_level_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return names


def test_the_analyzer_never_imports_the_runner():
    for path in (REPO / "analyzer").rglob("*.py"):
        for module in imported_modules(path):
            assert not module.startswith("mnv4_postmortem.runner"), f"{path.relative_to(REPO)} imports {module}"


def test_runner_planning_and_cli_modules_load_without_torch():
    paths = [REPO / "runner" / name for name in TORCH_FREE_RUNNER] + list((REPO / "mnv4_postmortem").rglob("*.py"))
    for path in paths:
        for name in _module_level_imports(path):
            assert name.split(".")[0] not in ("torch", "timm", "torchvision"), f"{path.relative_to(REPO)} imports {name}"
            if path.parent.name == "cli":
                assert not name.startswith("mnv4_postmortem.runner"), f"{path.relative_to(REPO)} imports {name} at load"


def test_runner_reads_the_analyzers_timm_tables_in_one_place():
    """The runner reads the analyzer's timm knowledge (analyzer/timm/) through runner/spec.py alone."""
    for path in (REPO / "runner").rglob("*.py"):
        for module in imported_modules(path):
            if module.startswith("mnv4_postmortem.analyzer.timm"):
                assert path.name == "spec.py", f"{path.relative_to(REPO)} imports {module}"


def test_one_import_style_absolute_everywhere():
    """Issue 6: one import style across the package; a relative import names its module by position only."""
    for root in ("analyzer", "runner", "mnv4_postmortem", "rules"):
        for path in (REPO / root).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            relative = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]
            assert not relative, f"{path.relative_to(REPO)}: relative import on line(s) {relative}"


def test_every_project_import_resolves_including_function_local_ones():
    """Heavy modules are imported inside functions (light commands); a name dropped from its module would
    only fail when that command runs, so every ``from mnv4_postmortem... import name`` is resolved here."""
    import importlib

    pytest.importorskip("torch")  # the runner's modules import torch/timm
    pytest.importorskip("timm")
    unresolved = []
    for root in ("analyzer", "runner", "mnv4_postmortem"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mnv4_postmortem")):
                    continue
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            unresolved.append(f"{path.relative_to(REPO)}:{node.lineno} {node.module}.{alias.name}")
    assert not unresolved, unresolved


# ----------------------------------------------------------------------------- issue 16: one front door

def runtime_imports(path: Path) -> set[str]:
    """The project modules ``path`` imports when it runs (anywhere, functions included), leaving out
    ``if TYPE_CHECKING:`` blocks: a type-only name is no data flow."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            node.body = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return {n for n in names if n.startswith("mnv4_postmortem")}


A = "mnv4_postmortem.analyzer."


@dataclass(frozen=True)
class ImportRule:
    """One boundary: the files under ``scope`` (repo-relative files or folders) may import, of the project,
    only modules within ``allowed`` (when given) and never one within ``forbidden``."""

    name: str
    scope: tuple[str, ...]
    forbidden: tuple[str, ...] = ()
    allowed: tuple[str, ...] | None = None
    exactly: tuple[str, ...] = ()   # allowed as named, not their submodules (a registry package, not its members)
    exempt: tuple[str, ...] = ()    # files of the scope the rule leaves out

    def covers(self, relative: str) -> bool:
        return relative not in self.exempt and any(relative == s or relative.startswith(s.rstrip("/") + "/")
                                                   for s in self.scope)

    def breaks(self, relative: str, modules: Iterable[str]) -> list[str]:
        """The imports of ``relative`` (its runtime project imports) that break this rule."""
        if not self.covers(relative):
            return []
        found = []
        for module in sorted(modules):
            if module in self.exactly:
                continue
            if _within(module, self.forbidden):
                found.append(f"{self.name}: {relative} imports {module}")
            elif self.allowed is not None and (module.startswith(A) or module == A.rstrip(".")) \
                    and not _within(module, self.allowed):
                found.append(f"{self.name}: {relative} imports {module}")
        return found


def _within(module: str, allowed: Iterable[str]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed)


# Every command reads runs and rules through the session: no command composes ingest + pipeline + rule
# loading itself (each did, slightly differently, before issue 16).
SESSION_OWNS = tuple(A + m for m in ("pipeline", "ingest.merge", "ingest.excerpt", "engine.loader", "engine.evaluate",
                                      "engine.expr", "engine.testing", "engine.hypothesis"))

# Issue 16's boundaries, one row each (scope -> what it may or must not import at run time).
IMPORT_RULES = (
    # The runner is a client of the analyzer: the session, the result types and analyzer/timm's public names.
    # No named exceptions: what it needs from features/ (the derived recipe quantities, timm's EMA arithmetic,
    # the LR reference) it asks the session for.
    # Its outputs (spec, plan, verdicts, ladder, lr-find) are the render registry's renderers: it asks the
    # registry by kind and name (the package `analyzer.render`, never a renderer module), in runner/output.py only.
    ImportRule("runner is a client", ("runner",), allowed=tuple(A + m for m in (
        "session", "reproduction", "diagnosis", "findings", "model", "verification", "timm")), exactly=(A + "render",)),
    ImportRule("the runner asks the render registry in one place", ("runner",), forbidden=(A + "render",),
               exempt=("runner/output.py",)),
    # Commands and batch workers go through the session; the format registry (`ingest.formats`, issue 14's
    # discovery) is not the session's business.
    ImportRule("commands go through the session", ("mnv4_postmortem/cli", "analyzer/batch"),
               forbidden=SESSION_OWNS),
    ImportRule("batch workers compute nothing", ("analyzer/batch",),
               forbidden=tuple(A + m for m in ("detect", "engine", "features.derived", "features.namespace"))),
    ImportRule("the session renders nothing", ("analyzer/session.py",),
               forbidden=(A + "render", A + "batch", "mnv4_postmortem.runner", "mnv4_postmortem.cli")),
    # The reproduction folder's owner reads verifications, knows the stdin argument (run_argument) and asks
    # issue 17's output_location where the default folder goes (never inside a run directory); nothing else.
    ImportRule("the reproduction folder's owner", ("analyzer/reproduction.py",),
               allowed=tuple(A + m for m in ("verification", "run_argument", "output_location"))),
    # verification.json's reader is a leaf: where the default file lies is the folder's owner's (reproduction.py).
    ImportRule("verification is a leaf", ("analyzer/verification.py",), allowed=()),
    ImportRule("renderers never import batch", ("analyzer/render",),
               forbidden=(A + "batch", A + "session", "mnv4_postmortem.runner", "mnv4_postmortem.cli")),
    # The facts renderers read are made before rendering, by the analysis: never by a renderer or a client.
    ImportRule("report facts flow one way", ("analyzer/report_facts.py", "analyzer/diagnosis.py"),
               forbidden=(A + "render", A + "batch", A + "session", "mnv4_postmortem.runner", "mnv4_postmortem.cli")),
)


def rule_breaks(imports_by_file: Mapping[str, Iterable[str]]) -> list[str]:
    """Every break of :data:`IMPORT_RULES` in ``imports_by_file`` (repo-relative path -> project imports)."""
    return [b for relative, modules in imports_by_file.items() for rule in IMPORT_RULES
            for b in rule.breaks(relative, list(modules))]


def _tree_imports() -> dict[str, set[str]]:
    out = {}
    for root in ("runner", "mnv4_postmortem/cli", "analyzer"):
        for path in sorted((REPO / root).rglob("*.py")):
            out[path.relative_to(REPO).as_posix()] = runtime_imports(path)
    return out


def test_every_scope_of_the_import_rules_exists():
    for rule in IMPORT_RULES:
        for scope in rule.scope:
            assert (REPO / scope).exists(), f"{rule.name}: {scope}"


def test_the_tree_keeps_issue_16s_import_rules():
    assert rule_breaks(_tree_imports()) == []


# Breaks the tree had before issue 16 (or that its rows exist to stop), as (file, import). Each must be caught.
KNOWN_BREAKS = (
    ("runner/spec.py", A + "features.derived"),            # the derived recipe quantities (now: the session)
    ("runner/spec.py", A + "features.ema"),                # ema_version_for (now: the session)
    ("runner/scaling.py", A + "features.ema"),             # EmaModel (now: session.ema_initial_share)
    ("runner/ablation_run.py", A + "features.namespace"),  # lr_reference (now: the session)
    ("runner/targets.py", A + "engine.expr"),              # a rule recompiled with `when: True`
    ("runner/reproduce.py", A + "pipeline"),               # the analysis assembled by hand
    ("runner/reproduce.py", A + "ingest"),
    ("runner/ablation_run.py", A + "engine.loader"),       # the rule pack re-parsed per arm
    ("mnv4_postmortem/cli/report.py", A + "pipeline"),
    ("analyzer/batch/rows.py", A + "pipeline"),
    ("analyzer/batch/rows.py", A + "engine.loader"),
    ("analyzer/render/html.py", A + "batch.rows"),         # render -/-> batch
    ("analyzer/session.py", A + "render.text"),
    ("analyzer/verification.py", A + "render.verification"),
    ("analyzer/report_facts.py", A + "render.html"),
    ("runner/reproduce.py", A + "render"),                 # the registry, asked outside runner/output.py
    ("runner/output.py", A + "render.reproduce"),          # a renderer module instead of the registry
    ("runner/ablation_run.py", A + "render.ladder"),       # the ladder table printed by the runner
)


@pytest.mark.parametrize("relative,module", KNOWN_BREAKS)
def test_each_known_break_is_caught_by_a_rule(relative, module):
    """The rule function on synthetic import lists: the file's real imports plus the one break."""
    imports = runtime_imports(REPO / relative) | {module}
    assert any(module in b for b in rule_breaks({relative: imports})), (relative, module)


def test_a_break_injected_into_a_copy_of_a_runner_module_fails_the_check(tmp_path):
    """The same check on a file: a temp copy of runner/spec.py with its old features/ import put back."""
    original = (REPO / "runner" / "spec.py").read_text(encoding="utf-8")
    copy = tmp_path / "spec.py"
    copy.write_text(original + "\n\ndef _old():\n    from mnv4_postmortem.analyzer.features.derived import derive\n"
                    "    return derive\n", encoding="utf-8")
    assert rule_breaks({"runner/spec.py": runtime_imports(REPO / "runner" / "spec.py")}) == []
    assert rule_breaks({"runner/spec.py": runtime_imports(copy)}) == \
        [f"runner is a client: runner/spec.py imports {A}features.derived"]
    # a type-only import is no data flow: the same line under `if TYPE_CHECKING:` is allowed
    copy.write_text(original + "\n\nif TYPE_CHECKING:\n    from mnv4_postmortem.analyzer.features.derived import derive\n",
                    encoding="utf-8")
    assert rule_breaks({"runner/spec.py": runtime_imports(copy)}) == []


def test_a_forced_rule_is_the_engines_business():
    """Only the engine compiles expressions; the runner asks the session for a hypothesis's fix."""
    for path in (REPO / "runner").rglob("*.py"):
        assert "compile_expr" not in path.read_text(encoding="utf-8"), path.relative_to(REPO)


def test_commands_never_load_runs_themselves():
    # `from mnv4_postmortem.analyzer.ingest import load_run` is the session's job too; asking the format
    # registry (`analyzer.ingest.formats`, issue 14: batch discovery finds what ingest reads) is not
    paths = list((REPO / "mnv4_postmortem" / "cli").rglob("*.py")) + list((REPO / "analyzer" / "batch").rglob("*.py"))
    for path in paths:
        for module in runtime_imports(path):
            assert module != A + "ingest" or path.name == "app.py", f"{path.relative_to(REPO)} imports {module}"
